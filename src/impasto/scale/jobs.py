"""What a batch paints: its inputs expanded, one job per photo (and style), or a manifest's rows.

A job names its photo and paintings by path as the user gave them, its output by file name
inside the batch's folder, and carries its own recipe: the command line's, with a manifest
row's columns on top.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..images import IMAGE_EXTENSIONS, OUTPUT_FORMATS, natural_key
from ..recipe import Recipe, pixel_neutral_fields

#: Manifest columns that are not recipe fields.
JOB_COLUMNS = ("content", "styles", "output", "style_weights")


@dataclass(frozen=True)
class BatchJob:
    """One picture of a batch: ``content`` painted in ``styles`` into ``output`` (a file name)."""

    content: str
    styles: tuple[str, ...]
    output: str
    recipe: Recipe
    style_blend: tuple[float, ...] | None = None
    #: A trained model painting the photo instead of an optimization in ``styles`` (then empty).
    model: str | None = None
    #: Whether a model paints at most ``recipe.max_size`` (it was asked for) or at the photo's size.
    shrink: bool = True


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
def expand_inputs(items: Sequence[str]) -> list[str]:
    """Image files named by ``items``: files, folders (recursively, image files only) and glob
    patterns, each folder's files in natural order (``2.jpg`` before ``10.jpg``), duplicates once.

    Raises :class:`UsageError` naming an item that matches nothing.
    """
    found: list[str] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            matches = [str(p) for p in sorted(path.rglob("*"), key=natural_key)
                       if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]
            if not matches:
                raise UsageError(f"input folder {item!r} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
        elif glob.has_magic(item):
            matches = [p for p in sorted(glob.glob(item, recursive=True), key=natural_key)
                       if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_EXTENSIONS]
            if not matches:
                raise UsageError(f"input pattern {item!r} matches no image files")
        elif path.exists():
            matches = [item]
        else:
            raise UsageError(f"input {item!r}: no such file, folder or pattern")
        found.extend(matches)
    return list(dict.fromkeys(found))


def output_names(contents: Sequence[str], styles: Sequence[Sequence[str]], extension: str) -> list[str]:
    """``<photo-stem>__<style-stem>[+<style-stem>…]<extension>`` for each (photo, styles) pair.

    Photos with the same stem in different folders are told apart by their folders
    (``a_x__s.png`` and ``b_x__s.png``), so no two jobs write the same file.
    """
    stems = [Path(c).stem for c in contents]
    unique_stems = [Path(c).stem for c in dict.fromkeys(contents)]
    clashing = {s for s in unique_stems if unique_stems.count(s) > 1}
    base = os.path.commonpath([str(Path(c).parent.resolve()) for c in contents]) if contents else ""
    names = []
    for content, stem, job_styles in zip(contents, stems, styles, strict=True):
        if stem in clashing:
            relative = Path(os.path.relpath(Path(content).resolve(), base)).with_suffix("")
            stem = "_".join(relative.parts)
        names.append(f"{stem}__{'+'.join(Path(s).stem for s in job_styles)}{extension}")
    return names


def plan_jobs(contents: Sequence[str], styles: Sequence[str], recipe: Recipe, *, each_style: bool = False,
              style_blend: Sequence[float] | None = None, extension: str = ".png", model: str | None = None,
              shrink: bool = True) -> list[BatchJob]:
    """Every photo in ``styles`` blended (by ``style_blend``), or with ``each_style`` in each style alone;
    with ``model``, every photo painted by that model (``<photo>__<model>.png``)."""
    _check_extension(extension)
    if model is not None:
        names = output_names(contents, [(model,)] * len(contents), extension)
        return [BatchJob(content=c, styles=(), output=n, recipe=recipe, model=model, shrink=shrink)
                for c, n in zip(contents, names, strict=True)]
    pairs: list[tuple[str, tuple[str, ...]]] = (
        [(c, (s,)) for c in contents for s in styles] if each_style else [(c, tuple(styles)) for c in contents])
    names = output_names([c for c, _ in pairs], [s for _, s in pairs], extension)
    blend = None if each_style or style_blend is None else tuple(style_blend)
    return [BatchJob(content=c, styles=s, output=n, recipe=recipe, style_blend=blend)
            for (c, s), n in zip(pairs, names, strict=True)]


# ---------------------------------------------------------------------------------------------
# Manifests
# ---------------------------------------------------------------------------------------------
def read_manifest(path: str | os.PathLike, recipe: Recipe, extension: str = ".png", *, model: str | None = None,
                  shrink: bool = True) -> list[BatchJob]:
    """The jobs of a ``.csv`` (a header row) or ``.jsonl`` manifest, one per row.

    Columns: ``content`` (required), ``styles`` (one path, or several separated by ``;`` in CSV,
    a list in JSON lines) or ``model`` (a trained model file; default ``model``, the command
    line's), ``output`` (a file name; default ``<photo>__<style>.png``), ``style_weights`` and any
    recipe field (``max_size`` or ``max-size``) overriding ``recipe`` for that row (for a model,
    only those models use). Relative paths are relative to the manifest's folder. Empty CSV cells
    keep ``recipe``'s value.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"manifest {str(source)!r}: cannot be read ({exc.strerror or exc})") from None
    rows: list[tuple[int, dict[str, Any]]] = []
    if source.suffix.lower() == ".csv":
        typed = False
        rows = [(number, dict(row)) for number, row in enumerate(csv.DictReader(text.splitlines()), start=2)]
    elif source.suffix.lower() in (".jsonl", ".ndjson"):
        typed = True
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    raise UsageError(f"manifest {str(source)!r} line {number}: not JSON ({exc})") from None
                if not isinstance(row, dict):
                    raise UsageError(f"manifest {str(source)!r} line {number}: expected a JSON object")
                rows.append((number, row))
    else:
        raise UsageError(f"manifest {str(source)!r}: use a .csv or .jsonl file")
    if not rows:
        raise UsageError(f"manifest {str(source)!r}: no rows")
    jobs = [_manifest_job(row, number, source, recipe, typed, extension, model, shrink) for number, row in rows]
    _check_unique_outputs(jobs, source)
    return jobs


def _manifest_job(row: dict[str, Any], number: int, source: Path, recipe: Recipe, typed: bool,
                  extension: str, default_model: str | None, shrink: bool) -> BatchJob:
    where = f"manifest {str(source)!r} line {number}"
    row = {str(k).strip().lstrip("-").replace("-", "_"): v for k, v in row.items() if k}  # csv: None for extras
    if not typed:
        row = {k: v.strip() for k, v in row.items() if isinstance(v, str) and v.strip()}
    content = row.pop("content", None)
    if not isinstance(content, str) or not content:
        raise UsageError(f"{where}: no content column")
    styles_value = row.pop("styles", row.pop("style", None))
    styles = [styles_value] if isinstance(styles_value, str) and typed else styles_value
    if isinstance(styles, str):
        styles = [s.strip() for s in styles.split(";") if s.strip()]
    row_model = row.pop("model", None)
    model = _relative_to(row_model, source.parent) if isinstance(row_model, str) and row_model else row_model
    model = model or (None if styles else default_model)
    if model is not None:
        if not isinstance(model, str):
            raise UsageError(f"{where}: model must be the path of a model file")
        if styles:
            raise UsageError(f"{where}: give styles or a model, not both")
        from ..feedforward.picture import refused_fields

        refused = refused_fields({k: v for k, v in row.items() if k in _FIELD_TYPES})
        if refused:
            raise UsageError(f"{where}: {', '.join(refused)} not used with a model (a model paints in one pass)")
        shrink = shrink or "max_size" in row
        styles = []
    elif not styles or not isinstance(styles, list) or not all(isinstance(s, str) for s in styles):
        raise UsageError(f"{where}: no styles column (one path, or several separated by ';') or model column")
    output = row.pop("output", None)
    blend = row.pop("style_weights", None)
    if isinstance(blend, str):
        blend = [float(w) for w in blend.replace(";", ",").split(",") if w.strip()]
    unknown = sorted(set(row) - set(_FIELD_TYPES))
    if unknown:
        raise UsageError(f"{where}: unknown column(s) {', '.join(unknown)}")
    overrides = row if typed else {name: _parse_text(name, value, where) for name, value in row.items()}
    try:
        job_recipe = recipe.replace(**overrides) if overrides else recipe
    except UsageError as error:
        raise UsageError(f"{where}: {error}", field=error.field) from None
    base = source.parent
    content_path = _relative_to(content, base)
    style_paths = tuple(_relative_to(s, base) for s in styles)
    shown: tuple[str, ...] = style_paths or (str(model),)
    name = output if isinstance(output, str) and output else output_names([content_path], [shown], extension)[0]
    _check_extension(Path(name).suffix, where)
    if Path(name).name != name:
        raise UsageError(f"{where}: output {name!r} must be a file name, not a path")
    return BatchJob(content=content_path, styles=style_paths, output=name, recipe=job_recipe,
                    style_blend=tuple(blend) if blend else None, model=model, shrink=shrink)


def _relative_to(path: str, base: Path) -> str:
    return path if Path(path).is_absolute() else str(base / path)


def _check_unique_outputs(jobs: Iterable[BatchJob], source: Path) -> None:
    seen: set[str] = set()
    for job in jobs:
        if job.output in seen:
            raise UsageError(f"manifest {str(source)!r}: two rows write {job.output!r}; give them other outputs")
        seen.add(job.output)


def _check_extension(extension: str, where: str = "output") -> None:
    if extension.lower() not in OUTPUT_FORMATS:
        raise UsageError(f"{where}: extension {extension or '(none)'!r}: use .png, .jpg, .webp or .tif")


_FIELD_TYPES = typing.get_type_hints(Recipe)


def _parse_text(name: str, text: str, where: str) -> Any:
    """A CSV cell as the value of recipe field ``name`` (numbers, booleans, lists split on ``,``)."""
    kind = str(_FIELD_TYPES[name])
    try:
        if "tuple" in kind:
            parts = [p for p in text.replace("x", ",").replace(":", ",").split(",") if p.strip()]
            number = int if "int" in kind.split("tuple", 1)[1] and "float" not in kind else float
            return tuple(p.strip() if "str" in kind else number(p) for p in parts)
        if "bool" in kind:
            if text.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("1", "true", "yes")
        if "int" in kind and "float" not in kind:
            return int(text)
        if "float" in kind:
            return float(text)
    except ValueError:
        raise UsageError(f"{where}: {name}: {text!r} is not a valid value", field=name) from None
    return text


# ---------------------------------------------------------------------------------------------
# Identity
# ---------------------------------------------------------------------------------------------
def job_hash(job: BatchJob, content_sha256: str, style_sha256: Sequence[str], bit_depth: int = 8,
             model_sha256: str | None = None) -> str:
    """What decides a job's pixels, hashed: the recipe (less its pixel-neutral fields; for a model,
    the fields models use), the inputs' bytes (the model's), the blend and the output's encoding.
    Equal hashes mean an existing output can stay."""
    neutral = set(pixel_neutral_fields())
    recipe = {k: v for k, v in job.recipe.to_dict().items() if k not in neutral}
    record: dict[str, Any] = {"recipe": recipe, "content": content_sha256, "styles": list(style_sha256),
                              "style_blend": list(job.style_blend) if job.style_blend else None,
                              "format": Path(job.output).suffix.lower(), "bit_depth": bit_depth}
    if job.model is not None:
        from ..feedforward.picture import MODEL_FIELDS

        record["recipe"] = {k: v for k, v in recipe.items() if k in MODEL_FIELDS and (job.shrink or k != "max_size")}
        record["model"] = model_sha256
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
