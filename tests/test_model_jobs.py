"""Trained models beyond one picture: ``batch --model``, reruns of a model's picture, ``--init model:``.

The models are tiny networks with random weights (as in test_models.py): what is tested is how
jobs carry a model, not what a trained model paints.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from test_models import model_info, random_net

import impasto
from impasto import cli
from impasto.errors import ImpastoError, UsageError
from impasto.feedforward import load_model, save_model
from impasto.images import read_metadata
from impasto.recipe import Recipe
from impasto.scale.batch import BatchRunner
from impasto.scale.jobs import plan_jobs, read_manifest
from impasto.scale.ledger import RESULTS_NAME


@pytest.fixture
def setup(tmp_path, astronaut_small):
    """Three photos of different sizes (one 96x72), a model file and a second model."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rgb = (astronaut_small * 255).astype(np.uint8)
    Image.fromarray(rgb[:72, :96]).save(folder / "wide.png")
    Image.fromarray(rgb[:64, :64]).save(folder / "square.png")
    Image.fromarray(np.roll(rgb, 9, axis=0)[:48, :80]).save(folder / "small.jpg")
    model = tmp_path / "starry.impasto"
    save_model(model, random_net(), model_info())
    other = tmp_path / "other.impasto"
    save_model(other, random_net(seed=3), model_info())
    return folder, model, other


def _results(folder):
    return [json.loads(line) for line in (folder / RESULTS_NAME).read_text().splitlines()]


def _pixels(path):
    return np.asarray(Image.open(path))


def test_batch_with_a_model_paints_every_photo_at_its_size(setup, tmp_path, capsys):
    folder, model, _ = setup
    out = tmp_path / "out"
    assert cli.main(["batch", str(folder), "--model", str(model), "-o", str(out), "--device", "cpu"]) == 0
    names = sorted(p.name for p in out.iterdir() if p.suffix == ".png")
    assert names == ["small__starry.png", "square__starry.png", "wide__starry.png"]
    assert Image.open(out / "wide__starry.png").size == (96, 72)  # no max_size given: the photo's own size
    direct = load_model(model, device="cpu").paint(str(folder / "square.png"))
    painted = _pixels(out / "square__starry.png").astype(np.float32) / 255
    assert np.abs(painted - direct).max() <= 1 / 255 + 1e-6  # the same pass as the Python API, then 8 bits
    metadata = read_metadata(out / "square__starry.png")
    assert metadata["model"]["sha256"] and metadata["content"]["path"].endswith("square.png")
    assert [r["status"] for r in _results(out)] == ["done"] * 3

    # the same command again skips every picture; another model repaints them all
    assert cli.main(["batch", str(folder), "--model", str(model), "-o", str(out), "--device", "cpu"]) == 0
    assert [r["status"] for r in _results(out)][3:] == ["skipped"] * 3
    save_model(model, random_net(seed=7), model_info())  # the file changed: its sha256 too
    assert cli.main(["batch", str(folder), "--model", str(model), "-o", str(out), "--device", "cpu"]) == 0
    assert [r["status"] for r in _results(out)][6:] == ["done"] * 3
    capsys.readouterr()


def test_batch_model_max_size_shrinks_and_changes_the_hash(setup, tmp_path):
    folder, model, _ = setup
    recipe = Recipe.from_preset("balanced", max_size=50, device="cpu")
    jobs = plan_jobs([str(folder / "wide.png")], [], recipe, model=str(model), shrink=True)
    BatchRunner(jobs, tmp_path / "out").run()
    assert max(Image.open(tmp_path / "out" / "wide__starry.png").size) == 50
    kept = plan_jobs([str(folder / "wide.png")], [], recipe, model=str(model), shrink=False)
    summary = BatchRunner(kept, tmp_path / "out").run()
    assert summary.done == 1  # not skipped: painting at the photo's size is another picture
    assert Image.open(tmp_path / "out" / "wide__starry.png").size == (96, 72)


def test_manifest_rows_may_name_their_model(setup, tmp_path):
    folder, model, other = setup
    manifest = tmp_path / "jobs.jsonl"
    rows = [{"content": str(folder / "wide.png"), "model": str(other)},
            {"content": str(folder / "square.png"), "max_size": 32},
            {"content": str(folder / "small.jpg"), "model": str(other), "steps": 10}]
    manifest.write_text("\n".join(json.dumps(r) for r in rows[:2]))
    jobs = read_manifest(manifest, Recipe.from_preset("balanced", device="cpu"), model=str(model), shrink=False)
    assert [j.model for j in jobs] == [str(other), str(model)]
    assert [j.shrink for j in jobs] == [False, True]
    summary = BatchRunner(jobs, tmp_path / "out").run()
    assert summary.done == 2
    assert Image.open(tmp_path / "out" / "square__starry.png").size == (32, 32)
    manifest.write_text(json.dumps(rows[2]))
    with pytest.raises(UsageError, match="steps not used with a model"):
        read_manifest(manifest, Recipe())


