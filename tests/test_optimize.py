import numpy as np
import pytest
import torch
from PIL import Image

from impasto import Recipe
from impasto.errors import ImageError, UsageError
from impasto.images import LoadedImage
from impasto.optimize.inputs import load_styles, optimized_view, prepare_inputs
from impasto.optimize.optimizers import IterateAverage, make_optimizer


def test_average_of_a_constant_is_the_constant():
    average = IterateAverage(0.9)
    for _ in range(5):
        average.update(torch.full((1, 3, 2, 2), 0.25))
    assert torch.allclose(average.value, torch.full((1, 3, 2, 2), 0.25))


def test_average_smooths_jitter_and_follows_early():
    average = IterateAverage(0.9)
    values = [0.0 if i % 2 else 1.0 for i in range(200)]
    for v in values:
        average.update(torch.tensor([v]))
    assert abs(average.value.item() - 0.5) < 0.06  # the jitter is averaged out
    fresh = IterateAverage(0.9)
    fresh.update(torch.tensor([0.0]))
    fresh.update(torch.tensor([1.0]))
    # effective decay starts at 1/10: the second iterate weighs 0.8, not 0.1
    assert fresh.value.item() == pytest.approx(1 - 2 / 11, rel=1e-5)


def test_zero_decay_is_the_last_iterate():
    average = IterateAverage(0.0)
    for v in (1.0, 2.0, 3.0):
        average.update(torch.tensor([v]))
    assert average.value.item() == 3.0


def test_average_does_not_alias_the_iterate():
    x = torch.zeros(3)
    average = IterateAverage(0.5)
    average.update(x)
    x += 1
    assert average.value.sum().item() == 0


@pytest.mark.parametrize("kind, kwargs", [("adam", {"lr": 0.1}), ("lbfgs", {"lr": 1.0}),
                                          ("lbfgs", {"lr": 1.0, "line_search": True})])
def test_optimizers_minimize_a_quadratic(kind, kwargs):
    x = torch.zeros(4, requires_grad=True)
    target = torch.tensor([0.2, 0.4, 0.6, 0.8])
    optimizer = make_optimizer(kind, x, **kwargs)

    def closure():
        optimizer.zero_grad()
        loss = (x - target).pow(2).sum()
        loss.backward()
        return loss

    for _ in range(60):
        optimizer.step(closure)
    assert torch.allclose(x.detach(), target, atol=0.02)


def _picture(height, width, seed, alpha=False):
    rng = np.random.default_rng(seed)
    rgb = rng.random((height, width, 3), dtype=np.float32)
    return LoadedImage(rgb=rgb, alpha=rng.random((height, width), dtype=np.float32) if alpha else None)


def test_prepared_inputs_fit_the_photo_and_keep_its_transparency():
    photo, style = _picture(60, 90, 0, alpha=True), _picture(40, 40, 1)
    prepared = prepare_inputs(Recipe(max_size=45), photo, style)
    assert prepared.final_size == (45, 30)
    assert prepared.photo.shape == prepared.content_rgb.shape == (30, 45, 3)
    assert prepared.alpha is not None and prepared.alpha.shape == (30, 45)
    assert prepared.styles == [style]  # no colour mode: the painting as given
    assert prepared.content is photo


def test_prepared_inputs_in_luminance_mode_are_grey_as_the_video_frames_are():
    photo, style = _picture(32, 32, 2), _picture(32, 32, 3)
    recipe = Recipe(max_size=32, preserve_color="luminance")
    prepared = prepare_inputs(recipe, photo, [style])
    for rgb in (prepared.content_rgb, prepared.styles[0].rgb):
        assert np.allclose(rgb[..., 0], rgb[..., 1]) and np.allclose(rgb[..., 1], rgb[..., 2])
    assert not np.allclose(prepared.styles[0].rgb, style.rgb)
    # a video frame is seen the same way as a still photo
    assert np.allclose(optimized_view(recipe, prepared.photo), prepared.content_rgb)
    assert optimized_view(Recipe(), photo.rgb) is photo.rgb


def test_styles_load_once_from_any_source(tmp_path):
    path = tmp_path / "painting.png"
    Image.fromarray((_picture(40, 60, 4).rgb * 255).astype(np.uint8)).save(path)
    for source in (path, str(path), [path]):
        styles = load_styles(source, max_pixels=10**6)
        assert len(styles) == 1 and styles[0].size == (60, 40) and styles[0].sha256 is not None
    assert load_styles(styles, max_pixels=10**6) == styles  # loaded ones are taken as they are
    with pytest.raises(ImageError, match="style image 2"):
        load_styles([path, tmp_path / "missing.png"], max_pixels=10**6)
    with pytest.raises(UsageError, match="at least one style image"):
        load_styles([], max_pixels=10**6)
