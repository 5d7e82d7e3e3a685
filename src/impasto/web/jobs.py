"""The job queue: one worker thread runs one painting at a time on the device.

HTTP handlers only submit, look and cancel; the engine runs in the worker thread, never in the
server's event loop. Each :class:`Job` carries a ``revision`` counter that goes up whenever
something a watcher would show changes (state, queue position, step, preview), so event streams
send only news. Finished pictures become :class:`StoredResult` objects: PNG bytes with the recipe
in their metadata, addressed by unguessable ids, the oldest dropped beyond ``max_results``.

Each job gets its own :class:`~impasto.cancel.CancelToken` and passes its recipe to
``Stylizer.run``: the shared Stylizer holds only caches (the network), never a job's state. At
most ``max_queue`` jobs wait; :meth:`JobManager.submit` raises :class:`QueueFull` beyond that.

A job whose request names a trained model (``--models``) paints the photo with that model in one
pass instead: one step, no VGG network. The worker keeps the models it loaded (per file version,
device and precision), the least recently used dropped beyond ``max_models``.

Nothing here knows about HTTP.
"""

from __future__ import annotations

import gc
import io
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from ..cancel import CancelToken
from ..errors import DivergedError, ImpastoError, is_out_of_memory
from ..feedforward.model import Model, ModelError, load_model
from ..feedforward.picture import paint_picture
from ..images import LoadedImage, encode
from ..optimize import Progress, Stylizer
from ..recipe import Recipe
from .models import ModelEntry, ModelShelf
from .uploads import Upload, UploadError, release_memory

log = logging.getLogger("impasto.web")

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
OUT_OF_MEMORY = "out of memory: lower the output size or the style scale, then paint again"


class QueueFull(Exception):
    """The queue already holds ``limit`` waiting jobs."""

    def __init__(self, limit: int):
        super().__init__(f"the queue is full: {limit} jobs are already waiting (this server's limit); "
                         "try again when one has finished, or cancel one")
        self.limit = limit


@dataclass
class JobRequest:
    """Everything a job needs: the recipe, the uploads and the settings the page sent; ``model``
    (then ``styles`` is empty) for a job that paints with a trained model."""

    recipe: Recipe
    content: Upload
    styles: list[Upload]
    masks: list[Upload] | None = None
    content_mask: Upload | None = None
    style_blend: list[float] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    model: ModelEntry | None = None

    def uploads(self) -> list[Upload]:
        """Every upload the job reads."""
        extra = [self.content_mask] if self.content_mask is not None else []
        return [self.content, *self.styles, *(self.masks or []), *extra]


@dataclass
class Job:
    """One request to paint, from the queue to its end. Read under the manager's lock."""

    id: str
    request: JobRequest | None  # dropped when the job ends, with the uploads it holds
    settings: dict[str, Any]
    state: str = QUEUED
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    preview: bytes | None = None
    preview_version: int = 0
    result_id: str | None = None
    error: str | None = None
    revision: int = 0
    cancel: CancelToken = field(default_factory=CancelToken)

    @property
    def cancel_requested(self) -> bool:
        return self.cancel.cancelled


@dataclass
class StoredResult:
    """A finished picture: PNG (recipe inside), thumbnail, and what re-opening it needs."""

    id: str
    job_id: str
    png: bytes
    thumbnail: bytes
    width: int
    height: int
    metadata: dict[str, Any]
    settings: dict[str, Any]
    inputs: dict[str, Any]
    steps: int
    elapsed: float
    created: float = field(default_factory=time.time)

    def describe(self, full: bool = False) -> dict[str, Any]:
        out = {"id": self.id, "job": self.job_id, "width": self.width, "height": self.height,
               "steps": self.steps, "elapsed": round(self.elapsed, 2), "created": self.created,
               "preset": self.settings.get("preset"), "settings": self.settings, "inputs": self.inputs,
               "model": self.settings.get("model"),
               "image": f"/api/results/{self.id}.png", "thumbnail": f"/api/results/{self.id}/thumb.jpg",
               "recipe_url": f"/api/results/{self.id}.json"}
        if full:
            out["metadata"] = self.metadata
        return out


