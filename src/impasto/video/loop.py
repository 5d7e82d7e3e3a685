"""The frame loop of a whole video: frames in order through one :class:`~.temporal.TemporalChain`,
each taken from the cache when an earlier run finished it, else painted and cached at once;
cancellation between frames, progress with the ETA after every frame."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from ..cancel import CancelToken
from .framecache import FrameCache
from .progress import FrameCallback, FrameProgress, Painting
from .temporal import TemporalChain


class WholeVideoLoop:
    """Frames ``1, 2, …`` of one job: take from the cache (the first ``done``) or paint, measure, report."""

    def __init__(self, chain: TemporalChain, cache: FrameCache, token: CancelToken, *, total: int | None, done: int,
                 started: float, on_frame: FrameCallback | None):
        self.chain, self.cache, self.token = chain, cache, token
        self.total, self.done, self.started, self.on_frame = total, done, started, on_frame
        self.painting = Painting()
        self.first_seconds: float | None = None  # a still's time: the ETA's guess until later frames are timed

    def paint(self, contents: Iterable[np.ndarray], max_frames: int | None) -> Painting:
        """Handle the fitted frames ``(H, W, 3)`` in order until the end, a cancel or ``max_frames``
        (then ``partial``: stopped before the source's end)."""
        for index, content in enumerate(contents, start=1):
            if max_frames is not None and index > max_frames:
                self.painting.partial = True
                break
            if not self.frame(index, content):
                self.painting.cancelled = True
                break
        return self.painting

    def frame(self, index: int, content: np.ndarray) -> bool:
        """Handle frame ``index`` (1-based) of ``content`` ``(H, W, 3)``; False if cancelled."""
        cached = index <= self.done
        if cached:
            painted = self.chain.follow(content, self.cache.load(index))
        else:
            if self.token.cancelled:
                return False
            painted = self.chain.paint(index, content)
            if painted.cancelled:
                return False
            self.cache.save(index, painted.styled)
            self.cache.record(frames_done=index)
            self.painting.computed += 1
            if self.first_seconds is None and (index == 1 or not self.chain.settings.temporal):
                self.first_seconds = painted.seconds
            if index > 1:
                self.painting.durations.append(painted.seconds)
        self.painting.frames = index
        if painted.warping_error is not None:
            self.painting.warping_errors.append(painted.warping_error)
        if self.on_frame is not None:
            self.on_frame(FrameProgress(index=index, done=index, total=self.total, cached=cached,
                                        seconds=painted.seconds, elapsed=time.perf_counter() - self.started,
                                        eta=self._eta(index), steps=painted.steps, losses=painted.losses,
                                        warping_error=painted.warping_error, trusted=painted.trusted,
                                        path=self.cache.frame_path(index)))
        return True

    def _eta(self, index: int) -> float | None:
        if self.total is None:
            return None
        left = max(0, self.total - index)
        if left == 0:
            return 0.0
        durations = self.painting.durations
        per_frame = sum(durations) / len(durations) if durations else self.first_seconds
        return None if per_frame is None else left * per_frame
