"""HTTP plumbing shared by every route: JSON errors, body limits, the Host/Origin guard and the
throttle on failed logins.

An error's status is the edge's to choose: :func:`~vidground.server.statuses.status_for` looks
the error's group up in one table (kept in :mod:`.statuses`, which imports no web framework, so
the worker records a failed job's status with the same table).

Everything a client can get back is ``{"error": {"code", "message"}}`` (plus ``detail`` with the
same message, the shape Gradio's own client reads, on the page's routes). Responses are rendered
by :class:`SafeJSONResponse`, so no stored text — not even a lone surrogate that came in through
an older version — can make a response fail to encode.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import VidgroundError
from .errors import InsufficientStorageError, disk_full
from .statuses import status_for

log = logging.getLogger("vidground.server")
access_log = logging.getLogger("vidground.access")
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")

STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
                413: "request_too_large", 415: "unsupported_media_type",
                422: "invalid_request", 429: "too_many_requests", 503: "unavailable"}

#: Host names served when nothing else is configured: the loopback names only, so a web page
#: on another site cannot reach a local server through a DNS-rebinding host name.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
#: Methods that change state; from a browser they must come from the page's own origin.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SafeJSONResponse(JSONResponse):
    """A JSON response that never fails to encode: text that is not valid Unicode (a lone
    surrogate) is written as a JSON ``\\uXXXX`` escape instead of raising."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, indent=None,
                              separators=(",", ":")).encode("ascii")


