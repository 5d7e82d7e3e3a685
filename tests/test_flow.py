"""Optical flow, warping, occlusion masks and the flicker measure on synthetic images."""

import cv2
import numpy as np
import pytest

from impasto import flow


def _texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour noise with some fine grain: every region distinguishable, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    coarse = cv2.resize(rng.random((height // 6 + 2, width // 6 + 2, 3)).astype(np.float32), (width, height),
                        interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.random((height, width, 3)).astype(np.float32), (0, 0), 1.0)
    return np.clip(0.7 * coarse + 0.3 * fine, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def canvas() -> np.ndarray:
    return _texture(140, 140)


def _view(canvas: np.ndarray, left: int, top: int, size: int = 96) -> np.ndarray:
    return np.ascontiguousarray(canvas[top:top + size, left:left + size])


def test_flow_of_a_translation_and_warp_back(canvas):
    # the camera moves right and down by (3, 2): the scene moves left and up by (3, 2)
    previous, current = _view(canvas, 20, 20), _view(canvas, 23, 22)
    to_previous, mask = flow.temporal_guide(current, previous)
    assert to_previous.shape == (96, 96, 2) and to_previous.dtype == np.float32
    trusted = mask > 0
    assert 0.8 < trusted.mean() < 1.0
    np.testing.assert_allclose(np.median(to_previous[trusted], axis=0), [3.0, 2.0], atol=0.05)
    # the strips that came into view from outside (right and bottom edges) are not trusted
    assert mask[:, -2:].mean() == 0 and mask[-1:, :].mean() == 0
    warped = flow.warp(previous, to_previous)
    error = np.abs(warped - current).max(axis=2)
    assert error[trusted].mean() < 2e-3, error[trusted].mean()
    assert flow.warping_error(previous, current, to_previous, mask) < 1e-4
    # without the warp the frames differ a lot: the check above is meaningful
    assert np.mean((previous - current) ** 2) > 100 * flow.warping_error(previous, current, to_previous, mask)


@pytest.mark.parametrize("method", flow.FLOW_METHODS)
def test_both_flow_methods_follow_a_subpixel_translation(canvas, method):
    moved = cv2.warpAffine(canvas, np.float32([[1, 0, -2.5], [0, 1, 1.5]]), canvas.shape[1::-1],
                           flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)  # moved[p] = canvas[p + (2.5, -1.5)]
    a, b = _view(canvas, 20, 20), _view(moved, 20, 20)
    forward, backward = flow.flow_pair(b, a, method)
    inner = (slice(10, -10), slice(10, -10))
    np.testing.assert_allclose(np.median(forward[inner].reshape(-1, 2), axis=0), [2.5, -1.5], atol=0.1)
    np.testing.assert_allclose(np.median(backward[inner].reshape(-1, 2), axis=0), [-2.5, 1.5], atol=0.1)


def test_warp_with_a_known_integer_flow_is_a_shift(canvas):
    image = _view(canvas, 0, 0, 64)
    shift = np.zeros((64, 64, 2), np.float32)
    shift[..., 0], shift[..., 1] = 4, -3
    out = flow.warp(image, shift)
    np.testing.assert_allclose(out[3:, :-4], image[:-3, 4:], atol=1e-6)
    grey = flow.warp(image[..., 0], shift)  # 2-D images too
    np.testing.assert_allclose(grey[3:, :-4], image[:-3, 4:, 0], atol=1e-6)
    sharper = flow.warp(image, shift, interpolation="cubic")
    assert sharper.min() >= image.min() and sharper.max() <= image.max()
    assert flow.out_of_frame(shift)[:, -4:].all() and not flow.out_of_frame(shift)[3:, :-4].any()


def test_consistency_formula():
    w = np.zeros((32, 32, 2), np.float32)
    w[..., 0] = 1.0
    back = -w  # a consistent pair: all trusted but the column that leaves the frame
    mask = flow.consistency_mask(w, back)
    assert mask[:, :-1].all() and not mask[:, -1].any()
    # the reverse flow says "no motion": |w + w̃|² = 1 > 0.01·1 + 0.5 → occluded everywhere
    assert not flow.consistency_mask(w, np.zeros_like(w)).any()
    # a small inconsistency is tolerated: |0.6|² = 0.36 < 0.01·(1 + 0.16) + 0.5
    assert flow.consistency_mask(w, back * 0.4)[:, :-1].all()
    # a motion boundary: the flow jumps by 2 px between two columns
    step = w.copy()
    step[:, 16:, 0] = 3.0
    edges = flow.consistency_mask(step, -step, motion_boundaries=True)
    plain = flow.consistency_mask(step, -step, motion_boundaries=False)
    assert plain[:, 16:28].all() and not edges[:, 15:17].any()  # column 16 is consistent, but on the boundary
    assert edges[:, :14].all() and edges[:, 18:28].all()


def test_occlusion_mask_marks_the_region_a_moving_square_uncovers(canvas):
    size, side = 96, 24
    background = _view(canvas, 20, 20, size)
    square = _texture(side, side, seed=7)[..., ::-1] * 0.5 + 0.5  # a brighter, different texture
    previous, current = background.copy(), background.copy()
    previous[30:30 + side, 30:30 + side] = square  # the square moves right by 8 px
    current[30:30 + side, 38:38 + side] = square
    to_previous, mask = flow.temporal_guide(current, previous)
    uncovered = mask[32:30 + side - 2, 31:37]  # behind the square in the previous frame, visible now
    assert uncovered.mean() < 0.1, uncovered.mean()
    far = np.ones((size, size), bool)
    far[20:64, 20:72] = False
    assert mask[far].mean() > 0.95
    # the square itself and the background both warp back with a small error where trusted
    assert flow.warping_error(previous, current, to_previous, mask) < 2e-3


def test_flicker_measure():
    base = _texture(80, 80, seed=3)
    frames = [np.ascontiguousarray(base[t:t + 64, 2 * t:2 * t + 64]) for t in range(4)]  # a panning camera
    assert flow.flicker(frames, frames) < 1e-4  # the content itself, warped with its flow: steady
    rng = np.random.default_rng(0)
    noisy = [np.clip(f + rng.normal(0, 0.1, f.shape), 0, 1).astype(np.float32) for f in frames]
    assert flow.flicker(noisy, frames) > 100 * flow.flicker(frames, frames)
    # content at another size is resized to the stylized frames'
    big = [cv2.resize(f, (128, 128), interpolation=cv2.INTER_CUBIC) for f in frames]
    assert flow.flicker(frames, big) < 1e-3
    with pytest.raises(ValueError):
        flow.flicker(frames[:1], frames[:1])


def test_bad_arguments():
    a = np.zeros((32, 32), np.uint8)
    with pytest.raises(ValueError, match="unknown optical flow method"):
        flow.optical_flow(a, a, method="magic")
    with pytest.raises(ValueError, match="differ in size"):
        flow.optical_flow(a, np.zeros((32, 40), np.uint8))
    with pytest.raises(ValueError, match="interpolation"):
        flow.warp(a, np.zeros((32, 32, 2), np.float32), interpolation="nearest")
    assert flow.to_grey(np.ones((4, 4, 3), np.float32)).dtype == np.uint8
