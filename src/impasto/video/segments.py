"""Segment planning: where a long video is cut into pieces that can be painted in parallel.

A video is cut at *scene cuts*, where consecutive frames change abruptly, and every shot longer
than ``segment_frames`` is split into equal pieces of at most that many frames. Everything here
is a pure function of small greyscale thumbnails, so a plan costs one decoding pass and a few
bytes per frame, whatever the video's length.

Frame indices are 0-based here; a :class:`Segment` covers ``start … end − 1``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

#: Default most frames per segment: long enough for the temporal method to settle, short
#: enough that a three-minute clip (about 4,300 frames) gives ~90 pieces of work.
SEGMENT_FRAMES = 48
#: Long side of the greyscale thumbnails that scene cuts are found on, in pixels.
THUMBNAIL_SIZE = 32
#: Consecutive thumbnails are compared at the best of the shifts of up to this many pixels (1 px
#: at 32 px: a pan of 3 % of the frame per frame, 60 px at 1080p, changes little).
SHIFT_SEARCH = 1
#: A change is a scene cut when it exceeds this many times the running median of the shot's changes …
CUT_RATIO = 4.0
#: … and this mean absolute difference of thumbnails (grey levels in [0, 1]) …
CUT_FLOOR = 0.08
#: … where the running median covers this many changes before it (since the shot began).
CUT_WINDOW = 24

#: How a segment meets the next one: ``smooth`` (the same shot goes on: the join is made
#: steady), ``cut`` (a scene cut: nothing to keep steady) or ``end`` (the last segment).
JOINS = ("smooth", "cut", "end")


@dataclass(frozen=True)
class Segment:
    """Frames ``start … end − 1`` (0-based) of a video, and how they meet the next segment."""

    start: int
    end: int
    join: str  # one of JOINS

    @property
    def length(self) -> int:
        return self.end - self.start

    def record(self) -> dict[str, int | str]:
        """What the frame cache's manifest keeps to recognise this segment on a rerun."""
        return {"start": self.start, "end": self.end, "join": self.join}


def thumbnail(frame: np.ndarray, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """A frame ``(H, W, 3)`` float in [0, 1] → ``(h, w)`` float32 grey in [0, 1], long side ``size`` px.

    Area averaging, so noise, grain and the motion of fine texture barely register.
    """
    grey = cv2.cvtColor(np.ascontiguousarray(np.asarray(frame, np.float32)[..., :3]), cv2.COLOR_RGB2GRAY)
    height, width = grey.shape
    scale = size / max(height, width)
    shape = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(grey, shape, interpolation=cv2.INTER_AREA)


def shifted_difference(a: np.ndarray, b: np.ndarray, search: int = SHIFT_SEARCH) -> float:
    """The smallest mean absolute difference between thumbnails ``a`` and ``b`` (``(h, w)`` float, same
    shape) over shifts of ``b`` by up to ``search`` px each way, on the pixels both cover: a pan or
    a shaking camera changes little this way, a new shot a lot."""
    height, width = a.shape
    best = float("inf")
    for dy in range(-search, search + 1):
        for dx in range(-search, search + 1):
            here = a[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)]
            there = b[max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
            best = min(best, float(np.mean(np.abs(here - there))))
    return best


def frame_changes(thumbnails: Iterable[np.ndarray], search: int = SHIFT_SEARCH) -> np.ndarray:
    """``(n − 1,)`` float: how much each thumbnail differs from the one before (:func:`shifted_difference`).

    ``changes[t − 1]`` compares frames ``t − 1`` and ``t``; grey levels in [0, 1].
    """
    changes: list[float] = []
    previous: np.ndarray | None = None
    for current in thumbnails:
        if previous is not None:
            changes.append(shifted_difference(previous, current, search))
        previous = current
    return np.asarray(changes, np.float32)


def scene_cuts(changes: Sequence[float] | np.ndarray, *, ratio: float = CUT_RATIO, floor: float = CUT_FLOOR,
               window: int = CUT_WINDOW) -> list[int]:
    """The frames (0-based) that begin a new shot.

    ``changes`` as from :func:`frame_changes`. Frame ``t`` begins a shot when ``changes[t − 1]``
    exceeds both ``floor`` and ``ratio`` times the median of the up to ``window`` changes before
    it within the current shot (a cut's own change never joins that history, and a new shot's
    history starts empty, so its first changes face only ``floor``).
    """
    cuts: list[int] = []
    history: list[float] = []
    for t, change in enumerate(np.asarray(changes, np.float64), start=1):
        typical = float(np.median(history[-window:])) if history else 0.0
        if change > max(floor, ratio * typical):
            cuts.append(t)
            history = []
        else:
            history.append(float(change))
    return cuts


def split_evenly(start: int, end: int, most: int) -> list[int]:
    """Where to split frames ``start … end − 1`` into the fewest equal pieces of at most ``most``
    frames: the pieces' starts, ``start`` first (piece lengths differ by at most one)."""
    pieces = max(1, math.ceil((end - start) / most))
    return [start + (k * (end - start)) // pieces for k in range(pieces)]


def plan_segments(changes: Sequence[float] | np.ndarray, segment_frames: int = SEGMENT_FRAMES) -> list[Segment]:
    """Segments of a video of ``len(changes) + 1`` frames: cut at scene cuts, and every shot split
    into equal pieces of at most ``segment_frames`` frames (:func:`split_evenly`, so no piece is a
    short remainder). Each segment's ``join`` says how it meets the next."""
    if segment_frames < 1:
        raise ValueError(f"segment_frames must be at least 1, not {segment_frames}")
    total = len(changes) + 1
    cuts = scene_cuts(changes)
    shots = list(zip([0, *cuts], [*cuts, total], strict=True))
    starts = [s for shot_start, shot_end in shots for s in split_evenly(shot_start, shot_end, segment_frames)]
    cut_set = set(cuts)
    segments = []
    for start, end in zip(starts, [*starts[1:], total], strict=True):
        join = "end" if end == total else "cut" if end in cut_set else "smooth"
        segments.append(Segment(start, end, join))
    return segments
