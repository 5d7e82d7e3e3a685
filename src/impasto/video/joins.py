"""Steady joins between segments painted apart: the math of drawing a segment's end towards the
next segment's first frame, and the measure of how much a join flickers.

Segments are painted in parallel, each from its own first frame (a *key frame*, painted as a
still before any segment starts). Left alone, a segment's last frame and the next key frame
would differ as much as two independently painted frames. Instead, the last ``r`` frames of a
segment are pulled, besides towards the previous frame (the usual temporal loss), towards the
next key frame carried back onto them by the optical flow. With the pull's weight relative to the
previous frame's rising as ``1/r, 1/(r − 1), …, 1`` (:func:`pull_strengths`), each pulled frame
moves the same share of the way: the gap between the segment's own painting and the next key
frame is crossed in ``r + 1`` equal steps, the last of them the join itself, instead of at once.
Squared warping error falls with the square of a step, so the join flickers about
``1/(r + 1)²`` as much as an unsmoothed one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import flow as flows

#: How many frames at the end of a segment are pulled towards the next segment's first frame
#: (fewer when the segment is shorter: all but its first).
JOIN_RAMP_FRAMES = 8
#: The pull of a segment's last frame, relative to an unweighted ramp of equal steps (see
#: :func:`pull_strengths`): measured on panning clips (fast preset), 2.5 gives the most even steps.
PULL_GAIN = 2.5
#: A key frame is painted as a still, then painted again this many times as if it followed
#: itself (no motion). A still has had far fewer optimization steps than a frame deep in a chain,
#: whose strokes are refined a little with every frame; unsettled, the next frames would move away
#: from it at once and the previous segment's last frames could not meet it. Two passes settle it.
SETTLE_PASSES = 2
#: Flow that ends this close to the frame's edge (in pixels, either side) is trusted by :func:`pull_mask`.
EDGE_PX = 1.5


def join_ramp(length: int, most: int = JOIN_RAMP_FRAMES) -> int:
    """How many of a segment's ``length`` frames are pulled: at most ``most``, never its first."""
    return max(0, min(most, length - 1))


def pull_strengths(length: int, ramp: int, gain: float = PULL_GAIN) -> list[float]:
    """The pull of each of a segment's ``length`` frames towards the next key frame, as a weight
    relative to the pull towards the previous frame (1): 0 before the last ``ramp`` frames, then
    ``g_i/(ramp + 1 − i)`` for the ``i``-th pulled frame, ``g_i`` rising linearly from 1 to ``gain``.

    Why these: a frame with targets ``p`` (the previous frame, weight 1) and ``k`` (the key frame,
    weight ``γ``) aims at ``p + γ/(1 + γ)·(k − p)``. With ``γ = 1/(ramp + 1 − i)`` that share is
    ``1/(ramp + 2 − i)``, and by induction the ``i``-th pulled frame lies ``i/(ramp + 1)`` of the way
    from the segment's painting to the key frame: equal steps, if every frame reached its target.
    They fall short, the more so the larger the share asked of them (a frame's few optimization
    steps also keep refining its own brush strokes), which the rising gain makes up for.
    """
    if not 0 <= ramp < max(length, 1):
        raise ValueError(f"a ramp of {ramp} frames does not fit a segment of {length}")
    rise = (gain - 1) / (ramp - 1) if ramp > 1 else 0.0
    gains = [gain if ramp == 1 else 1 + rise * (i - 1) for i in range(1, ramp + 1)]
    return [0.0] * (length - ramp) + [g / (ramp + 1 - i) for i, g in enumerate(gains, start=1)]


@dataclass(frozen=True)
class Pull:
    """A frame's second target: ``image`` ``(H, W, 3)`` on the frame's grid, trusted where ``trusted``
    ``(H, W)`` is 1, weighing ``strength`` times the frame before (whose weight is 1)."""

    image: np.ndarray
    trusted: np.ndarray
    strength: float


