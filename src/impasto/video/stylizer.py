"""Video stylization with temporal consistency (Ruder, Dosovitskiy & Brox, GCPR 2016).

A video (any file the bundled ffmpeg of ``imageio-ffmpeg`` reads) or a folder of frames is
painted frame by frame with one :class:`~impasto.optimize.engine.Stylizer`:

* the first frame runs the recipe as a still image would;
* every later frame starts from the previous *stylized* frame carried onto it by the optical
  flow of the *content* (:mod:`impasto.flow`), and a temporal loss keeps it close to that warped
  image wherever the flow is trustworthy (the forward–backward consistency mask). Such a frame
  needs no coarse-to-fine schedule: it is optimized at the output size only, for
  ``later_steps`` steps (see :func:`later_frame_recipe`).

Finished frames go to a cache folder as PNG files with a JSON manifest of the settings; a rerun
with the same settings continues after the last finished frame, and a run with other settings
starts afresh instead of reusing stale frames. At the end the frames are encoded at the
source's frame rate with the source's audio muxed back, or left as a folder of PNG files.

The engine knows nothing of any of this; everything video lives in :mod:`impasto.video`: this
module, :mod:`impasto.video.io` (probing, decoding and encoding with ffmpeg) and
:mod:`impasto.video.framecache`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .. import colour
from .. import flow as flows
from .._version import __version__
from ..optimize.engine import ProgressCallback, Stylizer
from ..errors import ImageError, UsageError
from .framecache import CACHE_FORMAT, FrameCache, digest, recipe_key, source_identity
from ..images import ImageSource, LoadedImage, fit, load_image, resize
from ..recipe import Recipe
from ..reporting import LineReporter

from .io import FRAME_EXTENSIONS, VIDEO_EXTENSIONS, VideoInfo, encode_video, frame_files, output_kind, probe, read_frames

# ---------------------------------------------------------------------------------------------
# Recipes for the frames
# ---------------------------------------------------------------------------------------------
#: Steps for a frame that starts from the previous result, for each preset (others: 12). At
#: 512 px such a frame costs about what the preset's still image costs (whose steps are mostly
#: at coarse scales); fewer steps leave disoccluded regions less painted, more add little.
LATER_STEPS = {"fast": 5, "balanced": 12, "quality": 40, "reference": 200}


def later_frame_recipe(recipe: Recipe, steps: int | None = None) -> Recipe:
    """The recipe of every frame after the first when frames follow each other.

    Such a frame starts from the previous stylized frame, warped, which already carries the
    style: it is optimized at the output size only (no coarse-to-fine schedule, whose coarse
    scales would blur the carried detail away) for ``steps`` steps (default
    :data:`LATER_STEPS` of the recipe's preset).
    """
    steps = steps if steps is not None else LATER_STEPS.get(recipe.preset, 12)
    return recipe.replace(min_size=None, scale_steps=None, step_decay=1.0, steps=steps)


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
    cache_dir: Path
    flicker: float | None
    warping_errors: list[float]
    seconds_per_frame: float | None
    notes: list[str]
    recipe: Recipe


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
def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


class VideoStylizer:
    """Paints videos frame by frame; :meth:`cancel` stops a running job (from any thread).

    One instance keeps one :class:`~impasto.optimize.engine.Stylizer` (and so the VGG network) for all
    frames and all jobs.
    """

    def __init__(self, recipe: Recipe | None = None, *, stylizer: Stylizer | None = None):
        self.recipe = recipe or Recipe()
        self.stylizer = stylizer or Stylizer(self.recipe)
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Stop after the current optimization step; finished frames stay in the cache."""
        self._cancel.set()
        self.stylizer.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self, source: str | os.PathLike, output: str | os.PathLike,
            styles: ImageSource | LoadedImage | Sequence, *, style_blend: Sequence[float] | None = None,
            temporal: bool = True, later_steps: int | None = None, cache_dir: str | os.PathLike | None = None,
            resume: bool = True, keep_cache: bool | None = None, overwrite: bool = False,
            max_frames: int | None = None, fps: float | Fraction | None = None, flow_method: str = "dis",
            on_frame: Callable[[FrameProgress], None] | None = None, callback: ProgressCallback | None = None,
            on_message: Callable[[str], None] | None = None) -> VideoResult:
        """See :func:`stylize_video`."""
        started = time.perf_counter()
        self._cancel.clear()
        recipe = self.recipe
        notes: list[str] = []

        def note(text: str) -> None:
            notes.append(text)
            if on_message is not None:
                on_message(text)

        if max_frames is not None and not _whole(max_frames):
            raise UsageError(f"max_frames: {max_frames!r} must be a whole number of at least 1")
        if fps is not None and (not isinstance(fps, (int, float, Fraction)) or not fps > 0 or not math.isfinite(fps)):
            raise UsageError(f"fps: {fps!r} must be a positive number")
        if flow_method not in flows.FLOW_METHODS:
            raise UsageError(f"flow method: unknown {flow_method!r}; choose from {', '.join(flows.FLOW_METHODS)}")
        if later_steps is not None and not _whole(later_steps):
            raise UsageError(f"later_steps: {later_steps!r} must be a whole number of at least 1")
        kind = output_kind(output)
        out = Path(output)
        info = probe(source, fps=fps)
        if _same_path(out, info.path):
            raise UsageError(f"output {str(out)!r}: is the input; choose another name")
        if kind == "video":
            if out.is_dir():
                raise UsageError(f"output {str(out)!r}: is a folder; a video file name was expected")
            if out.exists() and not overwrite:
                raise UsageError(f"output {str(out)!r}: already exists (overwrite it with --force)")
            if not out.parent.is_dir():
                raise ImageError(f"output {str(out)!r}: the folder {str(out.parent)!r} does not exist")
        explicit_cache = cache_dir is not None
        if kind == "frames":
            if explicit_cache and not _same_path(Path(cache_dir), out):
                raise UsageError(f"cache {str(cache_dir)!r}: a folder output keeps its own frames; "
                                 "leave the cache folder out")
            if out.is_dir() and not overwrite and FrameCache(out).manifest() is None and any(out.iterdir()):
                raise UsageError(f"output {str(out)!r}: the folder is not empty and holds no impasto video; "
                                 "choose an empty folder or use --force")
        cache = FrameCache(out if kind == "frames" else (cache_dir if explicit_cache else f"{out}.frames"))
        if keep_cache is None:
            keep_cache = explicit_cache or kind == "frames"

        # The styles, loaded once; the first frame fixes the output size.
        if isinstance(styles, (str, bytes, os.PathLike)) or not isinstance(styles, Sequence):
            styles = [styles]
        if not styles:
            raise UsageError("at least one style image is needed")
        style_images = [s if isinstance(s, LoadedImage) else load_image(
            s, what=f"style image {i + 1}" if len(styles) > 1 else "style image", max_pixels=recipe.max_pixels)
            for i, s in enumerate(styles)]
        fitting = dict(max_size=recipe.max_size, size=recipe.size, square=recipe.square, aspect=recipe.aspect)

        frames = read_frames(info)
        total = info.frames if max_frames is None else (min(info.frames, max_frames) if info.frames else max_frames)
        with closing(frames):
            try:
                first = next(frames)
            except StopIteration:
                raise ImageError(f"video {str(info.path)!r}: has no frames") from None
            fitted = fit(LoadedImage(rgb=first), **fitting).rgb
            size = (fitted.shape[1], fitted.shape[0])
            if min(size) < 32:
                raise ImageError(f"video {str(info.path)!r}: frames of {size[0]}x{size[1]} are too small; "
                                 "each side needs at least 32 px")

            first_recipe = _fixed_size(recipe, size)
            next_recipe = later_frame_recipe(first_recipe, later_steps) if temporal else first_recipe
            settings = {
                "impasto": __version__, "recipe": recipe_key(first_recipe), "later": recipe_key(next_recipe),
                "temporal": bool(temporal), "flow": flow_method, "size": list(size),
                "styles": [[digest(s.rgb), digest(s.alpha)] for s in style_images],
                "style_blend": None if style_blend is None else [float(w) for w in style_blend],
                "source": source_identity(info),
            }
            key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
            manifest = cache.manifest()
            done, seed = 0, None
            if resume and manifest is not None and manifest.get("key") == key:
                done, seed = cache.completed(), manifest.get("seed")
            else:
                stale = len(cache.frame_files())
                if stale:
                    why = ("not resuming" if manifest is not None and manifest.get("key") == key
                           else "they were made with other settings" if manifest is not None
                           else "their settings are unknown")
                    note(f"removing {stale} frame(s) from {cache.folder}: {why}")
                cache.clear()
            if recipe.seed is not None:
                seed = recipe.seed
            elif not isinstance(seed, int):
                seed = secrets.randbelow(2**31)
            first_recipe, next_recipe = first_recipe.replace(seed=seed), next_recipe.replace(seed=seed)
            if total is not None:
                done = min(done, total)
            if done:
                note(f"resuming: {done} finished frame(s) found in {cache.folder}")
            cache.create()
            manifest = {"format": CACHE_FORMAT, "key": key, "seed": seed, "settings": settings,
                        "fps": str(info.fps), "frames_done": done, "source": str(info.path),
                        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            cache.write_manifest(manifest)

            loop = _FrameLoop(self, cache, style_images, style_blend, first_recipe, next_recipe, temporal,
                              flow_method, total, done, started, on_frame, callback)
            index = 0
            frame = first
            while True:
                index += 1
                content = fitted if index == 1 else fit(LoadedImage(rgb=frame), **fitting).rgb
                if content.shape[:2] != (size[1], size[0]):
                    content = resize(content, size)
                if not loop.frame(index, content):
                    break
                if index > done:
                    manifest.update(frames_done=index, updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
                    cache.write_manifest(manifest)
                if max_frames is not None and index >= max_frames:
                    break
                if self.cancelled:
                    break
                try:
                    frame = next(frames)
                except StopIteration:
                    break

        count = index if not loop.cancelled else index - 1
        written: Path | None = None
        audio = False
        if not loop.cancelled and not self.cancelled:
            paths = [cache.frame_path(i) for i in range(1, count + 1)]
            if kind == "video":
                audio = encode_video(paths, out, info.fps, audio_from=info.path if info.audio else None)
                if info.audio and not audio:
                    note("the source's audio could not be kept")
            written = out
            manifest.update(complete=True, frames_done=count)
            cache.write_manifest(manifest)
            if not keep_cache:
                cache.remove()
        errors = loop.warping_errors
        computed = loop.computed
        return VideoResult(
            output=written, frames=count, computed=computed, reused=count - computed if count else 0,
            fps=info.fps, size=size, audio=audio, elapsed=time.perf_counter() - started,
            cancelled=written is None, cache_dir=cache.folder,
            flicker=float(np.mean(errors)) if errors else None, warping_errors=errors,
            seconds_per_frame=(sum(loop.durations) / len(loop.durations)) if loop.durations else None,
            notes=notes, recipe=first_recipe)


class _FrameLoop:
    """The per-frame work of one job: stylize (or take from the cache), measure, report."""

    def __init__(self, owner: VideoStylizer, cache: FrameCache, styles: list[LoadedImage], blend,
                 first_recipe: Recipe, next_recipe: Recipe, temporal: bool, flow_method: str,
                 total: int | None, done: int, started: float, on_frame, callback):
        self.owner, self.cache, self.styles, self.blend = owner, cache, styles, blend
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
        self.cancelled = False

    def frame(self, index: int, content: np.ndarray) -> bool:
        """Handle frame ``index`` (1-based) of ``content`` (H, W, 3); False if cancelled."""
        began = time.perf_counter()
        grey = flows.to_grey(content)
        guide = None
        if self.previous_grey is not None:
            guide = flows.temporal_guide(grey, self.previous_grey, self.flow_method)
        cached = index <= self.done
        steps, losses = 0, {}
        if cached:
            styled = self.cache.load(index)
        else:
            if self.owner.cancelled:
                self.cancelled = True
                return False
            result = self._stylize(index, content, guide)
            if result.cancelled or self.owner.cancelled:
                self.cancelled = True
                return False
            styled = _quantize(result.image)
            self.cache.save(index, styled)
            steps, losses = result.steps, result.losses
            self.computed += 1
        error = trusted = None
        if guide is not None:
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

    def _stylize(self, index: int, content: np.ndarray, guide):
        stylizer = self.owner.stylizer
        photo = LoadedImage(rgb=content, name=f"frame {index}")
        if index == 1 or not self.temporal or self.previous_styled is None:
            stylizer.recipe = self.first_recipe
            return stylizer.run(photo, self.styles, callback=self.callback, style_blend=self.blend)
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
        stylizer.recipe = recipe
        temporal = (warped, mask) if recipe.temporal_weight > 0 else None
        return stylizer.run(photo, self.styles, callback=self.callback, style_blend=self.blend,
                            init_image=start, temporal=temporal)


def stylize_video(source: str | os.PathLike, output: str | os.PathLike,
                  styles: ImageSource | LoadedImage | Sequence, recipe: Recipe | None = None, *,
                  style_blend: Sequence[float] | None = None, temporal: bool = True,
                  later_steps: int | None = None, cache_dir: str | os.PathLike | None = None,
                  resume: bool = True, keep_cache: bool | None = None, overwrite: bool = False,
                  max_frames: int | None = None, fps: float | Fraction | None = None,
                  flow_method: str = "dis", on_frame: Callable[[FrameProgress], None] | None = None,
                  callback: ProgressCallback | None = None, on_message: Callable[[str], None] | None = None,
                  stylizer: VideoStylizer | None = None) -> VideoResult:
    """Paint a video in the style of ``styles``, frame after frame, consistently over time.

    Args:
        source: a video file (anything the bundled ffmpeg reads) or a folder of frames (PNG,
            JPEG, WebP, TIFF, BMP; sorted naturally).
        output: a video file (.mp4 .m4v .mov .mkv .webm .avi .gif), written at the source's frame
            rate with its audio, or a folder, which receives ``frame_000001.png …``.
        styles: one style image or several (paths, arrays, PIL images, LoadedImage).
        recipe: the settings (default ``Recipe()``). The first frame runs it as a still image
            would; with ``temporal`` the later frames run :func:`later_frame_recipe`.
        style_blend: weights of several styles.
        temporal: True: each frame starts from the previous result warped by the optical flow,
            with ``recipe.temporal_weight`` times the temporal loss on pixels whose flow passes
            the forward–backward check. False: every frame is painted on its own.
        later_steps: steps of frames after the first (default by preset, see ``LATER_STEPS``).
        cache_dir: where finished frames are kept for a video output (default
            ``<output>.frames``). A folder output is its own cache (giving another folder is a
            :class:`~impasto.errors.UsageError`).
        resume: reuse the finished frames of an earlier run with the same settings.
        keep_cache: keep the cache after the video is written (default: only when ``cache_dir``
            was given).
        overwrite: replace an existing output video.
        max_frames: paint only the first N frames.
        fps: frame rate of a folder source (default 25); a video file keeps its own rate.
        flow_method: ``dis`` or ``farneback`` (:func:`impasto.flow.optical_flow`).
        on_frame: called with a :class:`FrameProgress` after every frame (e.g.
            :class:`FrameReporter`); an exception raised there stops the job, and the frames
            finished so far stay cached.
        callback: the engine's per-step progress callback.
        on_message: called with informational lines (resuming, settings changed).
        stylizer: a :class:`VideoStylizer` to run with (to cancel from another thread, or to
            keep its network between jobs); its recipe is replaced by ``recipe`` if given.

    Returns a :class:`VideoResult`. Raises :class:`~impasto.errors.UsageError` for invalid
    arguments or an existing output, :class:`~impasto.errors.ImageError` when the source cannot
    be read or the output or cache cannot be written, and whatever the engine raises
    (:class:`~impasto.errors.DivergedError`, :class:`~impasto.errors.WeightsError`).
    """
    job = stylizer or VideoStylizer(recipe)
    if recipe is not None:
        job.recipe = recipe
    return job.run(source, output, styles, style_blend=style_blend, temporal=temporal, later_steps=later_steps,
                   cache_dir=cache_dir, resume=resume, keep_cache=keep_cache, overwrite=overwrite,
                   max_frames=max_frames, fps=fps, flow_method=flow_method, on_frame=on_frame,
                   callback=callback, on_message=on_message)
