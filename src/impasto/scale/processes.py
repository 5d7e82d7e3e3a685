"""Worker processes on this machine (``impasto batch --workers N``).

Each worker is a fresh (spawned) process with its own :class:`~impasto.optimize.Stylizer` and
``cores / N`` torch threads, so N workers share the cores instead of fighting over them.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..errors import ImpastoError, UsageError
from ..optimize import Stylizer
from .executor import TaskFunction

_stylizer: Stylizer | None = None


def _start_worker(threads: int) -> None:
    import torch

    global _stylizer
    torch.set_num_threads(threads)
    _stylizer = Stylizer()


def _run(fn: TaskFunction, task: Any) -> Any:
    assert _stylizer is not None, "the pool's initializer makes the worker's Stylizer"
    return fn(_stylizer, task)


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """The torch threads each of ``workers`` processes gets: the cores shared out, at least one."""
    return max(1, (cores or os.cpu_count() or 1) // workers)


class ProcessExecutor:
    """``workers`` processes on this machine; at most two tasks per worker are outstanding."""

    def __init__(self, workers: int, *, threads: int | None = None):
        if workers < 1:
            raise UsageError(f"workers: {workers!r} is out of range: use a whole number from 1", field="workers")
        self.workers = workers
        self.threads = threads or threads_per_worker(workers)
        self._workers: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        """The worker processes, started at the first map and kept for later ones (until close)."""
        if self._workers is None:
            context = multiprocessing.get_context("spawn")  # no fork of a process holding torch's threads
            self._workers = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker,
                                                initargs=(self.threads,))
        return self._workers

    def map(self, fn: TaskFunction, tasks: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        pool = self._pool()
        pending: dict[Future[Any], int] = {}
        source = enumerate(tasks)
        try:
            while True:
                for index, task in source:
                    pending[pool.submit(_run, fn, task)] = index
                    if len(pending) >= 2 * self.workers:
                        break
                if not pending:
                    return
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = pending.pop(future)
                    error = future.exception()
                    if isinstance(error, BrokenProcessPool):
                        raise ImpastoError("a worker process died (out of memory?); run the same command again "
                                           "to continue, perhaps with fewer --workers")
                    yield index, error if error is not None else future.result()
        except BaseException:
            self.close()  # Ctrl-C or a dead worker: nothing more runs
            raise
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        if self._workers is not None:
            self._workers.shutdown(wait=True, cancel_futures=True)
            self._workers = None

    def __enter__(self) -> ProcessExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