def load_uploads(recipe: Recipe, content: Upload, styles: Sequence[Upload], masks: Sequence[Upload] | None = None,
                 content_mask: Upload | None = None) -> tuple[LoadedImage, list[LoadedImage], dict[str, Any]]:
    """A job's uploads decoded for the engine: the photo, the paintings, and ``masks``/``content_mask``
    as keyword arguments of ``Stylizer.run`` (only those given).

    Inputs bigger than needed are shrunk (JPEGs decoded smaller) before they become float arrays;
    twice the size the engine uses leaves its own resampling something to work with. ``impasto
    rerun`` decodes a studio result's files through this function too, so it paints the same pixels.
    """
    limit = recipe.max_pixels
    photo_side = 2 * recipe.max_size
    style_side = 2 * max(recipe.max_size, recipe.style_long_side)
    photo = content.load(f"content image {content.filename!r}", limit, photo_side)
    paintings = [s.load(f"style image {s.filename!r}", limit, style_side) for s in styles]
    extra: dict[str, Any] = {}
    if masks:
        extra["masks"] = [m.load(f"mask {m.filename!r}", limit, photo_side) for m in masks]
    if content_mask is not None:
        extra["content_mask"] = content_mask.load(f"content mask {content_mask.filename!r}", limit, photo_side)
    return photo, paintings, extra


def jpeg(rgb: np.ndarray, quality: int = 88, side: int | None = None) -> bytes:
    """(H, W, 3) floats in [0, 1] as JPEG bytes, shrunk to ``side`` on the long side if given."""
    image = Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
    if side is not None and max(image.size) > side:
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


