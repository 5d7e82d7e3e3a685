import itertools
import json
import math

import pytest

from impasto.errors import UsageError
from impasto.optimize.schedule import plan, scale_sizes
from impasto.recipe import PRESETS, Recipe


def test_reference_preset_is_the_notebook():
    r = Recipe.from_preset("reference")
    assert r.content_layers == r.style_layers == ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    assert (r.optimizer, r.lr, r.adam_betas, r.style_weight) == ("adam", 0.003, (0.5, 0.999), 100.0)
    assert (r.log_every, r.save_every, r.loss_normalization, r.min_size) == (20, 40, "notebook", None)


def test_overrides_win():
    r = Recipe.from_preset("reference", lr=0.01)
    assert r.lr == 0.01 and r.steps == PRESETS["reference"].values["steps"]
    assert Recipe.from_preset("balanced", min_size=None).min_size is None
    assert Recipe.from_preset("balanced").preset == "balanced"


def test_round_trip_through_json():
    r = Recipe.from_preset("balanced", size=(64, 48), seed=3, style_layer_weights=(1, 2, 3, 4, 5))
    again = Recipe.from_dict(json.loads(json.dumps(r.to_dict())))
    assert again == r


@pytest.mark.parametrize("changes, fragment", [
    (dict(style_weight=-1), "style_weight"),
    (dict(content_weight=float("nan")), "content_weight"),
    (dict(steps=0), "steps"),
    (dict(steps=2.5), "steps"),
    (dict(lr=0), "lr"),
    (dict(optimizer="sgd"), "optimizer"),
    (dict(style_layers=("relu6_1",)), "relu6_1"),
    (dict(style_layer_weights=(1.0,)), "style_layer_weights"),
    (dict(max_size=10), "max_size"),
    (dict(size=(20, 64)), "size"),
    (dict(adam_betas=(0.9, 1.5)), "adam_betas"),
])
def test_invalid_values_are_named(changes, fragment):
    with pytest.raises(UsageError, match=fragment):
        Recipe.from_preset("balanced", **changes)


def test_unknown_preset_and_parameter():
    with pytest.raises(UsageError, match="unknown preset"):
        Recipe.from_preset("nope")
    with pytest.raises(UsageError, match="colour"):
        Recipe.from_preset("balanced", colour=1)


def test_single_scale_and_coarse_to_fine_sizes():
    assert scale_sizes((512, 384), None, math.sqrt(2)) == [(512, 384)]
    sizes = scale_sizes((512, 384), 128, math.sqrt(2))
    assert sizes[0] == (128, 96) and sizes[-1] == (512, 384)
    assert len(sizes) == 5
    assert all(b[0] > a[0] for a, b in itertools.pairwise(sizes))


def test_an_output_between_two_factor_steps_starts_at_min_size():
    """450 px from 256 px at a factor of 2 is two scales, not one; just above min_size stays one."""
    assert scale_sizes((450, 300), 256, 2.0) == [(256, 168), (450, 300)]
    assert scale_sizes((300, 200), 256, 2.0) == [(300, 200)]
    assert scale_sizes((1024, 768), 256, 2.0) == [(256, 192), (512, 384), (1024, 768)]  # chains unchanged
    assert scale_sizes((700, 500), 256, math.sqrt(2)) == [(352, 248), (496, 352), (700, 500)]


def test_plan_steps_per_scale():
    schedule = plan((256, 256), steps=10, min_size=128, factor=2.0)
    assert [(s.size, s.steps) for s in schedule] == [((128, 128), 10), ((256, 256), 10)]
    schedule = plan((256, 256), steps=10, min_size=128, factor=2.0, scale_steps=(30, 5))
    assert [s.steps for s in schedule] == [30, 5]
    with pytest.raises(UsageError, match="2 scales"):
        plan((256, 256), steps=10, min_size=128, factor=2.0, scale_steps=(1, 2, 3))


