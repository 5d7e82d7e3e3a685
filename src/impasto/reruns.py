"""Painting again what an output records: ``impasto rerun`` and :func:`impasto.rerun`.

Every picture impasto writes records the run that made it (see
:func:`impasto.images.save_image`): the recipe with the seed actually used, the style blend, the
path and sha256 of every input, and the sha256 of the network's weights. PNG and TIFF files carry
it inside (``impasto:recipe``), and every output has it beside it as ``OUTPUT.json`` (JPEG and
WebP outputs only there).

A rerun reads that record (from the picture, else its sidecar, or from the JSON file itself),
rebuilds the :class:`~impasto.recipe.Recipe`, applies only the overrides the caller gives, and
finds each input:

1. where the caller points (``content=``, ``styles=`` …; on the command line ``--content``,
   ``--style`` …), else
2. at its recorded path as given (relative paths from the current folder), then relative to
   the painted file's folder and each folder above it, then by file name next to the painted
   file; the first place whose file has the recorded sha256 wins, else the first that exists.

A file whose sha256 differs from the recorded one is used with a warning (one line, naming the
file); an input that cannot be found is an error that names the option that supplies it. With
the same seed on the same machine and no overrides, the rerun paints the same pixels on the CPU
(on a GPU, non-deterministic kernels may change a few values slightly).

Results of the web studio record their uploads by file name only; their files are decoded as the
studio decodes uploads (:func:`impasto.web.jobs.load_uploads`), so those rerun exactly too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from ._version import __version__
from .cancel import CancelToken
from .errors import ImageError, ImpastoError, UsageError
from .feedforward.picture import ModelPicture
from .images import OUTPUT_FORMATS, LoadedImage, check_output, file_sha256, read_metadata, save_image, sidecar_path
from .optimize import ProgressCallback, Result, Stylizer
from .optimize.inputs import MODEL_INIT
from .recipe import PRESETS, Recipe

__all__ = ["RERUN_SUFFIX", "Recording", "RerunPlan", "RerunWarning", "plan_rerun", "read_recording", "rebuild_recipe",
           "rerun"]

#: ``painted.png`` reruns into ``painted-rerun.png`` by default.
RERUN_SUFFIX = "-rerun"
#: Values of ``Recipe.init`` that name a way to start rather than an image file.
INIT_KEYWORDS = ("content", "palette", "noise")
_RECIPE_FIELDS = frozenset(f.name for f in dataclasses.fields(Recipe))


class RerunWarning(UserWarning):
    """A rerun that may not paint the recorded picture: an input or the weights differ from the record."""


# ---------------------------------------------------------------------------------------------
# The record
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recording:
    """What a painted file records about the run that made it.

    ``source`` is the file the record was read from (the picture, its sidecar or a JSON file
    named directly); ``painted`` is the picture itself (which may be gone when only the JSON is
    left); ``metadata`` is the record as :meth:`Stylizer.run <impasto.optimize.Stylizer.run>` wrote it.
    """

    source: Path
    painted: Path
    metadata: dict[str, Any]

    @property
    def folder(self) -> Path:
        """The folder of the painted file, where inputs are looked for by name."""
        return self.painted.parent

    @property
    def written_by(self) -> str:
        """The impasto version that wrote the record (``"an unknown version"`` if it does not say)."""
        version = self.metadata.get("impasto")
        return f"impasto {version}" if version else "an unknown version of impasto"

    @property
    def from_studio(self) -> bool:
        """Whether the web studio painted it (its inputs were uploads, decoded the studio's way)."""
        return isinstance(self.metadata.get("studio"), dict)

    def default_output(self) -> Path:
        """``painted.png`` → ``painted-rerun.png`` beside it, in the painted file's format (PNG for a JSON)."""
        suffix = self.painted.suffix if self.painted.suffix.lower() in OUTPUT_FORMATS else ".png"
        return self.painted.with_name(f"{self.painted.stem}{RERUN_SUFFIX}{suffix}")

    def bit_depth(self) -> int:
        """The painted picture's bits per channel (16 for a 16-bit PNG or TIFF), else 8."""
        try:
            with Image.open(self.painted) as image:
                if image.format == "TIFF":
                    bits = image.tag_v2.get(258, (8,))
                    return 16 if max(bits if isinstance(bits, tuple) else (bits,)) == 16 else 8
                if image.format == "PNG":
                    with open(self.painted, "rb") as f:
                        header = f.read(25)
                    return 16 if len(header) == 25 and header[24] == 16 else 8  # the IHDR chunk's bit depth
        except (OSError, ValueError, SyntaxError):
            pass
        return 8


def read_recording(painted: str | os.PathLike) -> Recording:
    """The record of ``painted``: embedded in the picture, else in ``painted.json`` beside it.

    ``painted`` may also be the JSON itself (``out.png.json``, or the studio's ``impasto-….json``).
    Raises :class:`~impasto.errors.ImpastoError` (one line) when there is no usable record.
    """
    path = Path(painted)
    if path.suffix.lower() == ".json":
        image = path.with_suffix("") if path.with_suffix("").suffix.lower() in OUTPUT_FORMATS else path
        return Recording(path, image, _read_json(path))
    sidecar = sidecar_path(path)
    if not path.exists() and not sidecar.exists():
        raise ImageError(f"painted image {str(path)!r}: file does not exist")
    if path.is_dir():
        raise ImageError(f"painted image {str(path)!r}: is a directory, not an image file")
    embedded = _embedded_metadata(path) if path.exists() else None
    if embedded is not None:
        return Recording(path, path, _checked_record(embedded, path))
    if sidecar.exists():
        return Recording(sidecar, path, _read_json(sidecar))
    raise ImpastoError(f"{str(path)!r} records no impasto recipe (none inside the file and no {sidecar.name} "
                       "beside it); rerun needs a picture impasto wrote, or its JSON")


def _embedded_metadata(path: Path) -> dict[str, Any] | None:
    """The record inside a PNG or TIFF, or ``None`` (JPEG and WebP carry none; other files are not ours)."""
    try:
        metadata = read_metadata(path)
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError):  # not an image, or text that is not JSON
        return None
    return metadata if isinstance(metadata, dict) and ("recipe" in metadata or "model" in metadata) else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImageError(f"recipe file {str(path)!r}: file does not exist") from None
    except OSError as exc:
        raise ImageError(f"recipe file {str(path)!r}: cannot be read ({exc.strerror or exc})") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ImpastoError(f"recipe file {str(path)!r}: not valid JSON ({str(exc).splitlines()[0][:80]})") from None
    return _checked_record(data, path)


