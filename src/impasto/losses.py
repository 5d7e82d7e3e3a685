"""Loss functions of neural style transfer (pure functions on tensors).

Shapes: feature maps are ``(N, C, H, W)``; Gram matrices ``(N, C, C)``; images ``(N, 3, H, W)``
with values in [0, 1]. Every loss returns a scalar tensor.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import torch

_EPS = 1e-8


class _SymmetricGram(torch.autograd.Function):
    """``FᵀF · scale`` of ``(N, P, C)`` positions × channels, in fp32; the backward is one matmul.

    The product runs in the features' dtype (bf16 matmuls accumulate in fp32); autograd's own
    backward of ``bmm(Fᵀ, F)`` would take two matmuls where the symmetry needs one.
    """

    @staticmethod
    def forward(ctx: Any, flat: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(flat)
        ctx.scale = scale
        return torch.bmm(flat.transpose(1, 2), flat).float() * scale

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (flat,) = ctx.saved_tensors
        symmetric = ((grad + grad.transpose(1, 2)) * ctx.scale).to(flat.dtype)
        return torch.bmm(flat, symmetric), None


def positions_by_channels(features: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` features as ``(N, H·W, C)``, a view in either memory layout."""
    n, c, h, w = features.shape
    if features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous():
        return features.permute(0, 2, 3, 1).reshape(n, h * w, c)
    return features.reshape(n, c, h * w).transpose(1, 2)


def gram_matrix(features: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Channel correlations ``F Fᵀ`` of ``(N, C, H, W)`` features → ``(N, C, C)`` fp32.

    With ``normalize`` the sum over positions is divided by ``H·W`` (a mean over positions), which
    makes the Gram matrix independent of the image size. Features may be bf16 (the product
    accumulates in fp32) and NCHW or channels-last.
    """
    n, c, h, w = features.shape
    return _SymmetricGram.apply(positions_by_channels(features), 1.0 / (h * w) if normalize else 1.0)


def mse(x: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over all elements, computed in fp32 whatever the inputs' dtype.

    ``weights`` (broadcastable to ``x``, e.g. ``(N, 1, H, W)`` per position) multiplies each
    squared error before the mean.
    """
    error = (x.float() - target.float()).pow(2)
    return (error * weights).mean() if weights is not None else error.mean()


def relative_mse(x: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """``mean(w·(x − t)²) / mean(t²)``: the squared error relative to the target's energy.

    Scale free, so layers whose activations differ by orders of magnitude weigh alike, and a
    weight of 1 means "as large as the target itself". ``weights`` as in :func:`mse`.
    """
    return mse(x, target, weights) / (target.float().pow(2).mean() + _EPS)


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


def _position_weights(features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
    """``(N, H·W, 1)`` fp32 weights of the positions summing to 1 per image, or None: uniform."""
    if mask is None:
        return None
    n, _, h, w = features.shape
    m = mask.reshape(n, h * w, 1).float()
    return m / m.sum(dim=1, keepdim=True).clamp_min(_EPS)


def _second_moment(flat: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """``E[f fᵀ]`` ``(N, C, C)`` fp32 over the positions of ``flat`` ``(N, P, C)``."""
    if weights is None:
        return _SymmetricGram.apply(flat, 1.0 / flat.shape[1])
    return _SymmetricGram.apply(flat * weights.sqrt().to(flat.dtype), 1.0)


def _expectation(flat: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """``E[f]`` ``(N, C)`` fp32 over the positions of ``flat`` ``(N, P, C)``."""
    if weights is None:
        return flat.float().mean(dim=1)
    return (flat.float() * weights).sum(dim=1)


def style_statistics(features: torch.Tensor, kind: str, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Statistics of ``(N, C, H, W)`` features for a style loss of ``kind``, in fp32.

    * ``gram``: ``{"gram": (N, C, C)}``, the second moment E[f fᵀ] over positions.
    * ``wasserstein``: ``{"mean": (N, C), "second": (N, C, C)}``: mean and second moment, from
      which the covariance of a Gaussian fit follows.
    * ``meanstd``: ``{"mean": (N, C), "square": (N, C)}``: per-channel mean and mean square.

    Every statistic is an expectation over positions (weighted by ``mask`` ``(N, 1, H, W)`` when
    given), so statistics of several images or regions blend by weighted averaging. Features
    may be bf16 and channels-last (as :mod:`impasto.features` returns them on fast hardware).
    """
    if kind not in STYLE_LOSSES:
        raise ValueError(f"unknown style loss {kind!r}; choose from {', '.join(STYLE_LOSSES)}")
    flat = positions_by_channels(features)
    weights = _position_weights(features, mask)
    if kind == "gram":
        return {"gram": _second_moment(flat, weights)}
    mean = _expectation(flat, weights)
    if kind == "wasserstein":
        return {"mean": mean, "second": _second_moment(flat, weights)}
    return {"mean": mean, "square": _expectation(flat.float().pow(2), weights)}


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
