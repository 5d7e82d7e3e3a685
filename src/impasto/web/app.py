"""The studio's HTTP side: FastAPI routes and the static page (the access rules are in :mod:`.guard`).

Routes (all JSON errors are ``{"error": "one line"}``, with ``"field"`` when a setting is at fault):

========================================  ==========================================================
``GET  /``                                the page (``?token=`` sets the access cookie; the page
                                          also gets the XSRF cookie it echoes in ``X-XSRF-Token``)
``GET  /api/info``                        version, device, presets, limits, the XSRF cookie's name,
                                          whether models are offered
``GET  /api/models``                      the trained models offered (``--models DIR``), read now
``POST /api/uploads?kind=content|style|mask``  multipart field ``file``; the image is decoded to check it
``GET  /api/uploads/{id}``                an upload's description; ``/thumb.jpg`` its thumbnail
``POST /api/jobs``                        ``application/json``: ``{"content": id, "styles": [id..],
                                          "settings": {..}}``, optionally ``"masks": [id..]`` (one
                                          per style) and ``"content_mask": id``; or ``{"content": id,
                                          "model": name, "settings": {..}}`` to paint with a listed
                                          model; 429 when the queue is full
``GET  /api/jobs/{id}``                   the job's state; ``/events`` the same as server-sent events
``GET  /api/jobs/{id}/preview?v=N``       the latest preview (JPEG)
``POST /api/jobs/{id}/cancel``            remove a queued job or stop a running one
``GET  /api/results``                     this server's results, newest first
``GET  /api/results/{id}``                one result; ``.png`` the picture, ``.json`` its metadata
========================================  ==========================================================
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import Receive

from .._version import __version__
from ..errors import UsageError
from ..optimize import Stylizer
from ..recipe import COLOR_TRANSFERS, PRESERVE_COLOR
from .guard import AccessPolicy, Guard, cookie_name, error_response
from .jobs import FINISHED, JobManager, JobRequest, QueueFull
from .models import ModelShelf
from .settings import (
    CONTROLS,
    MAX_STYLE_SIDE,
    MIN_OUTPUT_SIDE,
    MODEL_SETTINGS,
    model_recipe_from_settings,
    preset_defaults,
    recipe_from_settings,
)
from .uploads import DECODE_SLOTS, KINDS, Upload, UploadError, UploadStore

__all__ = ["ApiError", "create_app"]

log = logging.getLogger("impasto.web")

MAX_STYLES = 4
MULTIPART_OVERHEAD = 64 * 1024
#: The largest JSON body an endpoint reads (a job's is a few hundred bytes).
MAX_JSON_BYTES = 64 * 1024
JOB_FIELDS = ("content", "styles", "masks", "content_mask", "settings", "model")


class ApiError(Exception):
    """A request refused with ``status`` and a one-line message (answered as JSON)."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.extra = extra


