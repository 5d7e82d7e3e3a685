"""The studio's trust boundary: who may talk to it, and the headers every answer carries.

Modelled on Jupyter's server, the usual model for a web tool that runs on a person's machine:

* **Host check.** Only requests addressed to ``localhost``, a literal loopback address
  (``ipaddress`` decides: 127.0.0.0/8, ::1) or a name the user allowed are answered, so a web
  page on a name that resolves to 127.0.0.1 (DNS rebinding) is refused. ``"*"`` allows every
  name; :func:`impasto.web.serve` uses it off loopback, where the token guards the studio.
* **Token.** Every request carries it as ``?token=``, as ``Authorization: Bearer`` or in the
  cookie the page sets when opened with ``?token=``; only ``token=None`` (``--no-token``) lifts it.
* **Origin.** A request whose ``Origin`` is another site, or ``null`` (a sandboxed frame, a
  file), is refused.
* **XSRF.** Every state-changing request (POST, PUT, PATCH, DELETE) carries the page's XSRF
  cookie in the ``X-XSRF-Token`` header too; a page elsewhere can make the browser send the
  cookie but cannot read it. Scripts that send the token as ``Authorization: Bearer`` are exempt
  (as in Jupyter): a browser never adds that header to a cross-site request.
* **Headers.** A Content-Security-Policy (scripts only from the studio, no framing by other
  sites), ``nosniff``, no referrer, and ``Cache-Control: no-store`` on JSON and event streams.

A client that goes away mid-request (a closed tab, a dropped upload) is logged in one line.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlsplit

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("impasto.web")

ANY_HOST = "*"
XSRF_HEADER = "X-XSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                           "frame-ancestors 'self'")
#: The refusal page styles itself inline (the stylesheet is behind the token it lacks).
REFUSAL_PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "SAMEORIGIN",
}
#: What a client going away looks like, depending on where in the request it went.
DISCONNECTS = (ClientDisconnect, ConnectionError, anyio.BrokenResourceError, anyio.ClosedResourceError)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and literal loopback addresses (127.0.0.0/8, ::1), brackets allowed.

    A name that merely starts with ``127.`` (``127.0.0.1.evil.example``) is not loopback.
    """
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str | None:
    """The host name of a ``Host`` header (``"[::1]:8000"`` → ``"::1"``), or ``None`` if malformed."""
    if not header or any(c.isspace() or c in "/?#@" for c in header):
        return None
    try:
        return urlsplit(f"//{header}").hostname
    except ValueError:
        return None


def cookie_name(token: str) -> str:
    """A cookie name of its own per token, so two studios on one host do not collide."""
    return "impasto_" + hashlib.sha256(token.encode()).hexdigest()[:10]


def _same(offered: str | None, expected: str) -> bool:
    return bool(offered) and secrets.compare_digest(str(offered).encode(), expected.encode())


