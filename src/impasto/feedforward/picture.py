"""One picture painted by a model from a recipe: what ``stylize``, ``batch``, the web studio and
``rerun`` share when they paint with a model.

A model paints at the photo's own size unless the user asked for a size: the recipe's
``max_size`` comes from a preset that was chosen for optimizations, so it counts only when it was
given (``shrink``). The picture records the model (path, sha256, what it was trained on), the photo
and the painting options, which is what :func:`impasto.rerun` needs to paint it again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..images import Fitting, LoadedImage
from ..recipe import MAX_SIDE, Recipe

if TYPE_CHECKING:
    from .model import Model

#: Recipe fields painting with a model uses; every other recipe option belongs to an optimization.
MODEL_FIELDS = ("preserve_color", "color_transfer", "max_size", "size", "square", "aspect", "max_pixels",
                "keep_alpha", "tile_size", "max_memory", "device", "precision")
#: The recipe fields that change the picture's size.
SIZE_FIELDS = ("max_size", "size", "square", "aspect")


@dataclass
class ModelPicture:
    """A painted picture: ``image`` (H, W, 3) float32 in [0, 1], the photo's ``alpha`` when kept,
    the ``metadata`` to embed, the ``tile`` used (None: whole) and the painting's ``elapsed`` seconds."""

    image: np.ndarray
    alpha: np.ndarray | None
    metadata: dict[str, Any]
    tile: int | None
    elapsed: float

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def refused_fields(given: dict[str, Any]) -> list[str]:
    """The recipe fields among ``given`` (name → value) that painting with a model does not use."""
    return [name for name in given if name not in MODEL_FIELDS]


def fitting_for(recipe: Recipe, *, shrink: bool) -> Fitting | None:
    """The geometry a model paints at: ``recipe``'s size options, its ``max_size`` only when
    ``shrink`` (it was asked for); None when the photo keeps its own size."""
    if not shrink and recipe.size is None and recipe.square is None and recipe.aspect is None:
        return None
    return Fitting(max_size=recipe.max_size if shrink else MAX_SIDE, size=recipe.size, square=recipe.square,
                   aspect=recipe.aspect)


def paint_picture(model: Model, photo: LoadedImage, recipe: Recipe, *, shrink: bool = False) -> ModelPicture:
    """``photo`` painted by ``model`` with ``recipe``'s painting options (:data:`MODEL_FIELDS`).

    ``shrink``: fit the photo to ``recipe.max_size`` (else only to its size options, if any).
    Raises :class:`~impasto.errors.UsageError` for an option models do not support.
    """
    from .._version import __version__
    from .paint import paint_image

    fitting = fitting_for(recipe, shrink=shrink)
    fitted = fitting.apply(photo) if fitting is not None else photo
    painting = paint_image(model, fitted, preserve_color=recipe.preserve_color, tile=recipe.tile_size,
                           color_transfer=recipe.color_transfer, max_memory=recipe.max_memory)
    height, width = painting.image.shape[:2]
    metadata = {
        "impasto": __version__, "torch": _torch_version(), "device": str(model.device), "precision": model.precision,
        "model": model.metadata(), "content": photo.identity(),
        "painting": {"preserve_color": recipe.preserve_color, "color_transfer": recipe.color_transfer,
                     "max_size": recipe.max_size if shrink else None,
                     "size": list(recipe.size) if recipe.size else None, "square": recipe.square,
                     "aspect": list(recipe.aspect) if recipe.aspect else None, "keep_alpha": recipe.keep_alpha,
                     "tile": painting.tile, "width": width, "height": height},
        "elapsed_s": round(painting.elapsed, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    alpha = fitted.alpha if recipe.keep_alpha else None
    return ModelPicture(painting.image, alpha, metadata, painting.tile, painting.elapsed)


def painting_options(metadata: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The recipe fields (name → value) and ``shrink`` recorded by :func:`paint_picture` in a
    picture's ``metadata``; raises ``ValueError`` when the record is not one."""
    painting = metadata.get("painting")
    if not isinstance(painting, dict):
        raise ValueError("no painting options recorded")
    options: dict[str, Any] = {}
    for name in ("preserve_color", "color_transfer", "square", "keep_alpha"):
        if painting.get(name) is not None:
            options[name] = painting[name]
    for name in ("size", "aspect"):
        if painting.get(name) is not None:
            options[name] = tuple(painting[name])
    shrink = painting.get("max_size") is not None
    if shrink:
        options["max_size"] = painting["max_size"]
    if painting.get("tile"):
        options["tile_size"] = painting["tile"]
    return options, shrink


def _torch_version() -> str:
    import torch

    return str(torch.__version__)
