"""``impasto serve``: a local web studio with live preview.

:func:`serve` runs the studio with uvicorn; :func:`create_app` builds the ASGI app (FastAPI) for
tests or for another server. Both need the ``web`` extra (``pip install 'impasto[web]'``).
The page itself is plain HTML, CSS and JavaScript in ``static/``; it needs no internet.
"""

from __future__ import annotations

import errno
import secrets
import socket
import threading
import webbrowser
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import ImpastoError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI

__all__ = ["access_token", "create_app", "serve"]

_MISSING = "impasto serve needs the web extra: pip install 'impasto[web]' (fastapi, uvicorn, python-multipart)"


def create_app(**options: Any) -> FastAPI:
    """The studio's FastAPI app; see :func:`impasto.web.app.create_app` for the options."""
    try:
        from .app import create_app as build
    except ImportError as exc:
        raise ImpastoError(f"{_MISSING} ({exc})") from None
    return build(**options)


def serve(host: str = "127.0.0.1", port: int = 8000, *, open_browser: bool = False, token: str | None = None,
          max_upload_mb: float = 25, max_pixels: int = 40_000_000, max_output: int = 2048,
          device: str | None = None, log_level: str = "warning") -> None:
    """Run the studio until Ctrl-C.

    On a loopback ``host`` (127.0.0.1, ::1, localhost) no token is needed unless one is given.
    On any other address a token is required: ``token`` or a new random one, printed in the
    address to open. Raises :class:`~impasto.errors.UsageError` for a bad port and
    :class:`~impasto.errors.ImpastoError` when the address cannot be bound.
    """
    try:
        import uvicorn

        from .app import is_loopback
    except ImportError as exc:
        raise ImpastoError(f"{_MISSING} ({exc})") from None
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: use a number from 1 to 65535 (0 picks a free one)")
    token = access_token(host, token)
    sock = _bind(host, port)
    port = sock.getsockname()[1]
    app = create_app(token=token, max_upload_mb=max_upload_mb, max_pixels=max_pixels,
                     max_output=max_output, device=device)
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else (
        f"[{host}]" if ":" in host else host)
    url = f"http://{shown}:{port}/" + (f"?token={quote(token, safe='')}" if token else "")
    print(f"impasto studio: {url}", flush=True)
    if token and not is_loopback(host):
        print(f"  listening on {host}:{port}; every request needs the token (it is in the address above)", flush=True)
    print("  press Ctrl-C to stop", flush=True)
    if open_browser:
        threading.Timer(0.8, webbrowser.open, args=(url,)).start()
    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=3, access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def access_token(host: str, token: str | None = None) -> str | None:
    """The token a server on ``host`` requires: ``token`` if given, else a new random one off
    loopback, else ``None`` (no token on 127.0.0.1, ::1 or localhost)."""
    from .app import is_loopback

    if token is not None:
        if len(token) < 8 or not token.isprintable() or any(c.isspace() for c in token):
            raise UsageError("--token: use at least 8 printable characters without spaces")
        return token
    return None if is_loopback(host) else secrets.token_urlsafe(18)


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or a one-line error saying why not."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ImpastoError(f"--host {host}: cannot be resolved ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == "::" else 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        in_use = exc.errno in (errno.EADDRINUSE, 48, 98)
        reason = "is already in use; choose another with --port" if in_use else f"cannot be used ({exc.strerror})"
        raise ImpastoError(f"{host}:{port} {reason}") from None
    sock.set_inheritable(True)
    return sock
