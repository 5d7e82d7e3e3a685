"""Video stylization with temporal consistency (Ruder, Dosovitskiy & Brox, GCPR 2016): the job.

A video (any file the bundled ffmpeg of ``imageio-ffmpeg`` reads) or a folder of frames is
painted with one :class:`~impasto.optimize.engine.Stylizer`, frame after frame with the temporal
method (:mod:`.temporal`), either whole and in order in this process (:mod:`.loop`) or cut into
segments painted in parallel through an executor (:mod:`.segments`, :mod:`.segmented`).

Finished frames go to a cache folder (:mod:`.framecache`) with a manifest of the settings; a
rerun with the same settings continues from the finished frames, and a run with other settings
starts afresh instead of reusing stale frames. At the end the frames are encoded at the source's
frame rate with the source's audio muxed back, or left as a folder of PNG files (:mod:`.delivery`).
The cache of a video file goes once the whole video is written; a run stopped early (Ctrl-C, a
crash, ``max_frames``) keeps it for the next run to continue.

This module holds what a caller sees: :class:`VideoOptions`, :class:`VideoResult`,
:class:`VideoStylizer` and :func:`stylize_video`; the engine knows nothing of video.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from ..cancel import CancelToken
from ..images import ImageSource, LoadedImage
from ..optimize.engine import ProgressCallback, Stylizer
from ..optimize.inputs import load_styles
from ..recipe import Recipe
from .checks import Target, check_options, plan_target
from .delivery import deliver
from .framecache import frame_settings, resume_point, settings_key
from .io import FittedFrames, VideoInfo, probe
from .loop import WholeVideoLoop
from .progress import FrameCallback, Interrupted, MessageCallback, Painting
from .segmented import SegmentedRun, SegmentExecutor, segmenting
from .segments import SEGMENT_FRAMES, frame_changes, plan_segments, thumbnail
from .temporal import FrameSettings, TemporalChain


@dataclass(frozen=True)
class VideoOptions:
    """How a video is painted, besides its source, output, styles, recipe and cancel token.

    :func:`stylize_video` and :meth:`VideoStylizer.run` take these as keyword arguments (or as one
    ``options`` object that keywords then override).

    Attributes:
        style_blend: weights of several styles.
        temporal: True: each frame starts from the previous result warped by the optical flow,
            with ``recipe.temporal_weight`` times the temporal loss on pixels whose flow passes
            the forward–backward check. False: every frame is painted on its own.
        cache_dir: where finished frames are kept for a video output (default
            ``<output>.frames``). A folder output is its own cache (giving another folder is a
            :class:`~impasto.errors.UsageError`).
        resume: continue from the finished frames of an earlier run with the same settings (and
            the same seed, when ``recipe`` gives one; a recipe without one keeps the cache's).
        keep_cache: keep the cache after the whole video is written (default: only when
            ``cache_dir`` was given). A run that ``max_frames`` stops early always keeps it.
        overwrite: replace an existing output video. Without it, the only file replaced is the
            preview a ``max_frames`` run wrote, and only by a run that continues its frames.
        max_frames: paint only the first N frames: the output is a preview, and the frames stay
            cached so that a run without ``max_frames`` continues from them.
        fps: frame rate of a folder source (default 25); a video file keeps its own rate.
        flow_method: ``dis`` or ``farneback`` (:func:`impasto.flow.optical_flow`).
        executor: paint in segments through this executor (``map(fn, tasks)``, e.g.
            :class:`impasto.scale.executor.LocalExecutor` or the Ray executor), in parallel where it
            has several workers: the video is cut at scene cuts and every ``segment_frames``
            frames, each segment painted with the temporal method from its own first frame, and
            the joins kept steady (:mod:`impasto.video.joins`). None (default): the whole video
            in order, in this process.
        segment_frames: most frames per segment (default 48); needs ``executor``.
        on_frame: called with a :class:`~.progress.FrameProgress` after every frame (e.g.
            :class:`impasto.reporting.FrameReporter`); an exception raised there stops the job, and
            the frames finished so far stay cached.
        callback: the engine's per-step progress callback (a whole video only: segments may run
            in other processes).
        on_message: called with informational lines (resuming, settings changed, frames kept).
    """

    style_blend: Sequence[float] | None = None
    temporal: bool = True
    cache_dir: str | os.PathLike | None = None
    resume: bool = True
    keep_cache: bool | None = None
    overwrite: bool = False
    max_frames: int | None = None
    fps: float | Fraction | None = None
    flow_method: str = "dis"
    executor: SegmentExecutor | None = None
    segment_frames: int | None = None
    on_frame: FrameCallback | None = None
    callback: ProgressCallback | None = None
    on_message: MessageCallback | None = None


@dataclass
class VideoResult:
    """The outcome of :func:`stylize_video`.

    ``output`` is None when the run was cancelled (the finished frames stay in ``cache_dir``).
    ``partial`` is True when ``max_frames`` stopped it before the source's end: the output is a
    preview, and the frames stay in ``cache_dir`` for a run without ``max_frames`` to continue.
    ``flicker`` is the mean warping error over consecutive frame pairs (None for one frame; pairs
    across a scene cut are left out of a run in segments). ``segments`` is how many segments a run
    in segments had (None for a whole video), ``join_errors`` the warping errors at their smooth
    joins and ``join_ratio`` the worst of them against the mean of all other pairs
    (:func:`impasto.video.joins.join_ratio`).
    """

    output: Path | None
    frames: int
    computed: int
    reused: int
    fps: Fraction
    size: tuple[int, int]
    audio: bool
    elapsed: float
    cancelled: bool
    partial: bool
    cache_dir: Path
    flicker: float | None
    warping_errors: list[float]
    seconds_per_frame: float | None
    notes: list[str]
    recipe: Recipe
    segments: int | None = None
    join_errors: list[float] = field(default_factory=list)
    join_ratio: float | None = None


class VideoStylizer:
    """Paints videos frame by frame, keeping one :class:`~impasto.optimize.engine.Stylizer` (and so
    the VGG network) for all frames and all jobs.

    Each :meth:`run` gets its own recipe and cancel token; the instance keeps only ``recipe``, the
    default for runs given none, and the network cache. :meth:`cancel` cancels the token of the
    video running now (or of the next one, when none is running) unless that run was given a token
    of its own; videos run in parallel on one instance should each be given one.
    """

    def __init__(self, recipe: Recipe | None = None, *, stylizer: Stylizer | None = None):
        self._recipe = recipe or Recipe()
        self.stylizer = stylizer or Stylizer(self._recipe)
        self._token = CancelToken()

    @property
    def recipe(self) -> Recipe:
        """The recipe of runs given none (read-only)."""
        return self._recipe

    def cancel(self) -> None:
        """Stop after the current optimization step (segments: after the tasks running now);
        finished frames stay in the cache."""
        self._token.cancel()

    @property
    def cancelled(self) -> bool:
        return self._token.cancelled

    def run(self, source: str | os.PathLike, output: str | os.PathLike, styles: ImageSource | LoadedImage | Sequence,
            *, recipe: Recipe | None = None, cancel: CancelToken | None = None, options: VideoOptions | None = None,
            **changes: Any) -> VideoResult:
        """See :func:`stylize_video`; ``changes`` are :class:`VideoOptions` fields."""
        settings = dataclasses.replace(options or VideoOptions(), **changes)
        token = cancel or self._token
        try:
            return _VideoJob(self.stylizer, recipe or self._recipe, token, settings).run(source, output, styles)
        finally:
            if token is self._token:  # the next video gets a fresh token
                self._token = CancelToken()


class _VideoJob:
    """One video run: the checks, the frame cache, the frame loop (whole or in segments), delivery."""

    def __init__(self, stylizer: Stylizer, recipe: Recipe, token: CancelToken, options: VideoOptions):
        self.stylizer, self.recipe, self.token, self.options = stylizer, recipe, token, options
        self.started = time.perf_counter()
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)
        if self.options.on_message is not None:
            self.options.on_message(text)

    def run(self, source: str | os.PathLike, output: str | os.PathLike,
            styles: ImageSource | LoadedImage | Sequence) -> VideoResult:
        o, recipe = self.options, self.recipe
        segmented = o.executor is not None
        check_options(max_frames=o.max_frames, fps=o.fps, flow_method=o.flow_method, segment_frames=o.segment_frames,
                      segmented=segmented)
        info = probe(source, fps=o.fps)
        target = plan_target(output, info, o.cache_dir, o.overwrite, o.keep_cache)
        frames = FittedFrames(info, recipe.fitting())
        settings = FrameSettings.build(recipe, frames.size, load_styles(styles, recipe.max_pixels), o.style_blend,
                                       temporal=o.temporal, flow_method=o.flow_method)
        segment_frames = o.segment_frames or SEGMENT_FRAMES
        key_settings = frame_settings(
            settings.first, settings.later, temporal=o.temporal, flow_method=o.flow_method, size=frames.size,
            styles=settings.styles, style_blend=o.style_blend, info=info,
            segments=segmenting(segment_frames) if segmented else None)
        key = settings_key(key_settings)
        manifest, seed = resume_point(target, key, recipe.seed, resume=o.resume, overwrite=o.overwrite, note=self.note)
        settings = settings.with_seed(seed)
        target.cache.begin(key=key, seed=seed, settings=key_settings, fps=str(info.fps), frames_done=0,
                           source=str(info.path), **({"preview": target.preview} if target.preview else {}))
        if o.executor is not None:
            painting = self._in_segments(o.executor, settings, frames, target, manifest, segment_frames)
        else:
            painting = self._whole(settings, frames, target, info, manifest is not None)
        written: Path | None = None
        audio = False
        if not painting.cancelled and not self.token.cancelled:
            audio = deliver(target, info, painting.frames, partial=painting.partial, note=self.note)
            written = target.path
        return self._result(painting, written, audio, info, frames.size, target, settings)

    def _whole(self, settings: FrameSettings, frames: FittedFrames, target: Target, info: VideoInfo,
               resuming: bool) -> Painting:
        o, cache = self.options, target.cache
        total = info.frames if o.max_frames is None else min(info.frames or o.max_frames, o.max_frames)
        done = cache.completed() if resuming else 0
        if total is not None:
            done = min(done, total)
        if done:
            self.note(f"resuming: {done} finished frame(s) found in {cache.folder}")
            cache.record(frames_done=done)
        chain = TemporalChain(self.stylizer, settings, cancel=self.token, callback=o.callback)
        loop = WholeVideoLoop(chain, cache, self.token, total=total, done=done, started=self.started,
                              on_frame=o.on_frame)
        try:
            return loop.paint(frames, o.max_frames)
        except KeyboardInterrupt:
            raise Interrupted(cache.folder, loop.painting.frames) from None

    def _in_segments(self, executor: SegmentExecutor, settings: FrameSettings, frames: FittedFrames, target: Target,
                     manifest: dict[str, Any] | None, segment_frames: int) -> Painting:
        limit = self.options.max_frames
        seen = 0

        def counted() -> Iterator[np.ndarray]:
            nonlocal seen
            for frame in frames:
                seen += 1
                if limit is not None and seen > limit:
                    return
                yield frame

        plan = plan_segments(frame_changes(map(thumbnail, counted())), segment_frames)
        run = SegmentedRun(executor, settings, plan, lambda: islice(iter(frames), plan[-1].end), target.cache,
                           manifest, token=self.token, on_frame=self.options.on_frame, note=self.note,
                           started=self.started)
        try:
            painting = run.run()
        except KeyboardInterrupt:
            raise Interrupted(target.cache.folder, run.painting.frames) from None
        painting.partial = limit is not None and seen > limit
        return painting

    def _result(self, painting: Painting, written: Path | None, audio: bool, info: VideoInfo, size: tuple[int, int],
                target: Target, settings: FrameSettings) -> VideoResult:
        errors, durations = painting.warping_errors, painting.durations
        return VideoResult(
            output=written, frames=painting.frames, computed=painting.computed,
            reused=painting.frames - painting.computed if painting.frames else 0, fps=info.fps, size=size,
            audio=audio, elapsed=time.perf_counter() - self.started, cancelled=written is None,
            partial=painting.partial and written is not None, cache_dir=target.cache.folder,
            flicker=float(np.mean(errors)) if errors else None, warping_errors=errors,
            seconds_per_frame=sum(durations) / len(durations) if durations else None, notes=self.notes,
            recipe=settings.first, segments=painting.segments, join_errors=painting.join_errors,
            join_ratio=painting.join_ratio)


def stylize_video(source: str | os.PathLike, output: str | os.PathLike,
                  styles: ImageSource | LoadedImage | Sequence, recipe: Recipe | None = None, *,
                  stylizer: VideoStylizer | None = None, cancel: CancelToken | None = None,
                  options: VideoOptions | None = None, **changes: Any) -> VideoResult:
    """Paint a video in the style of ``styles``, frame after frame, consistently over time.

    Args:
        source: a video file (anything the bundled ffmpeg reads) or a folder of frames (PNG,
            JPEG, WebP, TIFF, BMP; sorted naturally).
        output: a video file (.mp4 .m4v .mov .mkv .webm .avi .gif), written at the source's frame
            rate with its audio, or a folder, which receives ``frame_000001.png …``.
        styles: one style image or several (paths, arrays, PIL images, LoadedImage).
        recipe: the settings (default: the ``stylizer``'s, else ``Recipe()``); it is not changed.
            The first frame runs it as a still image would; with ``temporal`` the later frames run
            :func:`~.temporal.later_frame_recipe` (``recipe.frame_steps`` steps at the output size).
        stylizer: a :class:`VideoStylizer` to run with (to keep its network between jobs, or to
            cancel with its :meth:`~VideoStylizer.cancel`); it is not changed.
        cancel: a :class:`~impasto.cancel.CancelToken` that stops this video from another thread
            after the current optimization step; finished frames stay in the cache.
        options: a :class:`VideoOptions`; ``changes``, its fields as keywords (``temporal=False``,
            ``max_frames=24``, ``executor=…`` …), override it.

    Returns a :class:`VideoResult`. Raises :class:`~impasto.errors.UsageError` for invalid
    arguments or an existing output, :class:`~impasto.errors.ImageError` when the source cannot
    be read or the output or cache cannot be written, :class:`~.progress.Interrupted` (a
    ``KeyboardInterrupt``) on Ctrl-C, and whatever the engine raises
    (:class:`~impasto.errors.DivergedError`, :class:`~impasto.errors.WeightsError`); a ``TypeError``
    names a keyword that is no field of :class:`VideoOptions`.
    """
    job = stylizer or VideoStylizer(recipe)
    return job.run(source, output, styles, recipe=recipe, cancel=cancel, options=options, **changes)
