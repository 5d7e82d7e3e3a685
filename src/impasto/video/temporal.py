"""The temporal method: painting frames one after another (Ruder, Dosovitskiy & Brox, GCPR 2016).

* A frame with no frame before it (the first of a video or of a segment, or every frame when
  ``temporal`` is off) is painted as a still image, with the run's recipe.
* Every later frame starts from the previous *painted* frame carried onto it by the optical flow
  of the *content* (:mod:`impasto.flow`), and a temporal loss keeps it close to that warped image
  wherever the flow passes the forward–backward check. Such a frame needs no coarse-to-fine
  schedule: it is optimized at the output size only (:func:`later_frame_recipe`).
* At the end of a segment a frame may also be pulled towards the next segment's first frame,
  carried back by the flow (:mod:`.joins`): both targets become one temporal term.

:class:`TemporalChain` is this loop's state (the previous frame) and is all that a whole video
(:mod:`.loop`) and a segment painted anywhere (:mod:`.segmented`) share: the same code path.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import colour
from .. import flow as flows
from ..cancel import CancelToken
from ..images import LoadedImage
from ..optimize.engine import ProgressCallback, Result, Stylizer
from ..optimize.inputs import optimized_view
from ..recipe import Recipe
from .joins import Pull, combine_targets


def later_frame_recipe(recipe: Recipe) -> Recipe:
    """The recipe of every frame after the first when frames follow each other.

    Such a frame starts from the previous stylized frame, warped, which already carries the
    style: it is optimized at the output size only (no coarse-to-fine schedule, whose coarse
    scales would blur the carried detail away) for ``recipe.frame_steps`` steps (its
    ``later_steps``: each preset sets them, in proportion to a changed ``steps``). At 512 px such
    a frame costs about what the preset's still image costs (whose steps are mostly at coarse
    scales); fewer steps leave disoccluded regions less painted, more add little.
    """
    return recipe.replace(min_size=None, scale_steps=None, step_decay=1.0, equal_cost_above=None,
                          steps=recipe.frame_steps)


def fixed_size(recipe: Recipe, size: tuple[int, int]) -> Recipe:
    """The recipe with the output geometry pinned to ``size`` (width, height): frames arrive fitted."""
    return recipe.replace(size=size, square=None, aspect=None, max_size=max(recipe.max_size, *size))


def quantize(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` float → float32 on the 8-bit grid: what a PNG holds, so that the next frame sees
    the same previous frame whether it was just painted or read back from the cache."""
    return (np.round(np.clip(rgb, 0, 1) * 255) / 255).astype(np.float32)