def test_step_decay_gives_fewer_steps_at_fine_scales():
    schedule = plan((512, 512), steps=100, min_size=128, factor=2.0, step_decay=0.5)
    assert [(s.size[0], s.steps) for s in schedule] == [(128, 100), (256, 50), (512, 25)]
    assert Recipe.from_preset("balanced").step_decay < 1


@pytest.mark.parametrize("changes, field", [
    (dict(style_scale=30), "style_scale"),            # the web probe that peaked at 3.6 GB for a 64x48 picture
    (dict(max_size=2048, style_scale=8), "style_scale"),  # a 16384 px painting: over the style pixel budget
    (dict(seed=2**63), "seed"),                       # failed inside the job ("Overflow when unpacking long long")
    (dict(seed=-1), "seed"),
    (dict(max_size=100_000), "max_size"),
    (dict(steps=10**7), "steps"),
    (dict(style_weight=1e12), "style_weight"),
    (dict(lr=50.0), "lr"),
    (dict(style_weight=10**400), "style_weight"),     # too large for a float: OverflowError before
    (dict(steps=10**400), "steps"),
    (dict(masks_are_not_a_field=1), None),
])
def test_every_number_is_bounded_and_the_error_names_its_field(changes, field):
    with pytest.raises(UsageError) as caught:
        Recipe.from_preset("balanced", **changes)
    assert caught.value.field == field
    if field is not None:
        message = str(caught.value)
        assert message.startswith(f"{field}: ") and ("range" in message or "budget" in message)
        assert len(message) < 200


def test_largest_sensible_values_are_accepted():
    r = Recipe.from_preset("balanced", seed=2**63 - 1, max_size=4096, style_scale=2.0, steps=100_000)
    assert r.style_long_side == 8192


def test_errors_can_be_renamed_for_each_interface():
    with pytest.raises(UsageError) as caught:
        Recipe.from_preset("balanced", max_size=0)
    assert str(caught.value.named("--max-size")).startswith("--max-size: 0 is out of range")


def test_from_dict_refuses_unknown_keys_by_name():
    data = Recipe.from_preset("fast").to_dict()
    data["removed_option"] = 3
    with pytest.raises(UsageError, match="removed_option"):
        Recipe.from_dict(data)
    with pytest.raises(UsageError, match="unknown recipe parameter"):
        Recipe.from_preset("fast").replace(colour=1)


def test_pixel_neutral_fields_are_marked_on_the_field():
    from impasto.recipe import pixel_neutral_fields

    neutral = pixel_neutral_fields()
    assert {"log_every", "save_every", "device"} <= set(neutral)
    assert not {"steps", "style_weight", "max_size", "seed"} & set(neutral)


def test_later_frame_steps_belong_to_the_preset_and_follow_steps():
    assert Recipe.from_preset("quality").frame_steps == 40
    assert Recipe.from_preset("fast").frame_steps == 5
    assert Recipe.from_preset("quality", steps=5).frame_steps == 4   # 40 × 5/56, not the preset's 40
    assert Recipe.from_preset("quality", steps=5, later_steps=7).frame_steps == 7


def test_scales_above_equal_cost_above_cost_about_one_scale_at_that_size():
    sizes_and_steps = [(s.size, s.steps) for s in plan((2048, 1024), steps=40, min_size=256, factor=2.0,
                                                      step_decay=1.0, equal_cost_above=512)]
    assert sizes_and_steps == [((256, 128), 40), ((512, 256), 40), ((1024, 512), 10), ((2048, 1024), 2)]
    costs = [w * h * n for (w, h), n in sizes_and_steps[1:]]
    assert max(costs) / min(costs) < 1.3  # 40 steps at 512 px, 10 at 1024, 2.5 → 2 at 2048
    assert plan((512, 256), steps=5, min_size=256, factor=2.0, step_decay=0.0, equal_cost_above=128)[1].steps == 0
    with pytest.raises(UsageError, match="equal_cost_above"):
        Recipe(equal_cost_above=8)
