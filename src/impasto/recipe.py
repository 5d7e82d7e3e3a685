"""The recipe: every parameter of a run, with named presets.

A :class:`Recipe` is what the CLI, the web page and the Python API build and what the engine
runs. It is immutable and JSON-serializable (it is written into every output's metadata).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .device import PRECISIONS
from .errors import UsageError
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
    # Image sizes.
    max_size: int = 512
    size: tuple[int, int] | None = None
    square: str | None = None
    aspect: tuple[int, int] | None = None
    style_size: int | None = None
    keep_alpha: bool = False
    max_pixels: int = 100_000_000
    tile_size: int | None = None
    max_memory: float | None = None
    # Reporting and resources.
    log_every: int = 20
    save_every: int = 40
    device: str = "auto"
    precision: str = "auto"
    weights: str | None = None

    def __post_init__(self) -> None:
        self._validate()

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, name: str = "balanced", **overrides: Any) -> Recipe:
        """The preset's values, then the overrides (``min_size=None`` turns coarse-to-fine off)."""
        if name not in PRESETS:
            raise UsageError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
        values = dict(PRESETS[name].values)
        values["preset"] = name
        values.update(overrides)
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise UsageError(f"unknown recipe parameter(s): {', '.join(sorted(unknown))}")
        return cls(**values)

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names}
        return cls(**values)

    # -- derived --------------------------------------------------------------------------------
    def all_layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.content_layers + self.style_layers))

    # -- validation -----------------------------------------------------------------------------
    def _validate(self) -> None:
        object.__setattr__(self, "content_layers", tuple(resolve_layer(n) for n in self.content_layers))
        object.__setattr__(self, "style_layers", tuple(resolve_layer(n) for n in self.style_layers))
        if not self.style_layers:
            raise UsageError("style_layers: at least one style layer is needed")
        for name, layers in (("content_layer_weights", self.content_layers),
                             ("style_layer_weights", self.style_layers)):
            weights = getattr(self, name)
            if weights is None:
                continue
            weights = tuple(_number(name, w, minimum=0.0) for w in weights)
            if len(weights) != len(layers):
                raise UsageError(f"{name}: {len(weights)} values for {len(layers)} layers")
            object.__setattr__(self, name, weights)
        for name in ("content_weight", "style_weight", "tv_weight", "temporal_weight"):
            _number(name, getattr(self, name), minimum=0.0)
        _number("lr", self.lr, minimum=0.0, strict=True)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("loss_normalization", self.loss_normalization, NORMALIZATIONS)
        _choice("style_loss", self.style_loss, STYLE_LOSSES)
        _choice("precision", self.precision, PRECISIONS)
        _choice("lbfgs_line_search", self.lbfgs_line_search, (True, False))
        if _number("ema", self.ema, minimum=0.0) >= 1:
            raise UsageError(f"ema: {self.ema!r} must be below 1 (0 turns averaging off)")
        _choice("pooling", self.pooling, ("max", "avg"))
        _choice("preserve_color", self.preserve_color, PRESERVE_COLOR)
        _choice("color_transfer", self.color_transfer, COLOR_TRANSFERS)
        _number("style_scale", self.style_scale, minimum=0.0, strict=True)
        if len(self.content_mask_weights) != 2:
            raise UsageError("content_mask_weights: expected two numbers (black, white)")
        object.__setattr__(self, "content_mask_weights", tuple(
            _number("content_mask_weights", w, minimum=0.0) for w in self.content_mask_weights))
        _choice("square", self.square, SQUARE_MODES)
        _choice("device", self.device, DEVICES)
        _integer("steps", self.steps, minimum=1)
        if self.scale_steps is not None:
            counts = tuple(_integer("scale_steps", s, 0) for s in self.scale_steps)
            if not counts or counts[0] < 1:
                raise UsageError(f"scale_steps: {self.scale_steps!r}: the first scale needs at least 1 step")
            object.__setattr__(self, "scale_steps", counts)
        _integer("lbfgs_history", self.lbfgs_history, minimum=1)
        _integer("max_size", self.max_size, minimum=32)
        _integer("max_pixels", self.max_pixels, minimum=1)
        _integer("log_every", self.log_every, minimum=0)
        _integer("save_every", self.save_every, minimum=0)
        if self.min_size is not None:
            _integer("min_size", self.min_size, minimum=32)
        if self.style_size is not None:
            _integer("style_size", self.style_size, minimum=32)
        if self.tile_size is not None and _integer("tile_size", self.tile_size, minimum=0) and self.tile_size < 32:
            raise UsageError(f"tile_size: {self.tile_size} must be 0 (never tile) or at least 32")
        if self.max_memory is not None:
            _number("max_memory", self.max_memory, minimum=0.0, strict=True)
        _number("scale_factor", self.scale_factor, minimum=1.0, strict=True)
        _number("step_decay", self.step_decay, minimum=0.0)
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas):
            raise UsageError(f"adam_betas: {self.adam_betas!r} must be two numbers in [0, 1)")
        for name in ("size", "aspect"):
            pair = getattr(self, name)
            if pair is not None:
                pair = (_integer(name, pair[0], 1), _integer(name, pair[1], 1)) if len(pair) == 2 else None
                if pair is None:
                    raise UsageError(f"{name}: expected two positive integers")
                object.__setattr__(self, name, pair)
        if self.size is not None and min(self.size) < 32:
            raise UsageError(f"size: {self.size[0]}x{self.size[1]} is below the 32 px minimum per side")
        if self.seed is not None:
            _integer("seed", self.seed, minimum=0)
        if not isinstance(self.init, str) or not self.init:
            raise UsageError("init: use content, palette, noise or the path of an image")


