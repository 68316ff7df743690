"""ASGI middleware: requests in flight (503), the request-body cap (413), the security headers of every response."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import PROBLEM_JSON, problem_body

__all__ = ["BearerFirstMiddleware", "BodyLimitMiddleware", "BodyTooLarge", "RequestLimitMiddleware",
           "SecurityHeadersMiddleware"]

#: Paths that always get through the request limit: probes must see a busy service as alive.
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
#: The routes that run a model (their uploads are not read while the model pool is full).
MODEL_PATHS = re.compile(r"^/v1/(detect|verify|redact|galleries/[^/]+/(enroll|identify))/?$")

#: The page and the API load nothing from elsewhere; no inline script or style.
CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` when the body grows past the cap (FastAPI re-raises HTTP exceptions)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the {limit:,}-byte limit")


async def send_problem(send: Send, status: int, code: str, detail: str,
                       extra_headers: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
                       close: bool = True) -> None:
    """A problem+json answer sent before the body is read. ``close=False`` keeps the connection: the
    server then discards the rest of the body (under its body deadlines) and the client reads the
    answer instead of a reset."""
    body = json.dumps(problem_body(status, code, detail)).encode()
    closing = [(b"connection", b"close")] if close else []
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode()),
                            *closing, *extra_headers]})
    await send({"type": "http.response.body", "body": body})


class RequestLimitMiddleware:
    """At most ``max_requests`` requests in flight (probes excepted); beyond, ``503 overloaded`` with
    ``Retry-After`` at once, before the body is read. Counts requests, not connections: an idle or
    half-open connection takes no place (the server cuts it after its header timeout, see
    :mod:`.protocol`). Model requests are also let in or refused on their headers by the model pool
    (:mod:`.admission`)."""

    def __init__(self, app: ASGIApp, max_requests: int, retry_after_s: int = 1,
                 on_refuse: Callable[[], None] | None = None) -> None:
        self.app, self.max_requests, self.retry_after_s, self.on_refuse = app, max_requests, retry_after_s, on_refuse
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_requests:   # one event loop: no lock needed
            if self.on_refuse is not None:
                self.on_refuse()
            await send_problem(send, 503, "overloaded", f"the service is at capacity ({self.max_requests} "
                               f"requests in flight); retry after {self.retry_after_s} s",
                               [(b"retry-after", str(self.retry_after_s).encode())], close=False)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class BearerFirstMiddleware:
    """Answer ``/v1`` requests without any ``Authorization: Bearer`` header with 401 *before* their
    body is read (so an anonymous client cannot make the service parse uploads); the key itself
    is checked by the route's dependency (a model route's: on its headers, :mod:`.admission`). The
    connection is kept: the server discards the unread body (bounded, see :mod:`.protocol`) and
    the client reads the 401 instead of a reset."""

    def __init__(self, app: ASGIApp, on_refuse: Callable[[], None] | None = None) -> None:
        self.app, self.on_refuse = app, on_refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            header = dict(scope["headers"]).get(b"authorization", b"")
            if not header.lower().startswith(b"bearer ") or not header[7:].strip():
                if self.on_refuse is not None:
                    self.on_refuse()
                await send_problem(send, 401, "unauthenticated",
                                   "an API key is required: send 'Authorization: Bearer <key>'",
                                   [(b"www-authenticate", b'Bearer realm="faceledger"')], close=False)
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes``: at once from ``Content-Length``, else while they stream in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"the request body is over the {self.max_bytes:,}-byte limit"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await send_problem(send, 413 if length.isdigit() else 400,
                                "request_too_large" if length.isdigit() else "bad_request",
                                detail if length.isdigit() else "invalid Content-Length header")
            return
        seen, started = 0, False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:
                raise
            await send_problem(send, 413, "request_too_large", detail)


class SecurityHeadersMiddleware:
    """``nosniff``, no referrer, no framing, a strict CSP; API answers are never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/v1/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                            (b"x-frame-options", b"DENY"), (b"content-security-policy", CSP.encode())]
                if api:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
