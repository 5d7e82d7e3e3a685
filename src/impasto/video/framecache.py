"""The resumable frame cache of a video run: finished frames and the settings that made them.

A cache folder holds ``frame_000001.png …`` and a manifest ``impasto-video.json``. The manifest
records a *key*: the recipe (less the fields that do not change pixels), digests of the style
images and a cheap identity of the source. A rerun whose key matches continues after the last
finished frame; any other run clears the folder first, so stale frames are never reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageError
from ..images import flatten, load_image, save_image, write_atomic
from ..recipe import Recipe
from .io import FRAME_NAME, VideoInfo

MANIFEST_NAME = "impasto-video.json"
CACHE_FORMAT = "impasto-video-cache/1"
#: Recipe fields that do not change a frame's pixels (or only by rounding) and so do not
#: invalidate cached frames.
VOLATILE_FIELDS = ("log_every", "save_every", "device", "precision", "max_pixels", "seed")


class FrameCache:
    """A folder of finished frames ``frame_000001.png …`` and a manifest ``impasto-video.json``.

    Frames are written atomically, so a frame file that exists is complete. The manifest holds
    the settings' ``key``: a rerun whose key differs must not reuse the frames.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

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


def recipe_key(recipe: Recipe) -> dict[str, Any]:
    data = recipe.to_dict()
    for name in VOLATILE_FIELDS:
        data.pop(name, None)
    return data
