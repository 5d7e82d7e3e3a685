"""The resumable frame cache of a video run: finished frames, the settings that made them (the
key), and what a segmented run has finished.

A cache folder holds ``frame_000001.png …`` and a manifest ``impasto-video.json``. The manifest
records a *key*: the recipe (less the fields marked pixel-neutral, see
:func:`impasto.recipe.pixel_neutral_fields`, and the seed), digests of the style images and a
cheap identity of the source, and the seed the frames were painted with. A rerun whose key
matches continues after the last finished frame, with the stored seed (a recipe that names
another seed starts afresh); any other run clears the folder first, so stale frames are never
reused. A run stopped by ``max_frames`` also records the preview video it wrote (``preview``:
path and sha256), which the run that continues it may replace.

A run painted in segments (:mod:`.segmented`) finishes frames out of order, so its manifest also
lists the finished key frames (``keys``: the segments' first frames, 0-based) and segments
(``segments``: start, end, join and their warping errors); a rerun reuses exactly those whose
frame files are all there (:func:`finished_keys`, :func:`finished_segments`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._version import __version__
from ..errors import ImageError, UsageError
from ..images import LoadedImage, file_sha256, flatten, load_image, save_image, write_atomic
from ..recipe import Recipe, pixel_neutral_fields
from .io import FRAME_NAME, VideoInfo

if TYPE_CHECKING:
    from .checks import Target

MANIFEST_NAME = "impasto-video.json"
CACHE_FORMAT = "impasto-video-cache/1"


class FrameCache:
    """A folder of finished frames ``frame_000001.png …`` and a manifest ``impasto-video.json``.

    Frames are written atomically, so a frame file that exists is complete. The manifest holds
    the settings' ``key``: a rerun whose key differs must not reuse the frames.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._manifest: dict[str, Any] = {}

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST_NAME

    def frame_path(self, index: int) -> Path:
        """The file of frame ``index`` (1-based)."""
        return self.folder / FRAME_NAME.format(index)

    def create(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImageError(f"frame cache {str(self.folder)!r}: cannot be created ({exc.strerror or exc})") from None

    def begin(self, **manifest: Any) -> None:
        """Create the folder and write a job's manifest (its ``key``, ``seed``, ``settings`` …)."""
        self.create()
        self._manifest = {"format": CACHE_FORMAT, **manifest}
        self.record()

    def record(self, **changes: Any) -> None:
        """Update the manifest that :meth:`begin` wrote (``frames_done`` …)."""
        self._manifest.update(changes, updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        self.write_manifest(self._manifest)

    def manifest(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("format") == CACHE_FORMAT else None

    def write_manifest(self, data: dict[str, Any]) -> None:
        try:
            write_atomic(self.manifest_path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
        except OSError as exc:
            raise ImageError(f"frame cache {str(self.folder)!r}: cannot be written ({exc.strerror or exc})") from None

    def completed(self) -> int:
        """How many frames from the first on are finished (the first gap ends the count)."""
        count = 0
        while self.frame_path(count + 1).is_file():
            count += 1
        return count

    def frame_files(self) -> list[Path]:
        return [p for p in self.folder.glob("frame_*.png") if re.fullmatch(r"frame_\d{6,}\.png", p.name)]

    def clear(self) -> None:
        """Remove the frames and the manifest (and nothing else)."""
        for path in self.frame_files():
            path.unlink(missing_ok=True)
        self.manifest_path.unlink(missing_ok=True)

    def remove(self) -> None:
        """Remove the frames and the manifest, and the folder if nothing else is left in it."""
        self.clear()
        try:
            self.folder.rmdir()
        except OSError:
            pass

    def preview_record(self, output: Path) -> dict[str, Any] | None:
        """The manifest's record of ``output`` if it is the unchanged preview a ``max_frames`` run wrote."""
        manifest = self.manifest()
        record = manifest.get("preview") if manifest is not None else None
        if not isinstance(record, dict) or not output.is_file():
            return None
        same_place = Path(str(record.get("output"))).resolve() == output.resolve()
        return record if same_place and record.get("sha256") == file_sha256(output) else None

    def preview_of(self, output: Path) -> dict[str, str]:
        """What :meth:`preview_record` later recognises ``output`` by."""
        return {"output": str(output.resolve()), "sha256": file_sha256(output)}

    def load(self, index: int) -> np.ndarray:
        return flatten(load_image(self.frame_path(index), what=f"cached frame {index}"))

    def save(self, index: int, rgb: np.ndarray) -> Path:
        return save_image(rgb, self.frame_path(index))


def digest(array: np.ndarray | None) -> str | None:
    if array is None:
        return None
    return hashlib.sha256(np.ascontiguousarray(array, np.float32).tobytes()).hexdigest()[:16]


def source_identity(info: VideoInfo) -> dict[str, Any]:
    """What identifies the source's pixels cheaply: size and ends of a file, names and sizes of frames."""
    if info.kind == "frames":
        listing = hashlib.sha256()
        for path in info.files:
            stat = path.stat()
            listing.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return {"kind": "frames", "files": len(info.files), "listing": listing.hexdigest()[:16]}
    size = info.path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(info.path, "rb") as handle:
        digest.update(handle.read(1 << 20))
        if size > 2 << 20:
            handle.seek(-(1 << 20), os.SEEK_END)
            digest.update(handle.read(1 << 20))
    return {"kind": "video", "bytes": size, "digest": digest.hexdigest()[:16]}


def frame_settings(first: Recipe, later: Recipe, *, temporal: bool, flow_method: str, size: tuple[int, int],
                   styles: Sequence[LoadedImage], style_blend: Sequence[float] | None,
                   info: VideoInfo, segments: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the frames' pixels depend on: the recipes of the first and later frames, the
    flow, the size, the styles' digests and the source's identity (see :func:`settings_key`), and
    for a run in segments how they are planned and joined (``segments``)."""
    return {
        "impasto": __version__, "recipe": recipe_key(first), "later": recipe_key(later), "temporal": bool(temporal),
        "flow": flow_method, "size": list(size), "styles": [[digest(s.rgb), digest(s.alpha)] for s in styles],
        "style_blend": None if style_blend is None else [float(w) for w in style_blend],
        "source": source_identity(info), **({"segments": segments} if segments is not None else {}),
    }


def settings_key(settings: dict[str, Any]) -> str:
    """The manifest's key of :func:`frame_settings`: frames are continued only under the same key."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def recipe_key(recipe: Recipe) -> dict[str, Any]:
    """The recipe as far as it decides the frames' pixels: less the pixel-neutral fields and the
    seed, which the manifest keeps on its own (see :func:`why_not_resumable`)."""
    left_out = {*pixel_neutral_fields(), "seed"}
    return {name: value for name, value in recipe.to_dict().items() if name not in left_out}


def resume_point(target: Target, key: str, seed: int | None, *, resume: bool, overwrite: bool,
                 note: Callable[[str], None]) -> tuple[dict[str, Any] | None, int]:
    """The manifest of the cached frames a job continues (None: it starts afresh), and the seed of
    its frames: the cache's when it continues them (a rerun without a seed keeps the one drawn
    first), else ``seed`` or a new one.

    Frames that cannot be continued are removed (``note`` says why); a preview that a
    ``max_frames`` run wrote is then no longer replaced without ``overwrite``.
    """
    cache = target.cache
    manifest = cache.manifest()
    why = why_not_resumable(manifest, key, seed, resume)
    if why is None and manifest is not None:
        stored = manifest.get("seed")
        return manifest, stored if isinstance(stored, int) else secrets.randbelow(2**31)
    if target.preview is not None and not overwrite:
        raise UsageError(f"output {str(target.path)!r}: already exists (a preview whose frames cannot be "
                         f"continued: {why}; overwrite it with --force)")
    stale = len(cache.frame_files())
    if stale:
        note(f"removing {stale} frame(s) from {cache.folder}: {why}")
    cache.clear()
    return None, seed if seed is not None else secrets.randbelow(2**31)


def why_not_resumable(manifest: dict[str, Any] | None, key: str, seed: int | None, resume: bool) -> str | None:
    """Why the frames of a cache with ``manifest`` cannot be continued by a run with settings ``key``
    and recipe seed ``seed`` (None: they can; a run without a seed continues with the cache's)."""
    if manifest is None:
        return "their settings are unknown"
    if manifest.get("key") != key:
        return "they were made with other settings"
    if seed is not None and manifest.get("seed") != seed:
        return f"they were made with seed {manifest.get('seed')}, not {seed}"
    if not resume:
        return "not resuming"
    return None





def finished_keys(cache: FrameCache, manifest: dict[str, Any] | None) -> set[int]:
    """The key frames (0-based) a segmented run's ``manifest`` lists whose files are in ``cache``."""
    listed = manifest.get("keys", []) if manifest is not None else []
    return {k for k in listed if isinstance(k, int) and cache.frame_path(k + 1).is_file()}


def finished_segments(cache: FrameCache, manifest: dict[str, Any] | None) -> dict[tuple[int, int, str], dict]:
    """The segments a segmented run's ``manifest`` lists whose frame files are all in ``cache``, by
    ``(start, end, join)`` (0-based, end exclusive); each record also holds its warping errors."""
    listed = manifest.get("segments", []) if manifest is not None else []
    finished = {}
    for record in listed:
        try:
            start, end, join = int(record["start"]), int(record["end"]), str(record["join"])
        except (KeyError, TypeError, ValueError):
            continue
        if _all_there(cache, range(start + 1, end + 1)):
            finished[start, end, join] = record
    return finished


def _all_there(cache: FrameCache, indices: Iterable[int]) -> bool:
    return all(cache.frame_path(i).is_file() for i in indices)
