"""Colour, several styles, masks and scale: each control's effect is measured on small runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import color as skcolor

from impasto import colour, losses
from impasto.errors import UsageError
from impasto.optimize.engine import Stylizer, to_tensor
from impasto.recipe import Recipe

RUN = dict(max_size=96, min_size=None, steps=40, seed=0, device="cpu", style_weight=2.0, ema=0.0)
CPU = torch.device("cpu")
LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]


@pytest.fixture(scope="module")
def dots_style() -> np.ndarray:
    """A second, very different style: dark red dots on pale green, 96x96."""
    y, x = np.mgrid[0:96, 0:96].astype(np.float32)
    dots = ((np.sin(x / 2.5) * np.sin(y / 2.5)) > 0.3).astype(np.float32)[..., None]
    return (np.array([0.75, 0.9, 0.7], np.float32) * (1 - dots) + np.array([0.45, 0.05, 0.05], np.float32) * dots)


def run(content, styles, **options):
    extra = {k: options.pop(k) for k in ("style_blend", "masks", "content_mask") if k in options}
    recipe = Recipe.from_preset("balanced", **{**RUN, **options})
    stylizer = Stylizer(recipe)
    return stylizer, stylizer.run(content, styles, **extra)


def gram_distance(net, image, style, region=slice(None)):
    """Relative Gram distance summed over LAYERS between ``image[:, region]`` and the whole ``style``."""
    a = net(to_tensor(np.ascontiguousarray(image[:, region]), CPU), LAYERS)
    b = net(to_tensor(style, CPU), LAYERS)
    return sum(losses.relative_mse(losses.gram_matrix(a[k]), losses.gram_matrix(b[k])).item() for k in LAYERS)


# -- colour ---------------------------------------------------------------------------------------
def test_luminance_mode_keeps_the_photos_chroma(astronaut_small, stripes_style):
    _, result = run(astronaut_small, stripes_style, preserve_color="luminance")
    out, photo = skcolor.rgb2yiq(result.image), skcolor.rgb2yiq(astronaut_small)
    assert np.abs(out[..., 1:] - photo[..., 1:]).mean() < 0.01
    assert np.abs(out[..., 0] - photo[..., 0]).mean() > 0.03  # the style did change the tones


@pytest.mark.parametrize("mode, convert", [("post-yuv", skcolor.rgb2yuv), ("post-lab", skcolor.rgb2lab)])
def test_post_modes_swap_in_the_photos_chroma(mode, convert, astronaut_small, stripes_style):
    _, result = run(astronaut_small, stripes_style, preserve_color=mode, steps=10)
    out, photo = convert(result.image), convert(astronaut_small)
    scale = 100.0 if mode == "post-lab" else 1.0
    assert np.abs(out[..., 1:] - photo[..., 1:]).mean() < 0.01 * scale


def _colour_gap(image, reference):
    (m1, c1), (m2, c2) = colour.colour_statistics(image), colour.colour_statistics(reference)
    return np.linalg.norm(m1 - m2) + np.linalg.norm(c1 - c2)


def test_histogram_mode_keeps_the_photos_palette(astronaut_small, stripes_style):
    _, plain = run(astronaut_small, stripes_style)
    _, kept = run(astronaut_small, stripes_style, preserve_color="histogram")
    assert _colour_gap(kept.image, astronaut_small) < 0.35 * _colour_gap(plain.image, astronaut_small)


@pytest.mark.parametrize("method", colour.TRANSFER_METHODS)
def test_every_transfer_method_matches_mean_and_covariance(method, astronaut_small, stripes_style):
    mean, cov = colour.colour_statistics(0.3 + 0.4 * astronaut_small)  # mapped colours stay inside [0, 1]
    source = stripes_style
    matched = colour.match_colour(source, mean, cov, method=method)
    got_mean, got_cov = colour.colour_statistics(matched)
    assert np.allclose(got_mean, mean, atol=0.01) and np.allclose(got_cov, cov, atol=0.005)


def test_transfer_methods_differ_but_symmetric_moves_colours_least(astronaut_small, stripes_style):
    source_cov = colour.colour_statistics(stripes_style)[1]
    target_cov = colour.colour_statistics(astronaut_small)[1]
    maps = {m: colour.transfer_matrix(source_cov, target_cov, m) for m in colour.TRANSFER_METHODS}
    for a in maps.values():
        assert np.allclose(a @ source_cov @ a.T, target_cov, atol=1e-8)
    assert not np.allclose(maps["cholesky"], maps["pca"], atol=1e-3)
    # the Monge–Kantorovich map has the least expected squared displacement E‖Ax − x‖²
    displacement = {m: np.trace((a - np.eye(3)) @ source_cov @ (a - np.eye(3)).T) for m, a in maps.items()}
    assert displacement["symmetric"] <= min(displacement.values()) + 1e-12


# -- several styles -------------------------------------------------------------------------------
def test_style_blend_endpoints_equal_single_styles_and_middle_lies_between(astronaut_small, stripes_style,
                                                                          dots_style):
    stylizer, only_a = run(astronaut_small, stripes_style)
    _, only_b = run(astronaut_small, dots_style)
    _, blend_a = run(astronaut_small, [stripes_style, dots_style], style_blend=[1, 0])
    _, blend_b = run(astronaut_small, [stripes_style, dots_style], style_blend=[0, 1])
    _, half = run(astronaut_small, [stripes_style, dots_style], style_blend=[0.5, 0.5])
    assert np.abs(blend_a.image - only_a.image).max() < 2e-3
    assert np.abs(blend_b.image - only_b.image).max() < 2e-3
    net = stylizer.network(CPU)
    for style in (stripes_style, dots_style):
        d_a, d_b, d_half = (gram_distance(net, r.image, style) for r in (only_a, only_b, half))
        assert min(d_a, d_b) < d_half < max(d_a, d_b), (d_a, d_half, d_b)


@pytest.mark.parametrize("style_loss", ["wasserstein", "meanstd"])
def test_blend_works_with_every_style_loss(style_loss, astronaut_small, stripes_style, dots_style):
    _, only_a = run(astronaut_small, stripes_style, style_loss=style_loss, steps=15)
    _, blend_a = run(astronaut_small, [stripes_style, dots_style], style_blend=[1, 0], style_loss=style_loss,
                     steps=15)
    _, half = run(astronaut_small, [stripes_style, dots_style], style_loss=style_loss, steps=15)
    assert np.abs(blend_a.image - only_a.image).max() < 2e-3
    assert np.abs(half.image - only_a.image).mean() > 0.01


# -- masks ----------------------------------------------------------------------------------------
def test_masks_put_each_style_in_its_region_and_keep_the_photo(astronaut_small, stripes_style, dots_style):
    left, middle = slice(0, 32), slice(32, 64)  # the right third (64:96) has no mask: the photo is kept
    mask_a = np.zeros((96, 96), np.float32)
    mask_a[:, left] = 1
    mask_b = np.zeros((96, 96), np.float32)
    mask_b[:, middle] = 1
    stylizer, result = run(astronaut_small, [stripes_style, dots_style], masks=[mask_a, mask_b], steps=60)
    net = stylizer.network(CPU)
    inner_a, inner_b = slice(0, 28), slice(36, 60)
    image = result.image
    assert gram_distance(net, image, stripes_style, inner_a) < gram_distance(net, image, dots_style, inner_a)
    assert gram_distance(net, image, dots_style, inner_b) < gram_distance(net, image, stripes_style, inner_b)
    kept = np.abs(result.image[:, 68:] - astronaut_small[:, 68:]).mean()
    styled = np.abs(result.image[:, :28] - astronaut_small[:, :28]).mean()
    assert kept < 0.01 < styled, (kept, styled)


def test_masks_follow_the_photo_through_resizing_and_cropping(tmp_path, astronaut_small, stripes_style):
    """A mask file at another resolution is stretched to the photo, then cropped with it."""
    photo = np.concatenate([astronaut_small, astronaut_small], axis=1)  # 96x192
    mask = np.zeros((48, 96), np.uint8)
    mask[:, :48] = 255  # left half
    path = tmp_path / "mask.png"
    Image.fromarray(mask).save(path)
    _, result = run(photo, stripes_style, masks=[path], max_size=192, steps=5, aspect=(1, 1))
    # aspect 1:1 crops the centre 96x96: its left half styled, its right half the photo
    centre = photo[:, 48:144]
    assert np.abs(result.image[:, 52:] - centre[:, 52:]).mean() < 0.01
    assert np.abs(result.image[:, :44] - centre[:, :44]).mean() > 0.02


def test_content_mask_keeps_the_masked_region_closer(astronaut_small, stripes_style):
    mask = np.zeros((96, 96), np.float32)
    mask[:, :48] = 1
    _, plain = run(astronaut_small, stripes_style, content_weight=0.5, init="content")
    _, masked = run(astronaut_small, stripes_style, content_weight=0.5, content_mask=mask,
                    content_mask_weights=(0.25, 4.0), init="content")
    error = lambda r, cols: np.abs(r.image[:, cols] - astronaut_small[:, cols]).mean()  # noqa: E731
    assert error(masked, slice(0, 40)) < 0.9 * error(plain, slice(0, 40))
    assert error(masked, slice(56, 96)) > error(plain, slice(56, 96))


def test_mask_errors(astronaut_small, stripes_style, dots_style):
    with pytest.raises(UsageError, match="1 mask.*2 style"):
        run(astronaut_small, [stripes_style, dots_style], masks=[np.ones((96, 96))])
    with pytest.raises(UsageError, match="every mask is black"):
        run(astronaut_small, stripes_style, masks=[np.zeros((96, 96))])


# -- scale ----------------------------------------------------------------------------------------
def _radial_spectrum(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Power and radial frequency (cycles per pixel) of an (H, W, 3) image's grey level, windowed."""
    grey = image.mean(axis=2)
    grey = (grey - grey.mean()) * np.outer(np.hanning(grey.shape[0]), np.hanning(grey.shape[1]))
    power = np.abs(np.fft.fft2(grey)) ** 2
    fy, fx = np.fft.fftfreq(grey.shape[0])[:, None], np.fft.fftfreq(grey.shape[1])[None, :]
    return power, np.sqrt(fx**2 + fy**2)


