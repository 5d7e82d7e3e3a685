"""Video stylization with temporal consistency (Ruder, Dosovitskiy & Brox, GCPR 2016).

A video (any file the bundled ffmpeg of ``imageio-ffmpeg`` reads) or a folder of frames is
painted frame by frame with one :class:`~impasto.optimize.engine.Stylizer`:

* the first frame runs the recipe as a still image would;
* every later frame starts from the previous *stylized* frame carried onto it by the optical
  flow of the *content* (:mod:`impasto.flow`), and a temporal loss keeps it close to that warped
  image wherever the flow is trustworthy (the forward–backward consistency mask). Such a frame
  needs no coarse-to-fine schedule: it is optimized at the output size only, for the recipe's
  ``frame_steps`` (see :func:`later_frame_recipe`).

Finished frames go to a cache folder as PNG files with a JSON manifest of the settings; a rerun
with the same settings continues after the last finished frame, and a run with other settings
starts afresh instead of reusing stale frames. At the end the frames are encoded at the
source's frame rate with the source's audio muxed back, or left as a folder of PNG files. The
cache of a video file goes once the whole video is written; a run stopped early (Ctrl-C, a
crash, ``max_frames``) keeps it for the next run to continue.

The engine knows nothing of any of this; everything video lives in :mod:`impasto.video`: this
module, :mod:`impasto.video.io` (probing, decoding and encoding with ffmpeg) and
:mod:`impasto.video.framecache`.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .. import colour
from .. import flow as flows
from ..cancel import CancelToken
from ..errors import ImageError, UsageError, field_error
from ..images import ImageSource, LoadedImage, load_image, resize
from ..optimize.engine import ProgressCallback, Result, Stylizer
from ..recipe import Recipe
from ..reporting import LineReporter
from .framecache import FrameCache, Target, frame_settings, plan_target, resume_point, settings_key
from .io import VideoInfo, encode_video, probe, read_frames


# ---------------------------------------------------------------------------------------------
# Recipes for the frames
# ---------------------------------------------------------------------------------------------
def later_frame_recipe(recipe: Recipe) -> Recipe:
    """The recipe of every frame after the first when frames follow each other.

    Such a frame starts from the previous stylized frame, warped, which already carries the
    style: it is optimized at the output size only (no coarse-to-fine schedule, whose coarse
    scales would blur the carried detail away) for ``recipe.frame_steps`` steps (its
    ``later_steps``: each preset sets them, in proportion to a changed ``steps``). At 512 px such
    a frame costs about what the preset's still image costs (whose steps are mostly at coarse
    scales); fewer steps leave disoccluded regions less painted, more add little.
    """
    return recipe.replace(min_size=None, scale_steps=None, step_decay=1.0, steps=recipe.frame_steps)


def _fixed_size(recipe: Recipe, size: tuple[int, int]) -> Recipe:
    """The recipe with the output geometry pinned to ``size`` (frames arrive already fitted)."""
    return recipe.replace(size=size, square=None, aspect=None, max_size=max(recipe.max_size, *size))


def _quantize(rgb: np.ndarray) -> np.ndarray:
    """What an 8-bit PNG holds: the next frame sees the same previous frame after a resume."""
    return (np.round(np.clip(rgb, 0, 1) * 255) / 255).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------------
@dataclass
class FrameProgress:
    """What ``on_frame`` receives after every frame.

    ``index`` is 1-based; ``total`` is the number of frames to paint (None if unknown);
    ``cached`` is True for a frame taken from the cache of an earlier run; ``seconds`` is the
    time this frame took; ``eta`` the estimated seconds left (None until it can be estimated);
    ``warping_error`` the frame's flicker against the previous frame (see
    :func:`impasto.flow.warping_error`, None for the first frame); ``trusted`` the fraction of
    pixels whose flow passed the consistency check.
    """

    index: int
    total: int | None
    cached: bool
    seconds: float
    elapsed: float
    eta: float | None
    steps: int
    losses: dict[str, float]
    warping_error: float | None
    trusted: float | None
    path: Path


@dataclass
class VideoResult:
    """The outcome of :func:`stylize_video`.

    ``output`` is None when the run was cancelled (the finished frames stay in ``cache_dir``).
    ``partial`` is True when ``max_frames`` stopped it before the source's end: the output is a
    preview, and the frames stay in ``cache_dir`` for a run without ``max_frames`` to continue.
    ``flicker`` is the mean warping error over all consecutive frame pairs (None for one frame).
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


