"""Masks: where each style goes, and where the photo's content matters more.

Masks are greyscale images (white = 1, black = 0, soft edges allowed). They are stretched to
the photo's size and then cropped, padded and resized exactly like the photo, so they stay
aligned with the output at every scale of a run. Style statistics are then taken per region
(guided Gram matrices, Gatys et al. 2017, §4).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .errors import UsageError
from .images import Fitting, ImageSource, LoadedImage, flatten, load_image, resize


def load_mask(source: ImageSource | LoadedImage, photo_size: tuple[int, int], *, what: str,
              max_pixels: int, fitting: Fitting) -> np.ndarray:
    """Read one mask and bring it to the output geometry: ``(H, W)`` float32 in [0, 1].

    ``photo_size`` is the photo's (width, height) before fitting; ``fitting`` is the photo's
    output geometry. Transparent pixels count as black.
    """
    image = source if isinstance(source, LoadedImage) else load_image(source, what=what, max_pixels=max_pixels,
                                                                     min_side=1)
    grey = flatten(image, background=0.0).mean(axis=2)
    grey = resize(grey, photo_size)
    fitted = fitting.apply(LoadedImage(rgb=np.repeat(grey[..., None], 3, axis=2), name=image.name))
    return np.ascontiguousarray(fitted.rgb[..., 0])


def style_regions(masks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-style region weights and the "keep the photo" weight from raw masks.

    Args:
        masks: ``K`` arrays ``(H, W)`` in [0, 1], one per style.

    Returns:
        ``regions`` ``(K, H, W)`` scaled so they sum to at most 1 at every pixel (where masks
        overlap they share the pixel), and ``keep`` ``(H, W)`` = 1 − their sum: where every mask
        is black the photo is kept.
    """
    stacked = np.stack([np.clip(m, 0.0, 1.0) for m in masks]).astype(np.float32)
    total = stacked.sum(axis=0)
    regions = stacked / np.maximum(total, 1.0)
    return regions, np.clip(1.0 - regions.sum(axis=0), 0.0, 1.0)


def check_masks(masks: Sequence[object] | None, styles: int) -> None:
    if masks is not None and len(masks) != styles:
        raise UsageError(f"masks: {len(masks)} mask(s) for {styles} style image(s); give one mask per style, "
                         "in the order of the styles")


def pool_to(mask: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Average ``(N, K, H, W)`` mask weights down (or up) to a feature map's ``(h, w)``."""
    size = (int(shape[0]), int(shape[1]))
    if tuple(mask.shape[-2:]) == size:
        return mask
    if mask.shape[-2] >= size[0] and mask.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(mask, size)
    return F.interpolate(mask, size=size, mode="bilinear", align_corners=False)
