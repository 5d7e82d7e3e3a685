"""The studio's HTTP side: FastAPI routes, the access guard and the static page.

Routes (all JSON errors are ``{"error": "one line"}``):

========================================  ==========================================================
``GET  /``                                the page (``?token=`` sets the access cookie)
``GET  /api/info``                        version, device, presets, limits, whether masks work
``POST /api/uploads?kind=content|style|mask``  multipart field ``file``; the image is decoded to check it
``GET  /api/uploads/{id}``                an upload's description; ``/thumb.jpg`` its thumbnail
``POST /api/jobs``                        ``{"content": id, "styles": [id..], "settings": {..}}``, optionally
                                          ``"masks": [id..]`` (one per style) and ``"content_mask": id``
``GET  /api/jobs/{id}``                   the job's state; ``/events`` the same as server-sent events
``GET  /api/jobs/{id}/preview?v=N``       the latest preview (JPEG)
``POST /api/jobs/{id}/cancel``            remove a queued job or stop a running one
``GET  /api/results``                     this server's results, newest first
``GET  /api/results/{id}``                one result; ``.png`` the picture, ``.json`` its metadata
========================================  ==========================================================
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from .._version import __version__
from ..optimize import Stylizer
from ..errors import UsageError
from ..recipe import PRESERVE_COLOR
from .jobs import FINISHED, JobManager, JobRequest, masks_supported
from .settings import MIN_OUTPUT_SIDE, preset_defaults, recipe_from_settings
from .uploads import KINDS, UploadError, UploadStore

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
MAX_STYLES = 4
MULTIPART_OVERHEAD = 64 * 1024


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost (with or without brackets)."""
    host = host.strip("[]").lower()
    return host in LOOPBACK_NAMES or host.startswith("127.")


def cookie_name(token: str) -> str:
    """A cookie name of its own per token, so two studios on one host do not collide."""
    return "impasto_" + hashlib.sha256(token.encode()).hexdigest()[:10]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store"})


class Guard:
    """ASGI middleware: the token rule, the loopback Host check and a cross-site check.

    * ``token`` set: every request must carry it as ``?token=``, as ``Authorization: Bearer``, or
      in the cookie the page gets when it is opened with ``?token=``; otherwise 401.
    * no token (loopback): the ``Host`` header must name a loopback address, which defeats DNS
      rebinding by web pages elsewhere.
    * a POST whose ``Origin`` is another site is refused (403).
    """

    def __init__(self, app: ASGIApp, token: str | None):
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        problem = self.check(request)
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, message = problem
        if request.method == "GET" and not request.url.path.startswith("/api/"):
            response: Response = HTMLResponse(_refusal_page(message), status_code=status)
        else:
            response = _error(status, message)
        await response(scope, receive, send)

    def check(self, request: Request) -> tuple[int, str] | None:
        host = request.headers.get("host", "")
        if self.token is None:
            if not is_loopback(urlsplit(f"//{host}").hostname or ""):
                return 403, f"this studio answers only to localhost addresses, not {host[:80]!r}"
        else:
            offered = [request.query_params.get("token"), request.cookies.get(cookie_name(self.token))]
            auth = request.headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                offered.append(auth[7:].strip())
            if not any(o and secrets.compare_digest(o.encode(), self.token.encode()) for o in offered):
                return 401, "access token missing or wrong: open the address printed by `impasto serve`"
        origin = request.headers.get("origin")
        if request.method not in ("GET", "HEAD") and origin and origin != "null" and urlsplit(origin).netloc != host:
            return 403, "cross-site request refused"
        return None


def _refusal_page(message: str) -> str:
    from html import escape

    return ("<!doctype html><meta charset=utf-8><title>impasto studio</title>"
            "<body style='font:16px system-ui,sans-serif;background:#15151a;color:#e9e6df;display:grid;"
            "place-items:center;height:100vh;margin:0'><div style='max-width:32em;text-align:center'>"
            f"<h1 style='font-weight:600'>impasto studio</h1><p>{escape(message)}.</p></div>")