@dataclass
class AccessPolicy:
    """What the :class:`Guard` enforces: the token, the allowed host names and the XSRF secret.

    ``token=None`` turns the token check off (``--no-token``); ``allowed_hosts`` adds names to
    ``localhost`` and the loopback addresses (``"*"``: every name).
    """

    token: str | None
    allowed_hosts: frozenset[str] = frozenset()
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @classmethod
    def build(cls, token: str | None, allowed_hosts: Iterable[str] = ()) -> AccessPolicy:
        return cls(token=token, allowed_hosts=frozenset(h.strip().strip("[]").lower() for h in allowed_hosts))

    @property
    def xsrf_cookie(self) -> str:
        """The XSRF cookie's name: one per server, so studios on two ports keep theirs apart."""
        return "impasto_xsrf_" + hashlib.sha256(self.secret).hexdigest()[:10]

    def new_xsrf_value(self) -> str:
        """A fresh XSRF cookie value: a nonce and this server's signature of it."""
        nonce = secrets.token_urlsafe(16)
        return f"{nonce}.{self._sign(nonce)}"

    def xsrf_value_valid(self, value: str | None) -> bool:
        """Whether ``value`` is an XSRF cookie this server issued (not one planted by another site)."""
        nonce, _, signature = (value or "").partition(".")
        return bool(nonce) and hmac.compare_digest(signature, self._sign(nonce))

    def _sign(self, nonce: str) -> str:
        return hmac.new(self.secret, nonce.encode(), hashlib.sha256).hexdigest()[:32]

    # -- the checks, in the order the guard runs them --------------------------------------------
    def host_problem(self, request: Request) -> str | None:
        if ANY_HOST in self.allowed_hosts:
            return None
        header = request.headers.get("host", "")
        name = host_name(header)
        if name is not None and (is_loopback(name) or name.lower() in self.allowed_hosts):
            return None
        return (f"this studio answers only to localhost and loopback addresses, not {header[:80]!r} "
                "(impasto serve --allow-host NAME adds a name)")

    def token_problem(self, request: Request) -> str | None:
        if self.token is None:
            return None
        offered = [request.query_params.get("token"), request.cookies.get(cookie_name(self.token)),
                   self.bearer(request)]
        if any(_same(o, self.token) for o in offered):
            return None
        return "access token missing or wrong: open the address printed by `impasto serve`"

    def origin_problem(self, request: Request) -> str | None:
        origin = request.headers.get("origin")
        if origin is None:
            return None
        if origin.strip().lower() == "null":
            return "cross-site request refused (Origin: null)"
        try:
            netloc = urlsplit(origin).netloc.lower()
        except ValueError:
            netloc = ""
        if netloc != request.headers.get("host", "").lower():
            return "cross-site request refused"
        return None

    def xsrf_problem(self, request: Request) -> str | None:
        if request.method in SAFE_METHODS or (self.token is not None and _same(self.bearer(request), self.token)):
            return None
        cookie = request.cookies.get(self.xsrf_cookie)
        header = request.headers.get(XSRF_HEADER)
        if cookie and header and _same(header, cookie) and self.xsrf_value_valid(cookie):
            return None
        return (f"XSRF check failed: send the {self.xsrf_cookie} cookie's value in the {XSRF_HEADER} header "
                "(reload the page if the studio was restarted)")

    @staticmethod
    def bearer(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        return auth[7:].strip() if auth[:7].lower() == "bearer " else None

    def problem(self, request: Request) -> tuple[int, str] | None:
        """``(status, one-line reason)`` when ``request`` must be refused, else ``None``."""
        for status, check in ((403, self.host_problem), (401, self.token_problem), (403, self.origin_problem),
                              (403, self.xsrf_problem)):
            reason = check(request)
            if reason is not None:
                return status, reason
        return None


class Guard:
    """ASGI middleware: refuses what :class:`AccessPolicy` refuses, adds the security headers, and
    logs a client that went away in one line instead of a traceback."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here: refuse the handshake (403)
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        send = _with_security_headers(send)
        request = Request(scope)
        problem = self.policy.problem(request)
        try:
            if problem is not None:
                await refusal(request, *problem)(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        except DISCONNECTS as exc:
            log.info("client went away during %s %s (%s)", request.method, request.url.path,
                     type(exc).__name__)


def refusal(request: Request, status: int, message: str) -> Response:
    """The answer to a refused request: a small page for a browser's navigation, else JSON."""
    if request.method == "GET" and not request.url.path.startswith("/api/"):
        return HTMLResponse(_refusal_page(message), status_code=status,
                            headers={"Content-Security-Policy": REFUSAL_PAGE_POLICY, "Cache-Control": "no-store"})
    return error_response(status, message)


def error_response(status: int, message: str, **extra: Any) -> JSONResponse:
    """``{"error": "one line"}`` (plus ``extra``), never cached."""
    return JSONResponse({"error": message, **extra}, status_code=status, headers={"Cache-Control": "no-store"})


def _refusal_page(message: str) -> str:
    return ("<!doctype html><meta charset=utf-8><title>impasto studio</title>"
            "<style>body{font:16px system-ui,sans-serif;background:#15151a;color:#e9e6df;display:grid;"
            "place-items:center;height:100vh;margin:0}div{max-width:32em;text-align:center}"
            "h1{font-weight:600}</style>"
            f"<div><h1>impasto studio</h1><p>{escape(message)}.</p></div>")


def _with_security_headers(send: Send) -> Send:
    """``send`` that adds :data:`SECURITY_HEADERS` (unless set) and ``no-store`` on JSON and streams."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            for name, value in SECURITY_HEADERS.items():
                if name.encode() not in present:
                    headers.append((name.encode(), value.encode()))
            content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
            dynamic = content_type.startswith((b"application/json", b"text/event-stream"))
            if dynamic and b"cache-control" not in present:
                headers.append((b"cache-control", b"no-store"))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped
