"""Painting with a model: one pass of the network, whole or in tiles, then the colour options.

Instance normalization makes every output pixel depend on the statistics (per-channel mean and
variance) of whole feature maps, so tiles painted on their own would each get their own contrast
and colour cast. Tiled painting therefore runs in passes: pass *k* runs every tile up to the
*k*-th normalization layer, with the whole picture's statistics of the layers before it, and sums
that layer's statistics over the tiles' inner regions (which partition the picture); a last pass
paints every tile with all the statistics and cross-fades the tiles into the output with the
smooth windows of :mod:`impasto.optimize.tiling`. Each tile carries a margin of context wider than
the network's receptive field, so the tiled picture equals the whole one up to rounding. That
takes ``2 × blocks + 6`` passes, each deeper than the last, and the margins: about 9 times the
compute of a whole pass with large tiles, 20 times with 256 px tiles (measured at 1024×768), so
only pictures too large for memory are painted so.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .. import colour
from ..errors import UsageError, is_out_of_memory
from ..images import Fitting, ImageSource, LoadedImage, fit, flatten, load_image
from ..optimize.tiling import ALIGN, Tile, available_bytes, layout
from .network import MULTIPLE, StatsPlan, TransformNet, is_whole

if TYPE_CHECKING:
    from .model import Model

#: Colour modes for painting with a model (those of the optimizer that make sense after one pass).
PRESERVE_COLOR = ("none", "luminance", "histogram", "post-yuv", "post-lab")
_CHROMA_SPACES = {"luminance": "yiq", "post-yuv": "yuv", "post-lab": "lab"}
#: Width of the cross-fade between neighbouring tiles, in pixels.
RAMP = 32
#: Smallest tile chosen automatically (an explicit tile may be as small as :data:`MIN_TILE`).
AUTO_MIN_TILE = 128
MIN_TILE = 32
#: Share of the free memory a painting may use (as the optimizer's tiles).
BUDGET_SHARE = 0.8


@dataclass
class Painting:
    """A painted picture and how it was painted (``tile``: None when painted whole)."""

    image: np.ndarray
    tile: int | None
    elapsed: float


def margin_for(net: TransformNet, ramp: int = RAMP) -> int:
    """Context around a tile: the receptive field plus half the cross-fade, a multiple of :data:`ALIGN`."""
    need = net.arch.receptive_radius + ramp // 2 + 1
    return math.ceil(need / ALIGN) * ALIGN


def paint_bytes(width: int, size: tuple[int, int], element_bytes: int = 4) -> float:
    """Estimated peak memory (bytes) of one whole pass of a network of ``width`` over ``size`` = (W, H).

    Measured (peak RSS growth, CPU, 1024² px): 8.7 × 4·width bytes per pixel in float32 for width
    16, 7.6 for width 32, about half that in bfloat16. This counts ``9 × width + 8`` activations of
    ``element_bytes`` per pixel plus 12 float32 planes (the picture in and out), 10–30 % above.
    """
    return (element_bytes * (9 * width + 8) + 4.0 * 12) * size[0] * size[1]


def choose_tile(net: TransformNet, size: tuple[int, int], budget: float, element_bytes: int = 4) -> int | None:
    """The largest aligned tile whose pass fits in ``budget`` bytes, or None when the whole picture fits."""
    if paint_bytes(net.arch.width, size, element_bytes) <= budget:
        return None
    margin = margin_for(net)
    host = 4.0 * 12 * size[0] * size[1]  # the photo, its padded copy and the output, float32, on the host
    tile = max(size) // ALIGN * ALIGN
    while tile > AUTO_MIN_TILE and paint_bytes(net.arch.width, (tile + 2 * margin,) * 2, element_bytes) + host > budget:
        tile -= ALIGN * max(1, tile // (8 * ALIGN))
    return max(AUTO_MIN_TILE, tile)


class Painter:
    """Runs a network on one device in one precision, whole or in tiles.

    Measured at 512×288 on a 2-core AVX512-BF16 CPU (``benchmarks/models.py``): bfloat16 weights
    and activations run 1.5× faster than bfloat16 autocast and 2.5–6× faster than float32, and
    channels-first layout is as fast as channels-last for them; in float32, channels-last is as
    fast (width 16) or twice as fast (width 32). So on a CPU with native bfloat16 the network runs
    as a bfloat16 copy of ``net`` (made again whenever ``net``'s weights change, e.g. between
    training steps; the output comes back as float32), in float32 channels-last elsewhere; on CUDA
    under bfloat16 autocast in channels-last layout.
    """

    def __init__(self, net: TransformNet, device: torch.device, dtype: torch.dtype | None):
        self.device = device
        self.dtype = dtype
        self.net = net
        self.converted = dtype is not None and device.type == "cpu"
        self.channels_last = device.type == "cuda" or (device.type == "cpu" and not self.converted)
        self._versions: tuple[int, ...] = ()
        self.run_net = net
        self._sync()

    def _sync(self) -> None:
        """Make :attr:`run_net` (``net`` in the precision and layout it runs in) follow ``net``'s weights."""
        versions = tuple(p._version for p in self.net.parameters())
        if versions == self._versions:
            return
        run_net = copy.deepcopy(self.net).to(self.dtype) if self.converted else self.net
        if self.channels_last:
            run_net = run_net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.run_net, self._versions = run_net.eval(), versions

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        if self.converted:
            x = x.to(self.dtype)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _autocast(self) -> torch.autocast:
        enabled = self.dtype is not None and not self.converted and self.device.type in ("cuda", "cpu")
        return torch.autocast(self.device.type, dtype=self.dtype or torch.bfloat16, enabled=enabled)

    def whole(self, x: torch.Tensor) -> torch.Tensor:
        """The network on ``(N, 3, H, W)``; float32 on ``x``'s device."""
        self._sync()
        with torch.inference_mode(), self._autocast():
            y = self.run_net(self._input(x))
        return y.float().contiguous().to(x.device)

    def _pass(self, plan: StatsPlan, x: torch.Tensor) -> torch.Tensor | None:
        with torch.inference_mode(), self._autocast():
            return self.run_net.run_with(plan, self._input(x))

    # -- pictures ------------------------------------------------------------------------------------
    def paint_array(self, rgb: np.ndarray, *, tile: int | None = None, max_memory: float | None = None
                    ) -> tuple[np.ndarray, int | None]:
        """Paint an ``(H, W, 3)`` float32 array; returns the painting and the tile used (None: whole).

        ``tile`` None: whole unless it would not fit in ``max_memory`` GiB (default: 80 % of the
        free memory; on a GPU, of its free memory), and whole-picture passes that run out of
        memory are repeated in tiles; 0: always whole; a number: tiles of about that size.
        """
        height, width = rgb.shape[:2]
        if tile is None:
            budget = max_memory * 2.0**30 if max_memory is not None else BUDGET_SHARE * available_bytes(self.device)
            element_bytes = 2 if self.converted else 4  # a bfloat16 copy: 2 bytes a value
            tile = choose_tile(self.net, (width, height), budget, element_bytes)
            if tile is None:
                try:
                    return self._whole_array(rgb), None
                except RuntimeError as exc:  # the estimate was optimistic: tiles of half the picture
                    if not is_out_of_memory(exc):
                        raise
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
                    tile = max(AUTO_MIN_TILE, max(width, height) // 2 // ALIGN * ALIGN)
        if tile == 0:
            return self._whole_array(rgb), None
        return self.tiled(rgb, tile), tile

    def _whole_array(self, rgb: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32))[None]
        return self.whole(x)[0].permute(1, 2, 0).cpu().numpy()

    def tiled(self, rgb: np.ndarray, tile: int) -> np.ndarray:
        """Paint ``rgb`` in tiles of about ``tile`` px with the whole picture's normalization statistics."""
        self._sync()
        height, width = rgb.shape[:2]
        pad_h, pad_w = (-height) % MULTIPLE, (-width) % MULTIPLE
        padded = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect") if pad_h or pad_w else rgb
        size = padded.shape[:2]
        tile = max(MIN_TILE, tile // ALIGN * ALIGN)
        ramp = min(RAMP, tile // 2)
        tiles = layout(size[0], size[1], tile, margin_for(self.net, ramp))
        planes = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1), dtype=np.float32))[None]

        def crop(t: Tile) -> torch.Tensor:
            top, bottom, left, right = t.outer
            return planes[..., top:bottom, left:right]

        statistics: list[tuple[torch.Tensor, torch.Tensor]] = []
        for index in range(len(self.net.norms)):
            plan = StatsPlan(statistics, record=index)
            total = squares = torch.zeros(())
            count = 0
            for t in tiles:
                top, bottom, left, right = t.outer
                self._pass(plan.at(t.inner_in_outer, (bottom - top, right - left)), crop(t))
                assert plan.sums is not None, "the recording layer records"
                total, squares, count = total + plan.sums[0], squares + plan.sums[1], count + plan.sums[2]
            mean = total / count
            statistics = [*statistics, (mean, (squares / count - mean * mean).clamp_min(0.0))]
        plan = StatsPlan(statistics)
        out = np.zeros((size[0], size[1], 3), np.float32)
        for t in tiles:
            painted = self._pass(plan, crop(t))
            assert painted is not None, "a pass with every statistic paints"
            top, bottom, left, right = t.outer
            window = t.window(size, ramp)[..., None]
            out[top:bottom, left:right] += painted[0].float().permute(1, 2, 0).cpu().numpy() * window
        return np.clip(out[:height, :width], 0.0, 1.0)


