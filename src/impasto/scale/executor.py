"""Where painting tasks run: in this process, in worker processes, or on a Ray cluster.

Every executor maps a module-level function ``fn(stylizer, task) -> result`` over tasks, each
worker keeping one :class:`~impasto.optimize.Stylizer` (so the network and the styles'
statistics stay loaded between tasks), and yields ``(index, result)`` as tasks finish, in any
order. A task whose ``fn`` raises yields the exception instead of a result, so one bad input
never stops the others. Tasks and results travel as plain picklable values (bytes, arrays,
dicts): workers need no shared file system. At most ``in_flight`` tasks are outstanding, so
the caller's iterable is consumed lazily and never held in memory at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

from ..cancel import CancelToken
from ..optimize import Stylizer

T = TypeVar("T")
R = TypeVar("R")
TaskFunction = Callable[[Stylizer, Any], Any]


class Executor(Protocol):
    """Runs ``fn(stylizer, task)`` for each task; see the module's description."""

    workers: int

    def map(self, fn: TaskFunction, tasks: Iterable[Any]) -> Iterator[tuple[int, Any]]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Every task in this process, one after another, on one shared :class:`Stylizer`."""

    workers = 1

    def __init__(self, stylizer: Stylizer | None = None, cancel: CancelToken | None = None):
        self.stylizer = stylizer or Stylizer()
        self.cancel = cancel or CancelToken()

    def map(self, fn: TaskFunction, tasks: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        for index, task in enumerate(tasks):
            if self.cancel.cancelled:
                return
            try:
                yield index, fn(self.stylizer, task)
            except KeyboardInterrupt:
                raise
            except Exception as error:  # reported to the caller with the task's index
                yield index, error

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