class JobManager:
    """A FIFO of jobs and the single worker thread that runs them with one shared Stylizer.

    ``stylizer_factory`` makes the Stylizer on first use (the VGG network is loaded once and
    kept); ``preview_interval`` is the least time in seconds between two preview images;
    ``max_queue`` is the most jobs that may wait; ``release`` is called with a job's request
    when the job ends (the server unpins its uploads there); ``max_models`` is the most trained
    models kept loaded.
    """

    def __init__(self, *, stylizer_factory: Callable[[], Stylizer] = Stylizer, preview_interval: float = 0.3,
                 max_jobs: int = 200, max_results: int = 32, preview_side: int = 1024, max_queue: int = 8,
                 release: Callable[[JobRequest], None] | None = None, max_models: int = 4):
        self.stylizer_factory = stylizer_factory
        self.max_models = max_models
        self._models: OrderedDict[tuple[Any, ...], Model] = OrderedDict()  # used by the worker thread only
        self.preview_interval = preview_interval
        self.max_jobs = max_jobs
        self.max_queue = max_queue
        self.release = release
        self.max_results = max_results
        self.preview_side = preview_side
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: deque[Job] = deque()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._results: OrderedDict[str, StoredResult] = OrderedDict()
        self._running: Job | None = None
        self._stylizer: Stylizer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread (also done by the first :meth:`submit`)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._work, name="impasto-worker", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel the running job and every queued one, then end the worker thread."""
        with self._lock:
            self._stopping = True
            for job in self._queue:
                self._finish(job, CANCELLED)
            self._queue.clear()
            if self._running is not None:
                self._running.cancel.cancel()
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # -- what handlers call ---------------------------------------------------------------------
    def submit(self, request: JobRequest) -> Job:
        """Queue a job; raises :class:`QueueFull` when ``max_queue`` jobs already wait."""
        job = Job(id=secrets.token_urlsafe(16), request=request, settings=request.settings)
        with self._lock:
            if len(self._queue) >= self.max_queue:
                raise QueueFull(self.max_queue)
            self._jobs[job.id] = job
            self._queue.append(job)
            self._forget_old_jobs()
            self._touch_queue()
            self._wake.notify_all()
        self.start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        """Remove a queued job, or stop a running one after its current step."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state in FINISHED:
                return job
            job.cancel.cancel()  # a run that has not begun yet stops before its first step
            if job.state == QUEUED:
                self._queue.remove(job)
                self._finish(job, CANCELLED)
                self._touch_queue()
            else:
                self._touch(job)
            return job

    def snapshot(self, job: Job) -> dict[str, Any]:
        """The job as the page sees it (JSON-ready)."""
        with self._lock:
            position = self._queue.index(job) + 1 if job.state == QUEUED else None
            result = self._results.get(job.result_id) if job.result_id is not None else None
            ahead = None if position is None else position - 1 + (self._running is not None)
            return {"id": job.id, "state": job.state, "position": position, "ahead": ahead,
                    "cancelling": job.cancel_requested and job.state == RUNNING,
                    **job.progress, "preview_version": job.preview_version,
                    "preview": f"/api/jobs/{job.id}/preview?v={job.preview_version}" if job.preview else None,
                    "result": result.describe() if result is not None else None,
                    "error": job.error, "settings": job.settings, "revision": job.revision}

    def preview(self, job_id: str) -> bytes | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.preview if job is not None else None

    def results(self) -> list[StoredResult]:
        """This server's results, newest first."""
        with self._lock:
            return list(reversed(self._results.values()))

    def result(self, result_id: str) -> StoredResult | None:
        with self._lock:
            return self._results.get(result_id)

    def queue_length(self) -> int:
        with self._lock:
            return len(self._queue) + (self._running is not None)

    # -- the worker -----------------------------------------------------------------------------
    def _work(self) -> None:
        try:  # load the network's weights now, so that the first job starts sooner
            self._ensure_stylizer().weights()
        except Exception:  # reported by the first job that needs them
            pass
        while True:
            with self._wake:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                job = self._queue.popleft()
                job.state, job.started = RUNNING, time.time()
                self._running = job
                self._touch_queue()
                self._touch(job)
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._running = None
                    self._touch_queue()
                _free_memory()

    def _run(self, job: Job) -> None:
        try:
            request = job.request
            assert request is not None
            if request.model is not None:
                result = self._paint_with_model(job, request, request.model)
            else:
                result = self._paint(job, self._ensure_stylizer())
        except Exception as exc:  # every failure becomes the job's one-line error
            self._fail(job, self._failure_message(job, exc))
            return
        with self._lock:
            if result is None or job.cancel_requested:
                self._finish(job, CANCELLED)
                return
            self._results[result.id] = result
            while len(self._results) > self.max_results:
                self._results.popitem(last=False)
            job.result_id = result.id
            self._finish(job, DONE)

    @staticmethod
    def _failure_message(job: Job, exc: Exception) -> str:
        """What the page shows for a failed job: one line, in the page's terms, never internals."""
        if is_out_of_memory(exc):  # before ImpastoError: the engine's own message names recipe fields
            return OUT_OF_MEMORY
        if isinstance(exc, DivergedError):
            return (f"the painting diverged at step {exc.step + 1} (its loss stopped being finite); "
                    "try a lower style strength or another preset")
        if isinstance(exc, (ImpastoError, UploadError)):
            return str(exc)
        log.error("job %s failed", job.id, exc_info=exc)  # a bug or a device error: keep the traceback
        first_line = str(exc).splitlines()[0][:200] if str(exc) else ""
        return f"internal error: {type(exc).__name__}: {first_line}"

    def _ensure_stylizer(self) -> Stylizer:
        if self._stylizer is None:
            self._stylizer = self.stylizer_factory()
        return self._stylizer

    def _paint(self, job: Job, stylizer: Stylizer) -> StoredResult | None:
        """Run the engine for ``job``; ``None`` when it was cancelled."""
        request = job.request
        assert request is not None
        recipe = request.recipe
        content, styles, extra = load_uploads(recipe, request.content, request.styles, request.masks,
                                              request.content_mask)
        if job.cancel_requested:
            return None
        result = stylizer.run(content, styles, recipe=recipe, cancel=job.cancel, callback=self._watch(job),
                              style_blend=request.style_blend, **extra)
        del content, styles, extra
        if result.cancelled or job.cancel_requested:
            return None
        height, width = result.image.shape[:2]
        metadata = dict(result.metadata)
        settings = {**request.settings, "seed": result.recipe.seed}
        metadata["studio"] = {"settings": settings}
        png = encode(result.image, "PNG", alpha=result.alpha, metadata=metadata)
        final_preview = jpeg(result.image, side=self.preview_side)
        stored = StoredResult(
            id=secrets.token_urlsafe(16), job_id=job.id, png=png, thumbnail=jpeg(result.image, 85, side=320),
            width=width, height=height, metadata=metadata, settings=settings,
            inputs={"content": request.content.describe(), "styles": [s.describe() for s in request.styles],
                    "masks": [m.describe() for m in request.masks] if request.masks else None,
                    "content_mask": request.content_mask.describe() if request.content_mask else None},
            steps=result.steps, elapsed=result.elapsed)
        with self._lock:
            job.preview = final_preview
            job.preview_version += 1
        return stored

    def _paint_with_model(self, job: Job, request: JobRequest, entry: ModelEntry) -> StoredResult | None:
        """Paint ``job``'s photo with a trained model in one pass; ``None`` when it was cancelled."""
        started = time.monotonic()
        recipe = request.recipe
        with self._lock:
            job.progress = _one_step(0, time.monotonic() - started)
            self._touch(job)
        model = self._model(entry, recipe)
        photo, _, _ = load_uploads(recipe, request.content, [])
        if job.cancel_requested:
            return None
        # Always fitted to the output size: unfitted, a model paints at the photo's size, past this server's limit.
        picture = paint_picture(model, photo, recipe, shrink=True)
        del photo
        metadata = dict(picture.metadata)
        metadata["model"] = {**metadata["model"], "path": entry.name}  # never the server's path
        settings = request.settings
        metadata["studio"] = {"settings": settings}
        png = encode(picture.image, "PNG", alpha=picture.alpha, metadata=metadata)
        elapsed = time.monotonic() - started
        stored = StoredResult(
            id=secrets.token_urlsafe(16), job_id=job.id, png=png, thumbnail=jpeg(picture.image, 85, side=320),
            width=picture.width, height=picture.height, metadata=metadata, settings=settings,
            inputs={"content": request.content.describe(), "styles": [], "masks": None, "content_mask": None,
                    "model": {"name": entry.name, "style": model.info.style_name, "sha256": model.sha256}},
            steps=1, elapsed=elapsed)
        with self._lock:
            job.progress = {**_one_step(1, elapsed), "size": [picture.width, picture.height]}
            job.preview = jpeg(picture.image, side=self.preview_side)
            job.preview_version += 1
        return stored

    def _model(self, entry: ModelEntry, recipe: Recipe) -> Model:
        """The loaded model of ``entry`` on the recipe's device and precision, loaded once per file version."""
        try:
            stat = entry.path.stat()  # now: the file may have been replaced since it was listed
        except OSError:
            raise ModelError(f"model {entry.name!r}: the file is gone from the models folder; reload the page "
                             "and choose another") from None
        key = (str(entry.path), stat.st_mtime_ns, stat.st_size, recipe.device, recipe.precision)
        model = self._models.get(key)
        if model is not None:
            self._models.move_to_end(key)
            return model
        for old in [k for k in self._models if k[0] == key[0]]:  # an older version of the same file
            del self._models[old]
        try:
            model = load_model(entry.path, device=recipe.device, precision=recipe.precision)
        except ModelError as exc:
            raise ModelError(ModelShelf.public(str(exc), entry.path)) from None
        self._models[key] = model
        while len(self._models) > self.max_models:
            self._models.popitem(last=False)
        return model

    def _watch(self, job: Job) -> Callable[[Progress], None]:
        """The engine's progress callback for ``job``: copies numbers, makes throttled previews."""
        last_preview = [0.0]

        def callback(p: Progress) -> None:
            if job.cancel_requested:  # the run stops after this step: no more previews
                return
            now = time.monotonic()
            image = None
            if now - last_preview[0] >= self.preview_interval and p.step < p.total_steps:
                image = jpeg(p.image(), side=self.preview_side)
                last_preview[0] = time.monotonic()
            progress = {"step": p.step, "total_steps": p.total_steps, "scale": p.scale, "scales": p.scales,
                        "size": list(p.size), "elapsed": round(p.elapsed, 2),
                        "eta": None if p.eta is None else round(p.eta, 1),
                        "losses": {k: float(f"{v:.5g}") for k, v in p.losses.items()}}
            with self._lock:
                job.progress = progress
                if image is not None:
                    job.preview = image
                    job.preview_version += 1
                self._touch(job)

        return callback

    def _fail(self, job: Job, message: str) -> None:
        """End ``job`` as failed (or cancelled, if that was asked); takes the lock itself."""
        with self._lock:
            job.error = message
            self._finish(job, CANCELLED if job.cancel_requested else FAILED)

    # -- bookkeeping (call with the lock held) --------------------------------------------------
    def _finish(self, job: Job, state: str) -> None:
        job.state, job.finished = state, time.time()
        if job.request is not None and self.release is not None:
            self.release(job.request)
        job.request = None
        self._touch(job)

    def _touch(self, job: Job) -> None:
        job.revision += 1

    def _touch_queue(self) -> None:
        """Every queued job's position may have changed: let their watchers know."""
        for job in self._queue:
            job.revision += 1

    def _forget_old_jobs(self) -> None:
        finished = [j for j in self._jobs.values() if j.state in FINISHED]
        for job in finished[: max(0, len(self._jobs) - self.max_jobs)]:
            del self._jobs[job.id]


def _one_step(step: int, elapsed: float) -> dict[str, Any]:
    """A model job's progress: one step, one scale."""
    return {"step": step, "total_steps": 1, "scale": 1, "scales": 1, "size": None, "elapsed": round(elapsed, 2),
            "eta": None if step == 0 else 0.0, "losses": {}}


def _free_memory() -> None:
    """Give the finished job's memory back: to the system (glibc keeps freed blocks while a run
    goes, see :func:`impasto.device.keep_large_buffers`) and CUDA's cached blocks to the driver."""
    gc.collect()
    release_memory()
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    except Exception:  # freeing memory must never fail a job
        pass