FrameCallback = Callable[[FrameProgress], None]
MessageCallback = Callable[[str], None]


class FrameReporter(LineReporter):
    """Per-frame progress for the command line: a tqdm bar over frames with the ETA, and a
    line per frame (or one JSON object per frame with ``json_log``); nothing with ``quiet``."""

    def __call__(self, p: FrameProgress) -> None:
        if self.quiet:
            return
        if self.json_log:
            record = {"event": "frame", "frame": p.index, "total": p.total, "cached": p.cached,
                      "seconds": round(p.seconds, 3), "elapsed_s": round(p.elapsed, 3),
                      "eta_s": None if p.eta is None else round(p.eta, 1), "steps": p.steps,
                      "losses": p.losses, "warping_error": p.warping_error, "trusted": p.trusted,
                      "path": str(p.path)}
            print(json.dumps(record), file=self.stream, flush=True)
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=p.total, unit="frame", dynamic_ncols=True, leave=False, file=sys.stderr,
                            disable=None,
                            bar_format="{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}]{postfix}")
        eta = "" if p.eta is None else f"ETA {_duration(p.eta)} "
        self.bar.set_postfix_str(f"{eta}{p.seconds:.1f} s/frame", refresh=False)
        self.bar.update(p.index - self.bar.n)
        total = "?" if p.total is None else p.total
        state = "cached" if p.cached else f"{p.seconds:6.1f} s, {p.steps} steps"
        flicker = "" if p.warping_error is None else f"  warping error {p.warping_error:.2e}"
        self.bar.write(f"frame {p.index:4d}/{total}  {state}{flicker}"
                       + ("" if p.eta is None else f"  ETA {_duration(p.eta)}"), file=self.stream)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


