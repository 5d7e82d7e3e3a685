"""Optical flow, warping, occlusion masks and a flicker measure for video stylization.

Conventions used throughout:

* Images are NumPy arrays ``(H, W)`` or ``(H, W, C)``; colour images are float32 in [0, 1].
  Flow is computed on greyscale ``uint8`` frames ``(H, W)``.
* A flow field is a float32 array ``(H, W, 2)`` of pixel displacements ``(dx, dy)`` on the grid
  of the frame it is attached to: ``flow = optical_flow(a, b)`` says that the pixel at ``p`` in
  ``a`` shows what is at ``p + flow[p]`` in ``b``.
* Warping is backward: ``warp(b, optical_flow(a, b))`` samples ``b`` at ``p + flow[p]`` and so
  gives ``b`` moved onto ``a``'s grid. To carry frame ``t − 1`` onto frame ``t``, use the flow
  from ``t`` to ``t − 1``.
* Masks are float32 ``(H, W)``: 1 where a pixel's motion is trusted, 0 where it is occluded,
  on a motion boundary or moves out of the frame.

The occlusion test is the forward–backward consistency check of Ruder, Dosovitskiy & Brox,
"Artistic style transfer for videos" (GCPR 2016).
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

FLOW_METHODS = ("dis", "farneback")


def to_grey(image: np.ndarray) -> np.ndarray:
    """An ``(H, W, 3)`` float image in [0, 1] (or a ``uint8`` one, or a grey one) → ``(H, W)`` uint8."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if array.ndim == 3:
        array = cv2.cvtColor(np.ascontiguousarray(array[..., :3]), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(array)


def optical_flow(source: np.ndarray, target: np.ndarray, method: str = "dis") -> np.ndarray:
    """Dense flow from ``source`` to ``target``: ``(H, W, 2)`` float32 pixel displacements.

    ``source`` and ``target`` are greyscale ``uint8`` frames ``(H, W)`` of the same size (colour
    or float frames are converted with :func:`to_grey`). ``source[p]`` corresponds to
    ``target[p + flow[p]]``.

    ``method``: ``dis`` (default), OpenCV's Dense Inverse Search with its ``medium`` preset
    carried down to full resolution, plus variational refinement: fast, sub-pixel accurate and
    robust to large motions; ``farneback``: Farnebäck's polynomial expansion (smoother, slower
    on large frames, weaker on large displacements).
    """
    a, b = to_grey(source), to_grey(target)
    if a.shape != b.shape:
        raise ValueError(f"optical flow: frames differ in size, {a.shape} and {b.shape}")
    if method == "dis":
        dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        dis.setFinestScale(0)  # estimate at full resolution, not at half and upsampled
        # coarsest level: about 16 px on the short side (the preset's default assumes large frames)
        dis.setCoarsestScale(max(0, int(np.log2(max(min(a.shape) / 16.0, 1.0)))))
        # no initial flow: DIS would start from any array passed here
        flow = dis.calc(a, b, None)  # type: ignore[call-overload]  # OpenCV takes None; its stubs want an array
    elif method == "farneback":
        levels = max(1, int(np.log2(max(min(a.shape) / 16.0, 1.0))) + 1)
        flow = cv2.calcOpticalFlowFarneback(  # type: ignore[call-overload]  # None for the output flow, as above
            a, b, None, pyr_scale=0.5, levels=levels, winsize=15, iterations=5, poly_n=5, poly_sigma=1.1, flags=0)
    else:
        raise ValueError(f"unknown optical flow method {method!r}; choose from {', '.join(FLOW_METHODS)}")
    return np.ascontiguousarray(flow, dtype=np.float32)


def flow_pair(first: np.ndarray, second: np.ndarray, method: str = "dis") -> tuple[np.ndarray, np.ndarray]:
    """Flow in both directions between consecutive frames: ``(first → second, second → first)``.

    Both are ``(H, W, 2)`` float32 pixel displacements, each on the grid of the frame it starts from.
    """
    return optical_flow(first, second, method), optical_flow(second, first, method)


def _sample_grid(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    height, width = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return xs + flow[..., 0], ys + flow[..., 1]


def warp(image: np.ndarray, flow: np.ndarray, *, interpolation: str = "linear") -> np.ndarray:
    """Backward warping: ``out[p] = image[p + flow[p]]``.

    ``image`` is ``(H, W)`` or ``(H, W, C)`` (C ≤ 4), ``flow`` ``(H, W, 2)`` pixel displacements
    on the output's grid. ``interpolation``: ``linear`` (bilinear), ``cubic`` (bicubic) or
    ``lanczos`` (8×8 Lanczos, the sharpest; with ``cubic`` and ``lanczos`` float results are
    clipped to the input's range). Samples that fall outside the image take
    the nearest edge value; :func:`out_of_frame` tells which those are.
    """
    modes = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}
    if interpolation not in modes:
        raise ValueError(f"unknown interpolation {interpolation!r}; choose from {', '.join(modes)}")
    array = np.asarray(image)
    if array.shape[:2] != flow.shape[:2]:
        raise ValueError(f"warp: image {array.shape[:2]} and flow {flow.shape[:2]} differ in size")
    map_x, map_y = _sample_grid(flow)
    source = np.ascontiguousarray(array.astype(np.float32) if array.dtype == np.float64 else array)
    out = cv2.remap(source, map_x, map_y, modes[interpolation], borderMode=cv2.BORDER_REPLICATE)
    if out.ndim == 2 and array.ndim == 3:  # cv2 drops a trailing channel axis of size 1
        out = out[..., None]
    if interpolation != "linear" and np.issubdtype(out.dtype, np.floating):
        out = np.clip(out, float(array.min()), float(array.max()))
    return out


def out_of_frame(flow: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """``(H, W)`` bool: where ``p + flow[p]`` falls outside the frame (by more than ``margin`` px)."""
    height, width = flow.shape[:2]
    xs, ys = _sample_grid(flow)
    return (xs < -margin) | (xs > width - 1 + margin) | (ys < -margin) | (ys > height - 1 + margin)


def consistency_mask(flow: np.ndarray, reverse: np.ndarray, *, motion_boundaries: bool = True) -> np.ndarray:
    """Which pixels of a frame have a trustworthy flow: ``(H, W)`` float32, 1 = trusted, 0 = not.

    ``flow`` ``(H, W, 2)`` goes from this frame to the other one (e.g. from frame ``t`` to
    ``t − 1``); ``reverse`` ``(H, W, 2)`` goes back, on the other frame's grid. Following Ruder
    et al. (2016), with ``w = flow[p]`` and ``w̃ = reverse[p + w]`` (bilinear), a pixel is
    *disoccluded* (it was not visible in the other frame) where the round trip does not return::

        |w + w̃|² > 0.01 (|w|² + |w̃|²) + 0.5

    and on a *motion boundary* (where flow is unreliable) where::

        |∇u|² + |∇v|² > 0.01 |w|² + 0.002        (u, v: the components of ``flow``)

    Pixels carried outside the other frame are masked too.
    """
    if flow.shape != reverse.shape or flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"consistency mask: flows must both be (H, W, 2), got {flow.shape} and {reverse.shape}")
    back = warp(reverse, flow)
    round_trip = np.sum((flow + back) ** 2, axis=2)
    magnitude = np.sum(flow ** 2, axis=2) + np.sum(back ** 2, axis=2)
    bad = round_trip > 0.01 * magnitude + 0.5
    if motion_boundaries:
        gradient = np.zeros(flow.shape[:2], np.float32)
        for c in range(2):
            gy, gx = np.gradient(flow[..., c])
            gradient += gx ** 2 + gy ** 2
        bad |= gradient > 0.01 * np.sum(flow ** 2, axis=2) + 0.002
    bad |= out_of_frame(flow)
    return (~bad).astype(np.float32)


def temporal_guide(current: np.ndarray, previous: np.ndarray, method: str = "dis") -> tuple[np.ndarray, np.ndarray]:
    """Flow from ``current`` to ``previous`` ``(H, W, 2)`` and its consistency mask ``(H, W)``.

    ``current`` and ``previous`` are frames of the same size (grey ``uint8`` or colour). Then
    ``warp(stylized_previous, flow)`` is the previous result moved onto the current frame, valid
    where the mask is 1.
    """
    to_previous, to_current = optical_flow(current, previous, method), optical_flow(previous, current, method)
    return to_previous, consistency_mask(to_previous, to_current)


def warping_error(previous: np.ndarray, current: np.ndarray, flow: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared difference between ``current`` and ``previous`` warped onto it.

    ``previous``, ``current``: ``(H, W, C)`` float images in [0, 1]; ``flow``: ``(H, W, 2)`` from
    ``current`` to ``previous`` (the *content's* flow); ``mask``: ``(H, W)``, 1 on pixels to count.
    The squared error is averaged over the channels and over the masked pixels (units: squared
    intensity in [0, 1]); 0.0 when the mask is empty.
    """
    moved = warp(np.asarray(previous, np.float32), flow)
    error = np.mean((np.asarray(current, np.float32) - moved) ** 2, axis=2)
    weight = float(mask.sum())
    return float((error * mask).sum() / weight) if weight > 0 else 0.0


def flicker(stylized: Iterable[np.ndarray], content: Iterable[np.ndarray], method: str = "dis") -> float:
    """Mean warping error between consecutive stylized frames: lower is steadier.

    ``stylized`` and ``content`` are equally long sequences of ``(H, W, 3)`` float frames in [0, 1] (the
    content frames are resized to the stylized size when they differ). For each pair ``t − 1, t``
    the content's flow from ``t`` to ``t − 1`` and its consistency mask decide where to compare;
    the stylized frame ``t − 1`` is warped with that flow and compared to frame ``t`` by
    :func:`warping_error`. The result is the mean over all pairs (the measure of Lai et al.,
    "Learning blind video temporal consistency", ECCV 2018, with Ruder et al.'s masks).
    """
    errors = []
    previous: tuple[np.ndarray, np.ndarray] | None = None  # frame t − 1: (stylized, grey content)
    for styled, photo in zip(stylized, content, strict=True):
        styled = np.asarray(styled, np.float32)
        photo = np.asarray(photo)
        if photo.shape[:2] != styled.shape[:2]:
            photo = cv2.resize(np.asarray(photo, np.float32), (styled.shape[1], styled.shape[0]),
                               interpolation=cv2.INTER_AREA)
        grey = to_grey(photo)
        if previous is not None:
            previous_style, previous_grey = previous
            flow, mask = temporal_guide(grey, previous_grey, method)
            errors.append(warping_error(previous_style, styled, flow, mask))
        previous = styled, grey
    if not errors:
        raise ValueError("flicker: needs at least two frames")
    return float(np.mean(errors))