def _checked_record(data: Any, path: Path) -> dict[str, Any]:
    if not isinstance(data, dict) or not (isinstance(data.get("recipe"), dict) or isinstance(data.get("model"), dict)):
        raise ImpastoError(f"{str(path)!r}: not an impasto record (it has no \"recipe\" or \"model\" object)")
    return data


def rebuild_recipe(recording: Recording, overrides: Mapping[str, Any] | None = None) -> tuple[Recipe, list[str]]:
    """The recorded recipe with ``overrides`` (recipe field → value) applied, and any warnings.

    A parameter the record has and this version does not know is refused by name. An override
    that is not a recipe field, or a value out of bounds, raises :class:`~impasto.errors.UsageError`
    naming the field. ``preset`` starts again from that preset, keeping every recorded value that
    differed from the recorded preset's (the seed, the size, …) and then the other overrides.
    """
    recorded = recording.metadata["recipe"]
    label = str(recording.source)
    unknown = sorted(str(k) for k in recorded if k not in _RECIPE_FIELDS)
    if unknown:
        raise ImpastoError(f"{label}: its recipe has parameter(s) that impasto {__version__} does not know: "
                           f"{', '.join(unknown)} (written by {recording.written_by}); rerun it with that version")
    try:
        recipe = Recipe.from_dict(dict(recorded))
    except UsageError as exc:
        raise ImpastoError(f"{label}: its recipe is not valid in impasto {__version__} (written by "
                           f"{recording.written_by}): {exc}") from None
    notes = []
    absent = sorted(_RECIPE_FIELDS - set(recorded))
    if absent:
        notes.append(f"{label}: its recipe has no value for {', '.join(absent)} (written by {recording.written_by}); "
                     "using today's defaults")
    changes = dict(overrides or {})
    preset = changes.pop("preset", None)
    if preset is not None and preset != recipe.preset:
        base = Recipe.from_preset(recipe.preset) if recipe.preset in PRESETS else Recipe()
        kept = {name: getattr(recipe, name) for name in _RECIPE_FIELDS - {"preset"}
                if getattr(recipe, name) != getattr(base, name)}
        return Recipe.from_preset(preset, **{**kept, **changes}), notes
    return (recipe.replace(**changes) if changes else recipe), notes


