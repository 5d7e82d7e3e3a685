"""The loss of one scale, on the whole image or tile by tile.

:class:`Objective` holds a scale's targets (content features, style statistics, masks) and
evaluates content, style, total-variation and temporal terms. For images too large to run whole,
:meth:`Objective.tiled_step` sweeps overlapping tiles (see :mod:`impasto.optimize.tiling`) and
accumulates the exact-to-first-order gradient of the *whole image's* loss: style statistics are
expectations over positions, so the whole image's statistics are the tiles' statistics weighted
by their share of the positions. Each tile's term uses the whole image's statistics as its value
(from the previous sweep) and its own statistics for the gradient, so all tiles pull towards the
same global target and no tile tries to hold the whole painting's statistics by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, overload

import torch

from .. import losses
from .. import masks as masking
from ..recipe import Recipe
from .tiling import Tile, grid_offset, layout, ramp_for

if TYPE_CHECKING:
    from .targets import ScaleTargets

Features = Callable[[torch.Tensor, tuple[str, ...]], dict[str, torch.Tensor]]
Stats = dict[str, torch.Tensor]


Box = tuple[int, int, int, int]


@overload
def _crop(tensor: torch.Tensor, box: Box) -> torch.Tensor: ...
@overload
def _crop(tensor: torch.Tensor | None, box: Box) -> torch.Tensor | None: ...
def _crop(tensor: torch.Tensor | None, box: Box) -> torch.Tensor | None:
    """The ``(top, bottom, left, right)`` box of a ``(..., H, W)`` tensor; ``None`` stays ``None``."""
    return None if tensor is None else tensor[..., box[0]:box[1], box[2]:box[3]]


def _interior(tile: Tile, image: torch.Tensor, margin: int) -> torch.Tensor:
    """``(1, 1, h, w)`` weights of a tile's outer box: its share of each pixel (see Tile.window)."""
    window = tile.window((image.shape[-2], image.shape[-1]), ramp_for(margin))
    return torch.from_numpy(window)[None, None].to(image.device)


@dataclass
class TileWeights:
    """A tile's share of each pixel and of each layer's positions (no regions, no masks)."""

    interior: torch.Tensor           # (1, 1, h, w) on the device: the tile's share of each pixel
    share: float                     # the tile's share of the image's pixels
    pooled: dict[str, torch.Tensor]  # the interior averaged to each layer's feature size, on the device
    mass: dict[str, float]           # their sums: the tile's positions per layer


class TileWeightCache:
    """:class:`TileWeights` made once per tile shape (see :meth:`Tile.window_key`) and reused by
    every step of a scale, whatever the grid's shift: computed on the CPU, so reading a mass
    never waits for the device."""

    def __init__(self, layers: Sequence[str], margin: int, device: torch.device, keep: int = 64):
        self.layers, self.margin, self.device, self.keep = tuple(dict.fromkeys(layers)), margin, device, keep
        self._made: dict[tuple[int | bool, ...], TileWeights] = {}

    def __call__(self, tile: Tile, image_size: tuple[int, int]) -> TileWeights:
        key = tile.window_key(image_size, ramp_for(self.margin))
        made = self._made.get(key)
        if made is None:
            if len(self._made) >= self.keep:
                self._made.clear()
            window = torch.from_numpy(tile.window(image_size, ramp_for(self.margin)))[None, None]
            pooled = {layer: masking.pool_to(window, _feature_shape(layer, tile)) for layer in self.layers}
            share = float(window.sum()) / (image_size[0] * image_size[1])
            made = TileWeights(interior=window.to(self.device), share=share,
                               pooled={k: v.to(self.device) for k, v in pooled.items()},
                               mass={k: float(v.sum()) for k, v in pooled.items()})
            self._made[key] = made
        return made


