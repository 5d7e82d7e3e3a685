"""Painting again a picture a trained model painted (``impasto rerun`` of a model's picture).

A model's picture records the model (path, sha256, what it was trained on), the photo and the
painting options (see :func:`impasto.feedforward.picture.paint_picture`) instead of an
optimization's recipe. The model file and the photo are found as :mod:`impasto.reruns` finds
inputs (recorded path, relative to the painted file, by name beside it, or where the caller
points), with a warning when either file's bytes differ from the record. Overrides may change
only what models use (size, colour, tiles, device, precision); the same model on the same
machine paints the same pixels again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ImpastoError, UsageError
from .feedforward.picture import ModelPicture, paint_picture, painting_options, refused_fields
from .images import LoadedImage, file_sha256, load_image
from .recipe import Recipe
from .reruns import FoundInput, Recording, locate_input


def is_model_recording(recording: Recording) -> bool:
    """Whether ``recording`` is of a picture a trained model painted."""
    return isinstance(recording.metadata.get("model"), dict) and "recipe" not in recording.metadata


@dataclass
class ModelRerunPlan:
    """A model's picture to paint again: the painting options, the found model and photo, warnings."""

    recording: Recording
    recipe: Recipe
    shrink: bool
    model: FoundInput
    content: FoundInput
    warnings: list[str] = field(default_factory=list)

    @property
    def input_paths(self) -> tuple[Path, ...]:
        """Every file the rerun reads (an output must never overwrite one), the painted file included."""
        return self.model.path, self.content.path, self.recording.source, self.recording.painted

    def run(self) -> ModelPicture:
        """Paint: the picture, its metadata marked as a rerun of the painted file."""
        from .feedforward.model import load_model

        model = load_model(self.model.path, device=self.recipe.device, precision=self.recipe.precision)
        photo = self._studio_photo() if self.recording.from_studio else load_image(
            str(self.content.path), what="content image", max_pixels=self.recipe.max_pixels)
        picture = paint_picture(model, photo, self.recipe, shrink=self.shrink)
        painted = self.recording.painted if self.recording.painted.exists() else self.recording.source
        picture.metadata["rerun_of"] = {"path": str(painted), "sha256": file_sha256(painted)}
        if self.recording.from_studio:
            picture.metadata["studio"] = self.recording.metadata["studio"]
        return picture

    def _studio_photo(self) -> LoadedImage:
        """The photo decoded as the web studio decoded its upload (shrunk first), so the pixels match."""
        from .web.jobs import load_uploads
        from .web.uploads import Upload

        path = self.content.path
        upload = Upload(id="rerun", kind="content", filename=path.name, data=path.read_bytes(), width=0, height=0,
                        format="", thumbnail=b"", sha256=self.content.sha256)
        return load_uploads(self.recipe, upload, [])[0]


def plan_model_rerun(recording: Recording, *, content: str | os.PathLike | None = None,
                     model: str | os.PathLike | None = None,
                     overrides: Mapping[str, Any] | None = None) -> ModelRerunPlan:
    """Rebuild the painting options of a model's picture, apply ``overrides`` and find the files.

    Raises :class:`~impasto.errors.UsageError` naming an override models do not use, and
    :class:`~impasto.errors.ImageError` naming the option (``--model``, ``--content``) for a file
    that cannot be found.
    """
    meta = recording.metadata
    try:
        options, shrink = painting_options(meta)
    except ValueError as exc:
        raise ImpastoError(f"{str(recording.source)!r}: a model's picture whose record cannot be read "
                           f"({exc})") from None
    changes = dict(overrides or {})
    refused = refused_fields(changes)
    if refused:
        raise UsageError(f"{', '.join(refused)}: not used to paint with a model (the picture was painted by the "
                         f"model {meta['model'].get('path')!r} in one pass)", field=refused[0])
    shrink = shrink or "max_size" in changes
    if any(name in changes for name in ("size", "square", "aspect")) and "max_size" not in changes:
        options.pop("max_size", None)
        shrink = False
    recipe = Recipe.from_preset("balanced", **{**options, **changes})
    found_model = locate_input(recording, meta["model"], model, what="model", option="--model")
    found_content = locate_input(recording, meta.get("content"), content, what="content image", option="--content")
    notes = [f"{f.what} {str(f.path)!r}: its sha256 differs from the one {recording.source.name} records (the file "
             "has changed), so the picture will differ" for f in (found_model, found_content) if f.changed]
    return ModelRerunPlan(recording, recipe, shrink, found_model, found_content, notes)
