import json
import math

import pytest

from impasto.errors import UsageError
from impasto.recipe import PRESETS, Recipe
from impasto.optimize.schedule import plan, scale_sizes


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
    assert all(b[0] > a[0] for a, b in zip(sizes, sizes[1:]))


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