def check_options(preserve_color: str, color_transfer: str, tile: int | None, max_size: int | None) -> None:
    """One-line :class:`UsageError` for a bad painting option, naming it as the API spells it."""
    if preserve_color not in PRESERVE_COLOR:
        raise UsageError(f"preserve_color {preserve_color!r}: choose from {', '.join(PRESERVE_COLOR)}",
                         field="preserve_color", detail=f"{preserve_color!r}: choose from {', '.join(PRESERVE_COLOR)}")
    if color_transfer not in colour.TRANSFER_METHODS:
        raise UsageError(f"color_transfer {color_transfer!r}: choose from {', '.join(colour.TRANSFER_METHODS)}",
                         field="color_transfer")
    if tile is not None and (not is_whole(tile) or (tile != 0 and tile < MIN_TILE)):
        raise UsageError(f"tile {tile!r}: use None (automatic), 0 (never) or at least {MIN_TILE} px",
                         field="tile_size", detail=f"{tile!r} must be 0 (never tile) or at least {MIN_TILE}")
    if max_size is not None and (not is_whole(max_size) or max_size < 32):
        raise UsageError(f"max_size {max_size!r}: must be a whole number of at least 32", field="max_size",
                         detail=f"{max_size!r} must be a whole number of at least 32")


def finish(painted: np.ndarray, photo: np.ndarray, preserve_color: str, color_transfer: str) -> np.ndarray:
    """The colour option applied to a painting of ``photo`` (both ``(H, W, 3)``, the same size)."""
    space = _CHROMA_SPACES.get(preserve_color)
    if space is not None:
        return colour.with_chroma_of(painted, photo, space)
    if preserve_color == "histogram":
        mean, cov = colour.colour_statistics(photo)
        return colour.match_colour(painted, mean, cov, method=color_transfer)
    return painted.astype(np.float32, copy=False)


