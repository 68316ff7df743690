"""Errors as ``application/problem+json`` (RFC 9457), with a stable ``type`` per error code.

Every error answer has ``type`` (``https://faceledger.org/problems/<code>``: a name, never
fetched), ``title``, ``status``, ``detail`` and ``code``; some add ``errors`` (request
validation) or engine details (``reason``, ``rejections``). Never a traceback: an
unexpected exception is logged and answered 500 ``internal_error`` with a generic text.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from faceledger.errors import (
    ConflictError,
    FaceLedgerError,
    FileTooLargeError,
    ImageTooLargeError,
    InputError,
    ModelError,
    ModelMismatchError,
    NotCalibratedError,
    NotFoundError,
    RateLimitedError,
    RefusedError,
    StorageFullError,
    StoreUnavailableError,
    UnknownTargetError,
)

__all__ = ["PROBLEM_BASE", "Problem", "ServiceError", "install_handlers", "problem_response", "responses", "scrub",
           "status_of"]

log = logging.getLogger("faceledger.server")

PROBLEM_BASE = "https://faceledger.org/problems/"
PROBLEM_JSON = "application/problem+json"

#: Most specific first: the first class an error is an instance of gives its HTTP status.
_STATUS: tuple[tuple[type[FaceLedgerError], int], ...] = (
    (FileTooLargeError, 413),
    (ImageTooLargeError, 413),
    (InputError, 422),
    (NotCalibratedError, 422),
    (ModelMismatchError, 409),
    (ModelError, 503),
    (RateLimitedError, 429),
    (UnknownTargetError, 422),
    (RefusedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (StorageFullError, 507),
    (StoreUnavailableError, 503),
)
_HTTP_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "request_too_large",
               415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited",
               500: "internal_error", 503: "overloaded", 507: "storage_full"}
_STORE_DETAIL = {
    "storage_full": "the store's disk is full: nothing of this request was written; retry once space is freed",
    "store_unavailable": "the connection to the store was lost: nothing of this request was written; retry",
}
_SAFE_DETAILS = ("reason", "rejections", "purpose", "consent_id", "role", "operation", "field", "count", "limit",
                 "size", "width", "height")


class Problem(BaseModel):
    """A problem+json body (the OpenAPI schema of every error answer)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str


class ServiceError(Exception):
    """An error raised by the HTTP layer itself (authentication, overload, idempotency, limits)."""

    def __init__(self, status: int, code: str, detail: str, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers, self.extra = status, code, detail, headers or {}, extra


def status_of(exc: FaceLedgerError) -> int:
    """The HTTP status of an engine error (500 for configuration and storage failures)."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def _title(code: str) -> str:
    return code.replace("_", " ").capitalize()


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of an error detail (finite numbers, short strings, shallow)."""
    if depth > 4:
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in list(value.items())[:50]}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in list(value)[:50]]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int)):
        return value
    return scrub(str(value)[:1000])


#: A Python repr with a heap address (``<_io.BytesIO object at 0x7f...>``), or a bare address.
_REPR = re.compile(r"<[^<>]{0,200}? at 0x[0-9a-fA-F]+>|\b0x[0-9a-fA-F]{6,}\b")


_CLASS = re.compile(r"<class '([\w.]+)'>")


def _message(error: dict[str, Any]) -> str:
    """A validation message in words (pydantic's own may name Python types)."""
    msg = str(error.get("msg", ""))
    if "Expected UploadFile" in msg:
        return "a file is expected here (send the form as multipart/form-data)"
    return scrub(msg[:300])


def scrub(text: str) -> str:
    """``text`` without reprs or heap addresses, and cut before any traceback: the last line of defence
    (messages are written as fixed texts at their source)."""
    text = _CLASS.sub(lambda m: m.group(1).rsplit(".", 1)[-1], _REPR.sub("<object>", text))
    return text.split("Traceback (most recent call last)", 1)[0].rstrip()


def problem_body(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"type": PROBLEM_BASE + code, "title": _title(code), "status": status, "detail": scrub(detail),
            "code": code, **extra}


def problem_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None,
                     **extra: Any) -> JSONResponse:
    return JSONResponse(problem_body(status, code, detail, **extra), status_code=status, headers=headers,
                        media_type=PROBLEM_JSON)


def engine_problem(exc: FaceLedgerError, retry_after_s: int = 60) -> JSONResponse:
    """The answer to an engine error (its code, message and safe details)."""
    status = status_of(exc)
    if status == 500:
        log.error("engine error %s: %s", exc.code, exc.message)
        return problem_response(500, exc.code, "the service could not complete the request; see its log")
    extra = {k: _plain(exc.details[k]) for k in _SAFE_DETAILS if k in exc.details}
    headers = {"Retry-After": str(retry_after_s if status == 429 else 5)} if status in (429, 503, 507) else None
    detail = exc.message
    if isinstance(exc, (StorageFullError, StoreUnavailableError)):  # the store's own text names files and hosts
        log.error("store error %s: %s", exc.code, exc.message)
        detail = _STORE_DETAIL[exc.code]
    return problem_response(status, exc.code, detail, headers, **extra)


def _validation(exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": _message(e),
               "type": str(e.get("type", ""))} for e in exc.errors()[:20]]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    detail = f"{'.'.join(first['loc'][1:] or first['loc']) or 'request'}: {first['msg']}"
    return problem_response(422, "validation_error", detail, errors=errors)


def install_handlers(app: FastAPI) -> None:
    """Answer every error as problem+json."""

    @app.exception_handler(FaceLedgerError)
    async def _engine(request: Request, exc: FaceLedgerError) -> JSONResponse:
        return engine_problem(exc)

    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> JSONResponse:
        return problem_response(exc.status, exc.code, exc.detail, exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else _title(code)
        if exc.status_code == 400 and "parsing the body" in detail:
            detail = "the request body could not be parsed (malformed multipart form or JSON)"
        return problem_response(exc.status_code, code, detail, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal_error", "an unexpected error occurred; it has been logged")


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting problem+json answers for ``statuses`` (plus 400, 401, 413, 422, 429:
    bad headers, authentication, the body cap, validation and rate limits apply to every route)."""
    wanted: Iterable[int] = sorted({400, 401, 413, 422, 429, *statuses})
    return {s: {"description": _HTTP_CODES.get(s, "error").replace("_", " "),
                "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            for s in wanted}
