"""Running a batch: jobs in, pictures and a results file out, on any executor.

The driver reads each job's files only when an executor asks for its next task (so a batch of
10,000 photos never holds more than the executor's in-flight tasks in memory), skips jobs whose
output is already there with the same recipe hash, and writes every finished picture itself,
atomically, with its sidecar and a line in the results file. A job that fails is recorded with
its one-line error and the batch goes on.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import ImageError, ImpastoError
from ..images import save_encoded
from ..optimize import Progress
from .executor import Executor, LocalExecutor, TaskFunction
from .jobs import BatchJob, job_hash
from .ledger import Ledger
from .paint import Painted, PaintTask, paint


@dataclass
class BatchSummary:
    """How a batch ended: job counts, wall time and where the results file is."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    elapsed: float = 0.0
    results: Path | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.done + self.failed + self.skipped


@dataclass(frozen=True)
class JobEvent:
    """What a batch reports as each job ends (``status``: done, failed or skipped) or, in one
    process, after each of its steps (``status``: step, with ``progress``)."""

    status: str
    job: BatchJob
    seconds: float = 0.0
    error: str | None = None
    progress: Progress | None = None


def describe_error(error: BaseException) -> str:
    """One line for the results file: impasto's own message, else the exception's type and text."""
    if isinstance(error, ImpastoError):
        return str(error)
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class _FileReader:
    """Reads inputs for the driver, keeping the styles' bytes (shared by many jobs) once."""

    def __init__(self) -> None:
        self._styles: dict[str, tuple[bytes, str]] = {}

    def content(self, path: str) -> tuple[bytes, str]:
        return self._read(path, "content image")

    def style(self, path: str) -> tuple[bytes, str]:
        if path not in self._styles:
            self._styles[path] = self._read(path, "style image")
        return self._styles[path]

    def model(self, path: str) -> tuple[bytes, str]:
        if path not in self._styles:
            self._styles[path] = self._read(path, "model")
        return self._styles[path]

    @staticmethod
    def _read(path: str, what: str) -> tuple[bytes, str]:
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise ImageError(f"{what} {path!r}: file does not exist") from None
        except IsADirectoryError:
            raise ImageError(f"{what} {path!r}: is a directory, not an image file") from None
        except OSError as exc:
            raise ImageError(f"{what} {path!r}: cannot be read ({exc.strerror or exc})") from None
        return data, hashlib.sha256(data).hexdigest()


class BatchRunner:
    """Paints ``jobs`` into ``folder`` on ``executor`` (default: this process)."""

    def __init__(self, jobs: Sequence[BatchJob], folder: str | os.PathLike, *, executor: Executor | None = None,
                 bit_depth: int = 8, force: bool = False, on_event: Callable[[JobEvent], None] | None = None,
                 fn: TaskFunction | None = None):
        self.jobs = jobs
        self.folder = Path(folder)
        self.executor = executor or LocalExecutor()
        self.bit_depth = bit_depth
        self.force = force
        self.on_event = on_event or (lambda event: None)
        self.fn = fn

    def run(self) -> BatchSummary:
        started = time.perf_counter()
        self.folder.mkdir(parents=True, exist_ok=True)
        ledger = Ledger(self.folder)
        summary = BatchSummary(results=ledger.path)
        submitted: dict[int, tuple[BatchJob, str, float]] = {}

        def end(status: str, job: BatchJob, recipe_hash: str | None, seconds: float = 0.0,
                error: str | None = None, **extra: Any) -> None:
            ledger.record(status=status, output=job.output, recipe_hash=recipe_hash, input=job.content,
                          styles=list(job.styles), seconds=round(seconds, 3), error=error, **extra)
            if status == "done":
                summary.done += 1
            elif status == "failed":
                summary.failed += 1
                summary.errors.append(f"{job.output}: {error}")
            else:
                summary.skipped += 1
            self.on_event(JobEvent(status=status, job=job, seconds=seconds, error=error))

        def tasks() -> Iterator[PaintTask]:  # the executor numbers them 0, 1, 2, … as it takes them
            reader = _FileReader()
            number = itertools.count()
            for job in self.jobs:
                try:
                    content, content_sha = reader.content(job.content)
                    styles = [reader.style(path) for path in job.styles]
                    model, model_sha = reader.model(job.model) if job.model is not None else (None, None)
                except ImpastoError as error:
                    end("failed", job, None, error=describe_error(error))
                    continue
                recipe_hash = job_hash(job, content_sha, [sha for _, sha in styles], self.bit_depth, model_sha)
                if not self.force and ledger.finished(job.output, recipe_hash):
                    end("skipped", job, recipe_hash)
                    continue
                submitted[next(number)] = (job, recipe_hash, time.perf_counter())
                yield PaintTask(content=content, content_path=job.content, styles=tuple(d for d, _ in styles),
                                style_paths=job.styles, recipe=job.recipe, style_blend=job.style_blend,
                                suffix=Path(job.output).suffix, bit_depth=self.bit_depth, model=model,
                                model_path=job.model, shrink=job.shrink)

        for index, outcome in self.executor.map(self._function(submitted), tasks()):
            job, recipe_hash, began = submitted.pop(index)
            seconds = time.perf_counter() - began
            if isinstance(outcome, BaseException):
                end("failed", job, recipe_hash, seconds, describe_error(outcome))
                continue
            assert isinstance(outcome, Painted)
            try:
                save_encoded(outcome.data, self.folder / job.output, metadata=outcome.metadata)
            except ImpastoError as error:
                end("failed", job, recipe_hash, seconds, describe_error(error))
                continue
            end("done", job, recipe_hash, seconds, steps=outcome.steps, width=outcome.width, height=outcome.height)
        summary.elapsed = time.perf_counter() - started
        return summary

    def _function(self, submitted: dict[int, tuple[BatchJob, str, float]]) -> TaskFunction:
        """The task function; in this process it also reports each step of the job that runs."""
        if self.fn is not None or not isinstance(self.executor, LocalExecutor):
            return self.fn or paint

        def step(progress: Progress) -> None:  # one job at a time here: the latest submitted
            self.on_event(JobEvent(status="step", job=submitted[max(submitted)][0], progress=progress))

        return partial(paint, callback=step)
