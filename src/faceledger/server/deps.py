"""The per-request context every ``/v1`` route gets: who is calling, and how to reach the engine.

:func:`authenticated` checks ``Authorization: Bearer <API key>`` (401 otherwise) and the
key's rate limit (429 with ``Retry-After``), and yields a :class:`Call`. A route then
uses exactly one of:

* :meth:`Call.gov` — a governance operation on the shared engine, in a thread;
* :meth:`Call.model` — detect / verify / enroll / identify on a model worker of the
  bounded pool (503 with ``Retry-After`` when it is full; over HTTP the request took its place
  in the pool, and its key was checked, on its headers: :mod:`.admission`).

and answers with :meth:`Call.respond`, which honours ``Idempotency-Key`` on POST and DELETE.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from faceledger.engine import Engine
from faceledger.records import Actor, ApiKey

from .idempotency import Idempotency
from .pool import Place
from .problems import ServiceError
from .service import Service

__all__ = ["ADMITTED", "Admitted", "Auth", "Call", "authenticated", "check_key", "service_of"]

R = TypeVar("R")
_bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                     description="An API key: `Authorization: Bearer flk_<key id>_<secret>`.")


#: The ASGI scope key under which :mod:`.admission` leaves the :class:`Admitted` of a model request.
ADMITTED = "faceledger.admitted"


@dataclass(frozen=True)
class Admitted:
    """A model request let in on its headers: its checked key and its place in the model pool."""

    key: ApiKey
    place: Place


def service_of(request: Request) -> Service:
    return request.app.state.service


@dataclass
class Call:
    """One authenticated request (see the module docstring)."""

    service: Service
    key: ApiKey
    request: Request
    place: Place | None = None

    @property
    def actor(self) -> Actor:
        """The key's actor and role; its ledger entries carry the credential ``key:<key id>``."""
        return self.key.as_actor()

    async def gov(self, fn: Callable[[Engine, Actor], R]) -> R:
        """``fn(engine, actor)`` on the governance engine, in a worker thread."""
        return await anyio.to_thread.run_sync(fn, self.service.gov, self.actor)

    async def model(self, operation: str, fn: Callable[[Engine, Actor], R]) -> R:
        """``fn(engine, actor)`` on a model worker (bounded: 503 when the service is at capacity)."""
        actor = self.actor
        return await self.service.pool.run(operation, lambda engine: fn(engine, actor), self.place)

    async def photo(self, upload: UploadFile) -> bytes:
        """The bytes of an uploaded photo (never a path or a URL: the engine gets bytes only)."""
        await upload.seek(0)
        return await upload.read()

    async def respond(self, work: Callable[[], Awaitable[Any]], status: int = 200, *,
                      redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Response:
        """Run ``work`` (returning a pydantic model or JSON data) and answer it, honouring Idempotency-Key."""

        async def answer() -> Response:
            value = await work()
            body = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
            return JSONResponse(body, status_code=status)

        if self.request.method not in ("POST", "DELETE"):
            return await answer()
        idem: Idempotency = self.request.app.state.idempotency
        return await idem.run(self.request, self.key.key_id, answer, redact=redact)


async def check_key(service: Service, token: str) -> ApiKey:
    """The active API key of ``token`` within its rate limit; 401 or 429 :class:`ServiceError` otherwise."""
    if not token.strip():
        service.metrics.count("auth_failures_total")
        raise ServiceError(401, "unauthenticated", "an API key is required: send 'Authorization: Bearer <key>'",
                           headers={"WWW-Authenticate": 'Bearer realm="faceledger"'})
    key = await anyio.to_thread.run_sync(service.gov.authenticate, token.strip())
    if key is None:
        service.metrics.count("auth_failures_total")
        raise ServiceError(401, "unauthenticated", "this API key is unknown or revoked",
                           headers={"WWW-Authenticate": 'Bearer realm="faceledger", error="invalid_token"'})
    wait = service.limiter.take(key.key_id)
    if wait:
        service.metrics.count("rate_limited_total")
        raise ServiceError(429, "rate_limited", f"this API key is over its limit of "
                           f"{service.settings.rate_limit_per_minute} requests a minute; retry after {wait} s",
                           headers={"Retry-After": str(wait)})
    return key


async def authenticated(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Call:
    """The :class:`Call` of a request with a valid, active API key within its rate limit (a model request's
    key was checked on its headers already, see :mod:`.admission`)."""
    service = service_of(request)
    admitted: Admitted | None = request.scope.get(ADMITTED)
    if admitted is not None:
        return Call(service, admitted.key, request, admitted.place)
    token = credentials.credentials if credentials is not None else ""
    return Call(service, await check_key(service, token), request)


Auth = Annotated[Call, Depends(authenticated)]
