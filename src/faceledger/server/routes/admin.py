"""API keys (admins) and ``/v1/me`` (who the caller's key acts as, and what it may do)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from ..deps import Auth
from ..problems import responses
from ..schemas import KeyCreatedOut, KeyIn, KeyOut, MeOut

router = APIRouter(prefix="/v1", tags=["keys"])


@router.get("/me", response_model=MeOut, responses=responses())
async def me(call: Auth):
    """The caller's actor, role and allowed operations, and the policy's purposes (for clients and the page)."""
    policy = call.service.policy
    role = call.actor.role
    return await call.respond(_value(MeOut(
        actor=call.key.actor, role=role.value, key_id=call.key.key_id,
        operations=sorted(op.value for op in policy.permissions.get(role, ())), purposes=sorted(policy.purposes),
        identification_enabled=policy.identification.enabled, required_reviewers=policy.required_reviewers,
        organisation=policy.organisation, model_id=call.service.gov.recognizer.model_id)))


def _value(value: Any):  # noqa: ANN202
    async def get() -> Any:
        return value
    return get


@router.post("/keys", status_code=201, response_model=KeyCreatedOut, responses=responses(403))
async def create_key(call: Auth, body: KeyIn):
    """A new API key for an actor in one role. The token is in this answer only: it is stored hashed."""
    async def work() -> KeyCreatedOut:
        key, token = await call.gov(lambda e, a: e.create_key(a, body.actor, body.role.value, label=body.label))
        return KeyCreatedOut(**key.to_dict(), token=token)

    return await call.respond(work, 201, redact=lambda body: {**body, "token": None})


@router.get("/keys", response_model=list[KeyOut], responses=responses(403))
async def list_keys(call: Auth):
    """Every API key (active and revoked); never a token or its hash."""
    async def work() -> list[dict[str, Any]]:
        keys = await call.gov(lambda e, a: e.list_keys(a))
        return [k.to_dict() for k in keys]
    return await call.respond(work)


@router.post("/keys/{key_id}/revoke", response_model=KeyOut, responses=responses(403, 404))
async def revoke_key(call: Auth, key_id: Annotated[str, Path(min_length=1, max_length=64)]):
    """Revoke an API key at once (a revoked key is refused with 401 from the next request)."""
    async def work() -> KeyOut:
        key = await call.gov(lambda e, a: e.revoke_key(a, key_id))
        return KeyOut(**key.to_dict())
    return await call.respond(work)
