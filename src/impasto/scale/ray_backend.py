"""Painting on a Ray cluster (``--ray auto|ADDRESS``; the extra ``impasto[ray]``).

Long-lived actors each load the network once (a :class:`~impasto.optimize.Stylizer`) and take
one task at a time from the driver. Images travel through Ray as bytes, so workers need no
shared file system. The driver keeps at most two tasks per actor in flight and pulls the next
task from the caller only when a slot frees up: a batch of 10,000 photos never has more than a
handful of pending objects. A worker that dies (killed, out of memory) is replaced and its task
is retried on another, up to ``max_retries`` times, then reported as failed. Closing (or
Ctrl-C) cancels outstanding work, kills this run's actors and shuts Ray down only if this
process started it, leaving a cluster it joined as it found it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import ImpastoError, UsageError
from .executor import TaskFunction

INSTALL_HINT = "--ray needs Ray: pip install 'impasto[ray]'"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return ray


class _Painter:
    """The actor: one Stylizer, ``threads`` torch threads, tasks one after another."""

    def __init__(self, threads: int | None):
        import torch

        from ..optimize import Stylizer

        if threads:
            torch.set_num_threads(threads)
        self.stylizer = Stylizer()

    def run(self, fn: TaskFunction, task: Any) -> Any:
        return fn(self.stylizer, task)

    def pid(self) -> int:
        return os.getpid()


class RayExecutor:
    """Runs tasks on ``workers`` Ray actors (default: as many as the cluster's CPUs allow).

    ``address``: ``auto`` joins the cluster this machine knows of (``RAY_ADDRESS`` or one started
    with ``ray start``) or starts a local one; anything else is a cluster's address. Each actor
    reserves ``threads_per_worker`` CPUs (its torch threads) and ``gpus_per_worker`` GPUs.
    """

    def __init__(self, address: str = "auto", *, workers: int | None = None, gpus_per_worker: float = 0.0,
                 threads_per_worker: int | None = None, max_retries: int = 2):
        ray = _import_ray()
        self._ray = ray
        self._started = False  # whether this executor started Ray (and so shuts it down)
        if not ray.is_initialized():
            options = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            try:
                ray.init(address="auto" if address == "auto" else address, **options)
            except ConnectionError:
                if address != "auto":
                    raise ImpastoError(f"--ray {address}: no Ray cluster answers there") from None
                ray.init(**options)  # no cluster running: start one on this machine, for this run
                self._started = True
            except (ValueError, RuntimeError) as exc:
                raise ImpastoError(f"--ray {address}: cannot reach a Ray cluster ({exc})") from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.threads = threads_per_worker or (1 if workers is None else max(1, cpus // workers))
        self.workers = workers or max(1, cpus // self.threads)
        if gpus_per_worker < 0 or (gpus_per_worker and not ray.cluster_resources().get("GPU")):
            raise UsageError(f"--ray-gpus-per-worker {gpus_per_worker:g}: the cluster has no GPUs",
                             field="gpus_per_worker")
        self._actor_class = ray.remote(num_cpus=self.threads, num_gpus=gpus_per_worker)(_Painter)
        self.max_retries = max_retries
        self._actors: list[Any] = []
        self._replacements: dict[Any, Any] = {}

    def _new_actor(self) -> Any:
        actor = self._actor_class.remote(self.threads)
        self._actors.append(actor)
        return actor

    def worker_pids(self) -> list[int]:
        """The process ids of the live actors (for tests and diagnostics)."""
        return [self._ray.get(actor.pid.remote()) for actor in self._actors]

    def map(self, fn: TaskFunction, tasks: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        ray = self._ray
        while len(self._actors) < self.workers:
            self._new_actor()
        idle = [actor for actor in self._actors for _ in range(2)]  # two slots per actor
        in_flight: dict[Any, tuple[int, Any, Any, int]] = {}  # ref -> (index, task, actor, attempts)
        source = enumerate(tasks)
        retry: list[tuple[int, Any, int]] = []
        exhausted = False
        try:
            while True:
                while idle and (retry or not exhausted):
                    if retry:
                        index, task, attempts = retry.pop()
                    else:
                        try:
                            index, task = next(source)
                        except StopIteration:
                            exhausted = True
                            break
                        attempts = 0
                    actor = idle.pop()
                    in_flight[actor.run.remote(fn, task)] = (index, task, actor, attempts)
                if not in_flight:
                    return
                (ref,), _ = ray.wait(list(in_flight), num_returns=1)
                index, task, actor, attempts = in_flight.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as error:  # fn raised: the task's own failure
                    idle.append(actor)
                    yield index, _cause(error)
                    continue
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                        ray.exceptions.ObjectLostError) as error:
                    fresh = self._replacement(actor)
                    idle = [fresh if a is actor else a for a in idle] + [fresh]
                    if attempts < self.max_retries:
                        retry.append((index, task, attempts + 1))
                    else:
                        yield index, ImpastoError(f"a Ray worker died {attempts + 1} times on this job "
                                                  f"({type(error).__name__}); it was not retried again")
                    continue
                idle.append(actor)
                yield index, result
        finally:  # stopped early (Ctrl-C, an error): the cluster drops what is still queued
            for ref in in_flight:
                try:
                    ray.cancel(ref)
                except Exception:  # already finished or gone; close() kills the actors anyway
                    pass

    def _replacement(self, dead: Any) -> Any:
        """The actor that takes over a dead one's slots (started at its first failure)."""
        if dead not in self._replacements:
            self._actors.remove(dead)
            try:
                self._ray.kill(dead, no_restart=True)
            except Exception:  # already gone
                pass
            self._replacements[dead] = self._new_actor()
        return self._replacements[dead]

    def close(self) -> None:
        """Kill this run's actors; shut Ray down if this executor started it."""
        ray = self._ray
        for actor in self._actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # already gone: nothing to release
                pass
        self._actors.clear()
        if self._started and ray.is_initialized():
            ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cause(error: Any) -> BaseException:
    """The exception a task function raised, unwrapped from Ray's RayTaskError."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error
