"""A batch's results file: one JSON line per job as it ends, which makes batches resumable.

Each line holds the job's input, styles, output, the hash of what decides its pixels
(:func:`~impasto.scale.jobs.job_hash`), its status (``done``, ``failed`` or ``skipped``), the
seconds it took and its one-line error. A later run of the same batch skips a job whose output
exists and whose latest ``done`` line carries the same hash.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

RESULTS_NAME = "impasto-results.jsonl"


class Ledger:
    """The results file of the batch writing into ``folder``."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / RESULTS_NAME
        self._done = self._finished_hashes()

    def _finished_hashes(self) -> dict[str, str]:
        """``{output: hash}`` of each output's latest ``done`` line (unreadable lines are ignored)."""
        done: dict[str, str] = {}
        if not self.path.exists():
            return done
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if isinstance(entry, dict) and entry.get("status") == "done":
                done[str(entry.get("output"))] = str(entry.get("recipe_hash"))
        return done

    def finished(self, output: str, recipe_hash: str) -> bool:
        """Whether ``output`` exists and was painted with ``recipe_hash``."""
        return self._done.get(output) == recipe_hash and (self.folder / output).exists()

    def record(self, *, status: str, output: str, recipe_hash: str | None, **fields: Any) -> None:
        """Append one job's line (flushed at once, so a crash loses at most the line being written)."""
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "status": status, "output": output,
                 "recipe_hash": recipe_hash, **fields}
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        if status == "done" and recipe_hash is not None:
            self._done[output] = recipe_hash
