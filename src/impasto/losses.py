"""Loss functions of neural style transfer (pure functions on tensors).

Shapes: feature maps are ``(N, C, H, W)``; Gram matrices ``(N, C, C)``; images ``(N, 3, H, W)``
with values in [0, 1]. Every loss returns a scalar tensor.
"""

from __future__ import annotations

import functools
import operator

import torch

_EPS = 1e-8


def gram_matrix(features: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Channel correlations ``F Fᵀ`` of ``(N, C, H, W)`` features → ``(N, C, C)``.

    With ``normalize`` the sum over positions is divided by ``H·W`` (a mean over positions), which
    makes the Gram matrix independent of the image size.
    """
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    gram = torch.bmm(flat, flat.transpose(1, 2))
    return gram / (h * w) if normalize else gram


def mse(x: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over all elements.

    ``weights`` (broadcastable to ``x``, e.g. ``(N, 1, H, W)`` per position) multiplies each
    squared error before the mean.
    """
    error = (x - target).pow(2)
    return (error * weights).mean() if weights is not None else error.mean()


def relative_mse(x: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """``mean(w·(x − t)²) / mean(t²)``: the squared error relative to the target's energy.

    Scale free, so layers whose activations differ by orders of magnitude weigh alike, and a
    weight of 1 means "as large as the target itself". ``weights`` as in :func:`mse`.
    """
    return mse(x, target, weights) / (target.pow(2).mean() + _EPS)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between horizontally and vertically adjacent pixels.

    Penalizes high-frequency noise; 0 for a constant image.
    """
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


# ---------------------------------------------------------------------------------------------
# Style statistics: what is matched between the image's features and the style's.
#
# Each kind computes a dict of statistics from ``(N, C, H, W)`` features (optionally weighted by
# a ``(N, 1, H, W)`` mask of where the statistics are taken) and a distance between two such
# dicts. Statistics of several styles combine linearly with weights (see ``blend_statistics``).
# ---------------------------------------------------------------------------------------------
STYLE_LOSSES = ("gram", "wasserstein", "meanstd")


def _flat_and_weights(features: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w).float()
    if mask is None:
        weights = flat.new_full((n, 1, h * w), 1.0 / (h * w))
    else:
        m = mask.reshape(n, 1, h * w).float()
        weights = m / m.sum(dim=2, keepdim=True).clamp_min(_EPS)
    return flat, weights


def style_statistics(features: torch.Tensor, kind: str, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Statistics of ``(N, C, H, W)`` features for a style loss of ``kind``.

    * ``gram``: ``{"gram": (N, C, C)}``, the second moment E[f fᵀ] over positions.
    * ``wasserstein``: ``{"mean": (N, C), "second": (N, C, C)}``: mean and second moment, from
      which the covariance of a Gaussian fit follows.
    * ``meanstd``: ``{"mean": (N, C), "square": (N, C)}``: per-channel mean and mean square.

    Every statistic is an expectation over positions (weighted by ``mask`` when given), so
    statistics of several images or regions blend by weighted averaging.
    """
    flat, weights = _flat_and_weights(features, mask)
    if kind == "gram":
        return {"gram": torch.bmm(flat * weights, flat.transpose(1, 2))}
    mean = (flat * weights).sum(dim=2)
    if kind == "wasserstein":
        return {"mean": mean, "second": torch.bmm(flat * weights, flat.transpose(1, 2))}
    if kind == "meanstd":
        return {"mean": mean, "square": (flat.pow(2) * weights).sum(dim=2)}
    raise ValueError(f"unknown style loss {kind!r}; choose from {', '.join(STYLE_LOSSES)}")


def blend_statistics(stats: list[dict[str, torch.Tensor]], weights: list[float]) -> dict[str, torch.Tensor]:
    """Weighted average of statistics dicts (moments of the mixture of the styles' features).

    ``stats`` and ``weights`` have one entry per style (a length mismatch is an error).
    """
    return {key: functools.reduce(operator.add, [w * s[key] for s, w in zip(stats, weights, strict=True)])
            for key in stats[0]}


def _sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of symmetric positive semi-definite ``(N, C, C)`` matrices (no gradient needed)."""
    values, vectors = torch.linalg.eigh(matrix.double())
    root = vectors @ torch.diag_embed(values.clamp_min(0).sqrt()) @ vectors.transpose(-1, -2)
    return root.to(matrix.dtype)


def prepare_target(stats: dict[str, torch.Tensor], kind: str) -> dict[str, torch.Tensor]:
    """Precompute what a distance needs from the target's statistics (done once per scale)."""
    target = dict(stats)
    if kind == "wasserstein":
        cov = stats["second"] - stats["mean"].unsqueeze(2) * stats["mean"].unsqueeze(1)
        target["cov"] = cov
        target["cov_sqrt"] = _sqrtm_psd(cov)
        target["energy"] = stats["mean"].pow(2).sum(dim=1) + torch.diagonal(cov, dim1=1, dim2=2).sum(dim=1)
    elif kind == "meanstd":
        target["std"] = (stats["square"] - stats["mean"].pow(2)).clamp_min(0).sqrt()
    return target


def style_distance(stats: dict[str, torch.Tensor], target: dict[str, torch.Tensor], kind: str,
                   relative: bool = True) -> torch.Tensor:
    """Distance between an image's statistics and a target from :func:`prepare_target`.

    * ``gram``: mean squared difference of the Gram matrices.
    * ``wasserstein``: squared 2-Wasserstein distance between Gaussian fits,
      ``‖μ − μₛ‖² + tr(Σ + Σₛ − 2 (Σₛ^½ Σ Σₛ^½)^½)``.
    * ``meanstd``: ``mean((μ − μₛ)² + (σ − σₛ)²)`` over channels.

    With ``relative`` the distance is divided by the target's own magnitude (the same distance to
    all-zero features), so layers and styles of different energy weigh alike. Returns a scalar
    (mean over the batch).
    """
    if kind == "gram":
        return relative_mse(stats["gram"], target["gram"]) if relative else mse(stats["gram"], target["gram"])
    if kind == "meanstd":
        std = (stats["square"] - stats["mean"].pow(2)).clamp_min(_EPS).sqrt()
        dist = (stats["mean"] - target["mean"]).pow(2).mean(dim=1) + (std - target["std"]).pow(2).mean(dim=1)
        if relative:
            dist = dist / (target["mean"].pow(2) + target["std"].pow(2)).mean(dim=1).clamp_min(_EPS)
        return dist.mean()
    if kind == "wasserstein":
        mean = stats["mean"]
        cov = stats["second"] - mean.unsqueeze(2) * mean.unsqueeze(1)
        root = target["cov_sqrt"]
        middle = root @ cov @ root
        # tr(M^½) from the eigenvalues of the symmetric PSD matrix M (clamped: sqrt has no slope at 0)
        eigenvalues = torch.linalg.eigvalsh(0.5 * (middle + middle.transpose(1, 2)))
        trace_sqrt = eigenvalues.clamp_min(1e-10).sqrt().sum(dim=1)
        dist = ((mean - target["mean"]).pow(2).sum(dim=1) + torch.diagonal(cov, dim1=1, dim2=2).sum(dim=1)
                + torch.diagonal(target["cov"], dim1=1, dim2=2).sum(dim=1) - 2 * trace_sqrt)
        dist = dist.clamp_min(0)
        if relative:
            dist = dist / target["energy"].clamp_min(_EPS)
        return dist.mean()
    raise ValueError(f"unknown style loss {kind!r}; choose from {', '.join(STYLE_LOSSES)}")
