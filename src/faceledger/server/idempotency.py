"""``Idempotency-Key``: a repeated POST (or DELETE) with the same key replays the first answer.

The first answer (success, or an engine refusal or error; not 429, 503 or 5xx, which a
retry should re-attempt) is kept by the engine (:meth:`Engine.keep_answer`; erasing a
subject deletes every kept answer that names it) under
``<API key id>:<SHA-256 of the Idempotency-Key>`` with a fingerprint of the request
(method, path, query, form fields with file digests, or the canonical JSON body).
The same key with a different request is refused (422 ``idempotency_key_reused``);
while the first request runs, a second one is refused (409 ``idempotency_in_progress``).
Records older than ``idempotency_ttl_hours`` are never replayed, and are deleted (at most once an
hour, when a new answer is kept). Replays carry the header
``Idempotent-Replayed: true``. The record is written right after the engine's own
transaction, so a crash between the two can let one retry run again.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from faceledger.core.chain import canonical_json
from faceledger.engine import Engine
from faceledger.errors import FaceLedgerError

from .problems import ServiceError, engine_problem

__all__ = ["Idempotency"]

HEADER = "Idempotency-Key"
SWEEP_EVERY = timedelta(hours=1)


async def fingerprint(request: Request) -> str:
    """SHA-256 of what the request asks for, independent of multipart boundaries."""
    h = hashlib.sha256(f"{request.method} {request.url.path}?{sorted(request.query_params.multi_items())}".encode())
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data") or ctype.startswith("application/x-www-form-urlencoded"):
        form = await request.form()
        for name, value in sorted(form.multi_items(), key=lambda kv: kv[0]):
            if isinstance(value, UploadFile):
                await value.seek(0)
                digest = hashlib.sha256(await value.read()).hexdigest()
                await value.seek(0)
                h.update(f"\x1f{name}=file:{digest}".encode())
            else:
                h.update(f"\x1f{name}={value}".encode())
    else:
        body = await request.body()
        try:
            h.update(b"\x1f" + canonical_json({"body": json.loads(body)}))
        except (ValueError, TypeError):
            h.update(b"\x1f" + hashlib.sha256(body).digest())
    return h.hexdigest()


class Idempotency:
    """Replays answers by ``(API key, Idempotency-Key)`` (see the module docstring)."""

    def __init__(self, engine: Engine, ttl_hours: int) -> None:
        self.engine, self.ttl = engine, timedelta(hours=ttl_hours)
        self._swept = datetime.min.replace(tzinfo=UTC)
        self._inflight: set[str] = set()
        self._lock = threading.Lock()

    async def run(self, request: Request, key_id: str, work: Callable[[], Awaitable[Response]],
                  *, redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Response:
        """``await work()``, or the stored answer of the first request with this key.

        ``redact`` removes what must not be stored (e.g. a newly created API key's token).
        """
        header = request.headers.get(HEADER)
        if header is None:
            return await _answer(work)
        if not 1 <= len(header) <= 255 or not header.isprintable() or not header.isascii():
            raise ServiceError(400, "bad_idempotency_key", "Idempotency-Key must be 1-255 printable ASCII characters")
        record_id = f"{key_id}:{hashlib.sha256(header.encode()).hexdigest()[:40]}"
        fp = await fingerprint(request)
        with self._lock:
            if record_id in self._inflight:
                raise ServiceError(409, "idempotency_in_progress",
                                   "a request with this Idempotency-Key is still running; retry later",
                                   headers={"Retry-After": "1"})
            self._inflight.add(record_id)
        try:
            stored = await anyio.to_thread.run_sync(self._load, record_id)
            if stored is not None:
                if stored["fingerprint"] != fp:
                    raise ServiceError(422, "idempotency_key_reused",
                                       "this Idempotency-Key was used for a different request")
                return JSONResponse(stored["body"], status_code=stored["status"], media_type=stored["media_type"],
                                    headers={"Idempotent-Replayed": "true"})
            response = await _answer(work)
            if response.status_code < 500 and response.status_code != 429 and isinstance(response, JSONResponse):
                body = json.loads(bytes(response.body))
                data = {"fingerprint": fp, "status": response.status_code, "media_type": response.media_type,
                        "body": redact(body) if redact else body, "at": datetime.now(UTC).isoformat()}
                await anyio.to_thread.run_sync(self._save, record_id, data)
            return response
        finally:
            with self._lock:
                self._inflight.discard(record_id)

    def _load(self, record_id: str) -> dict[str, Any] | None:
        data = self.engine.stored_answer(record_id)
        if data is None or datetime.fromisoformat(data["at"]) < datetime.now(UTC) - self.ttl:
            return None
        return data

    def _save(self, record_id: str, data: dict[str, Any]) -> None:
        self.engine.keep_answer(record_id, data)
        now = datetime.now(UTC)
        if now - self._swept >= SWEEP_EVERY:
            self._swept = now
            self.engine.forget_answers(now - self.ttl)


async def _answer(work: Callable[[], Awaitable[Response]]) -> Response:
    """``work()``'s response, with engine errors turned into their problem answer (so they can be kept)."""
    try:
        return await work()
    except FaceLedgerError as exc:
        return engine_problem(exc)