def to_bytes_image(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` float in [0, 1] → uint8: how frames travel to and from workers (a quarter of float32)."""
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def from_bytes_image(pixels: np.ndarray) -> np.ndarray:
    """uint8 ``(H, W, 3)`` → float32 in [0, 1] (exactly :func:`quantize`'s values)."""
    return np.asarray(pixels, np.float32) / 255.0


@dataclass(frozen=True)
class FrameSettings:
    """What every frame of one video is painted with; plain values, so it travels with a task.

    ``first`` paints a frame with nothing before it, as a still (and every frame without
    ``temporal``); ``later`` every frame that follows another (:func:`later_frame_recipe`).
    Both carry the run's seed and the frames' size.
    """

    styles: tuple[LoadedImage, ...]
    style_blend: tuple[float, ...] | None
    first: Recipe
    later: Recipe
    temporal: bool
    flow_method: str

    @classmethod
    def build(cls, recipe: Recipe, size: tuple[int, int], styles: Sequence[LoadedImage],
              style_blend: Sequence[float] | None, *, temporal: bool, flow_method: str) -> FrameSettings:
        """The settings of frames of ``size`` (width, height) painted with ``recipe``."""
        first = fixed_size(recipe, size)
        return cls(styles=tuple(styles), style_blend=None if style_blend is None else tuple(style_blend),
                   first=first, later=later_frame_recipe(first) if temporal else first, temporal=temporal,
                   flow_method=flow_method)

    def with_seed(self, seed: int) -> FrameSettings:
        return FrameSettings(self.styles, self.style_blend, self.first.replace(seed=seed),
                             self.later.replace(seed=seed), self.temporal, self.flow_method)


@dataclass
class PaintedFrame:
    """One frame of a :class:`TemporalChain`.

    ``styled`` ``(H, W, 3)`` float32 on the 8-bit grid; ``result`` the engine's run (None for a
    frame painted elsewhere and only followed); ``warping_error`` against the frame before (None
    for the first) and ``trusted``, the share of pixels whose flow passed the check; ``seconds``
    the frame's wall time; ``cancelled``: the run was stopped, and the chain did not advance.
    """

    styled: np.ndarray
    result: Result | None
    warping_error: float | None
    trusted: float | None
    seconds: float
    cancelled: bool = False

    @property
    def steps(self) -> int:
        return self.result.steps if self.result is not None else 0

    @property
    def losses(self) -> dict[str, float]:
        return self.result.losses if self.result is not None else {}


class TemporalChain:
    """Frames in order, each painted from the one before (see the module's description).

    :meth:`paint` paints the next frame; :meth:`follow` takes one painted elsewhere (a cached
    frame, a segment's key frame) as the next, so that the frame after it continues from it.
    Both measure the frame's warping error against the one before.
    """

    def __init__(self, stylizer: Stylizer, settings: FrameSettings, *, cancel: CancelToken | None = None,
                 callback: ProgressCallback | None = None):
        self.stylizer, self.settings = stylizer, settings
        self.cancel = cancel or CancelToken()
        self.callback = callback
        self._previous: tuple[np.ndarray, np.ndarray] | None = None  # (grey content, styled) of the frame before

    def paint(self, index: int, content: np.ndarray, *, pull: Pull | None = None) -> PaintedFrame:
        """Paint ``content`` ``(H, W, 3)`` (frame ``index``, for messages) after the frame before.

        With ``pull``, the frame is also drawn towards ``pull.image`` (the next segment's first
        frame carried back onto this one, :mod:`.joins`), besides the frame before.
        """
        began = time.perf_counter()
        grey = flows.to_grey(content)
        guide = self._guide(grey)
        result = self._run(index, content, guide, pull)
        if result.cancelled or self.cancel.cancelled:
            return PaintedFrame(styled=quantize(result.image), result=result, warping_error=None, trusted=None,
                                seconds=time.perf_counter() - began, cancelled=True)
        return self._advance(grey, quantize(result.image), guide, result, began)

    def follow(self, content: np.ndarray, styled: np.ndarray) -> PaintedFrame:
        """Take ``styled`` ``(H, W, 3)``, painted elsewhere, as the frame of ``content`` after the frame before."""
        began = time.perf_counter()
        grey = flows.to_grey(content)
        return self._advance(grey, np.asarray(styled, np.float32), self._guide(grey), None, began)

    # -- pieces ----------------------------------------------------------------------------------
    def _guide(self, grey: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The flow to the frame before and its consistency mask (None for the first frame)."""
        if self._previous is None:
            return None
        return flows.temporal_guide(grey, self._previous[0], self.settings.flow_method)

    def _advance(self, grey: np.ndarray, styled: np.ndarray, guide: tuple[np.ndarray, np.ndarray] | None,
                 result: Result | None, began: float) -> PaintedFrame:
        error = trusted = None
        if guide is not None and self._previous is not None:
            to_previous, mask = guide
            error = flows.warping_error(self._previous[1], styled, to_previous, mask)
            trusted = float(mask.mean())
        self._previous = grey, styled
        return PaintedFrame(styled=styled, result=result, warping_error=error, trusted=trusted,
                            seconds=time.perf_counter() - began)

    def _run(self, index: int, content: np.ndarray, guide: tuple[np.ndarray, np.ndarray] | None,
             pull: Pull | None) -> Result:
        s = self.settings
        photo = LoadedImage(rgb=content, name=f"frame {index}")
        if not s.temporal or guide is None or self._previous is None:
            return self._stylize(photo, s.first)
        recipe = s.later
        to_previous, trusted = guide
        previous = optimized_view(recipe, self._previous[1])
        # Lanczos: each frame resamples the one before, and softer kernels blur the paint frame by frame
        target = flows.warp(previous, to_previous, interpolation="lanczos")
        weights = trusted
        if pull is not None and pull.strength > 0:
            target, weights = combine_targets(target, trusted, optimized_view(recipe, pull.image),
                                              pull.strength * pull.trusted)
            trusted = np.maximum(trusted, pull.trusted)
        # Where no flow is trusted (disoccluded, off-frame), start from the photo in the previous
        # result's colours rather than from pixels dragged along by the warp.
        fill = colour.match_colour(optimized_view(recipe, content), *colour.colour_statistics(previous),
                                   method=recipe.color_transfer)
        start = target * trusted[..., None] + fill * (1 - trusted[..., None])
        temporal = (target, weights) if recipe.temporal_weight > 0 else None
        return self._stylize(photo, recipe, init_image=start, temporal=temporal)

    def _stylize(self, photo: LoadedImage, recipe: Recipe, *, init_image: np.ndarray | None = None,
                 temporal: tuple[np.ndarray, np.ndarray] | None = None) -> Result:
        s = self.settings
        return self.stylizer.run(photo, list(s.styles), recipe=recipe, cancel=self.cancel, callback=self.callback,
                                 style_blend=s.style_blend, init_image=init_image, temporal=temporal)

