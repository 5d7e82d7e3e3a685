"""The recipe: every parameter of a run, its bounds, and named presets.

A :class:`Recipe` is what the CLI, the web page and the Python API build and what the engine
runs. It is immutable and JSON-serializable (it is written into every output's metadata).
Its validation is the one place that holds what each value may be: every number is bounded
by what it can sensibly mean, so no interface can ask for a run that exhausts the machine.
Errors name the field (:class:`~impasto.errors.UsageError` ``.field``) so each interface can
name it as its users know it.

Fields that never change the pixels (reporting, device choice) are marked with
:func:`pixel_neutral`; :func:`pixel_neutral_fields` lists them for caches that key on what
does change the picture.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .device import PRECISIONS
from .errors import UsageError, field_error
from .images import Fitting
from .losses import STYLE_LOSSES
from .vgg import resolve_layer

GATYS_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
NOTEBOOK_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")  # features[0,5,10,19,28]

OPTIMIZERS = ("adam", "lbfgs")
NORMALIZATIONS = ("relative", "notebook")
SQUARE_MODES = (None, "crop", "pad")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRESERVE_COLOR = ("none", "luminance", "histogram", "post-yuv", "post-lab")
COLOR_TRANSFERS = ("symmetric", "cholesky", "pca")

#: Largest output side, in pixels (prints reach 8192; tiling keeps memory bounded).
MAX_SIDE = 16384
#: Largest side of a style image as the optimization sees it (after ``style_scale``), in pixels.
MAX_STYLE_SIDE = 8192
MAX_STEPS = 100_000
MAX_WEIGHT = 1e6
#: Seeds are unsigned 63-bit integers (what ``torch.manual_seed`` accepts on every platform).
MAX_SEED = 2**63 - 1


def pixel_neutral(default: Any) -> Any:
    """A field whose value never changes the picture (logging, samples, device choice)."""
    return field(default=default, metadata={"pixel_neutral": True})


@dataclass(frozen=True)
class Recipe:
    """All parameters of one stylization.

    Sizes are in pixels; weights are dimensionless multipliers of the loss terms.
    """

    preset: str = "balanced"
    # What is matched.
    content_layers: tuple[str, ...] = ("relu4_2",)
    content_layer_weights: tuple[float, ...] | None = None
    style_layers: tuple[str, ...] = GATYS_STYLE_LAYERS
    style_layer_weights: tuple[float, ...] | None = None
    content_weight: float = 1.0
    style_weight: float = 1.0
    tv_weight: float = 0.0
    style_loss: str = "gram"
    loss_normalization: str = "relative"
    pooling: str = "max"
    # How it is optimized.
    optimizer: str = "adam"
    lr: float = 0.02
    adam_betas: tuple[float, float] = (0.9, 0.999)
    lbfgs_history: int = 50
    lbfgs_line_search: bool = False
    ema: float = 0.0
    steps: int = 300
    step_decay: float = 1.0
    #: scales with a long side above this get steps × (this / long side)²: each costs about as much
    #: as one at this size, so large outputs do not multiply the finest scale's cost (None: no cap)
    equal_cost_above: int | None = None
    scale_steps: tuple[int, ...] | None = None
    min_size: int | None = None
    scale_factor: float = math.sqrt(2.0)
    init: str = "content"
    seed: int | None = None
    # Colour, place and scale.
    preserve_color: str = "none"
    color_transfer: str = "symmetric"
    style_scale: float = 1.0
    content_mask_weights: tuple[float, float] = (0.25, 2.0)
    # Video.
    temporal_weight: float = 200.0
    later_steps: int | None = None
    # Image sizes.
    max_size: int = 512
    size: tuple[int, int] | None = None
    square: str | None = None
    aspect: tuple[int, int] | None = None
    style_size: int | None = None
    keep_alpha: bool = False
    max_pixels: int = pixel_neutral(100_000_000)
    tile_size: int | None = None
    max_memory: float | None = None
    # Reporting and resources.
    log_every: int = pixel_neutral(20)
    save_every: int = pixel_neutral(40)
    device: str = pixel_neutral("auto")
    precision: str = pixel_neutral("auto")
    weights: str | None = None

    def __post_init__(self) -> None:
        self._validate()

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, name: str = "balanced", **overrides: Any) -> Recipe:
        """The preset's values, then the overrides (``min_size=None`` turns coarse-to-fine off).

        A preset's steps for later video frames follow a changed ``steps`` in proportion, unless
        ``later_steps`` is given too (``quality`` with ``steps=5`` gets 4 later steps, not 40).
        """
        if name not in PRESETS:
            raise field_error("preset", f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
        _refuse_unknown(overrides)
        values = dict(PRESETS[name].values)
        values["preset"] = name
        if "steps" in overrides and "later_steps" not in overrides and values.get("later_steps"):
            steps = overrides["steps"]
            if isinstance(steps, int) and not isinstance(steps, bool) and 0 < steps <= MAX_STEPS:
                values["later_steps"] = max(1, round(values["later_steps"] * steps / values["steps"]))
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> Recipe:
        _refuse_unknown(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """The recipe a :meth:`to_dict` wrote; unknown keys (from another version) are refused by name."""
        if not isinstance(data, dict):
            raise UsageError(f"recipe: expected a JSON object, not {type(data).__name__}")
        _refuse_unknown(data)
        values: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
        return cls(**values)

    # -- derived --------------------------------------------------------------------------------
    def all_layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.content_layers + self.style_layers))

    def fitting(self) -> Fitting:
        """The output geometry the photo (and its masks) are fitted to."""
        return Fitting(max_size=self.max_size, size=self.size, square=self.square, aspect=self.aspect)

    @property
    def frame_steps(self) -> int:
        """Steps of each video frame after the first (``later_steps``, else half of ``steps``)."""
        return self.later_steps if self.later_steps is not None else max(1, self.steps // 2)

    @property
    def style_long_side(self) -> int:
        """The style image's long side at the finest scale, in pixels (before tiling)."""
        return round((self.style_size or self.max_size) * self.style_scale)

    # -- validation -----------------------------------------------------------------------------
    def _validate(self) -> None:
        object.__setattr__(self, "content_layers", _layers("content_layers", self.content_layers))
        object.__setattr__(self, "style_layers", _layers("style_layers", self.style_layers))
        if not self.style_layers:
            raise field_error("style_layers", "at least one style layer is needed")
        for name, layers in (("content_layer_weights", self.content_layers),
                             ("style_layer_weights", self.style_layers)):
            weights = getattr(self, name)
            if weights is None:
                continue
            weights = tuple(_number(name, w, 0.0, MAX_WEIGHT) for w in _sequence(name, weights))
            if len(weights) != len(layers):
                raise field_error(name, f"{len(weights)} values for {len(layers)} layers")
            object.__setattr__(self, name, weights)
        for name in ("content_weight", "style_weight", "tv_weight", "temporal_weight"):
            _number(name, getattr(self, name), 0.0, MAX_WEIGHT)
        _number("lr", self.lr, 0.0, 10.0, strict=True)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("loss_normalization", self.loss_normalization, NORMALIZATIONS)
        _choice("style_loss", self.style_loss, STYLE_LOSSES)
        _choice("precision", self.precision, PRECISIONS)
        _choice("lbfgs_line_search", self.lbfgs_line_search, (True, False))
        if _number("ema", self.ema, 0.0, 1.0) >= 1:
            raise field_error("ema", f"{self.ema!r} must be below 1 (0 turns averaging off)")
        _choice("pooling", self.pooling, ("max", "avg"))
        _choice("preserve_color", self.preserve_color, PRESERVE_COLOR)
        _choice("color_transfer", self.color_transfer, COLOR_TRANSFERS)
        _number("style_scale", self.style_scale, 1 / 16, 16.0)
        pair = _sequence("content_mask_weights", self.content_mask_weights)
        if len(pair) != 2:
            raise field_error("content_mask_weights", "expected two numbers (black, white)")
        object.__setattr__(self, "content_mask_weights",
                           tuple(_number("content_mask_weights", w, 0.0, 1000.0) for w in pair))
        _choice("square", self.square, SQUARE_MODES)
        _choice("device", self.device, DEVICES)
        _integer("steps", self.steps, 1, MAX_STEPS)
        if self.later_steps is not None:
            _integer("later_steps", self.later_steps, 1, MAX_STEPS)
        if self.scale_steps is not None:
            counts = tuple(_integer("scale_steps", s, 0, MAX_STEPS) for s in _sequence("scale_steps", self.scale_steps))
            if not counts or counts[0] < 1:
                raise field_error("scale_steps", f"{self.scale_steps!r}: the first scale needs at least 1 step")
            object.__setattr__(self, "scale_steps", counts)
        _integer("lbfgs_history", self.lbfgs_history, 1, 1000)
        _integer("max_size", self.max_size, 32, MAX_SIDE)
        _integer("max_pixels", self.max_pixels, 1, 2**31)
        _integer("log_every", self.log_every, 0, MAX_STEPS)
        _integer("save_every", self.save_every, 0, MAX_STEPS)
        if self.min_size is not None:
            _integer("min_size", self.min_size, 32, MAX_SIDE)
        if self.equal_cost_above is not None:
            _integer("equal_cost_above", self.equal_cost_above, 32, MAX_SIDE)
        if self.style_size is not None:
            _integer("style_size", self.style_size, 32, MAX_STYLE_SIDE)
        if self.tile_size is not None and _integer("tile_size", self.tile_size, 0, MAX_SIDE) and self.tile_size < 32:
            raise field_error("tile_size", f"{self.tile_size} must be 0 (never tile) or at least 32")
        if self.max_memory is not None:
            _number("max_memory", self.max_memory, 0.0, 2.0**20, strict=True)
        _number("scale_factor", self.scale_factor, 1.0, 8.0, strict=True)
        _number("step_decay", self.step_decay, 0.0, 10.0)
        betas = _sequence("adam_betas", self.adam_betas)
        if len(betas) != 2 or not all(_finite(b) and 0 <= b < 1 for b in betas):
            raise field_error("adam_betas", f"{self.adam_betas!r} must be two numbers in [0, 1)")
        object.__setattr__(self, "adam_betas", tuple(float(b) for b in betas))
        for name, limit in (("size", MAX_SIDE), ("aspect", 10_000)):
            value = getattr(self, name)
            if value is not None:
                pair = _sequence(name, value)
                if len(pair) != 2:
                    raise field_error(name, "expected two positive whole numbers")
                object.__setattr__(self, name, (_integer(name, pair[0], 1, limit), _integer(name, pair[1], 1, limit)))
        if self.size is not None and min(self.size) < 32:
            raise field_error("size", f"{self.size[0]}x{self.size[1]} is below the 32 px minimum per side")
        if self.seed is not None:
            _integer("seed", self.seed, 0, MAX_SEED)
        init: object = self.init  # from_dict passes JSON values through unchecked
        if not isinstance(init, str) or not init:
            raise field_error("init", "use content, palette, noise, model:MODEL_FILE or the path of an image")
        if self.style_long_side > MAX_STYLE_SIDE:
            base = f"style_size {self.style_size}" if self.style_size else f"max_size {self.max_size}"
            raise field_error("style_scale", f"{self.style_scale:g} shows the painting {self.style_long_side} px "
                                             f"wide at {base}, over the {MAX_STYLE_SIDE} px budget; lower it")


