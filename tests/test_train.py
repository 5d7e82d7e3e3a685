"""Training feed-forward models: photos, curriculum, losses, checkpoints, resuming, Ctrl-C, the CLI.

Tiny runs only (32–48 px crops, width 8, one residual block, a few dozen steps, generated images or
scikit-image's photos), so the whole file takes well under a minute on 2 cores.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from impasto import cli
from impasto.errors import UsageError
from impasto.feedforward import stability as stab
from impasto.feedforward.network import Architecture, TransformNet
from impasto.feedforward.photos import BUNDLED, HELD_OUT, Photo, PhotoSet, find_photos
from impasto.feedforward.trainer import (
    STATE_KEY,
    Trainer,
    TrainingInterrupted,
    TrainSettings,
    crop_statistics,
)
from impasto.recipe import Recipe

TINY = Architecture(width=8, blocks=1)


def _texture(seed: int, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    base = rng.random((size // 8, size // 8, 3)).astype(np.float32)
    blocks = np.kron(base, np.ones((8, 8, 1), np.float32))
    return np.clip(0.6 * blocks + 0.4 * (0.5 + 0.5 * np.sin((x + 2 * y) / 5.0))[..., None], 0, 1)


@pytest.fixture(scope="module")
def photos() -> PhotoSet:
    """Eight generated 'photos' (smooth blobs and edges), shown at 64 px."""
    items = [Photo(f"gen{i}", (_texture(i) * 255).astype(np.uint8)) for i in range(8)]
    return PhotoSet(items, view=64, jitter=1.25)


@pytest.fixture(scope="module")
def stylizer():
    from impasto.optimize import Stylizer

    return Stylizer()


RECIPE = Recipe.from_preset("balanced", max_size=64, precision="fp32", device="cpu")


def _trainer(style, photos, stylizer, **settings) -> Trainer:
    values = dict(size=32, steps=6, batch_size=2, lr=5e-3, stability_weight=0.0, curriculum=((1.0, 1.0),),
                  checkpoint_every=0, sample_every=0)
    values.update(settings)
    return Trainer(style, recipe=RECIPE, settings=TrainSettings(**values), architecture=TINY, photos=photos,
                   stylizer=stylizer)


def _style_loss(trainer: Trainer, net: torch.nn.Module, crop: int = 48) -> float:
    """The mean style term of ``net``'s paintings of fixed crops (not drawn in training)."""
    features = trainer.features()
    batch = trainer.photos.batch(4, crop, torch.Generator().manual_seed(12345))
    with torch.no_grad():
        _, parts = trainer.objective(features, batch, crop)(trainer.paint(net, batch))
    return parts["style"]