@dataclass(frozen=True)
class Preset:
    description: str
    values: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "fast": Preset(
        "A quick preview: a short Adam run at 256 px, then upsampled with the photo's detail.",
        dict(content_layers=("relu4_2",), style_layers=GATYS_STYLE_LAYERS, content_weight=1.0,
             style_weight=1.5, style_loss="gram", optimizer="adam", lr=0.02, ema=0.9, steps=10,
             step_decay=0.0, min_size=256, scale_factor=2.0, max_size=512, init="palette"),
    ),
    "balanced": Preset(
        "The default: Gatys layers, coarse-to-fine Adam from 256 px with iterate averaging.",
        dict(content_layers=("relu4_2",), style_layers=GATYS_STYLE_LAYERS, content_weight=1.0,
             style_weight=1.5, style_loss="gram", optimizer="adam", lr=0.02, ema=0.9, steps=22,
             step_decay=0.25, min_size=256, scale_factor=math.sqrt(2.0), max_size=512, init="palette"),
    ),
    "quality": Preset(
        "The best result, several times slower: the same losses with many more steps per scale.",
        dict(content_layers=("relu4_2",), style_layers=GATYS_STYLE_LAYERS, content_weight=1.0,
             style_weight=1.5, style_loss="gram", optimizer="adam", lr=0.02, ema=0.9, steps=120,
             step_decay=0.5, min_size=256, scale_factor=math.sqrt(2.0), max_size=512, init="palette"),
    ),
    "reference": Preset(
        "The original notebook: conv outputs features[0,5,10,19,28] for content and style, MSE "
        "losses, style weight 100, Adam lr 0.003 betas (0.5, 0.999), one scale.",
        dict(content_layers=NOTEBOOK_LAYERS, style_layers=NOTEBOOK_LAYERS, content_weight=1.0,
             style_weight=100.0, tv_weight=0.0, style_loss="gram", loss_normalization="notebook",
             optimizer="adam", lr=0.003, adam_betas=(0.5, 0.999), ema=0.0, steps=2000, step_decay=1.0,
             min_size=None, max_size=400, log_every=20, save_every=40),
    ),
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _number(name: str, value: Any, minimum: float | None = None, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{name}: {value!r} is not a finite number")
    if minimum is not None and (value < minimum or (strict and value == minimum)):
        raise UsageError(f"{name}: {value!r} must be {'greater than' if strict else 'at least'} {minimum:g}")
    return float(value)


def _integer(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{name}: {value!r} is not a whole number")
    if value < minimum:
        raise UsageError(f"{name}: {value} must be at least {minimum}")
    return value


def _choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        shown = ", ".join(str(c) for c in choices if c is not None)
        raise UsageError(f"{name}: unknown value {value!r}; choose from {shown}")