def create_app(*, token: str | None = None, max_upload_mb: float = 25, max_pixels: int = 40_000_000,
               max_output: int = 2048, device: str | None = None,
               stylizer_factory: Callable[[], Stylizer] = Stylizer, preview_interval: float = 0.3,
               max_results: int = 32) -> FastAPI:
    """The studio as an ASGI app.

    Args:
        token: when given, every request must carry it (see :class:`Guard`); when ``None`` only
            requests addressed to a loopback host name are answered.
        max_upload_mb: the largest accepted file, in megabytes.
        max_pixels: the most pixels an uploaded image may have.
        max_output: the largest output long side a job may ask for.
        device: ``cpu``, ``cuda`` or ``mps`` to force one (default: the recipe's ``auto``).
        stylizer_factory: makes the worker's Stylizer (tests may pass their own).
        preview_interval: least seconds between two preview images of a running job.
        max_results: results kept in memory; the oldest go first.
    """
    uploads = UploadStore(max_bytes_each=int(max_upload_mb * 1024 * 1024), max_pixels=max_pixels)
    manager = JobManager(stylizer_factory=stylizer_factory, preview_interval=preview_interval,
                         max_results=max_results)

    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        manager.start()
        yield
        await run_in_threadpool(manager.stop)

    app = FastAPI(title="impasto studio", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.token = token
    app.state.uploads = uploads
    app.state.manager = manager
    app.add_middleware(Guard, token=token)
    static = resources.files("impasto.web") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = str(exc.detail)
        return _error(exc.status_code, "not found" if detail == "Not Found" else detail)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        return _error(422, f"{where or 'request'}: {first.get('msg', 'invalid')}")

    # -- the page -------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def page(request: Request) -> Response:
        html = (static / "index.html").read_text(encoding="utf-8")
        response = HTMLResponse(html, headers={"Cache-Control": "no-store"})
        offered = request.query_params.get("token")
        if token is not None and offered and secrets.compare_digest(offered.encode(), token.encode()):
            response.set_cookie(cookie_name(token), token, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https")
        return response

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        return {"version": __version__, "device": _device_label(device), "presets": preset_defaults(),
                "default_preset": "balanced", "preserve_color": list(PRESERVE_COLOR),
                "masks": masks_supported(), "queue": manager.queue_length(),
                "limits": {"upload_bytes": uploads.max_bytes_each, "pixels": max_pixels, "styles": MAX_STYLES,
                           "min_size": MIN_OUTPUT_SIDE, "max_size": max_output}}

    # -- uploads --------------------------------------------------------------------------------
    @app.post("/api/uploads", status_code=201)
    async def upload(request: Request, kind: str = "content") -> Response:
        if kind not in KINDS:
            return _error(400, f"unknown upload kind {kind[:20]!r}; use {', '.join(KINDS)}")
        limit = uploads.max_bytes_each
        too_big = f"the file is too large; the limit is {limit / (1024 * 1024):g} MB"
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
            return _error(413, too_big)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit + MULTIPART_OVERHEAD:
                return _error(413, too_big)
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return _error(400, "send the image as multipart/form-data in a field named 'file'")
        form_request = Request(request.scope, receive=_replay(bytes(body)))
        try:
            form = await form_request.form(max_files=1, max_fields=4)
        except Exception:
            return _error(400, "the upload is not readable multipart/form-data")
        try:
            file = form.get("file")
            if file is None or isinstance(file, str):
                return _error(400, "no file: send the image in a field named 'file'")
            data, filename = await file.read(), file.filename
        finally:
            await form.close()
        try:
            item = await run_in_threadpool(uploads.add, data, kind, filename)
        except UploadError as exc:
            return _error(exc.status, str(exc))
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
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "the request body is not JSON")
        try:
            job_request = _job_request(body, uploads, max_output=max_output, device=device, max_pixels=max_pixels)
        except UsageError as exc:
            return _error(422, str(exc))
        except LookupError as exc:
            return _error(404, str(exc).strip("'\""))
        job = manager.submit(job_request)
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
            return _error(404, "no preview yet")
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
        name = f"impasto-{item.settings.get('preset', 'picture')}-{item.id[:6]}.png"
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


def _job_request(body: Any, uploads: UploadStore, *, max_output: int, device: str | None,
                 max_pixels: int) -> JobRequest:
    """Check a job's JSON body; raises UsageError (422) or LookupError (404, an unknown upload)."""
    if not isinstance(body, dict):
        raise UsageError("expected a JSON object with content, styles and settings")
    unknown = sorted(set(body) - {"content", "styles", "masks", "content_mask", "settings"})
    if unknown:
        raise UsageError(f"unknown field(s): {', '.join(map(str, unknown))}")

    def upload(upload_id: Any, what: str):
        if not isinstance(upload_id, str) or not upload_id:
            raise UsageError(f"{what}: expected an upload id")
        item = uploads.get(upload_id)
        if item is None:
            raise LookupError(f"{what}: no such upload (it may have expired); upload the image again")
        return item

    if body.get("content") is None:
        raise UsageError("content: upload a photo first")
    content = upload(body["content"], "content")
    style_ids = body.get("styles")
    if not isinstance(style_ids, list) or not style_ids:
        raise UsageError("styles: upload at least one painting")
    if len(style_ids) > MAX_STYLES:
        raise UsageError(f"styles: at most {MAX_STYLES} paintings, not {len(style_ids)}")
    styles = [upload(s, f"style {i + 1}") for i, s in enumerate(style_ids)]
    mask_ids = body.get("masks")
    masks = None
    if mask_ids is not None and any(m is not None for m in mask_ids if isinstance(mask_ids, list)):
        if not isinstance(mask_ids, list) or len(mask_ids) != len(styles):
            raise UsageError(f"masks: expected one entry (an upload id or null) per style, {len(styles)} in all")
        if not masks_supported():
            raise UsageError("masks: this version of impasto cannot use masks yet")
        if any(m is None for m in mask_ids):
            raise UsageError("masks: give every painting a mask, or none of them")
        masks = [upload(m, f"mask {i + 1}") for i, m in enumerate(mask_ids)]
    content_mask = None
    if body.get("content_mask") is not None:
        if not masks_supported():
            raise UsageError("content_mask: this version of impasto cannot use masks yet")
        content_mask = upload(body["content_mask"], "content_mask")
    recipe, blend, settings = recipe_from_settings(body.get("settings") or {}, max_output=max_output,
                                                   device=device, max_pixels=max_pixels)
    if blend is not None and len(blend) != len(styles):
        raise UsageError(f"style_blend: {len(blend)} weights for {len(styles)} paintings")
    return JobRequest(recipe=recipe, content=content, styles=styles, masks=masks, content_mask=content_mask,
                      style_blend=blend, settings=settings)


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
