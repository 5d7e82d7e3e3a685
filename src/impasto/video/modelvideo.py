"""A video painted by a trained model (:mod:`impasto.feedforward`): one pass of the network per
frame, optionally blended with the previous painted frame carried along the optical flow.

Frames are read, fitted, cached, delivered and reported as in an optimization's video (:mod:`.io`,
:mod:`.checks`, :mod:`.framecache`, :mod:`.delivery`, :class:`~.progress.FrameProgress`), so the
output formats, the kept audio, resuming, ``max_frames`` previews and the progress bar are the same.

**Temporal blend** (``blend`` = *a* in [0, 1], default 0: off). A model paints each frame on its
own, so its strokes flicker where the photo changes a little. With ``blend`` each frame is::

    out_t = (1 − a·m) · model(frame_t) + a·m · warp(out_{t−1}, flow_{t→t−1})

where ``flow_{t→t−1}`` is the *photo's* optical flow and ``m`` its forward–backward consistency
mask (:func:`impasto.flow.temporal_guide`): pixels that were occluded, cross a motion boundary or
come from outside the frame take the fresh painting. It is an exponential average along the
motion, so *a* = 0.5 keeps about one frame's memory; larger values steady the strokes further but
let them lag behind changes the flow misses (smear). The flow costs two dense flows per frame,
about 50 ms at 512×288 on a 2-core CPU, more than the network's pass.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import flow as flows
from .._version import __version__
from ..cancel import CancelToken
from ..errors import field_error
from ..images import Fitting, LoadedImage
from ..recipe import MAX_SIDE, Recipe
from .checks import Target, check_options, plan_target
from .delivery import deliver
from .framecache import FrameCache, resume_point, settings_key, source_identity
from .io import FittedFrames, VideoInfo, probe
from .progress import FrameCallback, FrameProgress, Interrupted, MessageCallback, Painting
from .stylizer import VideoResult
from .temporal import quantize

if TYPE_CHECKING:
    from ..feedforward.model import Model


@dataclass(frozen=True)
class ModelVideoOptions:
    """How :func:`stylize_video_with_model` paints, besides its source, output, model and recipe.

    Attributes:
        blend: *a* in [0, 1], the share of the previous painted frame (carried by the optical flow)
            in each new one where the flow is trusted; 0 (default) paints every frame on its own.
        shrink: fit frames to ``recipe.max_size``; False (default) keeps their own size unless the
            recipe's ``size``, ``square`` or ``aspect`` say otherwise (as ``impasto stylize --model``).
        flow_method: ``dis`` or ``farneback`` (:func:`impasto.flow.optical_flow`), used when blending.
        cache_dir, resume, keep_cache, overwrite, max_frames, fps, on_frame, on_message: as in
            :class:`impasto.video.VideoOptions`.
    """

    blend: float = 0.0
    shrink: bool = False
    flow_method: str = "dis"
    cache_dir: str | os.PathLike | None = None
    resume: bool = True
    keep_cache: bool | None = None
    overwrite: bool = False
    max_frames: int | None = None
    fps: float | Fraction | None = None
    on_frame: FrameCallback | None = None
    on_message: MessageCallback | None = None


def check_blend(blend: Any) -> float:
    """``blend`` as a float in [0, 1]; a :class:`UsageError` naming ``blend`` otherwise."""
    if isinstance(blend, bool) or not isinstance(blend, (int, float)) or not math.isfinite(blend) \
            or not 0.0 <= blend <= 1.0:
        raise field_error("blend", f"{blend!r} must be a number from 0 (off) to 1")
    return float(blend)


def blend_frame(painted: np.ndarray, previous: np.ndarray, flow: np.ndarray, mask: np.ndarray,
                amount: float) -> np.ndarray:
    """``(1 − a·m)·painted + a·m·warp(previous, flow)``: all images ``(H, W, 3)`` float32 in [0, 1],
    ``flow`` ``(H, W, 2)`` from this frame to the previous one, ``mask`` ``(H, W)`` in [0, 1]."""
    weight = (amount * mask)[..., None]
    moved = flows.warp(previous, flow)
    return ((1.0 - weight) * painted + weight * moved).astype(np.float32)


class _ModelVideoJob:
    """One video painted by a model: the checks, the frame cache, the frame loop, delivery."""

    def __init__(self, model: Model, recipe: Recipe, token: CancelToken, options: ModelVideoOptions):
        self.model, self.recipe, self.token, self.options = model, recipe, token, options
        self.started = time.perf_counter()
        self.notes: list[str] = []
        self.painting = Painting()

    def note(self, text: str) -> None:
        self.notes.append(text)
        if self.options.on_message is not None:
            self.options.on_message(text)

    def run(self, source: str | os.PathLike, output: str | os.PathLike) -> VideoResult:
        from ..feedforward.paint import check_options as check_painting
        from ..feedforward.picture import fitting_for

        o, recipe = self.options, self.recipe
        blend = check_blend(o.blend)
        check_options(max_frames=o.max_frames, fps=o.fps, flow_method=o.flow_method, segment_frames=None,
                      segmented=False)
        check_painting(recipe.preserve_color, recipe.color_transfer, recipe.tile_size, None)
        info = probe(source, fps=o.fps)
        target = plan_target(output, info, o.cache_dir, o.overwrite, o.keep_cache)
        frames = FittedFrames(info, fitting_for(recipe, shrink=o.shrink) or Fitting(max_size=MAX_SIDE))
        settings = self._settings(frames.size, info, blend)
        key = settings_key(settings)
        manifest, seed = resume_point(target, key, None, resume=o.resume, overwrite=o.overwrite, note=self.note)
        target.cache.begin(key=key, seed=seed, settings=settings, fps=str(info.fps), frames_done=0,
                           source=str(info.path), **({"preview": target.preview} if target.preview else {}))
        total = info.frames if o.max_frames is None else min(info.frames or o.max_frames, o.max_frames)
        done = target.cache.completed() if manifest is not None else 0
        if total is not None:
            done = min(done, total)
        if done:
            self.note(f"resuming: {done} finished frame(s) found in {target.cache.folder}")
            target.cache.record(frames_done=done)
        try:
            self._paint(frames, target.cache, total=total, done=done, blend=blend)
        except KeyboardInterrupt:
            raise Interrupted(target.cache.folder, self.painting.frames) from None
        written: Path | None = None
        audio = False
        if not self.painting.cancelled:
            audio = deliver(target, info, self.painting.frames, partial=self.painting.partial, note=self.note)
            written = target.path
        return self._result(written, audio, info, frames.size, target)

    def _settings(self, size: tuple[int, int], info: VideoInfo, blend: float) -> dict[str, Any]:
        """What the frames' pixels depend on (the cache's key): the model, the colour options, the
        size, the blend and its flow, the source."""
        r = self.recipe
        return {"impasto": __version__, "model": self.model.sha256 or None,
                "painting": {"preserve_color": r.preserve_color, "color_transfer": r.color_transfer},
                "size": list(size), "blend": blend, "flow": self.options.flow_method if blend else None,
                "source": source_identity(info)}

    def _paint(self, contents: Iterable[np.ndarray], cache: FrameCache, *, total: int | None, done: int,
               blend: float) -> None:
        """Frames in order: the first ``done`` from the cache, the rest painted, blended, cached and reported."""
        from ..feedforward.paint import paint_image

        o, r, painting = self.options, self.recipe, self.painting
        previous: tuple[np.ndarray, np.ndarray] | None = None  # frame t − 1: (painted, as cached; content)
        recorded = time.perf_counter()
        for index, content in enumerate(contents, start=1):
            if o.max_frames is not None and index > o.max_frames:
                painting.partial = True
                break
            cached = index <= done
            error = trusted = None
            started = time.perf_counter()
            if cached:
                styled = cache.load(index) if blend and index == done else None
            else:
                if self.token.cancelled:
                    painting.cancelled = True
                    break
                styled = paint_image(self.model, LoadedImage(rgb=content), preserve_color=r.preserve_color,
                                     tile=r.tile_size, color_transfer=r.color_transfer,
                                     max_memory=r.max_memory).image
                flow = mask = None
                if blend and previous is not None:
                    flow, mask = flows.temporal_guide(content, previous[1], o.flow_method)
                    styled = blend_frame(styled, previous[0], flow, mask, blend)
                styled = quantize(styled)  # what the cache holds: a resumed run blends from the same pixels
                if previous is not None and flow is not None and mask is not None:
                    error, trusted = flows.warping_error(previous[0], styled, flow, mask), float(mask.mean())
                    painting.warping_errors.append(error)
                cache.save(index, styled)
                if time.perf_counter() - recorded > 1.0:  # a manifest write costs ~6 ms; resuming counts the files
                    cache.record(frames_done=index)
                    recorded = time.perf_counter()
                painting.computed += 1
            seconds = time.perf_counter() - started
            if not cached:
                painting.durations.append(seconds)
            painting.frames = index
            previous = (styled, content) if blend and styled is not None else None
            if o.on_frame is not None:
                o.on_frame(FrameProgress(index=index, done=index, total=total, cached=cached, seconds=seconds,
                                         elapsed=time.perf_counter() - self.started, eta=self._eta(index, total),
                                         steps=0 if cached else 1, losses={}, warping_error=error, trusted=trusted,
                                         path=cache.frame_path(index)))

    def _eta(self, index: int, total: int | None) -> float | None:
        durations = self.painting.durations
        if total is None or not durations:
            return None
        return max(0, total - index) * sum(durations) / len(durations)

    def _result(self, written: Path | None, audio: bool, info: VideoInfo, size: tuple[int, int],
                target: Target) -> VideoResult:
        p = self.painting
        return VideoResult(
            output=written, frames=p.frames, computed=p.computed, reused=p.frames - p.computed, fps=info.fps,
            size=size, audio=audio, elapsed=time.perf_counter() - self.started, cancelled=written is None,
            partial=p.partial and written is not None, cache_dir=target.cache.folder,
            flicker=float(np.mean(p.warping_errors)) if p.warping_errors else None, warping_errors=p.warping_errors,
            seconds_per_frame=sum(p.durations) / len(p.durations) if p.durations else None, notes=self.notes,
            recipe=self.recipe)


def stylize_video_with_model(source: str | os.PathLike, output: str | os.PathLike, model: Model | str | os.PathLike,
                             recipe: Recipe | None = None, *, cancel: CancelToken | None = None,
                             options: ModelVideoOptions | None = None, **changes: Any) -> VideoResult:
    """Paint every frame of a video with a trained model, one pass of the network per frame.

    Args:
        source: a video file or a folder of frames (as :func:`impasto.video.stylize_video`).
        output: a video file (.mp4 .m4v .mov .mkv .webm .avi .gif) at the source's frame rate with
            its audio, or a folder, which receives ``frame_000001.png …``.
        model: a :class:`~impasto.feedforward.model.Model` or the path of a ``.impasto`` file
            (loaded with ``recipe.device`` and ``recipe.precision``).
        recipe: the painting options a model uses (:data:`impasto.feedforward.picture.MODEL_FIELDS`:
            ``preserve_color``, ``color_transfer``, the size options, ``tile_size``,
            ``max_memory``, ``device``, ``precision``); its other fields are ignored. Default
            ``Recipe()``.
        cancel: a :class:`~impasto.cancel.CancelToken` that stops the video after the current
            frame; finished frames stay in the cache.
        options: a :class:`ModelVideoOptions`; ``changes``, its fields as keywords (``blend=0.5``,
            ``max_frames=24`` …), override it.

    Returns a :class:`~impasto.video.VideoResult`; its ``flicker`` and ``warping_errors`` are
    measured only with ``blend`` (which computes the flow anyway), else None and empty.
    Raises :class:`~impasto.errors.UsageError` for invalid arguments (naming the option) or an
    existing output, :class:`~impasto.errors.ImageError` when the source cannot be read or the
    output written, :class:`~impasto.feedforward.model.ModelError` for a model file that cannot
    be loaded, and :class:`~.progress.Interrupted` on Ctrl-C.
    """
    from ..feedforward.model import Model, load_model

    settings = dataclasses.replace(options or ModelVideoOptions(), **changes)
    recipe = recipe or Recipe()
    if not isinstance(model, Model):
        model = load_model(model, device=recipe.device, precision=recipe.precision)
    return _ModelVideoJob(model, recipe, cancel or CancelToken(), settings).run(source, output)