def spectral_centroid(image: np.ndarray) -> float:
    """Power-weighted mean spatial frequency: lower means larger structures."""
    power, radius = _radial_spectrum(image)
    return float((power * radius).sum() / power.sum())


def synthesize(style: np.ndarray, scale: float) -> np.ndarray:
    """Pure texture at ``scale``: no content term, from noise, so only the style's statistics shape it."""
    photo = np.full((96, 96, 3), 0.5, np.float32)
    return run(photo, style, style_scale=scale, content_weight=0.0, init="noise", lr=0.05, steps=60)[1].image


def test_larger_style_scale_gives_larger_strokes():
    from impasto.texture import brush_strokes

    strokes = brush_strokes((96, 96), seed=0)
    small, large = spectral_centroid(synthesize(strokes, 0.5)), spectral_centroid(synthesize(strokes, 2.0))
    assert large < 0.85 * small, (small, large)


def test_recipe_validates_the_new_controls():
    with pytest.raises(UsageError, match="preserve_color"):
        Recipe(preserve_color="sepia")
    with pytest.raises(UsageError, match="color_transfer"):
        Recipe(color_transfer="lu")
    with pytest.raises(UsageError, match="style_scale"):
        Recipe(style_scale=0)
    with pytest.raises(UsageError, match="content_mask_weights"):
        Recipe(content_mask_weights=(1.0,))
    assert Recipe.from_dict(Recipe(preserve_color="luminance", style_scale=2).to_dict()).style_scale == 2


def test_python_api_takes_masks_and_controls(astronaut_small, stripes_style, dots_style):
    import impasto

    keep_right = np.zeros((96, 96), np.float32)
    keep_right[:, :48] = 1
    picture = impasto.stylize(astronaut_small, [stripes_style, dots_style], masks=[keep_right, keep_right * 0],
                              content_mask=keep_right, preserve_color="post-yuv", style_scale=1.5,
                              style_layers=("relu1_1", "relu3_1"), style_layer_weights=(1.0, 2.0), **RUN)
    meta = picture.info["impasto"]
    assert meta["masks"] == 2 and meta["recipe"]["style_layers"] == ["relu1_1", "relu3_1"]
    out = np.asarray(picture, np.float32) / 255
    assert np.abs(out[:, 52:] - astronaut_small[:, 52:]).mean() < 0.01
