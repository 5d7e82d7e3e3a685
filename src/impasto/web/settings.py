"""The studio's controls and the :class:`~impasto.recipe.Recipe` they build.

The page sends a small JSON object of *settings* (a preset and the few values a person moves);
:func:`recipe_from_settings` checks it and builds the recipe, and :func:`settings_from_recipe`
turns a finished run back into settings so the page can re-open it. A job that paints with a
trained model takes only the settings a model uses (:data:`MODEL_SETTINGS`), checked by
:func:`model_recipe_from_settings`.

The recipe's validation holds the general bounds of every number; this studio adds the tighter
ranges of its own controls (:data:`CONTROLS`) and a pixel budget for the painting at its scale
(:data:`MAX_STYLE_SIDE`). Every refusal is a :class:`~impasto.errors.UsageError` naming the
control as the page shows it, with its settings key: ``"Output size (max_size): ..."``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..recipe import MAX_SEED, PRESETS, Recipe

#: Recipe fields the page may set, on top of ``preset``.
RECIPE_FIELDS = ("style_weight", "content_weight", "max_size", "preserve_color", "style_scale", "steps", "seed")
#: Every key a settings object may hold.
SETTINGS_KEYS = ("preset", "style_blend", *RECIPE_FIELDS)
#: The settings a job that paints with a model takes (the page's share of the recipe's
#: :data:`~impasto.feedforward.picture.MODEL_FIELDS`); every other one belongs to an optimization.
MODEL_SETTINGS = ("max_size", "preserve_color", "color_transfer")
MIN_OUTPUT_SIDE = 64
MAX_STEPS = 10_000
#: The painting's long side at its scale (output size × style scale) this server allows, in pixels.
MAX_STYLE_SIDE = 4096
MAX_BLEND_WEIGHT = 100


@dataclass(frozen=True)
class Control:
    """One of the page's controls: its label and, for numbers, the range the studio accepts."""

    label: str
    low: float | None = None
    high: float | None = None
    whole: bool = False
    unit: str = ""

    def range_text(self, high: float | None = None) -> str:
        high = self.high if high is None else high
        unit = f" {self.unit}" if self.unit else ""
        return f"{_number_text(self.low)} to {_number_text(high)}{unit}"


#: The page's controls by settings key. ``max_size``'s upper end is the server's ``max_output``.
CONTROLS = {
    "preset": Control("Preset"),
    "style_weight": Control("Style strength"),
    "content_weight": Control("Content strength"),
    "max_size": Control("Output size", MIN_OUTPUT_SIDE, None, whole=True, unit="px"),
    "style_scale": Control("Style scale", 0.25, 4.0),
    "preserve_color": Control("Colours"),
    "color_transfer": Control("Colour transfer"),
    "steps": Control("Steps", 1, MAX_STEPS, whole=True),
    "seed": Control("Seed", 0, MAX_SEED, whole=True),
    "style_blend": Control("Blend", 0, MAX_BLEND_WEIGHT),
}


def page_label(key: str) -> str:
    """How an error names a setting: the page's label and the settings key (``"Seed (seed)"``)."""
    control = CONTROLS.get(key)
    return f"{control.label} ({key})" if control else key


def setting_error(key: str, detail: str) -> UsageError:
    """A refusal of setting ``key``, named as the page shows it."""
    return UsageError(f"{page_label(key)}: {detail}", field=key, detail=detail)


def preset_defaults() -> dict[str, dict[str, Any]]:
    """What the page shows for each preset: its description and the values of its controls."""
    out = {}
    for name, preset in PRESETS.items():
        recipe = Recipe.from_preset(name)
        out[name] = {"description": preset.description, **{f: getattr(recipe, f) for f in RECIPE_FIELDS}}
    return out


def recipe_from_settings(settings: Any, *, max_output: int, device: str | None = None,
                         max_pixels: int | None = None,
                         max_style_side: int = MAX_STYLE_SIDE) -> tuple[Recipe, list[float] | None, dict[str, Any]]:
    """``(recipe, style_blend, settings)`` from the page's settings; raises :class:`UsageError`.

    ``max_output`` caps the output's long side on this server and ``max_style_side`` the
    painting's long side at its scale; ``device`` (when given) overrides the recipe's device.
    The settings returned are the checked ones, ready to store and re-open.
    """
    if not isinstance(settings, Mapping):
        raise UsageError("settings: expected a JSON object")
    unknown = sorted(str(k) for k in settings if k not in SETTINGS_KEYS)
    if unknown:
        raise UsageError(f"unknown setting(s): {', '.join(unknown)}")
    preset = settings.get("preset", "balanced")
    if not isinstance(preset, str) or preset not in PRESETS:
        raise setting_error("preset", f"unknown value {str(preset)[:40]!r}; choose from {', '.join(PRESETS)}")
    overrides = _checked_overrides(settings, max_output)
    server: dict[str, Any] = {"device": device} if device is not None else {}
    if max_pixels is not None:
        server["max_pixels"] = max_pixels
    try:
        recipe = Recipe.from_preset(preset, **overrides, **server)
    except UsageError as exc:
        raise exc.named(page_label(exc.field)) if exc.field in CONTROLS else exc from None
    if recipe.max_size > max_output:  # a preset larger than this server allows
        recipe = recipe.replace(max_size=max_output)
    _check_style_budget(recipe, max_style_side)
    blend = _style_blend(settings.get("style_blend"))
    checked = {"preset": preset, "style_blend": blend, **{f: getattr(recipe, f) for f in RECIPE_FIELDS}}
    if settings.get("seed") is None:
        checked["seed"] = None
    return recipe, blend, checked


