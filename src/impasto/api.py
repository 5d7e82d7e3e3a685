"""The Python API: one call for the common case, :class:`~impasto.optimize.engine.Stylizer` for control."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from .cancel import CancelToken
from .images import ImageSource
from .optimize import ProgressCallback, Result, Stylizer
from .recipe import Recipe
from .reporting import SampleSaver

if TYPE_CHECKING:
    from .feedforward.model import Model


def stylize(content: ImageSource, style: ImageSource | Sequence[ImageSource], *, preset: str = "balanced",
            recipe: Recipe | None = None, style_weights: Sequence[float] | None = None,
            masks: Sequence[ImageSource] | None = None, content_mask: ImageSource | None = None,
            callback: ProgressCallback | None = None, samples_dir: str | Path | None = None,
            cancel: CancelToken | None = None, **options: Any) -> Image.Image:
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
        cancel: a :class:`~impasto.cancel.CancelToken`; cancelling it from another thread stops
            the run after its current step, and the picture so far is returned.
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
                 content_mask=content_mask, callback=callback, samples_dir=samples_dir, cancel=cancel, **options)
    image = result.to_pil()
    image.info["impasto"] = result.metadata
    return image


def run(content: ImageSource, style: ImageSource | Sequence[ImageSource], *, preset: str = "balanced",
        recipe: Recipe | None = None, style_weights: Sequence[float] | None = None,
        masks: Sequence[ImageSource] | None = None, content_mask: ImageSource | None = None,
        callback: ProgressCallback | None = None, samples_dir: str | Path | None = None,
        cancel: CancelToken | None = None, **options: Any) -> Result:
    """Like :func:`stylize` but returns the full :class:`~impasto.optimize.engine.Result`.

    Invalid options raise :class:`~impasto.errors.UsageError` naming the keyword argument (the
    keywords are the recipe's field names, so the recipe's own messages name them).
    """
    recipe = recipe.replace(**options) if recipe is not None and options else recipe
    recipe = recipe or Recipe.from_preset(preset, **options)
    callbacks = [c for c in (callback,) if c is not None]
    if samples_dir is not None:
        callbacks.append(SampleSaver(samples_dir, recipe.save_every))

    def notify(progress):
        for c in callbacks:
            c(progress)

    return Stylizer().run(content, style, recipe=recipe, cancel=cancel, callback=notify if callbacks else None,
                          style_blend=style_weights, masks=masks, content_mask=content_mask)


def load_model(path: str | Path, *, device: str = "auto", precision: str = "auto") -> Model:
    """Load a trained model file (``impasto train``) to paint photos in one pass.

    ``device``: ``auto`` (CUDA, then MPS, then the CPU), ``cpu``, ``cuda`` or ``mps``;
    ``precision``: ``auto`` (bfloat16 where the device computes it natively), ``fp32`` or ``bf16``.
    A file that is not a model, is cut short or corrupt, or comes from a newer impasto raises
    :class:`~impasto.feedforward.model.ModelError` with a one-line message.

    Example:
        >>> import impasto
        >>> model = impasto.load_model("starry.impasto")  # doctest: +SKIP
        >>> picture = model.paint("photo.jpg", max_size=1024, preserve_color="none")  # doctest: +SKIP
        >>> model.info.style_name, picture.shape  # doctest: +SKIP
        ('starry_night.jpg', (683, 1024, 3))
    """
    from .feedforward.model import load_model as load

    return load(path, device=device, precision=precision)
