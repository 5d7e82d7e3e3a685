"""One batch job as a worker runs it: image bytes in, encoded picture out.

:func:`paint` is the module-level function every executor calls (in this process, in a worker
process or in a Ray actor), so a job is the same code path everywhere and needs no shared file
system: the driver reads the files and writes the outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..images import OUTPUT_FORMATS, encode, load_image_bytes
from ..optimize import ProgressCallback, Stylizer
from ..recipe import Recipe


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
    styles = [load_image_bytes(data, path=path, what="style image", max_pixels=limit)
              for data, path in zip(task.styles, task.style_paths, strict=True)]
    result = stylizer.run(content, styles, recipe=task.recipe, style_blend=task.style_blend, callback=callback)
    data = encode(result.image, OUTPUT_FORMATS[task.suffix.lower()], alpha=result.alpha, bit_depth=task.bit_depth,
                  metadata=result.metadata)
    height, width = result.image.shape[:2]
    return Painted(data=data, metadata=result.metadata, width=width, height=height, steps=result.steps,
                   elapsed=result.elapsed)