def model_recipe_from_settings(settings: Any, *, max_output: int, device: str | None = None,
                               max_pixels: int | None = None) -> tuple[Recipe, dict[str, Any]]:
    """``(recipe, settings)`` for painting with a model; raises :class:`UsageError`.

    Only :data:`MODEL_SETTINGS` apply; any other setting with a value (not ``null``) is refused by
    name, as ``impasto stylize --model`` refuses an optimization's flags. The output size is
    always applied (a model would otherwise paint at the photo's own size, beyond ``max_output``).
    """
    if not isinstance(settings, Mapping):
        raise UsageError("settings: expected a JSON object")
    unknown = sorted(str(k) for k in settings if k not in SETTINGS_KEYS and k not in MODEL_SETTINGS)
    if unknown:
        raise UsageError(f"unknown setting(s): {', '.join(unknown)}")
    refused = [k for k in SETTINGS_KEYS if k not in MODEL_SETTINGS and settings.get(k) is not None]
    if refused:
        raise UsageError(f"{', '.join(page_label(k) for k in refused)}: not used with a model (a model paints in "
                         "one pass; these settings belong to an optimization)", field=refused[0])
    overrides = _checked_overrides(settings, max_output, MODEL_SETTINGS)
    server: dict[str, Any] = {"device": device} if device is not None else {}
    if max_pixels is not None:
        server["max_pixels"] = max_pixels
    try:
        recipe = Recipe.from_preset("balanced", **overrides, **server)
    except UsageError as exc:
        raise exc.named(page_label(exc.field)) if exc.field in CONTROLS else exc from None
    if recipe.max_size > max_output:
        recipe = recipe.replace(max_size=max_output)
    return recipe, {f: getattr(recipe, f) for f in MODEL_SETTINGS}


def settings_from_recipe(recipe: Recipe, style_blend: list[float] | None) -> dict[str, Any]:
    """The settings that reproduce ``recipe`` (its seed included)."""
    return {"preset": recipe.preset, "style_blend": style_blend,
            **{f: getattr(recipe, f) for f in RECIPE_FIELDS}}


def _checked_overrides(settings: Mapping[str, Any], max_output: int,
                       fields: tuple[str, ...] = RECIPE_FIELDS) -> dict[str, Any]:
    """The recipe ``fields`` the settings set, each within its control's range when it is a number.

    A value that is not a number at all is left for the recipe's validation to name.
    """
    overrides = {f: settings[f] for f in fields if settings.get(f) is not None}
    for key, value in overrides.items():
        if not _finite(value):
            continue
        control = CONTROLS[key]
        if control.whole and isinstance(value, float) and value.is_integer():  # JSON's 512.0 is whole too
            value = overrides[key] = int(value)
        high = max_output if key == "max_size" else control.high
        ranged = control.low is not None and high is not None
        # Numbers beyond 2**64 mean nothing here, and some do not even fit a float.
        if abs(value) > 2**64 or (ranged and not control.low <= value <= high):
            limit = " (this server's limit)" if key == "max_size" else ""
            use = f": use {control.range_text(high)}{limit}" if ranged else ""
            raise setting_error(key, f"{_number_text(value)} is out of range{use}")
    return overrides


def _check_style_budget(recipe: Recipe, max_style_side: int) -> None:
    """Refuse a style scale that would show the painting larger than this server's budget."""
    if recipe.style_long_side > max_style_side:
        raise setting_error("style_scale", f"{recipe.style_scale:g} at output size {recipe.max_size} px shows the "
                                           f"painting {recipe.style_long_side} px wide, over this server's "
                                           f"{max_style_side} px budget; lower the style scale or the output size")


def _style_blend(blend: Any) -> list[float] | None:
    """The blend weights (0–100 each, not all 0), or ``None`` for equal weights."""
    if blend is None:
        return None
    control = CONTROLS["style_blend"]
    if not isinstance(blend, (list, tuple)) or not all(_finite(w) and 0 <= w <= MAX_BLEND_WEIGHT for w in blend):
        raise setting_error("style_blend", f"expected a list of numbers from {control.range_text()}, one per painting")
    if blend and sum(blend) <= 0:
        raise setting_error("style_blend", "at least one painting needs a weight above 0")
    return [float(w) for w in blend]


def _number_text(value: float | None) -> str:
    """A number as a message shows it: ``512``, ``10,000``, ``0.25``, ``1e+300`` (never 300 digits)."""
    if value is None:
        return "?"
    if not isinstance(value, int) and value.is_integer() and abs(value) < 1e21:
        value = int(value)
    if isinstance(value, int):
        digits = len(str(abs(value)))
        return f"a {digits}-digit number" if digits > 30 else f"{value:,}" if abs(value) >= 10_000 else str(value)
    return f"{value:g}"


def _finite(value: Any) -> bool:
    """A real number (not a bool, NaN or infinity); integers of any size count."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)
