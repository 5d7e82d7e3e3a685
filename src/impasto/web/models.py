"""The trained models a studio offers: the ``*.impasto`` files in the folder given to ``--models``.

The folder is read again whenever the list is asked for, so a model copied into it shows up after
the page reloads; each file's header is read once per version of the file (its size and
modification time), never its weights. A file that is not a usable model stays in the list,
marked unusable with its one-line reason, so the person who put it there sees why.

A client names a model only by the file name this listing gave it: :meth:`ModelShelf.find`
accepts a plain file name of a usable model in the folder's current listing and nothing else (no
path, no ``..``), so no client-given path is ever opened. Model files are named by their file name
in everything a client sees, never by the server's path.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..feedforward.model import SUFFIX, ModelError, ModelInfo, read_model_info
from ..images import natural_key

log = logging.getLogger("impasto.web")

#: The longest model file name the studio accepts from a client.
MAX_NAME = 255


@dataclass(frozen=True)
class ModelEntry:
    """One ``*.impasto`` file of the folder: its ``name`` (the file name), where it is, and its
    ``info``, or the ``error`` that makes it unusable."""

    name: str
    path: Path
    mtime_ns: int
    size: int
    info: ModelInfo | None = None
    error: str | None = None

    @property
    def usable(self) -> bool:
        return self.info is not None

    def describe(self) -> dict[str, Any]:
        """What the API tells the page: the style painted, the crop size trained at and the steps."""
        if self.info is None:
            return {"name": self.name, "usable": False, "error": self.error}
        info = self.info
        return {"name": self.name, "usable": True, "style": info.style_name, "size": info.size,
                "steps": info.steps, "architecture": info.architecture.to_dict(),
                "stability_weight": info.stability_weight}


class ModelShelf:
    """The model files directly in ``folder`` (not its subfolders), read when asked."""

    def __init__(self, folder: str | os.PathLike):
        path = Path(folder).expanduser()
        if not path.is_dir():
            what = "is not a folder" if path.exists() else "does not exist"
            raise UsageError(f"--models {str(folder)!r}: {what}; give the folder that holds the *{SUFFIX} files")
        self.folder = path.resolve()
        self._lock = threading.Lock()
        self._known: dict[str, ModelEntry] = {}

    def listing(self) -> list[ModelEntry]:
        """Every ``*.impasto`` file in the folder now, in natural order of their names."""
        try:
            files = [p for p in self.folder.iterdir() if p.name.endswith(SUFFIX) and p.is_file()]
        except OSError as exc:
            log.warning("models folder %s cannot be read: %s", self.folder, exc.strerror or exc)
            return []
        entries = []
        for path in sorted(files, key=lambda p: natural_key(p.name)):
            entry = self._entry(path)
            if entry is not None:
                entries.append(entry)
        with self._lock:
            self._known = {e.name: e for e in entries}
        return entries

    def find(self, name: Any) -> ModelEntry:
        """The usable model the client named by ``name``, a file name from :meth:`listing`.

        Raises :class:`UsageError` for what is not a plain file name (a path, ``..``) or names
        an unusable file, and ``LookupError`` for a name that is not in the folder now.
        """
        if not isinstance(name, str) or not name:
            raise UsageError("model: expected the name of one of this studio's models", field="model")
        if (len(name) > MAX_NAME or not name.isprintable() or "/" in name or "\\" in name or "\0" in name
                or name in (".", "..") or os.path.isabs(name) or not name.endswith(SUFFIX)):
            raise UsageError(f"model {name[:60]!r}: not a model name; choose a model from the list", field="model")
        entry = next((e for e in self.listing() if e.name == name), None)
        if entry is None:
            raise LookupError(f"model {name!r}: no such model in this studio (it may have been removed); "
                              "reload the page for the current list")
        if entry.error is not None:
            raise UsageError(entry.error, field="model")
        return entry

    def _entry(self, path: Path) -> ModelEntry | None:
        """The entry of ``path``, read again only when the file has changed."""
        try:
            stat = path.stat()
        except OSError:  # removed while the folder was read
            return None
        with self._lock:
            known = self._known.get(path.name)
        if known is not None and (known.mtime_ns, known.size) == (stat.st_mtime_ns, stat.st_size):
            return known
        try:
            info = read_model_info(path)
        except ModelError as exc:
            reason = self.public(str(exc), path)
            log.info("models folder: %s", reason)
            return ModelEntry(path.name, path, stat.st_mtime_ns, stat.st_size, error=reason)
        return ModelEntry(path.name, path, stat.st_mtime_ns, stat.st_size, info=info)

    @staticmethod
    def public(message: str, path: Path) -> str:
        """``message`` with the server's path of the model file replaced by its file name."""
        return message.replace(repr(str(path)), repr(path.name)).replace(str(path), path.name)
