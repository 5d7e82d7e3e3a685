"""A run's guides: style regions, the kept photo, the content-weight map and the temporal
term, held at the output size and handed to each scale as tensors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .. import masks as masking
from ..errors import UsageError
from ..images import Fitting, ImageSource, LoadedImage, resize
from ..recipe import Recipe
from .inputs import to_tensor


@dataclass
class ScaleGuides:
    """The guides at one scale, all ``(1, K, H, W)`` tensors on the run's device.

    ``regions`` (K styles) with ``region_shares`` (each region's share of the picture, summing
    to 1); ``keep`` (K = 1) where the photo is kept; ``content_mask`` (K = 1) a per-pixel content
    weight; ``temporal`` the previous frame ``(1, 3, H, W)`` and where it is trusted ``(1, 1, H, W)``.
    """

    regions: torch.Tensor | None = None
    region_shares: list[float] | None = None
    keep: torch.Tensor | None = None
    content_mask: torch.Tensor | None = None
    temporal: tuple[torch.Tensor, torch.Tensor] | None = None


class Guides:
    """A run's masks at the output size (``(H, W)`` arrays in [0, 1])."""

    def __init__(self, regions: np.ndarray | None = None, keep: np.ndarray | None = None,
                 content_mask: tuple[np.ndarray, tuple[float, float]] | None = None,
                 temporal: tuple[np.ndarray, np.ndarray] | None = None):
        self.regions, self.keep, self.content_mask, self.temporal = regions, keep, content_mask, temporal

    @classmethod
    def load(cls, recipe: Recipe, masks: Sequence[ImageSource | LoadedImage] | None,
             content_mask: ImageSource | LoadedImage | None, photo_size: tuple[int, int], fitting: Fitting) -> Guides:
        """Read the masks and bring them to the photo's output geometry."""
        regions = keep = weight_map = None
        if masks is not None:
            raw = [masking.load_mask(m, photo_size, what=f"mask {i + 1}", max_pixels=recipe.max_pixels,
                                     fitting=fitting) for i, m in enumerate(masks)]
            regions, keep = masking.style_regions(raw)
            if not regions.any():
                raise UsageError("masks: every mask is black, so no style would be applied anywhere")
        if content_mask is not None:
            mask = masking.load_mask(content_mask, photo_size, what="content mask", max_pixels=recipe.max_pixels,
                                     fitting=fitting)
            weight_map = mask, recipe.content_mask_weights
        return cls(regions, keep, weight_map)

    def at_scale(self, size: tuple[int, int], device: torch.device) -> ScaleGuides:
        """The guides resized to ``size`` = (width, height)."""
        out = ScaleGuides()
        if self.regions is not None:
            planes = np.stack([resize(r, size) for r in self.regions])
            out.regions = torch.from_numpy(planes).unsqueeze(0).to(device)
            shares = self.regions.reshape(len(self.regions), -1).mean(axis=1)
            out.region_shares = [float(s / shares.sum()) for s in shares]
            if self.keep is not None and self.keep.max() > 0:
                out.keep = torch.from_numpy(resize(self.keep, size))[None, None].to(device)
        if self.content_mask is not None:
            mask, (black, white) = self.content_mask
            weights = black + (white - black) * resize(mask, size)
            out.content_mask = torch.from_numpy(weights.astype(np.float32))[None, None].to(device)
        if self.temporal is not None:
            previous, trusted = self.temporal
            out.temporal = (to_tensor(resize(previous, size), device),
                            torch.from_numpy(resize(trusted, size))[None, None].to(device))
        return out
