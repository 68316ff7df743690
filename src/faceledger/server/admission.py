"""Model requests are let in, or refused, on their headers, before their upload is read.

A ``POST`` to a route that runs a model (detect, verify, redact, enroll, identify) carries one
or more photos: reading and parsing them is most of what a request costs the event loop
before the model runs. So :class:`ModelAdmissionMiddleware` decides on the request line and
headers alone, cheapest refusal first:

1. every place of the model pool taken, or the wait for a worker, estimated from the measured
   run times, over ``queue_timeout_s``: ``503 overloaded`` with ``Retry-After``;
2. the API key unknown or revoked: ``401``; over its rate limit: ``429`` with ``Retry-After``;
3. a place taken in the pool (:meth:`.pool.ModelPool.admit`), or ``503`` for the reasons of 1.
   (the pool may have filled while the key was checked).

A request let in keeps its place until it is answered (the route's dependency finds its key and
place under :data:`.deps.ADMITTED`), so an admitted request always has a queue place and a refusal
never comes after an upload was parsed for nothing. A refusal keeps the connection: the server
reads and discards the rest of the body under its body deadlines and its discard cap
(:mod:`.protocol`), and the client reads the answer instead of a reset.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from .deps import ADMITTED, Admitted, check_key
from .limits import MODEL_PATHS, send_problem
from .problems import ServiceError
from .service import Service

__all__ = ["ModelAdmissionMiddleware"]


class ModelAdmissionMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not MODEL_PATHS.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        pool = self.service.pool
        try:
            why = pool.refusal()
            if why is not None:
                raise pool.overloaded(why)
            key = await check_key(self.service, _bearer_token(scope))
            place = pool.admit()
            if isinstance(place, str):
                raise pool.overloaded(place)
        except ServiceError as exc:
            await send_problem(send, exc.status, exc.code, exc.detail,
                               [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()],
                               close=False)
            return
        scope[ADMITTED] = Admitted(key, place)
        try:
            await self.app(scope, receive, send)
        finally:
            place.release()


def _bearer_token(scope: Scope) -> str:
    header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = header.partition(" ")
    return token if scheme.lower() == "bearer" else ""
