"""The ledger (verify, export, signed checkpoints), usage reports and the retention run."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, PlainTextResponse
from starlette.background import BackgroundTask

from faceledger.errors import InputError

from ..deps import Auth
from ..problems import responses
from ..schemas import (
    CheckpointOut,
    LedgerVerifyIn,
    LedgerVerifyOut,
    PolicyIn,
    PolicyOut,
    RetentionIn,
    RetentionOut,
    TrainingIn,
    TrainingOut,
)

router = APIRouter(prefix="/v1", tags=["oversight"])


@router.post("/ledger/verify", response_model=LedgerVerifyOut, responses=responses(403))
async def verify_ledger(call: Auth, body: LedgerVerifyIn | None = None):
    """Check the whole hash chain (and the service's signed checkpoints); says where it breaks."""
    service = call.service
    use = body.checkpoints if body is not None else True
    checkpoints = service.checkpoint_files() if use else []
    keys = [service.checkpoint_public_key] if checkpoints else []

    async def work() -> LedgerVerifyOut:
        r = await call.gov(lambda e, a: e.verify_ledger(a, checkpoints=checkpoints, public_keys=keys))
        d = r.to_dict()
        return LedgerVerifyOut(ok=d["ok"], checked=d["checked"], head=d["head"], checkpoints=d["checkpoints"],
                               problems=d["problems"], summary=r.summary())

    return await call.respond(work)


@router.get("/ledger/export", responses={**responses(403), 200: {
    "description": "The ledger as JSON lines, one entry a line, in order.",
    "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}})
async def export_ledger(call: Auth, start_seq: Annotated[int, Query(ge=1, le=2**62)] = 1):
    """The ledger from ``start_seq`` as JSON lines (no biometric data is ever in it)."""
    fd, name = tempfile.mkstemp(prefix=".ledger-export-", suffix=".jsonl", dir=call.service.data_dir)
    os.close(fd)
    try:
        await call.gov(lambda e, a: e.export_ledger(a, name, start_seq=start_seq))
    except BaseException:
        os.unlink(name)
        raise
    return FileResponse(name, media_type="application/x-ndjson", filename="faceledger-ledger.jsonl",
                        background=BackgroundTask(os.unlink, name))


@router.post("/ledger/checkpoints", status_code=201, response_model=CheckpointOut, responses=responses(403, 409))
async def checkpoint(call: Auth):
    """Sign the ledger's head with the service's Ed25519 key; ship the answer somewhere safe."""
    service = call.service

    async def work() -> CheckpointOut:
        service.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        out = service.checkpoint_dir / f"checkpoint-{stamp}-{uuid.uuid4().hex[:8]}.json"
        path = await call.gov(lambda e, a: e.checkpoint(a, service.checkpoint_key, out))
        return CheckpointOut(**json.loads(path.read_text()), file=path.name)

    return await call.respond(work, 201)


def _when(text: str | None, default: datetime, name: str) -> datetime:
    if not text:
        return default
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{name}: not an ISO-8601 date or time: {text[:40]!r}", field=name) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@router.get("/reports/usage", responses={**responses(403), 200: {
    "description": "The usage report.", "content": {
        "application/json": {"schema": {"type": "object"}}, "text/markdown": {"schema": {"type": "string"}}}}})
async def usage_report(
    call: Auth,
    start: Annotated[str | None, Query(alias="from", max_length=40, description="ISO-8601; default a year ago.")]
    = None,
    end: Annotated[str | None, Query(alias="to", max_length=40, description="ISO-8601; default now.")] = None,
    format: Annotated[str, Query(pattern="^(json|markdown)$")] = "json",
):
    """Operations by purpose, actor, authorization and outcome; refusals, erasures, review outcomes."""
    def run(e, a):  # noqa: ANN001, ANN202
        stop = _when(end, e.now(), "to")
        return e.usage_report(a, _when(start, stop - timedelta(days=365), "from"), stop)
    report = await call.gov(run)
    if format == "markdown":
        return PlainTextResponse(report.to_markdown(), media_type="text/markdown; charset=utf-8")
    return await call.respond(_value(report.to_dict()))


def _value(data: dict[str, Any]):  # noqa: ANN202
    async def value() -> dict[str, Any]:
        return data
    return value


@router.post("/retention/run", response_model=RetentionOut, responses=responses(403))
async def retention_run(call: Auth, body: RetentionIn | None = None):
    """Erase subjects whose consent ended or whose retention period elapsed (``dry_run``: only list them)."""
    dry = body.dry_run if body is not None else False

    async def work() -> RetentionOut:
        plan = await call.gov(lambda e, a: e.run_retention(a, dry_run=dry))
        d = plan.to_dict()
        return RetentionOut(dry_run=dry, at=d["at"], kept=d["kept"], purge=d["purge"])

    return await call.respond(work)


# -- the policy and training ---------------------------------------------------------------------------
@router.get("/policy", response_model=PolicyOut, responses=responses(403))
async def show_policy(call: Auth):
    """The policy in force: digest, source and content."""
    return await call.respond(lambda: call.gov(lambda e, a: e.policy_view(a)))


@router.put("/policy", response_model=PolicyOut, responses=responses(403, 409))
async def change_policy(call: Auth, body: PolicyIn):
    """Replace the policy (validated; ledgered as ``policy_change`` with what changed)."""
    def run(e, a):  # noqa: ANN001, ANN202
        e.change_policy(a, body.toml)
        return e.policy_view(a)
    return await call.respond(lambda: call.gov(run))


@router.post("/trainings", status_code=201, response_model=TrainingOut, responses=responses(403))
async def record_training(call: Auth, body: TrainingIn):
    """Record that someone completed a training course (the policy may require it to search or review)."""
    return await call.respond(lambda: call.gov(lambda e, a: e.record_training(
        a, body.person, body.course, completed_at=body.completed_at, expires_at=body.expires_at,
        valid_days=body.valid_days).to_dict()), 201)


@router.get("/trainings", response_model=list[TrainingOut], responses=responses(403))
async def list_trainings(call: Auth, person: Annotated[str | None, Query(max_length=256)] = None):
    """Training records (of one person with ``person``)."""
    return await call.respond(lambda: call.gov(lambda e, a: [t.to_dict() for t in e.trainings(a, person)]))
