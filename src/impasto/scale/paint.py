"""One batch job as a worker runs it: image bytes in, encoded picture out.

:func:`paint` is the module-level function every executor calls (in this process, in a worker
process or in a Ray actor), so a job is the same code path everywhere and needs no shared file
system: the driver reads the files and writes the outputs.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..images import OUTPUT_FORMATS, LoadedImage, encode, load_image_bytes
from ..optimize import ProgressCallback, Stylizer
from ..recipe import Recipe

if TYPE_CHECKING:
    from ..feedforward.model import Model


@dataclass(frozen=True)
class PaintTask:
    """A job's inputs as bytes, with the paths they were read from (recorded in the output)."""

    content: bytes
    content_path: str
    styles: tuple[bytes, ...]
    style_paths: tuple[str, ...]
    recipe: Recipe
    style_blend: tuple[float, ...] | None
    suffix: str = ".png"
    bit_depth: int = 8
    #: A trained model's file bytes and path (then ``styles`` is empty) and whether it shrinks the
    #: photo to ``recipe.max_size`` (see :func:`impasto.feedforward.picture.paint_picture`).
    model: bytes | None = None
    model_path: str | None = None
    shrink: bool = True


@dataclass(frozen=True)
class Painted:
    """A finished job: the encoded picture (recipe embedded) and what the run reports."""

    data: bytes
    metadata: dict[str, Any]
    width: int
    height: int
    steps: int
    elapsed: float


def paint(stylizer: Stylizer, task: PaintTask, callback: ProgressCallback | None = None) -> Painted:
    """Decode ``task``'s images, run its recipe on ``stylizer`` and encode the picture.

    Raises the engine's errors (:class:`~impasto.errors.ImageError` for an unreadable input, …).
    """
    limit = task.recipe.max_pixels
    content = load_image_bytes(task.content, path=task.content_path, what="content image", max_pixels=limit)
    if task.model is not None:
        return _paint_with_model(task, content)
    styles = [load_image_bytes(data, path=path, what="style image", max_pixels=limit)
              for data, path in zip(task.styles, task.style_paths, strict=True)]
    result = stylizer.run(content, styles, recipe=task.recipe, style_blend=task.style_blend, callback=callback)
    data = encode(result.image, OUTPUT_FORMATS[task.suffix.lower()], alpha=result.alpha, bit_depth=task.bit_depth,
                  metadata=result.metadata)
    height, width = result.image.shape[:2]
    return Painted(data=data, metadata=result.metadata, width=width, height=height, steps=result.steps,
                   elapsed=result.elapsed)


#: Models this process has loaded, by (sha256, device, precision); a batch uses one or a few.
_MODELS: OrderedDict[tuple[str, str, str], Model] = OrderedDict()
_MODELS_KEPT = 4
_MODELS_LOCK = threading.Lock()


def _model_for(task: PaintTask) -> Model:
    """The task's model, loaded once per process (worker processes and Ray actors keep theirs)."""
    from ..feedforward.model import load_model_bytes

    assert task.model is not None and task.model_path is not None
    key = (hashlib.sha256(task.model).hexdigest(), task.recipe.device, task.recipe.precision)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = load_model_bytes(task.model, task.model_path, device=task.recipe.device,
                                     precision=task.recipe.precision)
            _MODELS[key] = model
            while len(_MODELS) > _MODELS_KEPT:
                _MODELS.popitem(last=False)
        _MODELS.move_to_end(key)
    return model


def _paint_with_model(task: PaintTask, content: LoadedImage) -> Painted:
    from ..feedforward.picture import paint_picture

    picture = paint_picture(_model_for(task), content, task.recipe, shrink=task.shrink)
    data = encode(picture.image, OUTPUT_FORMATS[task.suffix.lower()], alpha=picture.alpha,
                  bit_depth=task.bit_depth, metadata=picture.metadata)
    return Painted(data=data, metadata=picture.metadata, width=picture.width, height=picture.height, steps=0,
                   elapsed=picture.elapsed)
