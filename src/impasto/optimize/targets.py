"""What a scale's loss aims at: the photo's features and the paintings' style statistics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .. import losses
from ..images import LoadedImage, flatten, resize, scaled_to_long_side
from ..recipe import Recipe
from ..vgg import deepest
from . import tiling
from .features import FeatureExtractor
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


def style_statistics(features: FeatureExtractor, recipe: Recipe, style: torch.Tensor,
                     budget: float) -> dict[str, Stats]:
    """``{layer: stats}`` of a style image ``(1, 3, H, W)``, tile by tile when too large to run whole.

    ``budget``: bytes one optimization step may use; without gradients activations are not kept,
    so a style image may be about 2.5 times as large before it is tiled.
    """
    tile = None
    if recipe.tile_size != 0:
        size = (style.shape[-1], style.shape[-2])
        if recipe.tile_size and max(size) > recipe.tile_size:
            tile = recipe.tile_size
        elif not recipe.tile_size:
            tile = tiling.choose_tile(size, deepest(recipe.style_layers), budget * 2.5)
    if tile is None:
        feats = features(style, recipe.style_layers)
        return {layer: losses.style_statistics(feats[layer], recipe.style_loss) for layer in recipe.style_layers}
    stats = tiled_statistics(features, style, recipe.style_layers, recipe.style_loss, tile, tiling.margin_for(tile))
    return {layer: _only(per_region) for layer, per_region in stats.items()}


def scale_targets(features: FeatureExtractor, recipe: Recipe, photo: torch.Tensor, styles: Sequence[LoadedImage],
                  blend: Sequence[float], guides: ScaleGuides, final_size: tuple[int, int], tiled: bool,
                  budget: float) -> ScaleTargets:
    """The targets of the scale at which ``photo`` ``(1, 3, H, W)`` is the content, computed once.

    Each painting is shown at ``style_scale`` times the output (or ``style_size``), shrunk with
    the scale. Without region masks the styles' statistics are blended into one target per
    layer; with them each style keeps its own target, matched in its region.
    """
    kind = recipe.style_loss
    with torch.no_grad():
        content = None if tiled else features(photo, recipe.content_layers)
        ratio = max(photo.shape[-2:]) / max(final_size)
        per_style = []
        for style in styles:
            long_side = max(16, round((recipe.style_size or max(final_size)) * recipe.style_scale * ratio))
            pixels = resize(flatten(style), scaled_to_long_side(style.size, long_side))
            per_style.append(style_statistics(features, recipe, to_tensor(pixels, photo.device), budget))
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
