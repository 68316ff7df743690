"""The FastAPI application: ``create_app(settings)`` builds the service and wires routes and middleware.

Middleware, outermost first: metrics (every request counted and timed by route template),
the limit of requests in flight (503; probes pass), security headers, no ``/v1`` request
without a bearer key gets its body read (401), the request-body cap (413), model requests let
in or refused on their headers (503, 401, 429: :mod:`.admission`). Errors are
problem+json (:mod:`.problems`); ``/v1/...`` needs an API key (:mod:`.deps`). The OpenAPI
document is at ``/openapi.json``; ``/docs`` is a reference page drawn from it by the service's
own script (FastAPI's default docs page would load its assets from a CDN). Slow and idle
connections are cut by the server's protocol (:mod:`.protocol`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

from faceledger.recognizer import Recognizer

from .admission import ModelAdmissionMiddleware
from .idempotency import Idempotency
from .limits import BearerFirstMiddleware, BodyLimitMiddleware, RequestLimitMiddleware, SecurityHeadersMiddleware
from .metrics import MetricsMiddleware
from .problems import Problem, install_handlers
from .routes import admin, galleries, health, identify, oversight, photos
from .service import Service, build_service
from .settings import Settings, load_settings

__all__ = ["create_app"]

log = logging.getLogger("faceledger.server")

DESCRIPTION = """FaceLedger's HTTP API: face detection, 1:1 verification, galleries with consent-gated
enrollment, 1:N identification under an authorization (results are leads for human review),
a tamper-evident ledger, reports and retention. Every rule of the engine applies to every route.

Authenticate with an API key: `Authorization: Bearer flk_...`. Errors are `application/problem+json`.
POST and DELETE honour `Idempotency-Key` (except `/v1/redact`, whose image answer is never stored).
Photos are multipart uploads; URLs are never fetched."""


async def _retention_loop(service: Service) -> None:
    """Run the retention job every ``retention_every_hours`` (first run one period after start)."""
    period = service.settings.retention_every_hours * 3600
    while True:
        await asyncio.sleep(period)
        try:
            plan = await anyio.to_thread.run_sync(lambda: service.gov.run_retention(service.system_actor()))
            log.info("scheduled retention run: %d subject(s) erased, %d kept", len(plan.items), plan.kept)
        except Exception:  # noqa: BLE001 - keep the schedule alive; the engine ledgered the failure
            log.exception("scheduled retention run failed")


def _lifespan(service: Service) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(service.metrics.watch_loop())]
        if service.settings.warm_galleries:
            service.warming.state = "loading"  # not ready from the first request on, until loaded
            tasks.append(asyncio.create_task(anyio.to_thread.run_sync(service.warm_galleries)))
        if service.settings.retention_every_hours > 0:
            tasks.append(asyncio.create_task(_retention_loop(service)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            # A gallery load under way finishes first (a thread is not stopped half way), so whoever
            # closes the store next does not close it under the load.
            await asyncio.gather(*tasks, return_exceptions=True)
    return lifespan


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
            app.openapi_schema = schema
        return app.openapi_schema
    return build


def create_app(
    settings: Settings | None = None,
    *,
    recognizers: Sequence[Recognizer] | None = None,
    clock: Callable[[], datetime] | None = None,
    new_admin_key: bool = False,
) -> FastAPI:
    """The service as an ASGI app. On first start this creates the data directory, the store,
    the checkpoint key pair and an admin API key (its token: ``app.state.service.first_admin_token``,
    printed by ``faceledger serve``). ``recognizers`` (one per model worker) and ``clock`` are for
    embedding and tests. Whoever creates the app closes the store when done:
    ``app.state.service.close()``."""
    from faceledger import __version__

    settings = settings or load_settings()
    service = build_service(settings, recognizers=recognizers, clock=clock, new_admin_key=new_admin_key)
    app = FastAPI(title="FaceLedger", version=__version__, description=DESCRIPTION, docs_url=None,
                  redoc_url=None, lifespan=_lifespan(service))
    app.state.service = service
    app.state.idempotency = Idempotency(service.gov, settings.idempotency_ttl_hours)
    install_handlers(app)
    for module in (health, photos, galleries, identify, oversight, admin):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=health.STATIC), name="static")
    app.add_middleware(ModelAdmissionMiddleware, service=service)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(BearerFirstMiddleware, on_refuse=lambda: service.metrics.count("auth_failures_total"))
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestLimitMiddleware, max_requests=settings.max_requests,
                       retry_after_s=settings.retry_after_s,
                       on_refuse=lambda: service.metrics.count("overload_rejections_total"))
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    return app