# ---------------------------------------------------------------------------------------------
# Finding the inputs
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FoundInput:
    """An input file of a rerun: where it is, and whether its bytes are the recorded ones."""

    path: Path
    what: str
    recorded_sha256: str | None
    sha256: str

    @property
    def changed(self) -> bool:
        return self.recorded_sha256 is not None and self.sha256 != self.recorded_sha256


def _candidates(recorded_path: str, folder: Path) -> list[Path]:
    """Where a recorded input may be, in order: as given; by its relative path from the painted file's
    folder, then from each folder above it (``-o out/p.png`` painted from the folder above ``out``);
    then by file name next to the painted file."""
    name = re.split(r"[\\/]", recorded_path)[-1]  # a path recorded on Windows splits too
    places = [Path(recorded_path)]
    if not Path(recorded_path).is_absolute():
        places += [base / recorded_path for base in (folder, *Path(os.path.abspath(folder)).parents)]
    if name:
        places.append(folder / name)
    unique: dict[str, Path] = {}
    for place in places:
        unique.setdefault(os.path.normcase(os.path.abspath(place)), place)
    return list(unique.values())


def _readable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.R_OK)


def locate_input(recording: Recording, identity: Any, given: str | os.PathLike | None, *, what: str,
                 option: str) -> FoundInput:
    """Find one input: ``given`` by the caller, else from its recorded ``identity`` ({path, sha256}).

    ``what`` names it in messages ("content image", "style image 2"); ``option`` is the option
    that supplies it ("--content"), named when it cannot be found.
    """
    recorded = identity if isinstance(identity, dict) else {}
    recorded_sha = recorded.get("sha256") if isinstance(recorded.get("sha256"), str) else None
    if given is not None:
        path = Path(given)
        if not _readable(path):
            problem = "does not exist" if not path.exists() else "is not a readable file"
            raise ImageError(f"{option} {str(path)!r}: {problem}")
        return FoundInput(path, what, recorded_sha, file_sha256(path))
    recorded_path = recorded.get("path")
    if not isinstance(recorded_path, str) or not recorded_path:
        raise ImageError(f"{what}: {recording.source.name} records no file for it (it was given in memory); "
                         f"pass {option} PATH")
    existing = [p for p in _candidates(recorded_path, recording.folder) if _readable(p)]
    if not existing:
        raise _not_found(what, recorded_path, recording, option)
    found = [FoundInput(p, what, recorded_sha, file_sha256(p)) for p in existing]
    return next((f for f in found if not f.changed), found[0])


def _not_found(what: str, recorded: str, recording: Recording, option: str) -> ImageError:
    return ImageError(f"{what} {recorded!r} not found (looked as recorded, from {str(recording.folder)!r} and the "
                      f"folders above it, and by name there); pass {option} PATH")


def _changed_warning(found: FoundInput, recording: Recording) -> str:
    return (f"{found.what} {str(found.path)!r}: its sha256 differs from the one {recording.source.name} records "
            "(the file has changed), so the picture will differ")