def carry_back(styled: np.ndarray, contents: Sequence[np.ndarray], method: str = "dis"
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``styled``, the painting of ``contents[-1]``, carried back onto each earlier frame of ``contents``.

    ``contents`` are consecutive frames ``(H, W, 3)`` (or grey ``uint8``). The painting travels one
    frame at a time, along the flow from each frame to the next, because a flow across several
    frames is far less accurate than a chain of one-frame flows. Returns ``(image, trusted)`` for
    ``contents[0] … contents[-2]``: ``(H, W, 3)`` and ``(H, W)``, trusted where every step's flow
    passed the forward–backward check.
    """
    greys = [flows.to_grey(c) for c in contents]
    image, trusted = np.asarray(styled, np.float32), np.ones(greys[-1].shape, np.float32)
    carried = []
    for here, there in zip(greys[-2::-1], greys[:0:-1], strict=True):  # from the second-last frame back
        to_next, back = flows.flow_pair(here, there, method)
        mask = pull_mask(to_next, back)
        image = flows.warp(image, to_next, interpolation="lanczos")
        trusted = mask * flows.warp(trusted, to_next)
        carried.append((image, trusted))
    return carried[::-1]


def pull_mask(flow: np.ndarray, reverse: np.ndarray, edge: float = EDGE_PX) -> np.ndarray:
    """Where a frame may be pulled towards the next one carried back along ``flow`` (``(H, W, 2)``, to
    the next frame; ``reverse`` back): ``(H, W)`` float32, 1 = trusted.

    The forward–backward check of :func:`impasto.flow.consistency_mask`, without its motion-boundary
    test (a pulled frame moves towards an image of the same scene, so a boundary's few pixels may
    follow the flow), and also trusting pixels whose flow ends within ``edge`` px of the frame's
    edge, on either side: flow is least accurate there, the strict test drops a ragged line of
    pixels along the edge that a pan brings in, and the join's flicker, measured along the other
    direction's flow, keeps them.
    """
    mask = flows.consistency_mask(flow, reverse, motion_boundaries=False)
    at_edge = flows.out_of_frame(flow, margin=-edge) & ~flows.out_of_frame(flow, margin=edge)
    return np.maximum(mask, at_edge.astype(np.float32))


def ramp_pulls(key: np.ndarray, key_content: np.ndarray, contents: Sequence[np.ndarray], ramp: int,
               method: str = "dis") -> list[Pull | None]:
    """For each frame of a segment (``contents``, ``(H, W, 3)``), its pull towards the next segment's
    first frame, ``key_content``, painted ``key``: None before the last ``ramp`` frames, then
    the key carried back onto the frame (:func:`carry_back`) with :func:`pull_strengths`."""
    strengths = pull_strengths(len(contents), ramp)
    if ramp == 0:
        return [None] * len(contents)
    carried = carry_back(key, [*contents[len(contents) - ramp:], key_content], method)
    return [None] * (len(contents) - ramp) + [Pull(image, trusted, strength) for (image, trusted), strength
                                              in zip(carried, strengths[len(contents) - ramp:], strict=True)]


def combine_targets(first: np.ndarray, first_weights: np.ndarray, second: np.ndarray,
                    second_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two weighted squared-error terms as one: ``(target, weights)``.

    ``w1·|x − a|² + w2·|x − b|² = (w1 + w2)·|x − (w1·a + w2·b)/(w1 + w2)|² + const``, per pixel, so
    the engine's single temporal term ``(target, weights)`` can carry both. ``first`` and
    ``second`` are ``(H, W, C)`` images; the weights ``(H, W)``, non-negative. Where both weights
    are 0 the target is ``first`` (with weight 0 it does not matter).
    """
    total = first_weights + second_weights
    share = np.divide(second_weights, total, out=np.zeros_like(total, dtype=np.float32), where=total > 0)
    target = first + share[..., None] * (second - first)
    return target.astype(np.float32), total.astype(np.float32)


def join_ratio(within: Sequence[float], joins: Sequence[float]) -> float | None:
    """How much the worst join flickers against the frames within segments: ``max(joins) / mean(within)``.

    Both are warping errors (:func:`impasto.flow.warping_error`) between consecutive frames;
    None when there is no join or no pair within a segment (or those never differ).
    """
    if not joins or not within:
        return None
    typical = float(np.mean(within))
    return float(max(joins)) / typical if typical > 0 else None
