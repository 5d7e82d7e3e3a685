"""What a video run tells its caller: progress after every frame, what its frame loop leaves for
delivery, and the interruption that says where the finished frames are."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FrameProgress:
    """What ``on_frame`` receives after every frame.

    ``index`` is the frame's 1-based place in the video; ``done`` how many frames are finished
    (equal to ``index`` when frames are painted in order; segments finish in any order);
    ``total`` the number of frames to paint (None if unknown); ``cached`` is True for a frame
    taken from the cache of an earlier run; ``seconds`` is the time this frame took; ``eta`` the
    estimated seconds left (None until it can be estimated); ``warping_error`` the frame's flicker
    against the previous frame (see :func:`impasto.flow.warping_error`, None for the first frame
    and where it is not known); ``trusted`` the fraction of pixels whose flow passed the
    consistency check.
    """

    index: int
    done: int
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


FrameCallback = Callable[[FrameProgress], None]
MessageCallback = Callable[[str], None]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a video: the ``frames`` finished so far stay in ``cache_dir``, and a rerun continues."""

    def __init__(self, cache_dir: Path, frames: int):
        kept = f"{frames} finished frame(s) are kept in {cache_dir}" if frames else "no frame was finished yet"
        super().__init__(f"{kept}; run the same command again to continue")
        self.cache_dir, self.frames = cache_dir, frames


@dataclass
class Painting:
    """What a frame loop (a whole video's or the segments') leaves for delivery.

    ``frames``: how many frames are finished in the cache (a whole video's are ``1 … frames``;
    all of them once a run ends uncancelled); ``computed``: how many of them this run painted;
    ``warping_errors`` between consecutive frames in order (pairs across a scene cut left out);
    ``join_errors`` those at the joins of segments (also in ``warping_errors``);
    ``durations`` seconds per painted frame, frames with a frame before them only (a whole
    video's first frame and segments' key frames are stills); ``partial``: ``max_frames`` stopped
    it before the source's end; ``segments``: how many (None for a whole video); ``join_ratio``:
    the worst join's warping error against the mean within segments (:func:`.joins.join_ratio`).
    """

    frames: int = 0
    computed: int = 0
    warping_errors: list[float] = field(default_factory=list)
    join_errors: list[float] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    cancelled: bool = False
    partial: bool = False
    segments: int | None = None
    join_ratio: float | None = None
