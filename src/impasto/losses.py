"""Loss functions of neural style transfer (pure functions on tensors).

Shapes: feature maps are ``(N, C, H, W)``; Gram matrices ``(N, C, C)``; images ``(N, 3, H, W)``
with values in [0, 1]. Every loss returns a scalar tensor.
"""

from __future__ import annotations

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


def mse(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all elements."""
    return (x - target).pow(2).mean()


def relative_mse(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean((x − t)²) / mean(t²)``: the squared error relative to the target's energy.

    Scale free, so layers whose activations differ by orders of magnitude weigh alike, and a
    weight of 1 means "as large as the target itself".
    """
    return (x - target).pow(2).mean() / (target.pow(2).mean() + _EPS)


def notebook_gram_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """The original notebook's style loss: ``mean((G − A)²) / (C·H·W)`` with unnormalized Grams.

    ``target_gram`` is ``gram_matrix(style_features, normalize=False)`` of the same layer.
    """
    _, c, h, w = features.shape
    return (gram_matrix(features, normalize=False) - target_gram).pow(2).mean() / (c * h * w)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between horizontally and vertically adjacent pixels.

    Penalizes high-frequency noise; 0 for a constant image.
    """
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()