# -- photos, curriculum, schedule ------------------------------------------------------------------
def test_photo_folder_is_searched_recursively_and_crops_are_repeatable(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    Image.fromarray((_texture(1) * 255).astype(np.uint8)).save(tmp_path / "one.png")
    Image.fromarray((_texture(2, 120) * 255).astype(np.uint8)).save(tmp_path / "a" / "b" / "two.JPG")
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert [p.name for p in find_photos(tmp_path)] == ["two.JPG", "broken.png", "one.png"]
    found = PhotoSet.load(tmp_path, view=64)
    assert len(found) == 2 and len(found.skipped) == 1 and "broken.png" in found.skipped[0]
    first = found.batch(3, 40, torch.Generator().manual_seed(5))
    again = found.batch(3, 40, torch.Generator().manual_seed(5))
    assert first.shape == (3, 3, 40, 40) and torch.equal(first, again)
    assert 0 <= float(first.min()) and float(first.max()) <= 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no image files"):
        PhotoSet.load(tmp_path / "empty", view=64)


def test_bundled_photos_keep_one_out():
    found = PhotoSet.load(None, view=128)
    assert len(found) == len(BUNDLED) and HELD_OUT not in " ".join(found.identity())
    assert all(max(p.pixels.shape[:2]) <= 128 * 1.5 + 8 and p.pixels.shape[2] == 3 for p in found.photos)


def test_curriculum_grows_to_size_and_lr_warms_up_then_decays():
    s = TrainSettings(size=256, steps=1000)
    crops = [s.crop_at(i) for i in range(s.steps)]
    assert crops[0] == 128 and crops[-1] == 256 and crops == sorted(crops) and s.crops() == [128, 192, 256]
    rates = [s.learning_rate(i) for i in range(s.steps)]
    peak = int(np.argmax(rates))
    assert rates[0] < rates[peak] == pytest.approx(s.lr) and 0 < peak <= 100
    assert rates[-1] == pytest.approx(0.05 * s.lr, rel=0.01) and all(np.diff(rates[peak:]) <= 1e-12)
    with pytest.raises(UsageError, match="batch size"):
        TrainSettings(batch_size=0)


def test_crop_statistics_of_a_uniform_texture_match_the_whole(stylizer):
    """A periodic texture's crops have the statistics of the whole (away from borders): the
    averaged target is close to the whole painting's, and it is an average over several crops."""
    trainer = Trainer(_texture(3, 128), recipe=RECIPE, architecture=TINY, photos=None, stylizer=stylizer)
    features = trainer.features()
    style = trainer.style_tensor()
    small, whole = crop_statistics(features, RECIPE, style, 32), crop_statistics(features, RECIPE, style, 4096)
    for layer in ("relu1_1", "relu2_1"):
        a, b = small[layer]["gram"], whole[layer]["gram"]
        assert a.shape == b.shape == (1,) + b.shape[1:]
        assert float((a - b).norm() / b.norm()) < 0.35


# -- the stability loss ----------------------------------------------------------------------------
def test_shift_moves_content():
    x = torch.arange(64.0).reshape(1, 1, 8, 8)
    moved = stab.shift(x, 1, 2)
    assert torch.equal(moved[..., 2:6, 2:6], x[..., 3:7, 4:8])


def test_stability_loss_is_zero_only_for_shift_equivariant_noise_free_paintings():
    photos = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    conv = torch.nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")

    def equivariant(x):  # a plain convolution commutes with shifts (away from the borders)
        return torch.sigmoid(conv(x))

    for offset in ((1, 2), (-3, 0), (4, -4)):
        assert float(stab.stability_loss(lambda x: x, photos, photos, offset)) == 0.0
        with torch.no_grad():
            assert float(stab.stability_loss(equivariant, photos, equivariant(photos), offset)) < 1e-12
    noise = torch.randn(photos.shape, generator=torch.Generator().manual_seed(1)) * stab.NOISE
    noisy = float(stab.stability_loss(lambda x: x, photos, photos, (1, 2), noise))
    assert noisy == pytest.approx(stab.NOISE ** 2, rel=0.3)  # the identity passes the noise on
    torch.manual_seed(0)
    net = TransformNet(TINY)  # stride-2 stages: not equivariant for a shift of 1 or 2 px
    with torch.no_grad():
        shifted_badly = float(stab.stability_loss(net, photos, net(photos), (1, 2)))
        assert shifted_badly > 1e-6 and shifted_badly > 10 * float(
            stab.stability_loss(equivariant, photos, equivariant(photos), (1, 2)))


# -- training, checkpoints, resuming ---------------------------------------------------------------
def test_a_tiny_training_run_lowers_the_style_loss(tmp_path, photos, stylizer):
    trainer = _trainer(_texture(9, 96), photos, stylizer, size=48, steps=40, lr=1e-2, stability_weight=20.0)
    torch.manual_seed(trainer.settings.seed)
    before = _style_loss(trainer, TransformNet(TINY))
    result = trainer.train(tmp_path / "tiny.impasto", samples=tmp_path / "samples")
    from impasto.feedforward.model import load_model, read_model_info

    model = load_model(tmp_path / "tiny.impasto", device="cpu")
    after = _style_loss(trainer, model.net)
    assert result.steps == 40 and len(result.history) == 40 and "stability" in result.losses
    assert after < 0.7 * before, (before, after)
    info = read_model_info(tmp_path / "tiny.impasto")
    assert info.steps == 40 and info.size == 48 and info.stability_weight == 20.0
    assert info.style_sha256 == trainer.style_hash
    assert [p.name for p in result.samples] == ["step_000040.png"]  # sample_every 0: only the end
    assert (tmp_path / "samples" / "photo.png").exists()


def test_ctrl_c_saves_a_checkpoint_and_the_same_run_resumes_to_the_same_model(tmp_path, photos, stylizer):
    style = _texture(4, 64)
    whole = _trainer(style, photos, stylizer).train(tmp_path / "whole.impasto")

    def interrupt(progress):
        if progress.step == 4:
            raise KeyboardInterrupt

    path = tmp_path / "split.impasto"
    with pytest.raises(TrainingInterrupted, match="run the same command again"):
        _trainer(style, photos, stylizer).train(path, callback=interrupt)
    from impasto.feedforward.model import load_model, read_extra, read_model_info

    assert read_model_info(path).steps == 4
    picture = load_model(path, device="cpu").paint(_texture(5, 40))
    assert np.asarray(picture).shape[:2] == (40, 40)
    _, metadata = read_extra(path)
    assert json.loads(metadata[STATE_KEY])["step"] == 4
    seen = []
    resumed = _trainer(style, photos, stylizer).train(path, callback=lambda p: seen.append(p.step))
    assert resumed.resumed_from == 4 and seen == [5, 6] and resumed.steps == whole.steps == 6
    assert [h["step"] for h in resumed.history] == [h["step"] for h in whole.history]
    for a, b in zip(resumed.history, whole.history, strict=True):  # same batches, same Adam state
        assert a["total"] == pytest.approx(b["total"], rel=1e-3)
    with pytest.raises(UsageError, match="other settings.*style_weight"):
        Trainer(style, recipe=RECIPE.replace(style_weight=3.0), settings=_trainer(style, photos, stylizer).settings,
                architecture=TINY, photos=photos, stylizer=stylizer).train(path)
    fresh = _trainer(style, photos, stylizer, steps=2).train(path, force=True)
    assert fresh.resumed_from == 0 and read_model_info(path).steps == 2


def test_cancel_stops_after_a_step_with_a_checkpoint(tmp_path, photos, stylizer):
    from impasto.cancel import CancelToken

    token = CancelToken()

    def cancel_at_two(progress):
        if progress.step == 2:
            token.cancel()

    result = _trainer(_texture(6, 64), photos, stylizer).train(tmp_path / "c.impasto", callback=cancel_at_two,
                                                                cancel=token)
    from impasto.feedforward.model import read_model_info

    assert result.cancelled and result.steps == 2 and read_model_info(tmp_path / "c.impasto").steps == 2


def test_cli_train_writes_a_model_that_loads_and_paints(tmp_path, capsys):
    style = tmp_path / "style.png"
    Image.fromarray((_texture(7) * 255).astype(np.uint8)).save(style)
    out = tmp_path / "m.impasto"
    args = ["train", str(style), "-o", str(out), "--size", "32", "--steps", "3", "--width", "8", "--blocks", "1",
            "--max-size", "64", "--batch-size", "2", "--precision", "fp32", "--samples", str(tmp_path / "s"),
            "--sample-every", "2", "--json-log"]
    assert cli.main(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["event"] == "start" and lines[-1]["event"] == "done" and lines[-1]["steps"] == 3
    from impasto.feedforward.model import load_model, read_model_info

    model = load_model(out, device="cpu")
    assert np.asarray(model.paint(_texture(8, 56)[:50, :54])).shape[:2] == (50, 54)
    info = read_model_info(out)
    assert info.steps == 3 and info.architecture == Architecture(8, 1)
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["photo.png", "step_000002.png", "step_000003.png"]
    assert cli.main(args) == 0 and "already trained" in capsys.readouterr().out
    assert cli.main([*args[:7], "4", *args[8:]]) == 2  # other settings: refused, saying what changed
    assert "steps 3 → 4" in (err := capsys.readouterr().err) and "--force" in err
    assert cli.main(["train", str(style), "-o", str(tmp_path / "m.png")]) == 2