def create_app(*, token: str | None = None, no_token: bool = False, allowed_hosts: Sequence[str] = (),
               max_upload_mb: float = 25, max_pixels: int = 40_000_000, max_output: int = 2048,
               max_style_side: int = MAX_STYLE_SIDE, max_queue: int = 8, device: str | None = None,
               stylizer_factory: Callable[[], Stylizer] = Stylizer, preview_interval: float = 0.3,
               max_results: int = 32, models: str | os.PathLike | None = None) -> FastAPI:
    """The studio as an ASGI app.

    Args:
        token: the access token every request must carry (see :mod:`.guard`); by default a new
            random one (``app.state.token``), unless ``no_token``.
        no_token: answer without a token (the Host, Origin and XSRF checks still apply); logs a
            warning. Cannot be combined with ``token``.
        allowed_hosts: host names answered besides ``localhost`` and the loopback addresses
            (``"*"``: any name; for a server listening off loopback, where the token guards it).
        max_upload_mb: the largest accepted file, in megabytes.
        max_pixels: the most pixels an uploaded image may have.
        max_output: the largest output long side a job may ask for.
        max_style_side: the largest long side of the painting at its scale (output size × style scale).
        max_queue: the most jobs that may wait; more are refused with 429.
        device: ``cpu``, ``cuda`` or ``mps`` to force one (default: the recipe's ``auto``).
        stylizer_factory: makes the worker's Stylizer (tests may pass their own).
        preview_interval: least seconds between two preview images of a running job.
        max_results: results kept in memory; the oldest go first.
        models: a folder of trained models (``*.impasto``) to offer besides optimization (see
            :mod:`.models`); raises :class:`UsageError` when it is not a folder.
    """
    if no_token and token is not None:
        raise UsageError("--token and --no-token cannot be used together")
    if not no_token and token is None:
        token = secrets.token_urlsafe(18)
    if no_token:
        log.warning("impasto studio: no access token (--no-token): any program or person on this machine "
                    "can use the studio")
    if max_queue < 1:
        raise UsageError(f"--max-queue {max_queue}: use a whole number of at least 1")
    policy = AccessPolicy.build(token, allowed_hosts)
    shelf = ModelShelf(models) if models is not None else None
    uploads = UploadStore(max_bytes_each=int(max_upload_mb * 1024 * 1024), max_pixels=max_pixels)
    manager = JobManager(stylizer_factory=stylizer_factory, preview_interval=preview_interval,
                         max_results=max_results, max_queue=max_queue,
                         release=lambda request: uploads.unpin(request.uploads()))
    decoding = anyio.CapacityLimiter(DECODE_SLOTS)  # waiting uploads wait here, not in the thread pool

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        manager.start()
        yield
        await run_in_threadpool(manager.stop)

    app = FastAPI(title="impasto studio", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.token = token
    app.state.policy = policy
    app.state.uploads = uploads
    app.state.manager = manager
    app.state.models = shelf
    app.add_middleware(Guard, policy=policy)
    static = resources.files("impasto.web") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, str(exc), **exc.extra)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = str(exc.detail)
        return error_response(exc.status_code, "not found" if detail == "Not Found" else detail)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        return error_response(422, f"{where or 'request'}: {first.get('msg', 'invalid')}")

    # -- the page -------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def page(request: Request) -> Response:
        html = (static / "index.html").read_text(encoding="utf-8")
        response = HTMLResponse(html, headers={"Cache-Control": "no-store"})
        secure = request.url.scheme == "https"
        offered = request.query_params.get("token")
        if token is not None and offered and secrets.compare_digest(offered.encode(), token.encode()):
            response.set_cookie(cookie_name(token), token, httponly=True, samesite="strict", secure=secure)
        if not policy.xsrf_value_valid(request.cookies.get(policy.xsrf_cookie)):
            # Read by the page's script (so not httponly), echoed in the X-XSRF-Token header.
            response.set_cookie(policy.xsrf_cookie, policy.new_xsrf_value(), samesite="strict", secure=secure)
        return response

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        return {"version": __version__, "device": _device_label(device), "presets": preset_defaults(),
                "default_preset": "balanced", "preserve_color": list(PRESERVE_COLOR),
                "queue": manager.queue_length(), "xsrf_cookie": policy.xsrf_cookie,
                "models": shelf is not None, "model_settings": list(MODEL_SETTINGS),
                "color_transfer": list(COLOR_TRANSFERS),
                "limits": {"upload_bytes": uploads.max_bytes_each, "pixels": max_pixels, "styles": MAX_STYLES,
                           "min_size": MIN_OUTPUT_SIDE, "max_size": max_output, "max_queue": max_queue,
                           "style_side": max_style_side,
                           "style_scale": [CONTROLS["style_scale"].low, CONTROLS["style_scale"].high],
                           "steps": [CONTROLS["steps"].low, CONTROLS["steps"].high]}}

    @app.get("/api/models")
    def model_list() -> dict[str, Any]:
        if shelf is None:
            return {"enabled": False, "models": []}
        return {"enabled": True, "models": [entry.describe() for entry in shelf.listing()]}

    # -- uploads --------------------------------------------------------------------------------
    @app.post("/api/uploads", status_code=201)
    async def upload(request: Request, kind: str = "content") -> Response:
        if kind not in KINDS:
            raise ApiError(400, f"unknown upload kind {kind[:20]!r}; use {', '.join(KINDS)}")
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise ApiError(400, "send the image as multipart/form-data in a field named 'file'")
        limit = uploads.max_bytes_each
        body = await _read_body(request, limit + MULTIPART_OVERHEAD,
                                f"the file is too large; the limit is {limit / (1024 * 1024):g} MB")
        data, filename = await _form_file(request, body)
        try:
            item = await anyio.to_thread.run_sync(uploads.add, data, kind, filename, limiter=decoding)
        except UploadError as exc:
            raise ApiError(exc.status, str(exc)) from None
        return JSONResponse(item.describe(), status_code=201)

    @app.get("/api/uploads/{upload_id}")
    def upload_info(upload_id: str) -> dict[str, Any]:
        return _found(uploads.get(upload_id), "upload").describe()

    @app.get("/api/uploads/{upload_id}/thumb.jpg")
    def upload_thumb(upload_id: str) -> Response:
        item = _found(uploads.get(upload_id), "upload")
        return Response(item.thumbnail, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    # -- jobs -----------------------------------------------------------------------------------
    @app.post("/api/jobs", status_code=201)
    async def start_job(request: Request) -> Response:
        body = await _read_json(request)
        try:  # in a thread: naming a model reads the models folder
            job_request = await run_in_threadpool(_job_request, body, uploads, max_output=max_output, device=device,
                                                  max_pixels=max_pixels, max_style_side=max_style_side, shelf=shelf)
        except UsageError as exc:
            raise ApiError(422, str(exc), **({"field": exc.field} if exc.field else {})) from None
        except LookupError as exc:
            raise ApiError(404, str(exc).strip("'\"")) from None
        held = job_request.uploads()
        uploads.pin(held)  # counted in the upload budget, and kept, until the job ends
        try:
            job = manager.submit(job_request)
        except QueueFull as exc:
            uploads.unpin(held)
            return error_response(429, str(exc), limit=exc.limit)
        return JSONResponse(manager.snapshot(job), status_code=201)

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str) -> dict[str, Any]:
        return manager.snapshot(_found(manager.get(job_id), "job"))

    @app.get("/api/jobs/{job_id}/events")
    async def job_events(job_id: str, request: Request) -> StreamingResponse:
        job = _found(manager.get(job_id), "job")

        async def stream() -> AsyncIterator[str]:
            seen, quiet = -1, 0.0
            yield "retry: 1000\n\n"
            while True:
                if job.revision != seen:
                    snapshot = manager.snapshot(job)
                    seen = snapshot["revision"]
                    yield f"data: {json.dumps(snapshot)}\n\n"
                    if snapshot["state"] in FINISHED:
                        return
                    quiet = 0.0
                elif quiet >= 15:
                    yield ": still here\n\n"
                    quiet = 0.0
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.1)
                quiet += 0.1

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/api/jobs/{job_id}/preview")
    def job_preview(job_id: str) -> Response:
        _found(manager.get(job_id), "job")
        data = manager.preview(job_id)
        if data is None:
            raise ApiError(404, "no preview yet")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel_job(job_id: str) -> dict[str, Any]:
        return manager.snapshot(_found(manager.cancel(job_id), "job"))

    # -- results --------------------------------------------------------------------------------
    @app.get("/api/results")
    def results() -> dict[str, Any]:
        return {"results": [r.describe() for r in manager.results()]}

    @app.get("/api/results/{result_id}.png")
    def result_png(result_id: str) -> Response:
        item = _found(manager.result(result_id), "result")
        name = f"impasto-{_file_part(item.settings)}-{item.id[:6]}.png"
        return Response(item.png, media_type="image/png",
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "Cache-Control": "private, max-age=86400"})

    @app.get("/api/results/{result_id}.json")
    def result_json(result_id: str) -> Response:
        item = _found(manager.result(result_id), "result")
        return Response(json.dumps(item.metadata, indent=2, sort_keys=True), media_type="application/json",
                        headers={"Content-Disposition": f'inline; filename="impasto-{item.id[:6]}.json"'})

    @app.get("/api/results/{result_id}/thumb.jpg")
    def result_thumb(result_id: str) -> Response:
        item = _found(manager.result(result_id), "result")
        return Response(item.thumbnail, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})

    @app.get("/api/results/{result_id}")
    def result_info(result_id: str) -> dict[str, Any]:
        return _found(manager.result(result_id), "result").describe(full=True)

    return app