def _locate_path_field(recording: Recording, recorded: str, what: str, option: str) -> str:
    """A recipe field that holds a path (``init``, ``weights``): the file, found as inputs are."""
    existing = [p for p in _candidates(recorded, recording.folder) if _readable(p)]
    if not existing:
        raise _not_found(what, recorded, recording, option)
    return str(existing[0])


# ---------------------------------------------------------------------------------------------
# The plan and the run
# ---------------------------------------------------------------------------------------------
@dataclass
class RerunPlan:
    """Everything a rerun needs, checked before any painting: the recipe, the found inputs, warnings."""

    recording: Recording
    recipe: Recipe
    content: FoundInput
    styles: list[FoundInput]
    style_blend: list[float] | None
    masks: list[FoundInput] | None
    content_mask: FoundInput | None
    warnings: list[str] = field(default_factory=list)

    @property
    def input_paths(self) -> tuple[Path, ...]:
        """Every file the rerun reads (an output must never overwrite one), the painted file included."""
        found = [self.content, *self.styles, *(self.masks or []), *([self.content_mask] if self.content_mask else [])]
        return (*(f.path for f in found), self.recording.source, self.recording.painted)

    def weights_warning(self, stylizer: Stylizer) -> str | None:
        """A warning when the weights ``stylizer`` would use are not the recorded ones (loads them, cached)."""
        recorded = self.recording.metadata.get("weights")
        recorded_sha = recorded.get("sha256") if isinstance(recorded, dict) else None
        if not isinstance(recorded_sha, str):
            return None
        used = stylizer.weights(self.recipe)
        if used.sha256 == recorded_sha:
            return None
        where = f"the weight file {str(used.path)!r}" if self.recipe.weights else "the built-in weights"
        return (f"{where}: sha256 {used.sha256[:12]}… differs from the recorded {recorded_sha[:12]}…, so the picture "
                "will differ; pass --weights with the file that painted it")

    def run(self, stylizer: Stylizer | None = None, *, callback: ProgressCallback | None = None,
            cancel: CancelToken | None = None) -> Result:
        """Paint: the engine's :class:`~impasto.optimize.Result`, its metadata marked as a rerun."""
        stylizer = stylizer or Stylizer(self.recipe)
        content: str | LoadedImage = str(self.content.path)
        styles: list[str] | list[LoadedImage] = [str(s.path) for s in self.styles]
        extra: dict[str, Any] = {}
        if self.masks is not None:
            extra["masks"] = [str(m.path) for m in self.masks]
        if self.content_mask is not None:
            extra["content_mask"] = str(self.content_mask.path)
        if self.recording.from_studio:
            content, styles, extra = self._as_studio_uploads()
        result = stylizer.run(content, styles, recipe=self.recipe, callback=callback, cancel=cancel,
                              style_blend=self.style_blend, **extra)
        result.metadata = self.output_metadata(result.metadata)
        return result

    def output_metadata(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """The engine's record of the rerun, plus what it re-ran (and the studio's mark, which it kept)."""
        out = dict(metadata)
        painted = self.recording.painted if self.recording.painted.exists() else self.recording.source
        out["rerun_of"] = {"path": str(painted), "sha256": file_sha256(painted)}
        if self.recording.from_studio:
            out["studio"] = self.recording.metadata["studio"]
        return out

    def _as_studio_uploads(self) -> tuple[LoadedImage, list[LoadedImage], dict[str, Any]]:
        """The inputs decoded as the studio decoded its uploads (shrunk first, named by file name)."""
        from .web.jobs import load_uploads
        from .web.uploads import Upload

        def upload(found: FoundInput, kind: str) -> Upload:
            return Upload(id="rerun", kind=kind, filename=found.path.name, data=found.path.read_bytes(), width=0,
                          height=0, format="", thumbnail=b"", sha256=found.sha256)

        masks = [upload(m, "mask") for m in self.masks] if self.masks is not None else None
        content_mask = upload(self.content_mask, "mask") if self.content_mask is not None else None
        return load_uploads(self.recipe, upload(self.content, "content"), [upload(s, "style") for s in self.styles],
                            masks, content_mask)


def plan_rerun(painted: str | os.PathLike, *, content: str | os.PathLike | None = None,
               styles: Sequence[str | os.PathLike] | None = None, masks: Sequence[str | os.PathLike] | None = None,
               content_mask: str | os.PathLike | None = None, style_weights: Sequence[float] | None = None,
               overrides: Mapping[str, Any] | None = None) -> RerunPlan:
    """Read ``painted``'s record, apply ``overrides`` and find every input (see the module's description).

    ``styles`` and ``masks``, when given, replace the recorded ones one for one (same count);
    ``style_weights`` replaces the recorded blend. Warnings (changed files, an old record) are in
    :attr:`RerunPlan.warnings`; the weights are checked by :meth:`RerunPlan.weights_warning`.
    """
    recording = read_recording(painted)
    meta = recording.metadata
    if "recipe" not in meta:
        raise ImpastoError(f"{str(recording.source)!r}: painted by a trained model, not by an optimization; "
                           "impasto.rerun() and impasto rerun paint it again with the model")
    recipe, notes = rebuild_recipe(recording, overrides)
    if recipe.init.startswith(MODEL_INIT) and "init" not in (overrides or {}):
        model_path = _locate_path_field(recording, recipe.init[len(MODEL_INIT):], "init model", "--init model:")
        recipe = recipe.replace(init=MODEL_INIT + model_path)
    elif recipe.init not in INIT_KEYWORDS and "init" not in (overrides or {}):
        recipe = recipe.replace(init=_locate_path_field(recording, recipe.init, "init image", "--init"))
    if recipe.weights is not None and "weights" not in (overrides or {}):
        recipe = recipe.replace(weights=_locate_path_field(recording, recipe.weights, "weights file", "--weights"))

    found_content = locate_input(recording, meta.get("content"), content, what="content image", option="--content")
    recorded_styles = _records(meta.get("styles"))
    found_styles = _locate_each(recording, recorded_styles, len(recorded_styles), styles, "style image", "--style")
    if not found_styles:
        raise ImageError(f"{recording.source.name} records no style image; pass --style PATH")
    recorded_masks = _records(meta.get("mask_inputs"))
    recorded_count = meta.get("masks")  # the count; older records name no mask files
    mask_count = recorded_count if isinstance(recorded_count, int) else len(recorded_masks)
    found_masks = _locate_each(recording, recorded_masks, mask_count, masks, "mask", "--masks") or None
    recorded_content_mask = meta.get("content_mask_input")
    found_content_mask = None
    if content_mask is not None or recorded_content_mask is not None or meta.get("content_mask") is True:
        found_content_mask = locate_input(recording, recorded_content_mask, content_mask, what="content mask",
                                          option="--content-mask")

    recorded_blend = _recorded_blend(meta.get("style_blend"), len(found_styles))
    blend = recorded_blend if style_weights is None else list(style_weights)
    found = [found_content, *found_styles, *(found_masks or []), *([found_content_mask] if found_content_mask else [])]
    notes += [_changed_warning(f, recording) for f in found if f.changed]
    return RerunPlan(recording, recipe, found_content, found_styles, blend, found_masks, found_content_mask, notes)


def _locate_each(recording: Recording, recorded: list[Any], recorded_count: int,
                 given: Sequence[str | os.PathLike] | None, what: str, option: str) -> list[FoundInput]:
    """Several inputs of one kind (style images, masks): the ``given`` ones, one per recorded one, else the recorded."""
    if given is not None and recorded_count and len(given) != recorded_count:
        raise UsageError(f"{option}: {recording.source.name} records {recorded_count} {what}(s); give "
                         f"{recorded_count} paths, in order (got {len(given)})")
    count = len(given) if given is not None else recorded_count
    return [locate_input(recording, recorded[i] if i < len(recorded) else None,
                         given[i] if given is not None else None,
                         what=f"{what} {i + 1}" if count > 1 else what, option=option)
            for i in range(count)]


def _records(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _recorded_blend(value: Any, count: int) -> list[float] | None:
    """The recorded (normalized) blend, or ``None`` where it is the even one the engine computes itself.

    Passing ``None`` for an even blend gives the engine exactly the weights it used; a recorded
    uneven blend sums to 1, so normalizing it again leaves it as it was.
    """
    if not isinstance(value, list) or len(value) != count or len(set(value)) <= 1:
        return None
    return [float(w) for w in value]


def rerun(painted: str | os.PathLike, output: str | os.PathLike | None = None, *,
          content: str | os.PathLike | None = None, styles: Sequence[str | os.PathLike] | None = None,
          masks: Sequence[str | os.PathLike] | None = None, content_mask: str | os.PathLike | None = None,
          style_weights: Sequence[float] | None = None, force: bool = False, bit_depth: int | None = None,
          stylizer: Stylizer | None = None, callback: ProgressCallback | None = None,
          cancel: CancelToken | None = None, model: str | os.PathLike | None = None,
          **overrides: Any) -> Result | ModelPicture:
    """Paint again the picture ``painted`` records, and return the :class:`~impasto.optimize.Result`
    (for a picture a trained model painted, the :class:`~impasto.feedforward.picture.ModelPicture`).

    Args:
        painted: a picture impasto wrote (its record inside, or in ``painted.json`` beside it), or
            that JSON file.
        output: where to write the picture (with its record), refusing an existing file unless
            ``force``; ``None`` writes nothing. ``bit_depth`` defaults to the painted picture's.
        content, styles, masks, content_mask: files to use instead of the recorded ones (``styles``
            and ``masks`` one per recorded one, in order).
        style_weights: a new blend of the styles (default: the recorded one).
        model: for a model's picture, the model file to use instead of the recorded one.
        **overrides: recipe fields to change, e.g. ``steps=50``; the rest is as recorded, seed included.

    Inputs whose bytes differ from the record, and other weights, raise a :class:`RerunWarning`.
    Without overrides, on the same machine's CPU, the picture is the recorded one, pixel for pixel.

    Example:
        >>> import impasto
        >>> result = impasto.rerun("painted.png", "again.png", max_size=1024)  # doctest: +SKIP
    """
    recording = read_recording(painted)
    if "recipe" not in recording.metadata:
        return _rerun_model(recording, output, content=content, model=model, force=force, bit_depth=bit_depth,
                            overrides=overrides)
    plan = plan_rerun(painted, content=content, styles=styles, masks=masks, content_mask=content_mask,
                      style_weights=style_weights, overrides=overrides)
    stylizer = stylizer or Stylizer(plan.recipe)
    depth = bit_depth if bit_depth is not None else plan.recording.bit_depth()
    target = None if output is None else check_output(output, force=force, bit_depth=depth, inputs=plan.input_paths)
    for message in [*plan.warnings, plan.weights_warning(stylizer)]:
        if message:
            warnings.warn(message, RerunWarning, stacklevel=2)
    result = plan.run(stylizer, callback=callback, cancel=cancel)
    if target is not None:
        save_image(result.image, target, alpha=result.alpha, bit_depth=depth, metadata=result.metadata)
    return result


def _rerun_model(recording: Recording, output: str | os.PathLike | None, *, content: str | os.PathLike | None,
                 model: str | os.PathLike | None, force: bool, bit_depth: int | None,
                 overrides: Mapping[str, Any]) -> ModelPicture:
    from .model_reruns import plan_model_rerun

    plan = plan_model_rerun(recording, content=content, model=model, overrides=overrides)
    depth = bit_depth if bit_depth is not None else recording.bit_depth()
    target = None if output is None else check_output(output, force=force, bit_depth=depth, inputs=plan.input_paths)
    for message in plan.warnings:
        warnings.warn(message, RerunWarning, stacklevel=3)
    picture = plan.run()
    if target is not None:
        save_image(picture.image, target, alpha=picture.alpha, bit_depth=depth, metadata=picture.metadata)
    return picture
