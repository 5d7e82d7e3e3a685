"""The studio's controls and the :class:`~impasto.recipe.Recipe` they build.

The page sends a small JSON object of *settings* (a preset and the few values a person moves);
:func:`recipe_from_settings` checks it and builds the recipe, and :func:`settings_from_recipe`
turns a finished run back into settings so the page can re-open it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import UsageError
from ..recipe import PRESETS, Recipe

#: Recipe fields the page may set, on top of ``preset``.
RECIPE_FIELDS = ("style_weight", "content_weight", "max_size", "preserve_color", "style_scale", "steps", "seed")
#: Every key a settings object may hold.
SETTINGS_KEYS = ("preset", "style_blend", *RECIPE_FIELDS)
MIN_OUTPUT_SIDE = 64
MAX_STEPS = 10_000


def preset_defaults() -> dict[str, dict[str, Any]]:
    """What the page shows for each preset: its description and the values of its controls."""
    out = {}
    for name, preset in PRESETS.items():
        recipe = Recipe.from_preset(name)
        out[name] = {"description": preset.description, **{f: getattr(recipe, f) for f in RECIPE_FIELDS}}
    return out


def recipe_from_settings(settings: Any, *, max_output: int, device: str | None = None,
                         max_pixels: int | None = None) -> tuple[Recipe, list[float] | None, dict[str, Any]]:
    """``(recipe, style_blend, settings)`` from the page's settings; raises :class:`UsageError`.

    ``max_output`` caps the output's long side on this server; ``device`` (when given) overrides
    the recipe's device. The settings returned are the checked ones, ready to store and re-open.
    """
    if not isinstance(settings, Mapping):
        raise UsageError("settings: expected a JSON object")
    unknown = sorted(set(settings) - set(SETTINGS_KEYS))
    if unknown:
        raise UsageError(f"unknown setting(s): {', '.join(map(str, unknown))}")
    preset = settings.get("preset", "balanced")
    if preset not in PRESETS:
        raise UsageError(f"preset: unknown value {preset!r}; choose from {', '.join(PRESETS)}")
    overrides = {f: settings[f] for f in RECIPE_FIELDS if settings.get(f) is not None}
    for name in ("max_size", "steps", "seed"):  # JSON numbers such as 512.0 are whole numbers too
        value = overrides.get(name)
        if isinstance(value, float) and value.is_integer():
            overrides[name] = int(value)
    size = overrides.get("max_size")
    if isinstance(size, int) and not isinstance(size, bool) and not MIN_OUTPUT_SIDE <= size <= max_output:
        raise UsageError(f"max_size: {size} px is outside {MIN_OUTPUT_SIDE}–{max_output} px (this server's limit)")
    steps = overrides.get("steps")
    if isinstance(steps, int) and not isinstance(steps, bool) and steps > MAX_STEPS:
        raise UsageError(f"steps: {steps} is more than {MAX_STEPS:,}")
    if device is not None:
        overrides["device"] = device
    if max_pixels is not None:
        overrides["max_pixels"] = max_pixels
    recipe = Recipe.from_preset(preset, **overrides)
    if recipe.max_size > max_output:  # a preset larger than this server allows
        recipe = recipe.replace(max_size=max_output)
    blend = settings.get("style_blend")
    if blend is not None:
        if not isinstance(blend, (list, tuple)) or not all(_finite(w) and w >= 0 for w in blend):
            raise UsageError("style_blend: expected a list of non-negative numbers, one per style")
        if blend and sum(blend) <= 0:
            raise UsageError("style_blend: at least one style needs a weight above 0")
        blend = [float(w) for w in blend]
    checked = {"preset": preset, "style_blend": blend,
               **{f: getattr(recipe, f) for f in RECIPE_FIELDS}}
    if settings.get("seed") is None:
        checked["seed"] = None
    return recipe, blend, checked


def settings_from_recipe(recipe: Recipe, style_blend: list[float] | None) -> dict[str, Any]:
    """The settings that reproduce ``recipe`` (its seed included)."""
    return {"preset": recipe.preset, "style_blend": style_blend,
            **{f: getattr(recipe, f) for f in RECIPE_FIELDS}}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