async def _read_body(request: Request, limit: int, too_big: str) -> bytes:
    """The request's body, refused with 413 as soon as it passes ``limit`` bytes (declared or sent)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, too_big)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, too_big)
    return bytes(body)


async def _read_json(request: Request) -> Any:
    """A JSON endpoint's body: ``application/json`` (else 415), at most :data:`MAX_JSON_BYTES` (else
    413), parseable and not absurdly nested (else 400)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "send the request as JSON (Content-Type: application/json)")
    body = await _read_body(request, MAX_JSON_BYTES, f"the request body is too large; the limit is "
                                                     f"{MAX_JSON_BYTES // 1024} KB")
    try:
        return json.loads(body)
    except RecursionError:
        raise ApiError(400, "the request body is nested too deeply") from None
    except ValueError:  # not JSON, not UTF-8, or a number too long to convert
        raise ApiError(400, "the request body is not JSON") from None


async def _form_file(request: Request, body: bytes) -> tuple[bytes, str | None]:
    """``(data, file name)`` of the multipart field ``file`` in an already-read ``body``."""
    form_request = Request(request.scope, receive=_replay(body))
    try:
        form = await form_request.form(max_files=1, max_fields=4)
    except Exception:  # python-multipart's errors have no common base class
        raise ApiError(400, "the upload is not readable multipart/form-data") from None
    try:
        file = form.get("file")
        if file is None or isinstance(file, str):
            raise ApiError(400, "no file: send the image in a field named 'file'")
        return await file.read(), file.filename
    finally:
        await form.close()


