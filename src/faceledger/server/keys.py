"""API keys: random bearer tokens, stored only as salted hashes, each bound to one actor and role.

A token looks like ``flk_<key id>_<secret>``: the key id (12 hex digits) names the key in
listings and in the ledger; the secret is 32 random bytes (URL-safe base64) and is shown
once, when the key is created. The store keeps ``SHA-256(salt || secret)`` with a random
16-byte salt, as a governance record of kind ``api_key`` — a hash of a high-entropy
secret needs no slow password hash.

Creating, listing and revoking keys needs the ``key_change`` operation (``admin`` by
default) and is written to the ledger in the same transaction, like every engine
operation (``operation = "key_change"``, ``result.action`` says which); refused attempts
are ledgered too. Authentication itself is not ledgered (an unknown token names nobody).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from faceledger.engine import Actor, Engine
from faceledger.errors import FaceLedgerError, InputError, NotFoundError, RefusedError
from faceledger.governance._time import from_iso, to_iso
from faceledger.governance.ledger import EntryDraft, entry_fields, refusal_result
from faceledger.governance.policy import check_operation
from faceledger.governance.roles import Operation, Role

__all__ = ["API_KEY", "ApiKey", "KeyManager", "parse_token"]

API_KEY = "api_key"
TOKEN_PREFIX = "flk"
_TOKEN = re.compile(r"^flk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_ACTOR = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key without its secret: who it acts as, in which role, and whether it is revoked."""

    key_id: str
    actor: str
    role: str
    label: str | None
    created_at: str
    created_by: str
    revoked_at: str | None = None
    revoked_by: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_actor(self) -> Actor:
        """The actor this key acts as; its ledger entries carry the key id as their credential."""
        return Actor(self.actor, self.role, credential=f"key:{self.key_id}")

    def to_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "actor": self.actor, "role": self.role, "label": self.label,
                "created_at": self.created_at, "created_by": self.created_by, "revoked_at": self.revoked_at,
                "revoked_by": self.revoked_by, "active": self.active}


def parse_token(token: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a well-formed token, else None."""
    m = _TOKEN.match(token.strip())
    return (m.group(1), m.group(2)) if m else None


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("ascii")).hexdigest()


def _key_of(data: dict[str, Any]) -> ApiKey:
    return ApiKey(data["key_id"], data["actor"], data["role"], data.get("label"), data["created_at"],
                  data["created_by"], data.get("revoked_at"), data.get("revoked_by"))


class KeyManager:
    """API keys kept in the engine's store, with their creation, listing and revocation ledgered."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- authentication (not ledgered) ----------------------------------------------------
    def authenticate(self, token: str) -> ApiKey | None:
        """The active key ``token`` belongs to, or None (unknown, malformed, revoked)."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        try:
            data = self.engine.store.get_record(API_KEY, key_id).data
        except NotFoundError:
            return None
        if not hmac.compare_digest(_digest(data["salt"], secret), data["digest"]):
            return None
        key = _key_of(data)
        return key if key.active else None

    def has_active_admin(self) -> bool:
        return any(r.data.get("role") == Role.ADMIN.value and r.data.get("revoked_at") is None
                   for r in self.engine.store.list_records(API_KEY))

    # -- ledgered operations ----------------------------------------------------------------
    def create(self, admin: Actor, actor: str, role: str, label: str | None = None) -> tuple[ApiKey, str]:
        """A new key for ``actor`` in ``role``; returns it and its token (the only time it is shown)."""
        with self._guard(admin, {"action": "api_key_create"}):
            self._permit(admin)
            if not isinstance(actor, str) or not _ACTOR.match(actor) or not actor.strip():
                raise InputError("actor must be 1-128 printable characters", field="actor")
            Actor(actor, role)  # validates the role
            if label is not None and (len(label) > 200 or not _ACTOR.match(label)):
                raise InputError("label must be at most 200 printable characters", field="label")
            key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(16)
            data = {"key_id": key_id, "actor": actor.strip(), "role": Role(role).value, "label": label,
                    "salt": salt, "digest": _digest(salt, secret), "created_at": to_iso(self.engine.now()),
                    "created_by": admin.id, "revoked_at": None, "revoked_by": None}
            with self.engine.store.transaction() as tx:
                tx.put_record(API_KEY, key_id, data)
                self._append(tx, admin, "ok", {"action": "api_key_create", "key_id": key_id,
                                               "key_actor": data["actor"], "key_role": data["role"]})
        return _key_of(data), f"{TOKEN_PREFIX}_{key_id}_{secret}"

    def list(self, admin: Actor) -> list[ApiKey]:
        """Every key (active and revoked), oldest first; never a secret or its hash."""
        with self._guard(admin, {"action": "api_key_list"}):
            self._permit(admin)
            keys = sorted((_key_of(r.data) for r in self.engine.store.list_records(API_KEY)),
                          key=lambda k: (from_iso(k.created_at), k.key_id))
            with self.engine.store.transaction() as tx:
                self._append(tx, admin, "ok", {"action": "api_key_list", "keys": len(keys)})
        return keys

    def revoke(self, admin: Actor, key_id: str) -> ApiKey:
        """Revoke a key from now on (revoking twice is a no-op that keeps the first time)."""
        with self._guard(admin, {"action": "api_key_revoke", "key_id": str(key_id)[:64]}):
            self._permit(admin)
            with self.engine.store.transaction() as tx:
                data = dict(tx.get_record(API_KEY, key_id).data)
                if data.get("revoked_at") is None:
                    data["revoked_at"], data["revoked_by"] = to_iso(self.engine.now()), admin.id
                    tx.put_record(API_KEY, key_id, data)
                self._append(tx, admin, "ok", {"action": "api_key_revoke", "key_id": key_id,
                                               "key_actor": data["actor"], "key_role": data["role"]})
        return _key_of(data)

    # -- the ledger ----------------------------------------------------------------------------
    def _permit(self, admin: Actor) -> None:
        check_operation(self.engine.policy, admin.role, Operation.KEY_CHANGE)

    def _append(self, tx: Any, admin: Actor, outcome: str, result: dict[str, Any]) -> None:
        draft = EntryDraft(actor=admin.id, role=admin.role.value, operation=Operation.KEY_CHANGE.value,
                           outcome=outcome, result=result, policy_digest=self.engine.policy.digest,
                           credential=admin.credential)
        tx.append_ledger(entry_fields(draft, self.engine.now()))

    @contextmanager
    def _guard(self, admin: Actor, what: dict[str, Any]) -> Iterator[None]:
        """Ledger a refused (or failed) key operation in a transaction of its own, then re-raise."""
        try:
            yield
        except FaceLedgerError as exc:
            outcome = "refused" if isinstance(exc, RefusedError) else "error"
            with self.engine.store.transaction() as tx:
                self._append(tx, admin, outcome, {**what, **refusal_result(exc)})
            raise