def tiled_statistics(features: Features, image: torch.Tensor, layers: tuple[str, ...], kind: str,
                     tile: int, margin: int, regions: torch.Tensor | None = None) -> dict[str, list[Stats | None]]:
    """Whole-image style statistics of ``image`` ``(1, 3, H, W)`` computed tile by tile (no gradient).

    With ``regions`` ``(1, K, H, W)`` one set of statistics per region (guided statistics), else one.
    Returns ``{layer: [stats per region]}``, each the position-weighted mix of the tiles', or
    ``None`` for a region that covers no position.
    """
    count = 1 if regions is None else regions.shape[1]
    sums: dict[str, list[Stats | None]] = {layer: [None] * count for layer in layers}
    masses: dict[str, list[float]] = {layer: [0.0] * count for layer in layers}
    with torch.no_grad():
        for t in layout(image.shape[-2], image.shape[-1], tile, margin):
            feats = features(_crop(image, t.outer), layers)
            interior = _interior(t, image, margin)
            for layer in layers:
                for k in range(count):
                    mask = interior if regions is None else interior * _crop(regions[:, k:k + 1], t.outer)
                    pooled = masking.pool_to(mask, feats[layer].shape[-2:])
                    mass = float(pooled.sum())
                    if mass <= 0:
                        continue
                    stats = losses.style_statistics(feats[layer], kind, mask=pooled)
                    current = sums[layer][k]
                    sums[layer][k] = {key: value * mass + (0 if current is None else current[key])
                                      for key, value in stats.items()}
                    masses[layer][k] += mass
    return {layer: [{key: value / masses[layer][k] for key, value in stats.items()} if stats is not None else None
                    for k, stats in enumerate(sums[layer])] for layer in layers}


