"""What a run reports: per-step :class:`Progress`, the final :class:`Result`, and the step
counting and ETA behind them (:class:`RunState`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..recipe import Recipe
from .schedule import Scale


@dataclass
class Progress:
    """What a progress callback receives after every optimization step.

    ``elapsed`` and ``eta`` are seconds; ``eta`` is ``None`` until two steps have been timed.
    """

    step: int
    total_steps: int
    scale: int
    scales: int
    scale_step: int
    scale_steps: int
    size: tuple[int, int]
    losses: dict[str, float]
    elapsed: float
    eta: float | None
    _image: Callable[[], np.ndarray] = field(repr=False, default=lambda: np.zeros((1, 1, 3)))

    def image(self) -> np.ndarray:
        """The current image, (H, W, 3) float32 in [0, 1] (computed on request only)."""
        return self._image()


ProgressCallback = Callable[[Progress], None]


@dataclass
class Result:
    """The outcome of a run: ``image`` (H, W, 3) float32 in [0, 1], ``alpha`` (H, W) or None.

    ``recipe`` is the recipe that ran, with the seed it drew; ``elapsed`` is in seconds.
    """

    image: np.ndarray
    alpha: np.ndarray | None
    recipe: Recipe
    losses: dict[str, float]
    history: list[dict[str, float]]
    steps: int
    elapsed: float
    cancelled: bool
    metadata: dict[str, Any]

    def to_pil(self):
        """The result as a ``PIL.Image`` (RGB, or RGBA when the content's alpha was kept)."""
        from PIL import Image

        planes = self.image if self.alpha is None else np.concatenate([self.image, self.alpha[..., None]], axis=2)
        return Image.fromarray((np.clip(planes, 0, 1) * 255 + 0.5).astype(np.uint8))


class RunState:
    """Step counting, loss history and a pixel-weighted ETA across the scales of one run."""

    def __init__(self, schedule: list[Scale], started: float):
        self.schedule = schedule
        self.started = started
        self.total_steps = sum(s.steps for s in schedule)
        self.total_work = sum(s.steps * s.size[0] * s.size[1] for s in schedule)
        self.step = 0
        self.work = 0
        self.first_work = 0
        self.history: list[dict[str, float]] = []
        self.last_losses: dict[str, float] = {}
        self.first_step_at: float | None = None

    def advance(self, parts: dict[str, float], scale: Scale) -> None:
        now = time.perf_counter()
        if self.first_step_at is None:
            self.first_step_at = now
            self.first_work = scale.size[0] * scale.size[1]
        self.step += 1
        self.work += scale.size[0] * scale.size[1]
        self.last_losses = parts
        self.history.append({"step": self.step, **parts})

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def eta(self) -> float | None:
        """Seconds left, from the pace since the first step (which includes warm-up) was done."""
        if self.first_step_at is None or self.work <= self.first_work:
            return None
        rate = (time.perf_counter() - self.first_step_at) / (self.work - self.first_work)
        return rate * (self.total_work - self.work)
