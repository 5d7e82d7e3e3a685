"""The Python API: one call for the common case, :class:`~impasto.optimize.engine.Stylizer` for control."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from .optimize import ProgressCallback, Result, Stylizer
from .images import ImageSource
from .recipe import Recipe
from .reporting import SampleSaver


def stylize(content: ImageSource, style: ImageSource | Sequence[ImageSource], *, preset: str = "balanced",
            recipe: Recipe | None = None, style_weights: Sequence[float] | None = None,
            masks: Sequence[ImageSource] | None = None, content_mask: ImageSource | None = None,
            callback: ProgressCallback | None = None, samples_dir: str | Path | None = None,
            **options: Any) -> Image.Image:
    """Paint ``content`` in the style of ``style`` and return the picture.

    Args:
        content: a path, ``PIL.Image`` or array ``(H, W[, 3|4])``.
        style: one such image or a list of them (blended by ``style_weights``, default equal).
        masks: one greyscale mask per style (white = this style; black in every mask = keep the photo).
        content_mask: greyscale; white where the photo's content matters more.
        preset: preset name (``impasto presets`` lists them); ignored when ``recipe`` is given.
        recipe: a complete :class:`~impasto.recipe.Recipe` to run.
        callback: called with a :class:`~impasto.optimize.engine.Progress` after every step.
        samples_dir: where to write intermediate images every ``save_every`` steps.
        **options: any :class:`~impasto.recipe.Recipe` field, e.g. ``steps=200, max_size=768``.

    Returns:
        An RGB ``PIL.Image`` (RGBA when ``keep_alpha=True`` and the content has transparency);
        its ``info["impasto"]`` holds the run's metadata.

    Example:
        >>> import impasto
        >>> picture = impasto.stylize("photo.jpg", "starry_night.jpg", preset="fast")  # doctest: +SKIP
        >>> picture.save("painted.png")  # doctest: +SKIP
    """
    result = run(content, style, preset=preset, recipe=recipe, style_weights=style_weights, masks=masks,
                 content_mask=content_mask, callback=callback, samples_dir=samples_dir, **options)
    image = result.to_pil()
    image.info["impasto"] = result.metadata
    return image


def run(content: ImageSource, style: ImageSource | Sequence[ImageSource], *, preset: str = "balanced",
        recipe: Recipe | None = None, style_weights: Sequence[float] | None = None,
        masks: Sequence[ImageSource] | None = None, content_mask: ImageSource | None = None,
        callback: ProgressCallback | None = None, samples_dir: str | Path | None = None,
        **options: Any) -> Result:
    """Like :func:`stylize` but returns the full :class:`~impasto.optimize.engine.Result`."""
    recipe = recipe.replace(**options) if recipe is not None and options else recipe
    recipe = recipe or Recipe.from_preset(preset, **options)
    callbacks = [c for c in (callback,) if c is not None]
    if samples_dir is not None:
        callbacks.append(SampleSaver(samples_dir, recipe.save_every))

    def notify(progress):
        for c in callbacks:
            c(progress)

    return Stylizer(recipe).run(content, style, callback=notify if callbacks else None, style_blend=style_weights,
                                masks=masks, content_mask=content_mask)