# ---------------------------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------------------------
class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a video: the ``frames`` finished so far stay in ``cache_dir``, and a rerun continues."""

    def __init__(self, cache_dir: Path, frames: int):
        kept = f"{frames} finished frame(s) are kept in {cache_dir}" if frames else "no frame was finished yet"
        super().__init__(f"{kept}; run the same command again to continue")
        self.cache_dir, self.frames = cache_dir, frames


def _check_options(max_frames: Any, fps: Any, flow_method: str) -> None:
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1):
        raise field_error("max_frames", f"{max_frames!r} must be a whole number of at least 1")
    if fps is not None and (not isinstance(fps, (int, float, Fraction)) or not fps > 0 or not math.isfinite(fps)):
        raise field_error("fps", f"{fps!r} must be a positive number")
    if flow_method not in flows.FLOW_METHODS:
        raise UsageError(f"flow method: unknown {flow_method!r}; choose from {', '.join(flows.FLOW_METHODS)}")


def _load_styles(styles: ImageSource | LoadedImage | Sequence, max_pixels: int) -> list[LoadedImage]:
    if isinstance(styles, (str, bytes, os.PathLike)) or not isinstance(styles, Sequence):
        styles = [styles]
    if not styles:
        raise UsageError("at least one style image is needed")
    return [s if isinstance(s, LoadedImage) else load_image(
        s, what=f"style image {i + 1}" if len(styles) > 1 else "style image", max_pixels=max_pixels)
        for i, s in enumerate(styles)]


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
        """Stop after the current optimization step; finished frames stay in the cache."""
        self._token.cancel()

    @property
    def cancelled(self) -> bool:
        return self._token.cancelled

    def run(self, source: str | os.PathLike, output: str | os.PathLike,
            styles: ImageSource | LoadedImage | Sequence, *, recipe: Recipe | None = None,
            cancel: CancelToken | None = None, style_blend: Sequence[float] | None = None, temporal: bool = True,
            cache_dir: str | os.PathLike | None = None, resume: bool = True, keep_cache: bool | None = None,
            overwrite: bool = False, max_frames: int | None = None, fps: float | Fraction | None = None,
            flow_method: str = "dis", on_frame: FrameCallback | None = None,
            callback: ProgressCallback | None = None, on_message: MessageCallback | None = None) -> VideoResult:
        """See :func:`stylize_video`."""
        token = cancel or self._token
        try:
            return self._run(source, output, styles, recipe or self._recipe, token, style_blend=style_blend,
                             temporal=temporal, cache_dir=cache_dir, resume=resume, keep_cache=keep_cache,
                             overwrite=overwrite, max_frames=max_frames, fps=fps, flow_method=flow_method,
                             on_frame=on_frame, callback=callback, on_message=on_message)
        finally:
            if token is self._token:  # the next video gets a fresh token
                self._token = CancelToken()

    def _run(self, source: str | os.PathLike, output: str | os.PathLike, styles: ImageSource | LoadedImage | Sequence,
             recipe: Recipe, token: CancelToken, *, style_blend: Sequence[float] | None, temporal: bool,
             cache_dir: str | os.PathLike | None, resume: bool, keep_cache: bool | None, overwrite: bool,
             max_frames: int | None, fps: float | Fraction | None, flow_method: str, on_frame: FrameCallback | None,
             callback: ProgressCallback | None, on_message: MessageCallback | None) -> VideoResult:
        started = time.perf_counter()
        notes: list[str] = []

        def note(text: str) -> None:
            notes.append(text)
            if on_message is not None:
                on_message(text)

        _check_options(max_frames, fps, flow_method)
        info = probe(source, fps=fps)
        target = plan_target(output, info, cache_dir, overwrite, keep_cache)
        cache = target.cache
        style_images = _load_styles(styles, recipe.max_pixels)
        fitting = recipe.fitting()

        frames = read_frames(info)
        total = info.frames if max_frames is None else (min(info.frames, max_frames) if info.frames else max_frames)
        with closing(frames):
            try:
                first = next(frames)
            except StopIteration:
                raise ImageError(f"video {str(info.path)!r}: has no frames") from None
            fitted = fitting.apply(LoadedImage(rgb=first)).rgb
            size = (fitted.shape[1], fitted.shape[0])
            if min(size) < 32:
                raise ImageError(f"video {str(info.path)!r}: frames of {size[0]}x{size[1]} are too small; "
                                 "each side needs at least 32 px")

            first_recipe = _fixed_size(recipe, size)
            next_recipe = later_frame_recipe(first_recipe) if temporal else first_recipe
            settings = frame_settings(first_recipe, next_recipe, temporal=temporal, flow_method=flow_method,
                                      size=size, styles=style_images, style_blend=style_blend, info=info)
            key = settings_key(settings)
            done, seed = resume_point(target, key, recipe.seed, resume=resume, overwrite=overwrite, note=note)
            first_recipe, next_recipe = first_recipe.replace(seed=seed), next_recipe.replace(seed=seed)
            if total is not None:
                done = min(done, total)
            if done:
                note(f"resuming: {done} finished frame(s) found in {cache.folder}")
            cache.begin(key=key, seed=seed, settings=settings, fps=str(info.fps), frames_done=done,
                        source=str(info.path), **({"preview": target.preview} if target.preview else {}))
            loop = _FrameLoop(self.stylizer, token, cache, style_images, style_blend, first_recipe, next_recipe,
                              temporal, flow_method, total, done, started, on_frame, callback)

            def prepared(frame: np.ndarray) -> np.ndarray:
                content = fitting.apply(LoadedImage(rgb=frame)).rgb
                return content if content.shape[:2] == (size[1], size[0]) else resize(content, size)

            try:
                partial = loop.paint(itertools.chain([fitted], map(prepared, frames)), max_frames)
            except KeyboardInterrupt:
                raise Interrupted(cache.folder, loop.finished) from None

        count = loop.finished
        written: Path | None = None
        audio = False
        if not loop.cancelled and not token.cancelled:
            audio = _deliver(target, info, loop, partial, note)
            written = target.path
        errors = loop.warping_errors
        computed = loop.computed
        return VideoResult(
            output=written, frames=count, computed=computed, reused=count - computed if count else 0,
            fps=info.fps, size=size, audio=audio, elapsed=time.perf_counter() - started,
            cancelled=written is None, partial=partial and written is not None, cache_dir=cache.folder,
            flicker=float(np.mean(errors)) if errors else None, warping_errors=errors,
            seconds_per_frame=(sum(loop.durations) / len(loop.durations)) if loop.durations else None,
            notes=notes, recipe=first_recipe)


def _deliver(target: Target, info: VideoInfo, loop: _FrameLoop, partial: bool,
             note: MessageCallback) -> bool:
    """Write the output from the cached frames; keep the cache for a later run where one will want it.

    A ``partial`` run (stopped by ``max_frames`` before the source's end) writes a preview and keeps
    its frames (and, for a video, the preview's sha256, so the full run may replace it without
    ``overwrite``). Returns whether audio was written.
    """
    cache, count = target.cache, loop.finished
    audio = False
    if target.kind == "video":
        if target.preview is not None:
            note(f"replacing the preview {target.path} that an earlier --max-frames run wrote")
        paths = [cache.frame_path(i) for i in range(1, count + 1)]
        audio = encode_video(paths, target.path, info.fps, audio_from=info.path if info.audio else None)
        if info.audio and not audio:
            note("the source's audio could not be kept")
    if partial:
        preview = cache.preview_of(target.path) if target.kind == "video" else None
        cache.record(frames_done=count, complete=False, preview=preview)
        note(f"the first {count} frame(s) stay in {cache.folder}: run again without --max-frames to paint the rest")
        return audio
    cache.record(frames_done=count, complete=True, preview=None)
    if not target.keep_cache:
        cache.remove()
    return audio


class _FrameLoop:
    """The per-frame work of one job: stylize (or take from the cache), measure, report."""

    def __init__(self, stylizer: Stylizer, token: CancelToken, cache: FrameCache, styles: list[LoadedImage],
                 blend: Sequence[float] | None, first_recipe: Recipe, next_recipe: Recipe, temporal: bool,
                 flow_method: str, total: int | None, done: int, started: float, on_frame: FrameCallback | None,
                 callback: ProgressCallback | None):
        self.stylizer, self.token, self.cache = stylizer, token, cache
        self.styles, self.blend = styles, blend
        self.first_recipe, self.next_recipe = first_recipe, next_recipe
        self.temporal, self.flow_method = temporal, flow_method
        self.total, self.done, self.started = total, done, started
        self.on_frame, self.callback = on_frame, callback
        self.previous_grey: np.ndarray | None = None
        self.previous_styled: np.ndarray | None = None
        self.warping_errors: list[float] = []
        self.durations: list[float] = []  # computed frames after the first
        self.first_duration: float | None = None
        self.computed = 0
        self.finished = 0  # frames 1 … finished are in the cache
        self.cancelled = False

    def paint(self, contents: Iterable[np.ndarray], max_frames: int | None) -> bool:
        """Handle the fitted frames in order until the end, a cancel or ``max_frames``.

        Returns True when ``max_frames`` stopped it before the source's end (a partial run).
        """
        for index, content in enumerate(contents, start=1):
            if max_frames is not None and index > max_frames:
                return True
            if not self.frame(index, content):
                break
        return False

    def frame(self, index: int, content: np.ndarray) -> bool:
        """Handle frame ``index`` (1-based) of ``content`` (H, W, 3); False if cancelled."""
        cached = index <= self.done
        if not cached and self.token.cancelled:
            self.cancelled = True
            return False
        began = time.perf_counter()
        grey = flows.to_grey(content)
        guide = None
        if self.previous_grey is not None:
            guide = flows.temporal_guide(grey, self.previous_grey, self.flow_method)
        steps, losses = 0, {}
        if cached:
            styled = self.cache.load(index)
        else:
            result = self._stylize(index, content, guide)
            if result.cancelled or self.token.cancelled:
                self.cancelled = True
                return False
            styled = _quantize(result.image)
            self.cache.save(index, styled)
            self.cache.record(frames_done=index)
            steps, losses = result.steps, result.losses
            self.computed += 1
        self.finished = index
        error = trusted = None
        if guide is not None and self.previous_styled is not None:
            to_previous, mask = guide
            error = flows.warping_error(self.previous_styled, styled, to_previous, mask)
            trusted = float(mask.mean())
            self.warping_errors.append(error)
        seconds = time.perf_counter() - began
        if not cached:
            if index == 1 or not self.temporal:
                self.first_duration = seconds if self.first_duration is None else self.first_duration
            if index > 1:
                self.durations.append(seconds)
        self.previous_grey, self.previous_styled = grey, styled
        if self.on_frame is not None:
            self.on_frame(FrameProgress(index=index, total=self.total, cached=cached, seconds=seconds,
                                        elapsed=time.perf_counter() - self.started, eta=self._eta(index),
                                        steps=steps, losses=losses, warping_error=error, trusted=trusted,
                                        path=self.cache.frame_path(index)))
        return True

    def _eta(self, index: int) -> float | None:
        if self.total is None:
            return None
        left = max(0, self.total - index)
        if left == 0:
            return 0.0
        per_frame = (sum(self.durations) / len(self.durations)) if self.durations else self.first_duration
        return None if per_frame is None else left * per_frame

    def _stylize(self, index: int, content: np.ndarray, guide: tuple[np.ndarray, np.ndarray] | None) -> Result:
        photo = LoadedImage(rgb=content, name=f"frame {index}")
        if index == 1 or not self.temporal or self.previous_styled is None or guide is None:
            return self.stylizer.run(photo, self.styles, recipe=self.first_recipe, cancel=self.token,
                                     callback=self.callback, style_blend=self.blend)
        recipe = self.next_recipe
        to_previous, mask = guide
        previous = self.previous_styled
        if recipe.preserve_color == "luminance":  # the optimizer works on luminance in this mode
            previous = colour.luminance_image(previous)
        # Lanczos: each frame resamples the one before, and softer kernels blur the paint frame by frame
        warped = flows.warp(previous, to_previous, interpolation="lanczos")
        # Where the flow is not trusted (disoccluded, off-frame), start from the photo in the
        # previous result's colours rather than from pixels dragged along by the warp.
        fill = colour.match_colour(content if recipe.preserve_color != "luminance" else colour.luminance_image(content),
                                   *colour.colour_statistics(previous), method=recipe.color_transfer)
        start = warped * mask[..., None] + fill * (1 - mask[..., None])
        temporal = (warped, mask) if recipe.temporal_weight > 0 else None
        return self.stylizer.run(photo, self.styles, recipe=recipe, cancel=self.token, callback=self.callback,
                                 style_blend=self.blend, init_image=start, temporal=temporal)


def stylize_video(source: str | os.PathLike, output: str | os.PathLike,
                  styles: ImageSource | LoadedImage | Sequence, recipe: Recipe | None = None, *,
                  style_blend: Sequence[float] | None = None, temporal: bool = True,
                  cache_dir: str | os.PathLike | None = None, resume: bool = True, keep_cache: bool | None = None,
                  overwrite: bool = False, max_frames: int | None = None, fps: float | Fraction | None = None,
                  flow_method: str = "dis", on_frame: FrameCallback | None = None,
                  callback: ProgressCallback | None = None, on_message: MessageCallback | None = None,
                  stylizer: VideoStylizer | None = None, cancel: CancelToken | None = None) -> VideoResult:
    """Paint a video in the style of ``styles``, frame after frame, consistently over time.

    Args:
        source: a video file (anything the bundled ffmpeg reads) or a folder of frames (PNG,
            JPEG, WebP, TIFF, BMP; sorted naturally).
        output: a video file (.mp4 .m4v .mov .mkv .webm .avi .gif), written at the source's frame
            rate with its audio, or a folder, which receives ``frame_000001.png …``.
        styles: one style image or several (paths, arrays, PIL images, LoadedImage).
        recipe: the settings (default: the ``stylizer``'s, else ``Recipe()``); it is not changed.
            The first frame runs it as a still image would; with ``temporal`` the later frames run
            :func:`later_frame_recipe` (``recipe.frame_steps`` steps at the output size).
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
        on_frame: called with a :class:`FrameProgress` after every frame (e.g.
            :class:`FrameReporter`); an exception raised there stops the job, and the frames
            finished so far stay cached.
        callback: the engine's per-step progress callback.
        on_message: called with informational lines (resuming, settings changed, frames kept).
        stylizer: a :class:`VideoStylizer` to run with (to keep its network between jobs, or to
            cancel with its :meth:`~VideoStylizer.cancel`); it is not changed.
        cancel: a :class:`~impasto.cancel.CancelToken` that stops this video from another thread
            after the current optimization step; finished frames stay in the cache.

    Returns a :class:`VideoResult`. Raises :class:`~impasto.errors.UsageError` for invalid
    arguments or an existing output, :class:`~impasto.errors.ImageError` when the source cannot
    be read or the output or cache cannot be written, :class:`Interrupted` (a
    ``KeyboardInterrupt``) on Ctrl-C, and whatever the engine raises
    (:class:`~impasto.errors.DivergedError`, :class:`~impasto.errors.WeightsError`).
    """
    job = stylizer or VideoStylizer(recipe)
    return job.run(source, output, styles, recipe=recipe, cancel=cancel, style_blend=style_blend, temporal=temporal,
                   cache_dir=cache_dir, resume=resume, keep_cache=keep_cache, overwrite=overwrite,
                   max_frames=max_frames, fps=fps, flow_method=flow_method, on_frame=on_frame,
                   callback=callback, on_message=on_message)
