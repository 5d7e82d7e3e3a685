"""``impasto serve``: a local web studio with live preview.

:func:`serve` runs the studio with uvicorn; :func:`create_app` builds the ASGI app (FastAPI) for
tests or for another server. Both need the ``web`` extra (``pip install 'impasto[web]'``).
The page itself is plain HTML, CSS and JavaScript in ``static/``; it needs no internet.
How the studio protects itself (token, Host, Origin and XSRF checks, headers) is described in
:mod:`impasto.web.guard`.
"""

from __future__ import annotations

import errno
import logging
import secrets
import socket
import threading
import webbrowser
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import ImpastoError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI

__all__ = ["access_token", "create_app", "plain_http_warning", "serve", "startup_lines"]

_MISSING = "impasto serve needs the web extra: pip install 'impasto[web]' (fastapi, uvicorn, python-multipart)"


def create_app(**options: Any) -> FastAPI:
    """The studio's FastAPI app; see :func:`impasto.web.app.create_app` for the options."""
    try:
        from .app import create_app as build
    except ImportError as exc:
        raise ImpastoError(f"{_MISSING} ({exc})") from None
    return build(**options)


def serve(host: str = "127.0.0.1", port: int = 8000, *, open_browser: bool = False, token: str | None = None,
          no_token: bool = False, allowed_hosts: Sequence[str] = (), max_queue: int = 8,
          max_upload_mb: float = 25, max_pixels: int = 40_000_000, max_output: int = 2048,
          device: str | None = None, log_level: str = "warning", models: str | None = None) -> None:
    """Run the studio until Ctrl-C.

    Every request needs a token (``token`` or a new random one, printed in the address to open)
    unless ``no_token`` (loopback only). Only requests addressed to ``localhost``, a loopback
    address or one of ``allowed_hosts`` are answered; on any other ``host`` every name is, since
    the token guards it, and a warning says that plain HTTP exposes the token. At most
    ``max_queue`` jobs wait. ``models``: a folder whose trained models (``*.impasto``) the page
    offers besides optimization. Raises :class:`~impasto.errors.UsageError` for a bad port or option
    and :class:`~impasto.errors.ImpastoError` when the address cannot be bound.
    """
    try:
        import uvicorn
    except ImportError as exc:
        raise ImpastoError(f"{_MISSING} ({exc})") from None
    if type(port) is not int or not 0 <= port <= 65535:  # bool is an int too, but no port
        raise UsageError(f"--port {port}: use a number from 1 to 65535 (0 picks a free one)")
    token = access_token(host, token, no_token=no_token)
    hosts = [*allowed_hosts, *([] if _is_loopback(host) else ["*"])]
    app = create_app(token=token, no_token=token is None, allowed_hosts=hosts, max_queue=max_queue,
                     max_upload_mb=max_upload_mb, max_pixels=max_pixels, max_output=max_output, device=device,
                     models=models)
    sock = _bind(host, port)
    port = sock.getsockname()[1]
    lines = startup_lines(host, port, token)
    for line in lines:
        print(line, flush=True)
    if open_browser:
        threading.Timer(0.8, webbrowser.open, args=(lines[0].split(": ", 1)[1],)).start()
    _log_to_console(log_level)
    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=3, access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def _log_to_console(level: str) -> None:
    """Show the studio's own log lines (a failed job, a client that went away) as uvicorn shows its."""
    logger = logging.getLogger("impasto.web")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())


def startup_lines(host: str, port: int, token: str | None) -> list[str]:
    """What :func:`serve` prints: the address to open (the token in it), then notes and warnings."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else (
        f"[{host}]" if ":" in host else host)
    url = f"http://{shown}:{port}/" + (f"?token={quote(token, safe='')}" if token else "")
    lines = [f"impasto studio: {url}"]
    if token is not None and not _is_loopback(host):
        lines.append(f"  listening on {host}:{port}; every request needs the token (it is in the address above)")
    warning = plain_http_warning(host)
    if warning:
        lines.append(f"  {warning}")
    lines.append("  press Ctrl-C to stop")
    return lines


def plain_http_warning(host: str) -> str | None:
    """A warning for a studio listening off loopback, where its plain HTTP exposes the token."""
    if _is_loopback(host):
        return None
    return ("warning: this is plain HTTP: the token and every picture cross the network unencrypted; "
            "put a TLS proxy (Caddy, nginx) in front of it, or keep --host 127.0.0.1 and use an SSH tunnel")


def access_token(host: str, token: str | None = None, *, no_token: bool = False) -> str | None:
    """The token a server on ``host`` requires: ``token`` if given, else a new random one; ``None``
    only with ``no_token``, which is refused off loopback (there the token is all that guards it)."""
    if no_token:
        if token is not None:
            raise UsageError("--token and --no-token cannot be used together")
        if not _is_loopback(host):
            raise UsageError(f"--no-token: only on a loopback address (127.0.0.1, ::1, localhost), not {host!r}; "
                             "elsewhere every request needs the token")
        return None
    if token is not None:
        if len(token) < 8 or not token.isprintable() or any(c.isspace() for c in token):
            raise UsageError("--token: use at least 8 printable characters without spaces")
        return token
    return secrets.token_urlsafe(18)


def _is_loopback(host: str) -> bool:
    """Whether ``host`` (an address to listen on) is loopback; ``localhost`` counts."""
    try:
        from .guard import is_loopback
    except ImportError as exc:
        raise ImpastoError(f"{_MISSING} ({exc})") from None
    return is_loopback(host)


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