def pixel_neutral_fields() -> tuple[str, ...]:
    """Names of the recipe fields that never change the picture (see :func:`pixel_neutral`)."""
    return tuple(f.name for f in dataclasses.fields(Recipe) if f.metadata.get("pixel_neutral"))


@dataclass(frozen=True)
class Preset:
    description: str
    values: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "fast": Preset(
        "A quick preview: a short Adam run at 256 px, then upsampled with the photo's detail.",
        dict(content_layers=("relu4_2",), style_layers=GATYS_STYLE_LAYERS, content_weight=1.0,
             style_weight=1.5, style_loss="gram", optimizer="adam", lr=0.02, ema=0.9, steps=10,
             step_decay=0.0, min_size=256, scale_factor=2.0, max_size=512, init="palette", later_steps=5),
    ),
    "balanced": Preset(
        "The default: Gatys layers, coarse-to-fine Adam from 256 px with iterate averaging.",
        dict(content_layers=("relu4_2",), style_layers=GATYS_STYLE_LAYERS, content_weight=1.0,
             style_weight=1.5, style_loss="gram", optimizer="adam", lr=0.02, ema=0.9, steps=22,
             step_decay=0.25, min_size=256, scale_factor=math.sqrt(2.0), max_size=512, init="palette",
             later_steps=12),
    ),
    "quality": Preset(
        "The best result, several times slower: the same losses, most steps at 512 px and above.",
        dict(content_layers=("relu4_2",), style_layers=GATYS_STYLE_LAYERS, content_weight=1.0,
             style_weight=1.5, style_loss="gram", optimizer="adam", lr=0.02, ema=0.9, steps=56,
             step_decay=0.8, equal_cost_above=512, min_size=256, scale_factor=2.0, max_size=512,
             init="palette", later_steps=40),
    ),
    "reference": Preset(
        "The original notebook: conv outputs features[0,5,10,19,28] for content and style, MSE "
        "losses, style weight 100, Adam lr 0.003 betas (0.5, 0.999), one scale.",
        dict(content_layers=NOTEBOOK_LAYERS, style_layers=NOTEBOOK_LAYERS, content_weight=1.0,
             style_weight=100.0, tv_weight=0.0, style_loss="gram", loss_normalization="notebook",
             optimizer="adam", lr=0.003, adam_betas=(0.5, 0.999), ema=0.0, steps=2000, step_decay=1.0,
             min_size=None, max_size=400, log_every=20, save_every=40, later_steps=200),
    ),
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _refuse_unknown(values: dict[str, Any]) -> None:
    known = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(str(k) for k in values if k not in known)
    if unknown:
        raise UsageError(f"unknown recipe parameter(s): {', '.join(unknown)}")