def test_batch_model_refuses_what_a_model_does_not_use(setup, tmp_path, capsys):
    folder, model, _ = setup
    out = str(tmp_path / "out")
    assert cli.main(["batch", str(folder), "--model", str(model), "-o", out, "--steps", "5"]) == 2
    assert "--steps: not used with --model" in capsys.readouterr().err
    assert cli.main(["batch", str(folder), "--model", str(model), "--style", str(folder / "wide.png"), "-o", out]) == 2
    assert "give no --style" in capsys.readouterr().err
    junk = tmp_path / "junk.impasto"
    junk.write_bytes(b"not a model at all")
    assert cli.main(["batch", str(folder), "--model", str(junk), "-o", out]) != 0
    assert "not an impasto model" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any job ran


def test_a_model_picture_reruns_to_the_same_pixels(setup, tmp_path, capsys):
    folder, model, other = setup
    painted = tmp_path / "painted.png"
    assert cli.main(["stylize", str(folder / "wide.png"), "--model", str(model), "-o", str(painted),
                     "--max-size", "80", "--preserve-color", "post-lab", "--device", "cpu"]) == 0
    again = tmp_path / "again.png"
    assert cli.main(["rerun", str(painted), "-o", str(again), "--quiet"]) == 0, capsys.readouterr().err
    assert np.array_equal(_pixels(again), _pixels(painted))
    assert read_metadata(again)["rerun_of"]["path"] == str(painted)

    # the model moved next to the picture: found by name; another model is a warning, not an error
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    painted.rename(moved / "painted.png")
    model.rename(moved / "starry.impasto")
    picture = impasto.rerun(moved / "painted.png", tmp_path / "api.png", content=folder / "wide.png")
    assert np.array_equal(_pixels(tmp_path / "api.png"), _pixels(again))
    assert picture.image.shape == (60, 80, 3)
    with pytest.warns(impasto.RerunWarning, match="sha256"):
        impasto.rerun(moved / "painted.png", None, content=folder / "wide.png", model=other, max_size=40)

    bigger = tmp_path / "bigger.png"
    assert cli.main(["rerun", str(moved / "painted.png"), "-o", str(bigger), "--content", str(folder / "wide.png"),
                     "--max-size", "96", "--quiet"]) == 0
    assert Image.open(bigger).size == (96, 72)
    assert cli.main(["rerun", str(moved / "painted.png"), "--content", str(folder / "wide.png"),
                     "--steps", "3"]) == 2
    assert "steps: not used to paint with a model" in capsys.readouterr().err
    (moved / "starry.impasto").unlink()
    assert cli.main(["rerun", str(moved / "painted.png"), "--content", str(folder / "wide.png")]) != 0
    assert "pass --model PATH" in capsys.readouterr().err


def test_plan_rerun_says_a_model_picture_needs_the_model_path(setup, tmp_path):
    folder, model, _ = setup
    painted = tmp_path / "p.png"
    assert cli.main(["stylize", str(folder / "square.png"), "--model", str(model), "-o", str(painted), "--quiet"]) == 0
    from impasto.reruns import plan_rerun

    with pytest.raises(ImpastoError, match="painted by a trained model"):
        plan_rerun(painted)


def test_init_from_a_model_starts_from_its_picture(setup, tmp_path, capsys, stripes_style):
    folder, model, _ = setup
    style = tmp_path / "style.png"
    Image.fromarray((stripes_style * 255).astype(np.uint8)).save(style)
    photo = str(folder / "square.png")
    quick = Recipe.from_preset("fast", max_size=64, min_size=None, steps=1, lr=1e-4, seed=1, device="cpu")
    from impasto.optimize import Stylizer

    stylizer = Stylizer(quick)
    started = stylizer.run(photo, [str(style)], recipe=quick.replace(init=f"model:{model}"))
    picture = load_model(model).paint(photo)
    # one tiny step away from the model's picture, and far from the palette start's
    assert np.abs(started.image - picture).mean() < 0.01
    palette = stylizer.run(photo, [str(style)], recipe=quick.replace(init="palette"))
    assert np.abs(palette.image - picture).mean() > 5 * np.abs(started.image - picture).mean()
    # the recorded init finds the model again when the picture is rerun
    out = tmp_path / "init.png"
    assert cli.main(["stylize", photo, str(style), "-o", str(out), "--init", f"model:{model}", "--preset", "fast",
                     "--max-size", "64", "--steps", "2", "--seed", "1", "--device", "cpu", "--quiet"]) == 0
    again = tmp_path / "init-again.png"
    assert cli.main(["rerun", str(out), "-o", str(again), "--quiet"]) == 0, capsys.readouterr().err
    assert np.array_equal(_pixels(out), _pixels(again))
