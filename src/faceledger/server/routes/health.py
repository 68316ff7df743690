"""Health, readiness, Prometheus metrics, and the web page."""

from __future__ import annotations

from pathlib import Path

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse

from ..metrics import CONTENT_TYPE
from ..problems import ServiceError

router = APIRouter(tags=["service"])
STATIC = Path(__file__).resolve().parents[1] / "static"


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (no store or model check: see /readyz)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready."}})
async def readyz(request: Request):
    """Ready to serve: the models are loaded, the galleries loaded for search, and the store answers."""
    service = request.app.state.service
    warming = service.warming
    if warming.state == "loading":
        done = f"{warming.galleries} of {warming.total}" if warming.total is not None else "listing"
        raise ServiceError(503, "warming", f"loading the galleries for search ({done} galleries)",
                           headers={"Retry-After": "1"}, galleries=warming.view())
    try:
        return JSONResponse(await anyio.to_thread.run_sync(service.ready))
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        raise ServiceError(503, "not_ready", f"not ready: {type(exc).__name__}",
                           headers={"Retry-After": "5"}) from None


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
                       401: {"description": "With metrics_public = false: an admin or auditor key is needed."}})
async def metrics(request: Request):
    """Prometheus metrics (text format 0.0.4). No personal data: counts and times by route template."""
    service = request.app.state.service
    if not service.settings.metrics_public:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        key = await anyio.to_thread.run_sync(service.gov.authenticate, token.strip()) if scheme.lower() == "bearer" \
            else None
        if key is None or key.role not in ("admin", "auditor"):
            raise ServiceError(401, "unauthenticated", "metrics need an admin or auditor API key",
                               headers={"WWW-Authenticate": 'Bearer realm="faceledger"'})
    return PlainTextResponse(service.metrics.render(), media_type=CONTENT_TYPE)


@router.get("/docs", include_in_schema=False)
async def docs_page() -> FileResponse:
    """The API reference, drawn in the browser from /openapi.json by /static/docs.js (no CDN)."""
    return FileResponse(STATIC / "docs.html", media_type="text/html; charset=utf-8")


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    """The web page (plain HTML, CSS and JavaScript served by this process; nothing external)."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")