class Objective:
    """The loss at one scale, against ``targets`` (see :class:`~impasto.optimize.targets.ScaleTargets`)."""

    def __init__(self, recipe: Recipe, features: Features, targets: ScaleTargets):
        self.recipe = recipe
        self.features = features
        self.targets = targets
        self.guides = targets.guides
        self.notebook = recipe.loss_normalization == "notebook"
        self.content_weights = recipe.content_layer_weights or (1.0,) * len(recipe.content_layers)
        self.style_weights = recipe.style_layer_weights or (1.0,) * len(recipe.style_layers)

    def compose(self, pixels: torch.Tensor, box: Box | None = None) -> torch.Tensor:
        """The image the losses see: the optimized pixels, with the photo where masks keep it."""
        keep = self.guides.keep
        if keep is None:
            return pixels
        photo = self.targets.photo
        if box is not None:
            keep, photo = _crop(keep, box), _crop(photo, box)
        return keep * photo + (1 - keep) * pixels

    # -- the whole image ---------------------------------------------------------------------------
    def __call__(self, pixels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss of the whole image (a scalar with gradient) and its parts as floats."""
        recipe, targets, guides = self.recipe, self.targets, self.guides
        assert targets.content is not None, "a whole-image scale has the photo's features"
        image = self.compose(pixels)
        feats = self.features(image, recipe.all_layers())
        content = image.new_zeros(())
        for layer, w in zip(recipe.content_layers, self.content_weights, strict=True):
            photo_features = targets.content[layer]
            weight_map = guides.content_mask
            if weight_map is not None:
                weight_map = masking.pool_to(weight_map, photo_features.shape[-2:])
            content = content + w * (losses.mse(feats[layer], photo_features, weight_map) if self.notebook
                                     else losses.relative_mse(feats[layer], photo_features, weight_map))
        style = image.new_zeros(())
        regions, shares = guides.regions, guides.region_shares
        for layer, w in zip(recipe.style_layers, self.style_weights, strict=True):
            layer_regions = None if regions is None else masking.pool_to(regions, feats[layer].shape[-2:])
            for index, (strength, target) in enumerate(targets.style[layer]):
                if layer_regions is None or shares is None:
                    share, mask = 1.0, None
                else:  # guided statistics: only this style's region, weighted by its share of the image
                    share, mask = shares[index], layer_regions[:, index:index + 1]
                    if share == 0:
                        continue
                stats = losses.style_statistics(feats[layer], recipe.style_loss, mask=mask)
                style = style + w * strength * share * self._distance(stats, target, feats[layer].shape)
        tv = losses.total_variation(image) if recipe.tv_weight > 0 else image.new_zeros(())
        temporal = None
        if guides.temporal is not None:
            previous, weights = guides.temporal
            temporal = losses.mse(image, previous, weights)
        return self._total(content, style, tv, temporal)

    def _distance(self, stats: Stats, target: Stats, shape: Sequence[float]) -> torch.Tensor:
        distance = losses.style_distance(stats, target, self.recipe.style_loss, relative=not self.notebook)
        if self.notebook:  # the notebook's mean((G−A)²)/(c·h·w) with Grams summed, not averaged, over positions
            _, c, h, w = shape
            distance = distance * (h * w) / c
        return distance

    def _total(self, content: torch.Tensor, style: torch.Tensor, tv: torch.Tensor,
               temporal: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]:
        recipe = self.recipe
        total = recipe.content_weight * content + recipe.style_weight * style + recipe.tv_weight * tv
        terms = [content, style, tv]
        if temporal is not None:
            total = total + recipe.temporal_weight * temporal
            terms.append(temporal)
        values = torch.stack([total.detach(), *(t.detach() for t in terms)]).float().tolist()  # one device sync
        names = ["total", "content", "style", "tv", "temporal"][:len(values)]
        return total, dict(zip(names, values, strict=True))

    # -- tile by tile ------------------------------------------------------------------------------
    def prepare_tiles(self, pixels: torch.Tensor, tile: int, margin: int) -> None:
        """Before the first tiled step: the image's whole statistics, the content's energy per
        layer and the positions per layer and region, all computed tile by tile."""
        recipe, targets = self.recipe, self.targets
        self.tile, self.margin = tile, margin
        self.tile_weights = TileWeightCache((*recipe.content_layers, *recipe.style_layers), margin, pixels.device)
        image = self.compose(pixels.detach())
        regions = self.guides.regions
        self.global_stats = tiled_statistics(self.features, image, recipe.style_layers, recipe.style_loss,
                                             tile, margin, regions)
        self.content_norm = {layer: 0.0 for layer in recipe.content_layers}
        self.positions: dict[str, list[float]] = {layer: [0.0] * (1 if regions is None else regions.shape[1])
                                                  for layer in recipe.style_layers}
        with torch.no_grad():
            for t in layout(image.shape[-2], image.shape[-1], tile, margin):
                photo = self.features(_crop(targets.photo, t.outer), recipe.content_layers)
                weights = self.tile_weights(t, (image.shape[-2], image.shape[-1]))
                for layer in recipe.content_layers:
                    pooled = weights.pooled[layer]
                    size = weights.mass[layer] * photo[layer].shape[1]
                    energy = float((pooled * photo[layer].float().pow(2)).sum())
                    self.content_norm[layer] += size if self.notebook else energy
                for layer in recipe.style_layers:
                    for k in range(len(self.positions[layer])):
                        if regions is None:
                            self.positions[layer][k] += weights.mass[layer]
                        else:
                            mask = weights.interior * _crop(regions[:, k:k + 1], t.outer)
                            self.positions[layer][k] += float(masking.pool_to(mask, _feature_shape(layer, t)).sum())

    def tiled_step(self, pixels: torch.Tensor, step: int) -> dict[str, float]:
        """Accumulate the whole image's loss gradient into ``pixels.grad``, one tile at a time.

        The grid shifts with ``step``. Returns the loss parts (style from the whole image's
        statistics of the previous sweep; content summed over tiles).
        """
        recipe, targets, guides = self.recipe, self.targets, self.guides
        height, width = pixels.shape[-2:]
        regions = guides.regions
        new_stats: dict[str, list[Stats | None]] = {layer: [None] * len(self.positions[layer])
                                                    for layer in recipe.style_layers}
        content_sum = style_value = tv_sum = temporal_sum = 0.0
        for t in layout(height, width, self.tile, self.margin, grid_offset(step, self.tile)):
            box = t.outer
            image = self.compose(_crop(pixels, box), box)
            tile_weights = self.tile_weights(t, (height, width))
            interior, share_of_image = tile_weights.interior, tile_weights.share
            with torch.no_grad():
                photo = self.features(_crop(targets.photo, box), recipe.content_layers)
            feats = self.features(image, recipe.all_layers())
            content = image.new_zeros(())
            weight_map = _crop(guides.content_mask, box)
            for layer, w in zip(recipe.content_layers, self.content_weights, strict=True):
                weights = (tile_weights.pooled[layer] if weight_map is None
                           else masking.pool_to(interior * weight_map, feats[layer].shape[-2:]))
                error = (weights * (feats[layer].float() - photo[layer].float()).pow(2)).sum()
                content = content + w * error / max(self.content_norm[layer], 1e-8)
            style = image.new_zeros(())
            for layer, w in zip(recipe.style_layers, self.style_weights, strict=True):
                for k, (strength, target) in enumerate(targets.style[layer]):
                    if regions is None:
                        pooled, mass = tile_weights.pooled[layer], tile_weights.mass[layer]
                    else:
                        pooled = masking.pool_to(interior * _crop(regions[:, k:k + 1], box), feats[layer].shape[-2:])
                        mass = float(pooled.sum())
                    region_share = 1.0 if guides.region_shares is None else guides.region_shares[k]
                    if mass <= 0 or region_share == 0:
                        continue
                    share = mass / self.positions[layer][k]
                    own = losses.style_statistics(feats[layer], recipe.style_loss, mask=pooled)
                    whole = self.global_stats[layer][k]
                    assert whole is not None, "a region with positions in this tile has positions in the image"
                    # value: the whole image's statistics; gradient: through this tile's share of them
                    mixed = {key: whole[key] + share * (own[key] - own[key].detach()) for key in own}
                    full_shape = (1, feats[layer].shape[1], *self._full_feature_size(layer, feats, image, pixels))
                    style = style + w * strength * region_share * self._distance(mixed, target, full_shape)
                    previous = new_stats[layer][k]
                    new_stats[layer][k] = {key: share * own[key].detach() + (0 if previous is None else previous[key])
                                           for key in own}
            tv = (losses.total_variation(image) * share_of_image if recipe.tv_weight > 0
                  else image.new_zeros(()))
            temporal = None
            if guides.temporal is not None:
                previous_frame, weights = guides.temporal
                # the whole image's mean over (3, H, W), restricted to this tile's share of each pixel
                crop_share = image.shape[-2] * image.shape[-1] / (height * width)
                temporal = losses.mse(image, _crop(previous_frame, box), interior * _crop(weights, box)) * crop_share
            total, parts = self._total(content, style, tv, temporal)
            if not all(map(_finite, parts.values())):
                raise FloatingPointError(parts)
            total.backward()
            content_sum += parts["content"]
            style_value = parts["style"]
            tv_sum += parts["tv"]
            temporal_sum += parts.get("temporal", 0.0)
        for layer, per_region in new_stats.items():
            for k, stats in enumerate(per_region):
                if stats is not None:
                    self.global_stats[layer][k] = stats
        parts = {"content": content_sum, "style": style_value, "tv": tv_sum}
        if guides.temporal is not None:
            parts["temporal"] = temporal_sum
        whole_total = (recipe.content_weight * content_sum + recipe.style_weight * style_value
                       + recipe.tv_weight * tv_sum + recipe.temporal_weight * temporal_sum)
        return {"total": whole_total, **parts}

    @staticmethod
    def _full_feature_size(layer: str, feats: dict[str, torch.Tensor], tile_image: torch.Tensor,
                           pixels: torch.Tensor) -> tuple[float, float]:
        """A layer's feature size for the whole image (the tile's, scaled by the image/tile ratio)."""
        h, w = feats[layer].shape[-2:]
        return h * pixels.shape[-2] / tile_image.shape[-2], w * pixels.shape[-1] / tile_image.shape[-1]


def _feature_shape(layer: str, tile: Tile) -> tuple[int, int]:
    """``(h, w)`` of ``layer``'s features on ``tile``'s outer box: every pooling before it halves (floor)."""
    top, bottom, left, right = tile.outer
    block = int(layer[4])  # conv4_2, relu4_2, pool4
    pools = block if layer.startswith("pool") else block - 1
    h, w = bottom - top, right - left
    for _ in range(pools):
        h, w = h // 2, w // 2
    return h, w


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))
