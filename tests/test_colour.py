import numpy as np
import pytest

from impasto import colour
from impasto.optimize.engine import Stylizer
from impasto.recipe import Recipe


def _image(seed, shape=(40, 50, 3), scale=0.2, offset=0.4):
    return (np.random.default_rng(seed).random(shape) * scale + offset).astype(np.float32)


def test_match_colour_gives_the_target_statistics():
    source = _image(0)
    target = _image(1, scale=0.3, offset=0.2)
    target[..., 2] *= 0.5  # a different covariance, inside [0, 1]
    mean, cov = colour.colour_statistics(target)
    matched = colour.match_colour(source, mean, cov)
    got_mean, got_cov = colour.colour_statistics(matched)
    assert np.allclose(got_mean, mean, atol=1e-3)
    assert np.allclose(got_cov, cov, atol=1e-3)
    assert matched.shape == source.shape and matched.dtype == np.float32


def test_match_colour_to_own_statistics_is_identity():
    source = _image(2)
    assert np.allclose(colour.match_colour(source, *colour.colour_statistics(source)), source, atol=1e-4)


def test_blend_statistics_is_the_mixture():
    a, b = _image(3), _image(4, offset=0.1)
    mean, cov = colour.blend_statistics([colour.colour_statistics(a), colour.colour_statistics(b)], [0.5, 0.5])
    whole_mean, whole_cov = colour.colour_statistics(np.concatenate([a, b], axis=0))
    assert np.allclose(mean, whole_mean, atol=1e-6)
    assert np.allclose(cov, whole_cov, atol=1e-3)


def test_palette_init_starts_in_the_styles_colours(astronaut_small, stripes_style):
    recipe = Recipe.from_preset("balanced", max_size=64, min_size=None, steps=1, lr=1e-6, ema=0.0,
                                seed=0, device="cpu", init="palette")
    result = Stylizer(recipe).run(astronaut_small, stripes_style)
    style_mean = stripes_style.reshape(-1, 3).mean(0)
    photo_mean = astronaut_small.reshape(-1, 3).mean(0)
    out_mean = result.image.reshape(-1, 3).mean(0)
    assert np.abs(out_mean - style_mean).sum() < 0.3 * np.abs(photo_mean - style_mean).sum()
    assert Recipe.from_preset("balanced").init == "palette" and Recipe.from_preset("reference").init == "content"


def test_unknown_init_path_is_reported(astronaut_small, stripes_style, tmp_path):
    from impasto.errors import ImageError

    recipe = Recipe.from_preset("balanced", max_size=64, min_size=None, steps=1, device="cpu",
                                init=str(tmp_path / "nope.png"))
    with pytest.raises(ImageError, match="init image"):
        Stylizer(recipe).run(astronaut_small, stripes_style)
