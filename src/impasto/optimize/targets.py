"""What a scale's loss aims at: the photo's features and the paintings' style statistics."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import losses
from ..features import FeatureExtractor
from ..images import LoadedImage, flatten, resize, scaled_to_long_side
from ..recipe import Recipe
from ..vgg import deepest
from . import tiling
from .guides import ScaleGuides
from .inputs import to_tensor
from .objective import tiled_statistics

Stats = dict[str, torch.Tensor]


@dataclass
class ScaleTargets:
    """Everything one scale's :class:`~impasto.optimize.objective.Objective` compares against.

    ``content``: ``{layer: (1, C, h, w)}`` features of the photo, ``None`` on tiled scales (each
    tile's are computed from ``photo`` instead). ``style``: ``{layer: [(strength, target)]}``,
    one blended target, or one per style when masks give each its region. ``photo``: the
    content image ``(1, 3, H, W)``. ``guides``: masks and the temporal term at this scale.
    """

    content: dict[str, torch.Tensor] | None
    style: dict[str, list[tuple[float, Stats]]]
    photo: torch.Tensor
    guides: ScaleGuides = field(default_factory=ScaleGuides)


class StatisticsCache:
    """Style statistics kept between runs, keyed by everything they depend on.

    A batch paints many photos in the same styles: at each scale the painting is shown at a size
    that depends only on the output size, so photos of one size share their styles' statistics.
    The key holds the network (weights, pooling, precision), the layers and kind of statistics,
    the tiling budget and a digest of the exact pixels shown (so a style recoloured for one photo
    never serves another). At most ``capacity`` entries are kept, least recently used first out.
    """

    def __init__(self, capacity: int = 64):
        self.capacity = capacity
        self.computed = 0   #: statistics computed (cache misses)
        self.reused = 0     #: statistics served from the cache
        self._items: OrderedDict[Hashable, dict[str, Stats]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], dict[str, Stats]]) -> dict[str, Stats]:
        """The statistics under ``key``, computing (and keeping) them on a miss."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.reused += 1
                return self._items[key]
        stats = compute()
        with self._lock:
            self.computed += 1
            self._items[key] = stats
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return stats

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def pixels_digest(pixels: np.ndarray) -> str:
    """A digest of an image array's shape, dtype and bytes (identifies the exact pixels)."""
    digest = hashlib.blake2b(np.ascontiguousarray(pixels).tobytes(), digest_size=16)
    digest.update(repr((pixels.shape, str(pixels.dtype))).encode())
    return digest.hexdigest()


def style_tile(recipe: Recipe, size: tuple[int, int], budget: float) -> int | None:
    """The tile side to compute a ``size`` = (W, H) style image's statistics in, or None: whole.

    ``budget``: bytes one optimization step may use; without gradients activations are not kept,
    so a style image may be about 2.5 times as large before it is tiled.
    """
    if recipe.tile_size == 0:
        return None
    if recipe.tile_size:
        return recipe.tile_size if max(size) > recipe.tile_size else None
    return tiling.choose_tile(size, deepest(recipe.style_layers), budget * 2.5)


def style_statistics(features: FeatureExtractor, recipe: Recipe, style: torch.Tensor,
                     tile: int | None) -> dict[str, Stats]:
    """``{layer: stats}`` of a style image ``(1, 3, H, W)``, whole or in tiles of ``tile`` px."""
    if tile is None:
        feats = features(style, recipe.style_layers)
        return {layer: losses.style_statistics(feats[layer], recipe.style_loss) for layer in recipe.style_layers}
    stats = tiled_statistics(features, style, recipe.style_layers, recipe.style_loss, tile, tiling.margin_for(tile))
    return {layer: _only(per_region) for layer, per_region in stats.items()}


def scale_targets(features: FeatureExtractor, recipe: Recipe, photo: torch.Tensor, styles: Sequence[LoadedImage],
                  blend: Sequence[float], guides: ScaleGuides, final_size: tuple[int, int], tiled: bool,
                  budget: float, cache: StatisticsCache | None = None) -> ScaleTargets:
    """The targets of the scale at which ``photo`` ``(1, 3, H, W)`` is the content, computed once.

    Each painting is shown at ``style_scale`` times the output (or ``style_size``), shrunk with
    the scale. Without region masks the styles' statistics are blended into one target per
    layer; with them each style keeps its own target, matched in its region. ``cache`` keeps
    the styles' statistics for later scales and runs of the same size.
    """
    kind = recipe.style_loss
    with torch.no_grad():
        content = None if tiled else features(photo, recipe.content_layers)
        ratio = max(photo.shape[-2:]) / max(final_size)
        per_style = []
        for style in styles:
            long_side = max(16, round((recipe.style_size or max(final_size)) * recipe.style_scale * ratio))
            pixels = resize(flatten(style), scaled_to_long_side(style.size, long_side))

            tile = style_tile(recipe, (pixels.shape[1], pixels.shape[0]), budget)

            def compute(pixels: np.ndarray = pixels, tile: int | None = tile) -> dict[str, Stats]:
                return style_statistics(features, recipe, to_tensor(pixels, photo.device), tile)

            if cache is None:
                per_style.append(compute())
            else:
                key = (id(features.net), str(features.dtype), features.scale, str(photo.device),
                       recipe.style_layers, kind, tile, pixels_digest(pixels))
                per_style.append(cache.get(key, compute))
        if guides.regions is None:
            style_targets = {layer: [(1.0, losses.prepare_target(
                losses.blend_statistics([stats[layer] for stats in per_style], list(blend)), kind))]
                for layer in recipe.style_layers}
        else:
            strengths = [w * len(blend) for w in blend]
            style_targets = {layer: [(strength, losses.prepare_target(stats[layer], kind))
                                     for strength, stats in zip(strengths, per_style, strict=True)]
                             for layer in recipe.style_layers}
    return ScaleTargets(content=content, style=style_targets, photo=photo, guides=guides)


def _only(per_region: Sequence[Stats | None]) -> Stats:
    stats = per_region[0]
    assert stats is not None, "a whole image always has positions"
    return stats
