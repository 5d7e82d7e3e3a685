"""One scale's optimization: the step loop, its closure for Adam and L-BFGS, divergence checks,
iterate averaging and progress.

:func:`optimize_scale` is what the engine runs at every scale of a schedule; a new optimizer or
image parametrisation changes this module (and :mod:`.optimizers`), not the engine.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..cancel import CancelToken
from ..errors import DivergedError
from ..features import FeatureExtractor
from ..recipe import Recipe
from .inputs import Finish, to_array
from .objective import Objective
from .optimizers import IterateAverage, make_optimizer
from .progress import Progress, ProgressCallback, RunState
from .schedule import Scale
from .targets import ScaleTargets
from .tiling import Tiles


def optimize_scale(recipe: Recipe, features: FeatureExtractor, image: torch.Tensor, targets: ScaleTargets,
                   scale: Scale, index: int, state: RunState, finish: Finish, tiles: Tiles, *,
                   callback: ProgressCallback | None, cancel: CancelToken) -> torch.Tensor:
    """Optimize ``image`` at one scale; returns the iterate average (or the last iterate).

    Optimizer state starts afresh at every scale: its moments and curvature history belong to
    the previous scale's pixel grid. Where masks keep the photo, the image is the photo blended
    with the optimized pixels by the keep mask, so those pixels never move. With ``tiles`` =
    (tile, margin) each step sweeps a shifted grid of tiles.
    """
    objective = Objective(recipe, features, targets)
    compose = objective.compose
    x = image.detach().clone().requires_grad_(True)
    optimizer = make_optimizer(recipe.optimizer, x, lr=recipe.lr, betas=recipe.adam_betas,
                               history=recipe.lbfgs_history, line_search=recipe.lbfgs_line_search)
    average = IterateAverage(recipe.ema if recipe.optimizer == "adam" else 0.0)
    average.update(x)

    def current() -> np.ndarray:
        return finish(to_array(compose(average.value)))

    record: dict[str, float] = {}
    if tiles is not None:
        objective.prepare_tiles(x, *tiles)
    sweep = 0

    def closure() -> torch.Tensor:
        nonlocal sweep
        optimizer.zero_grad(set_to_none=True)
        if tiles is None:
            total, parts = objective(x)
            if not math.isfinite(parts["total"]):
                raise _NonFinite(parts)
            total.backward()
        else:
            try:
                parts = objective.tiled_step(x, sweep)
            except FloatingPointError as bad:
                raise _NonFinite(bad.args[0]) from None
            sweep += 1
            total = torch.tensor(parts["total"])
        record.clear()
        record.update(parts)
        return total

    for scale_step in range(1, scale.steps + 1):
        try:
            if recipe.optimizer == "adam":
                closure()
                optimizer.step()
            else:
                # torch types a closure as returning a float; LBFGS is documented to take the loss tensor
                optimizer.step(closure)  # type: ignore[arg-type]
        except _NonFinite as bad:
            raise DivergedError(
                f"the loss became {_describe(bad.parts['total'])} at step {state.step + 1}; stopped"
                f"{_kept(state.step)}; try a lower learning rate (--lr {recipe.lr / 10:g})",
                last_good=current(), step=state.step) from None
        with torch.no_grad():
            x.clamp_(0, 1)
            if not torch.isfinite(x).all():
                raise DivergedError(
                    f"the image became NaN at step {state.step + 1}; stopped{_kept(state.step)}; "
                    f"try a lower learning rate (--lr {recipe.lr / 10:g})",
                    last_good=current(), step=state.step)
            average.update(x)
        state.advance(dict(record), scale)
        if callback is not None:
            callback(Progress(step=state.step, total_steps=state.total_steps, scale=index + 1,
                                   scales=len(state.schedule), scale_step=scale_step, scale_steps=scale.steps,
                                   size=scale.size, losses=dict(record), elapsed=state.elapsed(),
                                   eta=state.eta(), _image=current))
        if cancel.cancelled:
            break
    return compose(average.value.detach())


class _NonFinite(Exception):
    def __init__(self, parts: dict[str, float]):
        super().__init__("non-finite loss")
        self.parts = parts


def _kept(step: int) -> str:
    return f" and kept the image of step {step}" if step > 0 else " before any good step"


def _describe(value: float) -> str:
    return "NaN" if math.isnan(value) else "infinite"