def _finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)  # math.isfinite overflows on ints past 1e308


def _shown(value: Any) -> str:
    """``repr(value)``, shortened for a number with hundreds of digits."""
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text)} characters)"


def _number(name: str, value: Any, minimum: float, maximum: float, strict: bool = False) -> float:
    """``value`` as a float in [minimum, maximum] (``strict``: above ``minimum``), else a UsageError."""
    if not _finite(value):
        raise field_error(name, f"{_shown(value)} is not a finite number")
    if value < minimum or (strict and value == minimum) or value > maximum:
        low = "above" if strict else "from"
        raise field_error(name, f"{_shown(value)} is out of range: use a number {low} {minimum:g} to {maximum:g}")
    return float(value)


def _integer(name: str, value: Any, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise field_error(name, f"{_shown(value)} is not a whole number")
    if not minimum <= value <= maximum:
        raise field_error(name, f"{_shown(value)} is out of range: use a whole number from {minimum:,} to {maximum:,}")
    return value


def _sequence(name: str, value: Any) -> tuple:
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (tuple, list)):
        raise field_error(name, f"{value!r} is not a list of values")
    return tuple(value)


def _layers(name: str, value: Any) -> tuple[str, ...]:
    return tuple(resolve_layer(str(layer)) for layer in _sequence(name, value))


def _choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        shown = ", ".join(str(c) for c in choices if c is not None)
        raise field_error(name, f"unknown value {value!r}; choose from {shown}")
