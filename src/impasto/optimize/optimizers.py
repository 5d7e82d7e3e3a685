"""Optimizers for the image and iterate averaging.

The image is the only parameter: a ``(1, 3, H, W)`` tensor of RGB values kept in [0, 1].
"""

from __future__ import annotations

import torch


def make_optimizer(kind: str, image: torch.Tensor, *, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                   history: int = 50, line_search: bool = False) -> torch.optim.Optimizer:
    """Adam, or L-BFGS doing one iteration per ``step(closure)`` call.

    L-BFGS keeps ``history`` past gradients; with ``line_search`` each iteration runs a strong
    Wolfe line search (steadier, but several network evaluations per step).
    """
    if kind == "adam":
        return torch.optim.Adam([image], lr=lr, betas=betas)
    if kind == "lbfgs":
        return torch.optim.LBFGS([image], lr=lr, max_iter=1, history_size=history,
                                 line_search_fn="strong_wolfe" if line_search else None)
    raise ValueError(f"unknown optimizer {kind!r}")


class IterateAverage:
    """An exponential moving average of the iterates.

    Adam at a fixed learning rate keeps jittering around the optimum; the average of its recent
    iterates is smoother and closer to it. The effective decay after ``t`` updates is
    ``min(decay, (1 + t) / (10 + t))``, so that the average follows quickly at first instead of
    being held back by the starting image. ``decay`` = 0 disables averaging.
    """

    def __init__(self, decay: float):
        self.decay = decay
        self.average: torch.Tensor | None = None
        self.count = 0

    def update(self, image: torch.Tensor) -> None:
        """Fold in the latest iterate ``(1, 3, H, W)``."""
        decay = min(self.decay, (1 + self.count) / (10 + self.count))
        self.count += 1
        if self.average is None or decay == 0:
            self.average = image.detach().clone()
        else:
            self.average.lerp_(image.detach(), 1 - decay)

    @property
    def value(self) -> torch.Tensor:
        if self.average is None:
            raise ValueError("no iterate yet")
        return self.average
