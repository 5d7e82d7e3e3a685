"""Painting a video in segments, in parallel, through an executor (this process, worker
processes or a Ray cluster), and joining them without a visible seam.

The work comes in two waves of tasks, each a module-level function of ``(stylizer, task)`` over
plain picklable values, so the same code runs in this process and on any worker:

1. :func:`paint_key_frame`: the first frame of every segment (its *key frame*), painted as a still
   and settled;
2. :func:`paint_segment`: each segment painted with the temporal method from its own key frame
   (:class:`~.temporal.TemporalChain`, the loop a whole video runs), its last frames pulled towards
   the next segment's key frame carried back by the flow (:mod:`.joins`), unless a scene cut
   separates them.

The driver (:class:`SegmentedRun`) decodes the source once per wave and builds each task only
when the executor asks for it, so it holds one segment's frames at a time plus those in flight,
never the whole video; painted frames go into the frame cache as they arrive, in any order, and
the manifest lists the finished key frames and segments, so a rerun paints only what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..cancel import CancelToken
from ..optimize.engine import Stylizer
from .framecache import FrameCache, finished_keys, finished_segments
from .joins import EDGE_PX, JOIN_RAMP_FRAMES, PULL_GAIN, SETTLE_PASSES, Pull, join_ramp, join_ratio, ramp_pulls
from .progress import FrameCallback, FrameProgress, MessageCallback, Painting
from .segments import CUT_FLOOR, CUT_RATIO, CUT_WINDOW, SHIFT_SEARCH, THUMBNAIL_SIZE, Segment
from .temporal import FrameSettings, TemporalChain, from_bytes_image, to_bytes_image


class SegmentExecutor(Protocol):
    """What runs the tasks (e.g. :class:`impasto.scale.executor.LocalExecutor`, or the Ray executor):
    ``map(fn, tasks)`` calls ``fn(stylizer, task)`` for each task, on a worker that keeps its
    stylizer, consumes ``tasks`` lazily, and yields ``(index, result)`` as tasks finish, in any
    order, with the exception instead of the result where ``fn`` raised."""

    def map(self, fn: Callable[[Stylizer, Any], Any], tasks: Iterable[Any]) -> Iterator[tuple[int, Any]]: ...


def segmenting(segment_frames: int) -> dict[str, Any]:
    """What a segmented run's pixels depend on besides the frames' settings: the frame cache's key
    includes it, so that frames planned or joined otherwise are never reused."""
    return {"frames": segment_frames, "cuts": [THUMBNAIL_SIZE, SHIFT_SEARCH, CUT_RATIO, CUT_FLOOR, CUT_WINDOW],
            "joins": [JOIN_RAMP_FRAMES, PULL_GAIN, SETTLE_PASSES, EDGE_PX]}


# ---------------------------------------------------------------------------------------------
# Tasks: what travels to a worker and back (uint8 frames, plain values)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyFrameTask:
    """Paint frame ``index`` (0-based), ``content`` uint8 ``(H, W, 3)``, as a still."""

    index: int
    content: np.ndarray
    settings: FrameSettings


@dataclass(frozen=True)
class SegmentTask:
    """Paint a segment: ``contents`` are its frames, uint8 ``(H, W, 3)``; ``key`` its first frame's
    painting; ``next_key`` the next segment's first frame and its painting (content, painting),
    given only where the join is smooth (no scene cut between them)."""

    segment: Segment
    contents: tuple[np.ndarray, ...]
    key: np.ndarray
    next_key: tuple[np.ndarray, np.ndarray] | None
    settings: FrameSettings


@dataclass(frozen=True)
class PaintedFrames:
    """Frames painted by a task, starting at frame ``start`` (0-based): uint8 ``(H, W, 3)`` each,
    with per frame its warping error against the frame before (None where unknown), trusted
    share of pixels, seconds, steps and losses; ``join_error``: the warping error between a
    segment's last frame and the next segment's key frame (None without a smooth join)."""

    start: int
    frames: tuple[np.ndarray, ...]
    warping_errors: tuple[float | None, ...]
    trusted: tuple[float | None, ...]
    seconds: tuple[float, ...]
    steps: tuple[int, ...]
    losses: tuple[dict[str, float], ...]
    join_error: float | None = None


def paint_key_frame(stylizer: Stylizer, task: KeyFrameTask) -> PaintedFrames:
    """A segment's first frame, painted as a still and, with ``temporal``, settled by repainting it
    :data:`~.joins.SETTLE_PASSES` times as if it followed itself (as a frame deep in a chain looks)."""
    chain = TemporalChain(stylizer, task.settings)
    content = from_bytes_image(task.content)
    passes = [chain.paint(task.index + 1, content)
              for _ in range(1 + (SETTLE_PASSES if task.settings.temporal else 0))]
    return PaintedFrames(start=task.index, frames=(to_bytes_image(passes[-1].styled),), warping_errors=(None,),
                         trusted=(None,), seconds=(sum(p.seconds for p in passes),),
                         steps=(sum(p.steps for p in passes),), losses=(passes[-1].losses,))


def paint_segment(stylizer: Stylizer, task: SegmentTask) -> PaintedFrames:
    """A segment's frames after its key frame, painted with the temporal method from that key frame;
    with ``next_key``, the last frames are pulled towards it (:func:`.joins.ramp_pulls`)."""
    segment, settings = task.segment, task.settings
    contents = [from_bytes_image(c) for c in task.contents]
    chain = TemporalChain(stylizer, settings)
    chain.follow(contents[0], from_bytes_image(task.key))
    pulls: list[Pull | None] = [None] * segment.length
    following = None if task.next_key is None else [from_bytes_image(a) for a in task.next_key]
    if following is not None and settings.temporal:
        next_content, next_styled = following
        pulls = ramp_pulls(next_styled, next_content, contents, join_ramp(segment.length), settings.flow_method)
    painted = [chain.paint(segment.start + offset + 1, contents[offset], pull=pulls[offset])
               for offset in range(1, segment.length)]
    join_error = None if following is None else chain.follow(*following).warping_error
    return PaintedFrames(start=segment.start + 1, frames=tuple(to_bytes_image(p.styled) for p in painted),
                         warping_errors=tuple(p.warping_error for p in painted),
                         trusted=tuple(p.trusted for p in painted), seconds=tuple(p.seconds for p in painted),
                         steps=tuple(p.steps for p in painted), losses=tuple(p.losses for p in painted),
                         join_error=join_error)


# ---------------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------------
class SegmentedRun:
    """Paints the frames of ``plan`` that the cache lacks through ``executor``, key frames first.

    ``frames`` opens a new decoding pass over the source's fitted frames ``(H, W, 3)`` (at most the
    plan's); ``manifest`` is that of the cached frames this run continues (None: afresh).
    """

    def __init__(self, executor: SegmentExecutor, settings: FrameSettings, plan: list[Segment],
                 frames: Callable[[], Iterator[np.ndarray]], cache: FrameCache, manifest: dict[str, Any] | None, *,
                 token: CancelToken, on_frame: FrameCallback | None, note: MessageCallback, started: float):
        self.executor, self.settings, self.plan, self.frames, self.cache = executor, settings, plan, frames, cache
        self.token, self.on_frame, self.note, self.started = token, on_frame, note, started
        self.total = plan[-1].end
        starts = {s.start for s in plan}
        self.keys_done = finished_keys(cache, manifest) & starts
        reusable = finished_segments(cache, manifest)
        self.by_start = {s.start: s for s in plan}
        self.segments_done: dict[int, dict[str, Any]] = {  # by start, with their warping errors
            s.start: reusable[s.start, s.end, s.join] for s in plan
            if (s.start, s.end, s.join) in reusable and s.start in self.keys_done}
        self.painting = Painting(segments=len(plan))
        self.finished = 0  # frames in the cache, reused or painted
        self.painted_since: float | None = None

    def run(self) -> Painting:
        """Key frames, then segments; returns what the frames' delivery needs (``cancelled`` if stopped)."""
        self._record()
        self._report_reused()
        keys = [s.start for s in self.plan if s.start not in self.keys_done]
        segments = [s for s in self.plan if s.start not in self.segments_done]
        cut = sum(s.join == "cut" for s in self.plan)
        self.note(f"{self.total} frames in {len(self.plan)} segment(s) ({cut} at scene cuts): painting "
                  f"{len(keys)} key frame(s), then {len(segments)} segment(s)")
        if keys:  # (an executor may start its workers for a wave, so none is started without tasks)
            self._wave(paint_key_frame, self._key_tasks(keys), self._key_done)
        if segments and not self.painting.cancelled:
            self._wave(paint_segment, self._segment_tasks(segments), self._segment_done)
        return self._outcome()

    # -- the waves -------------------------------------------------------------------------------
    def _wave(self, fn: Callable[[Stylizer, Any], PaintedFrames], tasks: Iterator[Any],
              done: Callable[[PaintedFrames], None]) -> None:
        """Run ``tasks`` through the executor, handing each result to ``done``, until done or cancelled."""
        self.painted_since = self.painted_since or time.perf_counter()
        results = self.executor.map(fn, tasks)
        try:
            for _, result in results:
                if isinstance(result, BaseException):
                    raise result
                done(result)
                if self.token.cancelled:
                    break
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()
        self.painting.cancelled = self.token.cancelled

    def _key_tasks(self, keys: list[int]) -> Iterator[KeyFrameTask]:
        wanted = set(keys)
        for index, content in enumerate(self.frames()):
            if not wanted or self.token.cancelled:
                return
            if index in wanted:
                wanted.discard(index)
                yield KeyFrameTask(index, to_bytes_image(content), self.settings)

    def _segment_tasks(self, segments: list[Segment]) -> Iterator[SegmentTask]:
        """One task per segment, built once its frames and the next key frame's content are decoded."""
        pending = iter(segments)
        segment = next(pending, None)
        contents: list[np.ndarray] = []
        for index, content in enumerate(self.frames()):
            if segment is None or self.token.cancelled:
                return
            if segment.start <= index < segment.end:
                contents.append(to_bytes_image(content))
            if index == segment.end - 1 and segment.join != "smooth":
                yield self._segment_task(segment, contents, None)
            elif index == segment.end and segment.join == "smooth":
                yield self._segment_task(segment, contents, to_bytes_image(content))
            else:
                continue
            segment, contents = next(pending, None), []
            if segment is not None and segment.start <= index < segment.end:
                contents.append(to_bytes_image(content))  # the frame that ended the last one begins this one

    def _segment_task(self, segment: Segment, contents: list[np.ndarray], next_content: np.ndarray | None
                      ) -> SegmentTask:
        next_key = None
        if next_content is not None:
            next_key = next_content, to_bytes_image(self.cache.load(segment.end + 1))
        return SegmentTask(segment, tuple(contents), to_bytes_image(self.cache.load(segment.start + 1)), next_key,
                           self.settings)

    # -- results ---------------------------------------------------------------------------------
    def _key_done(self, result: PaintedFrames) -> None:
        self._save(result)
        self.keys_done.add(result.start)
        self._record()

    def _segment_done(self, result: PaintedFrames) -> None:
        self._save(result)
        segment = self.by_start[result.start - 1]
        self.segments_done[segment.start] = {**segment.record(), "warping_errors": list(result.warping_errors),
                                             "join_error": result.join_error}
        self.painting.durations.extend(result.seconds)
        self._record()

    def _save(self, result: PaintedFrames) -> None:
        """Cache each frame at once (as it would be read back) and report it."""
        for offset, pixels in enumerate(result.frames):
            index = result.start + offset + 1
            self.cache.save(index, from_bytes_image(pixels))
            self.painting.computed += 1
            self._report(index, cached=False, seconds=result.seconds[offset], steps=result.steps[offset],
                         losses=result.losses[offset], error=result.warping_errors[offset],
                         trusted=result.trusted[offset])

    def _record(self) -> None:
        """The manifest's list of finished key frames and segments (a rerun reuses exactly these)."""
        self.cache.record(keys=sorted(self.keys_done),
                          segments=[self.segments_done[s.start] for s in self.plan if s.start in self.segments_done])

    def _report_reused(self) -> None:
        for segment in self.plan:
            reused = [segment.start] if segment.start in self.keys_done else []
            if segment.start in self.segments_done:
                reused = list(range(segment.start, segment.end))
            for index in reused:
                self._report(index + 1, cached=True, seconds=0.0, steps=0, losses={}, error=None, trusted=None)
        if self.finished:
            self.note(f"resuming: {len(self.keys_done)} key frame(s) and {len(self.segments_done)} segment(s) "
                      f"found in {self.cache.folder}")

    def _report(self, index: int, *, cached: bool, seconds: float, steps: int, losses: dict[str, float],
                error: float | None, trusted: float | None) -> None:
        self.finished += 1
        self.painting.frames = self.finished
        if self.on_frame is None:
            return
        now = time.perf_counter()
        eta = None
        computed = self.painting.computed
        if self.finished == self.total:
            eta = 0.0
        elif computed and self.painted_since is not None:
            eta = (now - self.painted_since) / computed * (self.total - self.finished)
        self.on_frame(FrameProgress(index=index, done=self.finished, total=self.total, cached=cached,
                                    seconds=seconds, elapsed=now - self.started, eta=eta, steps=steps,
                                    losses=losses, warping_error=error, trusted=trusted,
                                    path=self.cache.frame_path(index)))

    def _outcome(self) -> Painting:
        """Warping errors in the frames' order (within segments, then the join), from every finished segment."""
        painting = self.painting
        within: list[float] = []
        for segment in self.plan:
            record = self.segments_done.get(segment.start)
            if record is None:
                continue
            errors = [e for e in record["warping_errors"] if e is not None]
            within.extend(errors)
            painting.warping_errors.extend(errors)
            if segment.join == "smooth" and record.get("join_error") is not None:
                painting.warping_errors.append(record["join_error"])
                painting.join_errors.append(record["join_error"])
        painting.join_ratio = join_ratio(within, painting.join_errors)
        return painting
