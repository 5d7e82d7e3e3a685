"""Tiles for outputs too large to optimize whole, and the memory estimates that decide.

At the largest scales the image is optimized in overlapping tiles whose grid shifts every step,
so no seam stays in place. Each tile is computed with a margin of context around its *inner*
region; only inner regions count in the losses, and the inner regions of one grid partition
the image. Style statistics are those of the whole image (summed over tiles, see the engine),
so every tile is pushed towards the same global target.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch

from ..errors import ImpastoError, UsageError
from ..recipe import Recipe
from ..vgg import LAYER_INDEX, LAYER_NAMES, deepest, resolve_layer
from ..weights import CONV_LAYERS
from .schedule import Scale

#: ``(tile, margin)`` in pixels for a scale painted in tiles, or None where it runs whole.
Tiles = tuple[int, int] | None

#: Tile edges and offsets are multiples of this, so tiles align with the deepest pooling grid.
ALIGN = 16
#: The plastic number: (k/g, k/g²) mod 1 is the R2 sequence, whose points spread evenly over
#: the unit square (a two-dimensional golden-ratio sequence).
_PLASTIC = 1.32471795724474602596


@dataclass(frozen=True)
class Tile:
    """One tile: ``outer`` is computed (inner plus margin), ``inner`` counts. Boxes are
    ``(top, bottom, left, right)`` in pixels, bottom/right exclusive."""

    outer: tuple[int, int, int, int]
    inner: tuple[int, int, int, int]

    @property
    def inner_in_outer(self) -> tuple[int, int, int, int]:
        """The inner box in the outer box's coordinates."""
        top, _, left, _ = self.outer
        return self.inner[0] - top, self.inner[1] - top, self.inner[2] - left, self.inner[3] - left

    def window_key(self, image_size: tuple[int, int], ramp: int) -> tuple[int | bool, ...]:
        """What :meth:`window` (and every size derived from the outer box) depends on: the boxes
        relative to each other and which inner edges are image edges. Tiles of one grid away from
        its ends share a key, so their windows are made once."""
        height, width = image_size
        top, bottom, left, right = self.outer
        return (bottom - top, right - left, *self.inner_in_outer, self.inner[0] == 0, self.inner[1] == height,
                self.inner[2] == 0, self.inner[3] == width, ramp)

    def window(self, image_size: tuple[int, int], ramp: int) -> np.ndarray:
        """How much each pixel of the outer box counts for this tile, ``(h, w)`` float32 in [0, 1].

        1 inside the inner box, crossing over linearly to the neighbours over ``ramp`` px centred
        on each inner edge that is not an image edge. The windows of one grid sum to 1 at every
        pixel (a partition of unity), so a seam's two sides are blended, never cut.
        """
        height, width = image_size
        top, bottom, left, right = self.outer
        rows = _ramp_1d(np.arange(top, bottom) + 0.5, self.inner[0], self.inner[1], height, ramp)
        cols = _ramp_1d(np.arange(left, right) + 0.5, self.inner[2], self.inner[3], width, ramp)
        return np.outer(rows, cols).astype(np.float32)


def _ramp_1d(position: np.ndarray, start: int, end: int, length: int, ramp: int) -> np.ndarray:
    up = np.ones_like(position) if start == 0 else np.clip((position - start) / ramp + 0.5, 0, 1)
    down = np.ones_like(position) if end == length else np.clip((end - position) / ramp + 0.5, 0, 1)
    return np.minimum(up, down)


def _cuts(length: int, tile: int, offset: int) -> list[int]:
    first = offset % tile
    cuts = [0] + [c for c in range(first, length, tile) if 0 < c < length] + [length]
    # merge a sliver at either end into its neighbour, so no tile is tiny
    if len(cuts) > 2 and cuts[1] - cuts[0] < tile // 4:
        cuts.pop(1)
    if len(cuts) > 2 and cuts[-1] - cuts[-2] < tile // 4:
        cuts.pop(-2)
    return cuts


def layout(height: int, width: int, tile: int, margin: int, offset: tuple[int, int] = (0, 0)) -> list[Tile]:
    """Tiles covering an ``height × width`` image: inner boxes of about ``tile`` px that partition it,
    each grown by ``margin`` px of context (clipped at the image's edges).

    ``offset`` = (dy, dx) shifts the grid lines; see :func:`grid_offset`.
    """
    if tile <= 0 or margin < 0:
        raise ValueError(f"tile {tile} and margin {margin}: need tile > 0 and margin >= 0")
    rows, cols = _cuts(height, tile, offset[0]), _cuts(width, tile, offset[1])
    tiles = []
    for top, bottom in pairwise(rows):
        for left, right in pairwise(cols):
            outer = (max(0, top - margin), min(height, bottom + margin),
                     max(0, left - margin), min(width, right + margin))
            tiles.append(Tile(outer=outer, inner=(top, bottom, left, right)))
    return tiles