def prepare(image: ImageSource | LoadedImage, *, max_size: int | None, fitting: Fitting | None,
            max_pixels: int = 100_000_000) -> LoadedImage:
    """The photo as a :class:`LoadedImage`, fitted to ``fitting`` or shrunk to ``max_size``."""
    loaded = image if isinstance(image, LoadedImage) else load_image(image, what="photo", max_pixels=max_pixels)
    if fitting is not None:
        return fitting.apply(loaded)
    if max_size is not None:
        return fit(loaded, max_size=max_size)
    return loaded


def paint_image(model: Model, image: ImageSource | LoadedImage, *, max_size: int | None = None,
                preserve_color: str = "none", tile: int | None = None, color_transfer: str = "symmetric",
                fitting: Fitting | None = None, max_memory: float | None = None) -> Painting:
    """:meth:`Model.paint <impasto.feedforward.model.Model.paint>` with how it was painted."""
    check_options(preserve_color, color_transfer, tile, max_size)
    started = time.perf_counter()
    photo = flatten(prepare(image, max_size=max_size, fitting=fitting))
    source = colour.luminance_image(photo) if preserve_color == "luminance" else photo
    with model.lock:
        painted, used = model.painter.paint_array(source, tile=tile, max_memory=max_memory)
    return Painting(finish(painted, photo, preserve_color, color_transfer), used, time.perf_counter() - started)
