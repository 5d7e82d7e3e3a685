"""Colour statistics and linear colour transfer (pure NumPy).

Images are ``(H, W, 3)`` float arrays of RGB values in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def colour_statistics(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(3,)`` and covariance ``(3, 3)`` of an image's pixel colours."""
    pixels = rgb.reshape(-1, 3).astype(np.float64)
    return pixels.mean(axis=0), np.cov(pixels, rowvar=False) + 1e-6 * np.eye(3)


def blend_statistics(stats: Sequence[tuple[np.ndarray, np.ndarray]], weights: Sequence[float]):
    """Mean and covariance of the mixture of several images' colours, weighted."""
    mean = sum(w * m for (m, _), w in zip(stats, weights))
    second = sum(w * (c + np.outer(m, m)) for (m, c), w in zip(stats, weights))
    return mean, second - np.outer(mean, mean)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def match_colour(rgb: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Map an image's colours linearly so their mean and covariance become ``mean`` and ``cov``.

    Uses the symmetric (Monge–Kantorovich) map ``x ↦ A (x − μₛ) + μₜ`` with
    ``A = Σₛ^-½ (Σₛ^½ Σₜ Σₛ^½)^½ Σₛ^-½``: of all linear maps that match the statistics it moves
    colours the least, so hues change as little as the target palette allows. The result is
    clipped to [0, 1].
    """
    source_mean, source_cov = colour_statistics(rgb)
    root = _sqrtm(source_cov)
    inverse = np.linalg.inv(root)
    transform = inverse @ _sqrtm(root @ cov @ root) @ inverse
    pixels = (rgb.reshape(-1, 3) - source_mean) @ transform.T + mean
    return np.clip(pixels, 0.0, 1.0).reshape(rgb.shape).astype(np.float32)
