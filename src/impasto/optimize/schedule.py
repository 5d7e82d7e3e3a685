"""The optimization schedule: which image sizes are optimized, for how many steps each.

Coarse-to-fine: a run starts at ``min_size`` (long side) and grows by ``scale_factor`` until the
output size; each scale's result, upsampled, starts the next. Large brush strokes and layout
settle cheaply at small sizes; the final scale only refines.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError


@dataclass(frozen=True)
class Scale:
    """One stage of the schedule: optimize at ``size`` = (width, height) for ``steps`` steps."""

    size: tuple[int, int]
    steps: int


def scale_sizes(final_size: tuple[int, int], min_size: int | None, factor: float) -> list[tuple[int, int]]:
    """Sizes (width, height) from about ``min_size`` on the long side up to ``final_size``.

    ``min_size=None`` (or one at least the final long side) means a single scale. Intermediate
    long sides are ``final / factor**k``; the aspect ratio of the final size is kept, and
    intermediate sides are rounded to multiples of 8, which convolution kernels handle fastest.
    An output less than ``factor`` but more than ``√factor`` times ``min_size`` (450 px with a
    factor of 2 from 256 px) starts at ``min_size``, so that it too gets a coarse scale.
    """
    width, height = final_size
    long_side = max(width, height)
    if min_size is None or min_size >= long_side:
        return [final_size]
    longs: list[float] = [long_side]
    while longs[-1] / factor >= min_size * 0.999:
        longs.append(longs[-1] / factor)
    if len(longs) == 1 and long_side > min_size * factor**0.5:
        longs.append(min_size)
    sizes = []
    for target in reversed(longs[1:]):
        ratio = target / long_side
        sizes.append((_round_to(width * ratio, 8), _round_to(height * ratio, 8)))
    sizes.append(final_size)
    return sizes


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def plan(final_size: tuple[int, int], *, steps: int, min_size: int | None, factor: float,
         step_decay: float = 1.0, scale_steps: tuple[int, ...] | None = None,
         equal_cost_above: int | None = None) -> list[Scale]:
    """The whole schedule.

    The coarsest scale runs ``steps`` steps and each finer one ``step_decay`` times as many as the
    one before (rounded): fine scales cost more per step and need fewer. With
    ``equal_cost_above`` (pixels), a scale whose long side is larger runs that count times
    ``(equal_cost_above / long side)²`` (at least 1): about the cost of a scale of that size, so
    a 1024 px output does not pay four times the 512 px scale's steps. A scale with 0 steps is
    only upsampled (with the photo's detail added back, see ``engine.upsample``), which makes
    previews cheap. An explicit ``scale_steps`` (one count per scale, coarse to fine) overrides
    all of these.
    """
    sizes = scale_sizes(final_size, min_size, factor)
    if scale_steps is None:
        counts = [steps] + [round(steps * step_decay**k) for k in range(1, len(sizes))]
        if equal_cost_above is not None:
            counts = [n if max(size) <= equal_cost_above or n == 0
                      else max(1, round(n * (equal_cost_above / max(size)) ** 2)) for size, n in zip(sizes, counts,
                                                                                                  strict=True)]
    elif len(scale_steps) == len(sizes):
        counts = list(scale_steps)
    else:
        raise UsageError(f"scale_steps: {len(scale_steps)} counts given for {len(sizes)} scales "
                         f"({', '.join(f'{w}x{h}' for w, h in sizes)})")
    return [Scale(size, n) for size, n in zip(sizes, counts, strict=True)]
