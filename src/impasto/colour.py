"""Colour statistics, linear colour transfer and luminance/chroma handling (pure NumPy).

Images are ``(H, W, 3)`` float arrays of sRGB values in [0, 1]. These functions implement the
colour controls of Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer"
(CVPR 2017): transfer on luminance only, or match the style's colours to the photo's first.
Colour-space conversions come from scikit-image.
"""

from __future__ import annotations

import functools
import operator
import warnings
from collections.abc import Sequence

import numpy as np
from skimage import color as skcolor

#: Linear colour transfer maps: all give the target mean and covariance, they differ in rotation.
TRANSFER_METHODS = ("symmetric", "cholesky", "pca")


def colour_statistics(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(3,)`` and covariance ``(3, 3)`` of an image's pixel colours."""
    pixels = rgb.reshape(-1, 3).astype(np.float64)
    return pixels.mean(axis=0), np.cov(pixels, rowvar=False) + 1e-6 * np.eye(3)


def blend_statistics(stats: Sequence[tuple[np.ndarray, np.ndarray]],
                     weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the mixture of several images' colours, weighted (one weight per image)."""
    mean = functools.reduce(operator.add, [w * m for (m, _), w in zip(stats, weights, strict=True)])
    second = functools.reduce(operator.add,
                              [w * (c + np.outer(m, m)) for (m, c), w in zip(stats, weights, strict=True)])
    return mean, second - np.outer(mean, mean)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def transfer_matrix(source_cov: np.ndarray, target_cov: np.ndarray, method: str = "symmetric") -> np.ndarray:
    """A ``(3, 3)`` matrix ``A`` with ``A Σₛ Aᵀ = Σₜ`` (source and target covariances ``(3, 3)``).

    * ``symmetric``: the Monge–Kantorovich map ``Σₛ^-½ (Σₛ^½ Σₜ Σₛ^½)^½ Σₛ^-½``; of all such maps it
      moves colours the least, so hues change as little as the target palette allows.
    * ``cholesky``: ``Lₜ Lₛ⁻¹`` with Cholesky factors ``Σ = L Lᵀ`` (depends on the channel order).
    * ``pca``: ``Σₜ^½ Σₛ^-½``, whitening along the source's principal axes, colouring along the target's.
    """
    if method == "symmetric":
        root = _sqrtm(source_cov)
        inverse = np.linalg.inv(root)
        return inverse @ _sqrtm(root @ target_cov @ root) @ inverse
    if method == "cholesky":
        return np.linalg.cholesky(target_cov) @ np.linalg.inv(np.linalg.cholesky(source_cov))
    if method == "pca":
        return _sqrtm(target_cov) @ np.linalg.inv(_sqrtm(source_cov))
    raise ValueError(f"unknown colour transfer {method!r}; choose from {', '.join(TRANSFER_METHODS)}")


def match_colour(rgb: np.ndarray, mean: np.ndarray, cov: np.ndarray, method: str = "symmetric") -> np.ndarray:
    """Map an image's colours linearly so their mean and covariance become ``mean`` and ``cov``.

    ``x ↦ A (x − μₛ) + μₜ`` with ``A`` from :func:`transfer_matrix`. The result is clipped to
    [0, 1] (float32, the input's shape).
    """
    source_mean, source_cov = colour_statistics(rgb)
    transform = transfer_matrix(source_cov, cov, method)
    pixels = (rgb.reshape(-1, 3) - source_mean) @ transform.T + mean
    return np.clip(pixels, 0.0, 1.0).reshape(rgb.shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Luminance and chroma
# ---------------------------------------------------------------------------------------------
def luminance(rgb: np.ndarray) -> np.ndarray:
    """The Y channel of YIQ, ``(H, W)`` in [0, 1]."""
    return skcolor.rgb2yiq(rgb)[..., 0].astype(np.float32)


def luminance_image(rgb: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    """An image's luminance as a grey ``(H, W, 3)`` image, optionally matched to ``like``'s.

    With ``like`` (another RGB image) the luminance is shifted and scaled to the mean and standard
    deviation of ``like``'s luminance, so a style's tones fit the photo's before transfer.
    """
    y = luminance(rgb)
    if like is not None:
        target = luminance(like)
        y = (y - y.mean()) / max(float(y.std()), 1e-6) * float(target.std()) + float(target.mean())
    return np.repeat(np.clip(y, 0.0, 1.0)[..., None], 3, axis=2)


def with_chroma_of(rgb: np.ndarray, source: np.ndarray, space: str = "yiq") -> np.ndarray:
    """``rgb``'s lightness with ``source``'s chroma; both ``(H, W, 3)`` of the same size.

    ``space`` is ``yiq`` or ``yuv`` (luma plus two colour-difference channels) or ``lab``
    (CIELAB lightness L* plus a*, b*). Returns float32 clipped to [0, 1].
    """
    forward, backward = {"yiq": (skcolor.rgb2yiq, skcolor.yiq2rgb), "yuv": (skcolor.rgb2yuv, skcolor.yuv2rgb),
                         "lab": (skcolor.rgb2lab, skcolor.lab2rgb)}[space]
    mixed = forward(source)
    mixed[..., 0] = forward(rgb)[..., 0]
    with warnings.catch_warnings():  # out-of-gamut combinations are clipped, as scikit-image warns
        warnings.simplefilter("ignore", UserWarning)
        return np.clip(backward(mixed), 0.0, 1.0).astype(np.float32)