def grid_offset(step: int, tile: int) -> tuple[int, int]:
    """The grid shift (dy, dx) for optimization step ``step``: multiples of :data:`ALIGN` below
    ``tile``, spread evenly over the tile by the R2 low-discrepancy sequence, so consecutive steps
    never share a grid line."""
    positions = max(1, tile // ALIGN)
    dy = int(((0.5 + step / _PLASTIC) % 1.0) * positions) * ALIGN
    dx = int(((0.5 + step / _PLASTIC**2) % 1.0) * positions) * ALIGN
    return dy, dx


# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------
#: Bytes per activation element at the peak of a step with gradients. Measured on CPU (fp32,
#: torch 2.13): 4.0–4.1 (peak RSS growth of one forward and backward pass to relu5_1 at 512² and
#: 1024×768, divided by :func:`activation_elements`); 6 leaves room for the allocator.
_BYTES_PER_ACTIVATION = 6.0
#: Full-size float32 planes a tiled scale keeps per pixel: image, gradient, two Adam moments,
#: the iterate average, the photo, and transient copies.
_PLANES_PER_PIXEL = 3 * 9


def activation_elements(size: tuple[int, int], last_layer: str) -> float:
    """Activations of the network up to ``last_layer`` for an image of ``size`` = (W, H):
    the sum of every layer's C·H·W (elements, not bytes)."""
    width, height = size
    channels = {name: c_out for name, _, c_out in CONV_LAYERS}
    stride, total, current = 1, 0.0, 3
    for name in LAYER_NAMES[: LAYER_INDEX[resolve_layer(last_layer)] + 1]:
        if name.startswith("conv"):
            current = channels[name]
        elif name.startswith("pool"):
            stride *= 2
        total += current * (height / stride) * (width / stride)
    return total


def step_bytes(size: tuple[int, int], last_layer: str) -> float:
    """Estimated peak memory (bytes) of one optimization step on a whole image of ``size`` = (W, H):
    activations kept for the backward pass plus the full-size planes. Monotonic in ``size``."""
    return _BYTES_PER_ACTIVATION * activation_elements(size, last_layer) + 4.0 * _PLANES_PER_PIXEL * size[0] * size[1]


def tiled_step_bytes(size: tuple[int, int], tile: int, margin: int, last_layer: str) -> float:
    """Estimated peak memory of a tiled step: the full-size planes plus one tile's activations."""
    side = tile + 2 * margin
    return (_BYTES_PER_ACTIVATION * activation_elements((min(side, size[0]), min(side, size[1])), last_layer)
            + 4.0 * _PLANES_PER_PIXEL * size[0] * size[1])


def available_bytes(device: torch.device) -> float:
    """Memory a run may use: free GPU memory on CUDA, else the system's available RAM."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return float(free)
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2.0**30


def margin_for(tile: int) -> int:
    """Context around a tile: a sixth of it, at least 32 px, aligned. Half of it is the
    cross-over ramp to the neighbours (:meth:`Tile.window`), the rest pure context."""
    return max(32, (tile // 6) // ALIGN * ALIGN)


def ramp_for(margin: int) -> int:
    """Width of the cross-over between neighbouring tiles: the margin."""
    return margin


def choose_tile(size: tuple[int, int], last_layer: str, budget: float) -> int | None:
    """The largest aligned tile whose tiled step fits in ``budget`` bytes, or ``None`` when the
    whole image fits (no tiling needed). Never below 128 px."""
    if step_bytes(size, last_layer) <= budget:
        return None
    tile = (max(size) // ALIGN) * ALIGN
    while tile > 128 and tiled_step_bytes(size, tile, margin_for(tile), last_layer) > budget:
        tile -= ALIGN * max(1, tile // (8 * ALIGN))
    return max(128, tile)


def gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.1f} GiB"


def memory_budget(recipe: Recipe, device: torch.device) -> float:
    """Bytes one optimization step may use: ``max_memory`` GiB, else 80 % of what the device has free."""
    if recipe.max_memory is not None:
        return recipe.max_memory * 2.0**30
    return 0.8 * available_bytes(device)


def tile_plan(recipe: Recipe, schedule: list[Scale], budget: float) -> list[Tiles]:
    """(tile, margin) for each scale that must run in tiles, ``None`` for those that run whole.

    ``recipe.tile_size``: ``None`` tiles only where a whole step would not fit in ``budget``
    bytes; a number tiles every scale larger than it; 0 never tiles, and then a run that will
    not fit is refused before it starts.
    """
    last = deepest(recipe.all_layers())
    plan_: list[Tiles] = []
    for scale in schedule:
        if recipe.tile_size == 0 or scale.steps == 0:
            plan_.append(None)
            continue
        if recipe.tile_size:
            tile = recipe.tile_size if max(scale.size) > recipe.tile_size else None
        else:
            tile = choose_tile(scale.size, last, budget)
        plan_.append(None if tile is None else (tile, margin_for(tile)))
    tiled = [scale for scale, tiles in zip(schedule, plan_, strict=True) if tiles is not None]
    if tiled and recipe.optimizer == "lbfgs" and recipe.lbfgs_line_search:
        # a tiled step's loss is assembled from the previous sweep's statistics, so the line search would
        # compare losses of different images and accept steps that are not descents
        size = tiled[-1].size
        raise UsageError(f"L-BFGS's line search needs the exact loss, which a {size[0]}x{size[1]} scale painted in "
                         "tiles only has one sweep late; drop --line-search, use --optimizer adam, or give more "
                         "--max-memory so no scale is tiled", field="lbfgs_line_search")
    if recipe.tile_size == 0:
        biggest = max((s for s in schedule if s.steps), key=lambda s: s.size[0] * s.size[1])
        needed = step_bytes(biggest.size, last)
        if needed > budget:
            raise ImpastoError(
                f"a {biggest.size[0]}x{biggest.size[1]} step needs about {gib(needed)} but only "
                f"{gib(budget)} is available; let impasto tile it (drop --tile-size 0), or lower "
                f"--max-size")
    return plan_