def error_json(status: int, code: str, message: str,
               headers: dict[str, str] | None = None, *, detail: bool = False
               ) -> SafeJSONResponse:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if detail:
        body["detail"] = message
    return SafeJSONResponse(body, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> str:
    """The first few validation problems as one line a person can act on."""
    parts = []
    for err in exc.errors()[:8]:
        kind = err.get("type", "")
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        if kind == "json_invalid":
            parts.append("the request body is not valid JSON")
            continue
        msg = str(err.get("msg", "invalid"))
        if kind == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{loc}: {msg}" if loc else msg)
    text = "; ".join(dict.fromkeys(parts)) or "invalid request"
    return text[:1000]


DISK_FULL = ("the server's disk is full: nothing of this request was kept; retry later "
             "(the server's operator needs to free space)")


def public_text(request: Request, message: str) -> str:
    """``message`` without the server's folders, when the app knows them (its service's
    ``public_text``)."""
    scrub = getattr(getattr(request.app.state, "service", None), "public_text", None)
    return scrub(message) if callable(scrub) else message


def _store_busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(
        word in str(exc).lower() for word in ("locked", "busy"))


def install_error_handlers(app: FastAPI, *, detail: bool = False) -> None:
    """Every error ``app`` answers becomes our JSON shape (``detail=True``: with Gradio's
    ``detail`` key as well, for the page's own routes)."""

    @app.exception_handler(VidgroundError)
    async def vidground_error(request: Request, exc: VidgroundError) -> JSONResponse:
        if disk_full(exc) and not isinstance(exc, InsufficientStorageError):
            # a writer that wrapped ENOSPC in its own error (a clip "cannot be written")
            log.warning("%s %s: the disk is full (%s)", request.method, request.url.path,
                        exc.message)
            exc = InsufficientStorageError(DISK_FULL)
        status = status_for(exc)
        log.log(logging.WARNING if status >= 500 else logging.INFO,
                "%s %s -> %d %s: %s", request.method, request.url.path, status,
                exc.code, exc.message)
        headers = None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers = {"Retry-After": str(int(retry_after))}
        if status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return error_json(status, exc.code, public_text(request, exc.message),
                          headers, detail=detail)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_json(422, "invalid_request", validation_message(exc), detail=detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        return error_json(exc.status_code, code, message, dict(exc.headers or {}) or None,
                          detail=detail)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        if disk_full(exc):
            log.warning("%s %s -> 507: the disk is full (%s)", request.method,
                        request.url.path, exc)
            return error_json(507, InsufficientStorageError.code, DISK_FULL,
                              {"Retry-After": str(InsufficientStorageError.retry_after)},
                              detail=detail)
        if _store_busy(exc):
            log.warning("job store busy on %s %s: %s", request.method, request.url.path, exc)
            return error_json(503, "store_busy", "the job store is busy (locked by another "
                              "process); retry in a few seconds", {"Retry-After": "5"},
                              detail=detail)
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_json(500, "internal_error", "internal server error; see the server log",
                          detail=detail)


# -- who may talk to us: keys ----------------------------------------------------------------------


def key_matches(request: Request, key: str) -> bool:
    """Does ``request`` carry ``Authorization: Bearer <key>``? (constant time)"""
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    # Hash both sides so the comparison's time depends on neither key's length or content.
    ok = hmac.compare_digest(hashlib.sha256(given.strip().encode("utf-8", "replace")).digest(),
                             hashlib.sha256(key.encode("utf-8")).digest())
    return scheme.lower() == "bearer" and ok


# -- one line per request -------------------------------------------------------------------------


class AccessLog:
    """One log line per request — method, path, status, duration, client, request id — and the
    request id in the ``X-Request-ID`` response header (the client's own, when it sent a
    usable one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if REQUEST_ID_RE.fullmatch(given) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = 0

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            client = (scope.get("client") or ("-", 0))[0]
            access_log.info("%s %s %s %.1f ms client=%s rid=%s", scope.get("method"),
                            scope.get("path"), status or "-",
                            (time.perf_counter() - started) * 1000, client, rid)


# -- request bodies -------------------------------------------------------------------------------


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (413 JSON), except on the upload routes
    (the API's and the web page's), which enforce ``max_upload_mb`` themselves while
    streaming."""

    def __init__(self, app: ASGIApp, limit: int, exempt: tuple[str, ...]) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in self.exempt:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_big = error_json(413, "request_too_large",
                             f"the request body is larger than {self.limit // 1024} KB")
        try:
            if length is not None and int(length) > self.limit:
                await _drain_receive(receive, self.limit * 4)
                await too_big(scope, receive, send)
                return
        except ValueError:
            await error_json(400, "bad_request", "bad Content-Length")(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await too_big(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


async def _drain_receive(receive: Receive, cap: int) -> None:
    seen = 0
    while seen <= cap:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body"):
            return


# -- who may talk to us: hosts and origins --------------------------------------------------------


def _host_name(netloc: str) -> str:
    """``example.com:7860`` -> ``example.com``; ``[::1]:7860`` -> ``::1``; lower case."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1:].split("]", 1)[0]
    if netloc.count(":") > 1:  # a bare IPv6 address
        return netloc
    return netloc.rsplit(":", 1)[0] if ":" in netloc else netloc


def allowed_hosts(configured: Iterable[str], bind_host: str) -> frozenset[str] | None:
    """The Host names to serve: the loopback names, the bind address when it is a specific
    one, and ``configured`` (``VIDGROUND_ALLOWED_HOSTS``); ``None`` when ``*`` is configured
    (any host)."""
    names = {h.strip().lower() for h in configured if h.strip()}
    if "*" in names:
        return None
    names.update(LOOPBACK_HOSTS)
    bind = bind_host.strip().lower().strip("[]")
    if bind and bind not in ("0.0.0.0", "::"):
        names.add(bind)
    return frozenset(_host_name(n) for n in names)


class HostOriginGuard:
    """Refuse requests whose ``Host`` is not one we serve (DNS rebinding: a foreign page
    whose host name now points at 127.0.0.1), and state-changing requests a browser sends
    from a foreign page (``Origin`` not this server, ``Sec-Fetch-Site: cross-site``) — the
    CSRF of a cross-origin form POST. Clients that are not browsers send no ``Origin`` and
    are not affected."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None,
                 origins: Iterable[str] = ()) -> None:
        self.app = app
        self.hosts = hosts
        self.origins = frozenset(o.strip().rstrip("/").lower() for o in origins if o.strip())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers") or []}
        host = headers.get("host", "")
        if self.hosts is not None and _host_name(host) not in self.hosts:
            shown = host[:100] if host.isprintable() else repr(host[:100])
            message = (f"this server does not answer for the host name {shown!r}; when it is "
                       "reached under another name, list that name in VIDGROUND_ALLOWED_HOSTS")
            await error_json(421 if host else 400, "host_not_allowed", message)(
                scope, receive, send)
            return
        method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
        if scope["type"] == "websocket" or method in UNSAFE_METHODS:
            refusal = self._cross_site(headers, host)
            if refusal:
                await error_json(403, "cross_origin_refused", refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _cross_site(self, headers: dict[str, str], host: str) -> str | None:
        origin = headers.get("origin")
        if origin is not None:
            origin = origin.strip().rstrip("/").lower()
            if origin in self.origins:
                return None
            parts = urlsplit(origin) if origin != "null" else None
            if parts is None or parts.netloc != host.strip().lower():
                return ("cross-origin requests that change state are refused (Origin "
                        f"{origin[:100]!r} is not this server); list trusted origins in "
                        "VIDGROUND_ALLOWED_ORIGINS")
            return None
        if headers.get("sec-fetch-site", "").lower() == "cross-site":
            return "cross-site requests that change state are refused"
        return None


class AuthThrottle:
    """After ``max_failures`` failed logins or wrong API keys from one client address within
    ``window_s`` seconds, that address gets 429 (with ``Retry-After``) on every route that
    needs a key until the window has passed: guessing a key is slowed to
    ``max_failures / window_s`` tries per second."""

    def __init__(self, app: ASGIApp, *, max_failures: int = 20, window_s: float = 60.0,
                 protected: tuple[str, ...] = ("/api/", "/login", "/ui-media/"),
                 open_paths: tuple[str, ...] = ("/api/v1/health",)) -> None:
        self.app = app
        self.max_failures = max_failures
        self.window_s = window_s
        self.protected = protected
        self.open_paths = open_paths
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _is_login(self, scope: Scope) -> bool:
        return scope.get("method") == "POST" and scope.get("path", "").rstrip("/") == "/login"

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.setdefault(client, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (scope["type"] != "http" or path in self.open_paths
                or not path.startswith(self.protected)):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("?", 0))[0]
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            blocked = len(times) >= self.max_failures
            wait = self.window_s - (now - times[0]) if blocked else 0.0
            if len(self._failures) > 10_000:  # bounded memory under a spray of addresses
                for key in [k for k, v in self._failures.items() if not v][:5000]:
                    del self._failures[key]
        if blocked:
            await error_json(429, "too_many_failed_logins",
                             f"too many failed logins or wrong API keys from {client}; "
                             f"wait {int(wait) + 1} s", {"Retry-After": str(int(wait) + 1)})(
                scope, receive, send)
            return
        login = self._is_login(scope)

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if status == 401 or (login and status in (400, 401, 403)):
                    with self._lock:
                        self._recent(client, time.monotonic()).append(time.monotonic())
            await send(message)

        await self.app(scope, receive, watch)