def _job_request(body: Any, uploads: UploadStore, *, max_output: int, device: str | None, max_pixels: int,
                 max_style_side: int = MAX_STYLE_SIDE, shelf: ModelShelf | None = None) -> JobRequest:
    """Check a job's JSON body; raises UsageError (422) or LookupError (404, an unknown upload or model)."""
    if not isinstance(body, dict):
        raise UsageError("expected a JSON object with content, styles and settings")
    unknown = sorted(str(k) for k in body if k not in JOB_FIELDS)
    if unknown:
        raise UsageError(f"unknown field(s): {', '.join(unknown)}"[:200])

    def upload(upload_id: Any, what: str) -> Upload:
        if not isinstance(upload_id, str) or not upload_id:
            raise UsageError(f"{what}: expected an upload id")
        item = uploads.get(upload_id)
        if item is None:
            raise LookupError(f"{what}: no such upload (it may have expired); upload the image again")
        return item

    if body.get("content") is None:
        raise UsageError("content: upload a photo first")
    content = upload(body["content"], "content")
    if body.get("model") is not None:
        return _model_job_request(body, content, shelf, max_output=max_output, device=device, max_pixels=max_pixels)
    style_ids = body.get("styles")
    if not isinstance(style_ids, list) or not style_ids:
        raise UsageError("styles: upload at least one painting")
    if len(style_ids) > MAX_STYLES:
        raise UsageError(f"styles: at most {MAX_STYLES} paintings, not {len(style_ids)}")
    styles = [upload(s, f"style {i + 1}") for i, s in enumerate(style_ids)]
    masks = _masks(body.get("masks"), len(styles), upload)
    content_mask = None if body.get("content_mask") is None else upload(body["content_mask"], "content_mask")
    settings = body.get("settings")
    recipe, blend, checked = recipe_from_settings({} if settings is None else settings, max_output=max_output,
                                                  device=device, max_pixels=max_pixels,
                                                  max_style_side=max_style_side)
    if blend is not None and len(blend) != len(styles):
        raise UsageError(f"style_blend: {len(blend)} weights for {len(styles)} paintings", field="style_blend")
    return JobRequest(recipe=recipe, content=content, styles=styles, masks=masks, content_mask=content_mask,
                      style_blend=blend, settings=checked)


def _model_job_request(body: dict[str, Any], content: Upload, shelf: ModelShelf | None, *, max_output: int,
                       device: str | None, max_pixels: int) -> JobRequest:
    """A job that paints ``content`` with the model ``body["model"]`` names (a name from the listing)."""
    if shelf is None:
        raise UsageError("model: this studio offers no models (start it with impasto serve --models DIR)",
                         field="model")
    for key in ("styles", "masks", "content_mask"):
        if body.get(key) not in (None, []):
            raise UsageError(f"{key}: a model paints in the style it was trained on; send no paintings or masks "
                             "with a model", field=key)
    entry = shelf.find(body["model"])
    settings = body.get("settings")
    recipe, checked = model_recipe_from_settings({} if settings is None else settings, max_output=max_output,
                                                 device=device, max_pixels=max_pixels)
    return JobRequest(recipe=recipe, content=content, styles=[], settings={"model": entry.name, **checked},
                      model=entry)


def _file_part(settings: dict[str, Any]) -> str:
    """What a result's download name says it is: the preset, or the model's name (safe characters only)."""
    model = settings.get("model")
    if isinstance(model, str):
        return "model-" + (re.sub(r"[^A-Za-z0-9._-]+", "_", model.rsplit(".", 1)[0])[:40] or "model")
    return str(settings.get("preset") or "picture")


def _masks(mask_ids: Any, count: int, upload: Callable[[Any, str], Upload]) -> list[Upload] | None:
    """The styles' masks: ``null``, or a list of one upload id (or ``null``) per style, all or none set."""
    if mask_ids is None:
        return None
    if not isinstance(mask_ids, list):
        raise UsageError(f"masks: expected a list of upload ids (or nulls), one per painting, not "
                         f"{type(mask_ids).__name__}")
    if all(m is None for m in mask_ids):
        return None
    if len(mask_ids) != count:
        raise UsageError(f"masks: expected one entry (an upload id or null) per style, {count} in all")
    if any(m is None for m in mask_ids):
        raise UsageError("masks: give every painting a mask, or none of them")
    return [upload(m, f"mask {i + 1}") for i, m in enumerate(mask_ids)]


def _found(item: Any, what: str) -> Any:
    if item is None:
        raise HTTPException(404, f"no such {what}")
    return item


def _replay(body: bytes) -> Receive:
    """An ASGI ``receive`` that hands out an already-read request body once."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _device_label(device: str | None) -> str:
    try:
        from ..device import select_device

        chosen = select_device(device or "auto")
        if chosen.type == "cuda":
            import torch

            return f"GPU · {torch.cuda.get_device_name(chosen)}"
        return {"cpu": "CPU", "mps": "Apple GPU"}.get(chosen.type, chosen.type)
    except Exception as exc:  # a forced device that is not there: the first job will say so
        return f"unavailable ({str(exc)[:60]})"
