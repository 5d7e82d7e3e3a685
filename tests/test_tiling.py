"""Tiles: layout, shifting, memory estimates, whole-image statistics and seamless results."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from impasto import losses
from impasto import masks as masking
from impasto.errors import ImpastoError
from impasto.optimize import tiling
from impasto.optimize.engine import Stylizer, to_tensor
from impasto.optimize.guides import ScaleGuides
from impasto.optimize.objective import Objective, TileWeightCache, _feature_shape, tiled_statistics
from impasto.optimize.targets import ScaleTargets
from impasto.recipe import Recipe

CPU = torch.device("cpu")


@pytest.mark.parametrize("height, width, tile, margin, offset", [
    (100, 130, 32, 16, (0, 0)), (100, 130, 32, 16, (16, 48)), (64, 64, 64, 32, (0, 0)), (257, 95, 48, 32, (32, 16)),
])
def test_inner_boxes_partition_the_image_and_outer_boxes_add_the_margin(height, width, tile, margin, offset):
    tiles = tiling.layout(height, width, tile, margin, offset)
    count = np.zeros((height, width), int)
    for t in tiles:
        top, bottom, left, right = t.inner
        count[top:bottom, left:right] += 1
        o_top, o_bottom, o_left, o_right = t.outer
        assert o_top == max(0, top - margin) and o_bottom == min(height, bottom + margin)
        assert o_left == max(0, left - margin) and o_right == min(width, right + margin)
        assert bottom - top >= tile // 4 or height < tile // 4  # no slivers
        assert bottom - top <= tile + tile // 4 and right - left <= tile + tile // 4
    assert (count == 1).all()


@pytest.mark.parametrize("offset", [(0, 0), (16, 48), (32, 32)])
def test_tile_windows_sum_to_one_and_cross_over_smoothly(offset):
    height, width, tile = 150, 170, 48
    margin = tiling.margin_for(tile)
    total = np.zeros((height, width), np.float32)
    for t in tiling.layout(height, width, tile, margin, offset):
        window = t.window((height, width), tiling.ramp_for(margin))
        top, bottom, left, right = t.outer
        total[top:bottom, left:right] += window
        it, ib, il, ir = t.inner_in_outer
        core = window[it + margin // 2:ib - margin // 2, il + margin // 2:ir - margin // 2]
        assert core.size == 0 or core.min() == 1.0
        assert np.abs(np.diff(window, axis=0)).max() <= 1.0 / margin + 1e-6  # a ramp, not a cut
    assert np.allclose(total, 1.0, atol=1e-5)


def test_tile_weights_are_made_once_per_tile_shape_and_equal_the_tiles_own():
    height, width, tile = 400, 560, 96
    margin = tiling.margin_for(tile)
    layers = ("relu1_1", "relu3_1", "relu4_2", "relu5_1")
    cache = TileWeightCache(layers, margin, CPU)
    seen = 0
    for step in range(6):
        for t in tiling.layout(height, width, tile, margin, tiling.grid_offset(step, tile)):
            seen += 1
            made = cache(t, (height, width))
            window = torch.from_numpy(t.window((height, width), tiling.ramp_for(margin)))[None, None]
            assert torch.equal(made.interior, window)
            assert made.share == pytest.approx(float(window.sum()) / (height * width))
            for layer in layers:
                pooled = masking.pool_to(window, _feature_shape(layer, t))
                assert torch.allclose(made.pooled[layer], pooled)
                assert made.mass[layer] == pytest.approx(float(pooled.sum()), rel=1e-6)
    assert len(cache._made) < seen / 2  # inner tiles of every shifted grid share their weights


def test_grid_shifts_every_step_by_aligned_offsets():
    offsets = [tiling.grid_offset(step, 128) for step in range(12)]
    assert len(set(offsets)) == 12
    assert all(a[0] != b[0] and a[1] != b[1] for a, b in itertools.pairwise(offsets))  # no line stays
    assert all(o % tiling.ALIGN == 0 and 0 <= o < 128 for pair in offsets for o in pair)
    lines = [{t.inner[0] for t in tiling.layout(512, 512, 128, 32, off)} for off in offsets[:3]]
    assert lines[0] != lines[1] != lines[2]


def test_memory_estimates_grow_with_size_and_tiles_bound_them():
    sizes = [(256, 256), (512, 384), (1024, 1024), (2048, 2048), (4096, 4096)]
    whole = [tiling.step_bytes(s, "relu5_1") for s in sizes]
    assert whole == sorted(whole) and len(set(whole)) == len(whole)
    assert tiling.step_bytes((4096, 4096), "relu5_1") > 4 * tiling.tiled_step_bytes((4096, 4096), 512, 64, "relu5_1")
    assert tiling.choose_tile((512, 512), "relu5_1", 64 * 2**30) is None
    small, large = (tiling.choose_tile((4096, 4096), "relu5_1", b * 2**30) for b in (3, 6))
    assert small < large and small % tiling.ALIGN == 0
    assert tiling.tiled_step_bytes((4096, 4096), large, tiling.margin_for(large), "relu5_1") <= 6 * 2**30


@pytest.fixture(scope="module")
def network():
    stylizer = Stylizer(Recipe(device="cpu"))
    net = stylizer.network(CPU)
    return lambda image, layers: {k: v.float() for k, v in net(image, layers).items()}


def test_tiled_statistics_equal_the_whole_images(network, astronaut_small):
    image = to_tensor(np.tile(astronaut_small, (2, 2, 1)), CPU)  # 192 x 192
    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    whole = network(image, layers)
    tiled = tiled_statistics(network, image, layers, "gram", tile=64, margin=32)
    for layer in layers:
        reference = losses.style_statistics(whole[layer], "gram")["gram"]
        assert losses.relative_mse(tiled[layer][0]["gram"], reference) < 1e-3, layer


def test_tiled_gradient_matches_the_whole_images(network, astronaut_small, stripes_style):
    recipe = Recipe(device="cpu")
    photo = to_tensor(np.tile(astronaut_small, (1, 2, 1)), CPU)  # 96 x 192
    style = network(to_tensor(stripes_style, CPU), recipe.style_layers)
    targets = ScaleTargets(
        content=network(photo, recipe.content_layers),
        photo=photo,
        style={layer: [(1.0, losses.prepare_target(losses.style_statistics(style[layer], "gram"), "gram"))]
               for layer in recipe.style_layers},
    )
    x = (0.5 * photo + 0.25).requires_grad_(True)
    whole = Objective(recipe, network, targets)
    total, parts = whole(x)
    total.backward()
    reference = x.grad.clone()
    x.grad = None
    tiled = Objective(recipe, network, targets)
    tiled.prepare_tiles(x, 64, 32)
    tiled_parts = tiled.tiled_step(x, 0)
    cosine = torch.nn.functional.cosine_similarity(x.grad.flatten(), reference.flatten(), dim=0).item()
    assert cosine > 0.95, cosine
    assert tiled_parts["style"] == pytest.approx(parts["style"], rel=0.05)
    assert tiled_parts["content"] == pytest.approx(parts["content"], rel=0.05)


def _gradient_energy(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    grey = image.mean(axis=2)
    return np.diff(grey, axis=0) ** 2, np.diff(grey, axis=1) ** 2


def edge_energy_ratio(image: np.ndarray, every: int = tiling.ALIGN) -> float:
    """Mean squared difference across the rows and columns at multiples of ``every`` (where every
    tile edge lies), relative to that across all other rows and columns."""
    grey = image.mean(axis=2)
    across_rows, across_cols = np.diff(grey, axis=0) ** 2, np.diff(grey, axis=1) ** 2
    on = [across_rows[r - 1].mean() for r in range(every, grey.shape[0], every)]
    on += [across_cols[:, c - 1].mean() for c in range(every, grey.shape[1], every)]
    off = [across_rows[r - 1].mean() for r in range(1, grey.shape[0]) if r % every]
    off += [across_cols[:, c - 1].mean() for c in range(1, grey.shape[1]) if c % every]
    return float(np.mean(on) / np.mean(off))


def test_no_seams_along_tile_boundaries(astronaut_small, stripes_style):
    """Tiny tiles (32 px) on a 96 px image: every tile edge of every step lies on a multiple of 16.
    The gradient energy across those lines, relative to the others, is at most 1.1 times what it
    is in the same run made whole."""
    options = dict(max_size=96, min_size=None, steps=8, seed=0, device="cpu", ema=0.0,
                   content_layers=("relu3_1",), style_layers=("relu1_1", "relu2_1", "relu3_1"))
    tiled = Stylizer(Recipe.from_preset("balanced", tile_size=32, **options)).run(astronaut_small, stripes_style)
    whole = Stylizer(Recipe.from_preset("balanced", **options)).run(astronaut_small, stripes_style)
    assert tiled.metadata["tiles"] == [[32, 32]] and whole.metadata["tiles"] == [None]
    ratio = edge_energy_ratio(tiled.image) / edge_energy_ratio(whole.image)
    assert ratio <= 1.1, ratio


def test_tiled_run_follows_the_whole_run(astronaut_small, stripes_style):
    options = dict(max_size=96, min_size=None, steps=10, seed=0, device="cpu", ema=0.0,
                   content_layers=("relu3_1",), style_layers=("relu1_1", "relu2_1", "relu3_1"))
    photo = astronaut_small
    whole = Stylizer(Recipe.from_preset("balanced", **options)).run(photo, stripes_style)
    tiled = Stylizer(Recipe.from_preset("balanced", tile_size=48, **options)).run(photo, stripes_style)
    assert whole.metadata["tiles"] == [None] and tiled.metadata["tiles"] == [[48, 32]]
    assert tiled.losses["style"] < 1.5 * whole.losses["style"]
    assert np.abs(tiled.image - whole.image).mean() < 0.06


def test_refuses_a_run_that_will_not_fit_without_tiles(astronaut_small, stripes_style):
    recipe = Recipe.from_preset("balanced", max_size=96, min_size=None, steps=1, device="cpu", tile_size=0,
                                max_memory=0.001)
    with pytest.raises(ImpastoError, match="needs about .* GiB.*tile"):
        Stylizer(recipe).run(astronaut_small, stripes_style)


def test_tiled_temporal_term_equals_the_whole_images(network, astronaut_small, stripes_style):
    recipe = Recipe(device="cpu", content_layers=("relu2_1",), style_layers=("relu1_1",))
    photo = to_tensor(astronaut_small, CPU)
    style = network(to_tensor(stripes_style, CPU), recipe.style_layers)
    previous = torch.rand_like(photo)
    weights = (torch.rand(1, 1, 96, 96) > 0.3).float()
    targets = ScaleTargets(content=network(photo, recipe.content_layers), photo=photo,
                           guides=ScaleGuides(temporal=(previous, weights)),
                           style={"relu1_1": [(1.0, losses.prepare_target(
                               losses.style_statistics(style["relu1_1"], "gram"), "gram"))]})
    x = photo.clone().requires_grad_(True)
    _, whole = Objective(recipe, network, targets)(x)
    tiled = Objective(recipe, network, targets)
    tiled.prepare_tiles(x, 32, 32)
    assert tiled.tiled_step(x, 3)["temporal"] == pytest.approx(whole["temporal"], rel=1e-4)
