"""API keys: random bearer tokens, stored only as salted hashes, each bound to one actor and role.

A token looks like ``flk_<key id>_<secret>``: the key id (12 hex digits) names the key in
listings and, as the credential ``key:<key id>``, in every ledger entry made with it; the
secret is 32 random bytes (URL-safe base64), shown once, when the key is created. The
store keeps ``SHA-256(salt || secret)`` with a random 16-byte salt, as a governance record
of kind ``api_key`` — a hash of a high-entropy secret needs no slow password hash.

Creating, listing and revoking keys are engine operations like any other (``key_create``,
``key_list``, ``key_revoke``; ``admin`` by default), ledgered with their refusals. Rules:

* the service's own actor (:data:`SERVICE_ACTOR`) is reserved: no key acts as it;
* the last active admin key cannot be revoked (create another first), so a deployment
  never locks its administrators out by accident — or by a stolen key revoking itself;
* authentication is not ledgered (an unknown token names nobody); a key whose role no
  longer exists, or that names the reserved actor, does not authenticate.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from faceledger.errors import ConflictError, NotFoundError, PermissionDeniedError
from faceledger.governance._time import from_iso, to_iso
from faceledger.governance.builders import check_actor_id
from faceledger.governance.roles import Operation, Role

from ._base import EngineBase, Op
from .results import Actor

__all__ = ["API_KEY", "SERVICE_ACTOR", "ApiKey", "KeyOps", "parse_token"]

API_KEY = "api_key"
TOKEN_PREFIX = "flk"
#: The actor of what the service does by itself (first-start set-up, scheduled retention).
SERVICE_ACTOR = "faceledger-service"
_TOKEN = re.compile(r"^flk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_KEY_ID = re.compile(r"^[0-9a-f]{12}$")
_ROLES = frozenset(r.value for r in Role)


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

    @property
    def credential(self) -> str:
        """How the ledger names this key: ``key:<key id>``."""
        return f"key:{self.key_id}"

    def as_actor(self) -> Actor:
        """The actor this key acts as; its ledger entries carry the key id as their credential."""
        return Actor(self.actor, self.role, credential=self.credential)

    def to_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "actor": self.actor, "role": self.role, "label": self.label,
                "created_at": self.created_at, "created_by": self.created_by, "revoked_at": self.revoked_at,
                "revoked_by": self.revoked_by, "active": self.active}


def parse_token(token: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a well-formed token, else None."""
    m = _TOKEN.match(token.strip()) if isinstance(token, str) else None
    return (m.group(1), m.group(2)) if m else None


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("ascii")).hexdigest()


def _key_of(data: dict[str, Any]) -> ApiKey:
    return ApiKey(data["key_id"], data["actor"], data["role"], data.get("label"), data["created_at"],
                  data["created_by"], data.get("revoked_at"), data.get("revoked_by"))


def _is_active_admin(data: dict[str, Any]) -> bool:
    return data.get("role") == Role.ADMIN.value and data.get("revoked_at") is None


class KeyOps(EngineBase):
    # -- authentication (not ledgered) ------------------------------------------------------
    def authenticate(self, token: str) -> ApiKey | None:
        """The active key ``token`` belongs to, or None (unknown, malformed, revoked, reserved actor)."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        record = self._key_record(key_id)
        if record is None or not hmac.compare_digest(_digest(record["salt"], secret), record["digest"]):
            return None
        key = _key_of(record)
        if not key.active or key.actor == SERVICE_ACTOR or key.role not in _ROLES:
            return None
        return key

    def has_admin_key(self) -> bool:
        """Whether any active key acts as an admin (the service makes one at first start otherwise)."""
        return any(_is_active_admin(r.data) for r in self.store.list_records(API_KEY))

    def _key_record(self, key_id: str) -> dict[str, Any] | None:
        try:
            return self.store.get_record(API_KEY, key_id).data
        except NotFoundError:
            return None

    # -- ledgered operations ------------------------------------------------------------------
    def create_key(self, actor: Actor, key_actor: str, role: Role | str, *,
                   label: str | None = None) -> tuple[ApiKey, str]:
        """A new key for ``key_actor`` in ``role``; returns it and its token (the only time it is shown)."""
        op = Op(actor, Operation.KEY_CREATE)
        with self._guard(op):
            self._permit(op)
            name = check_actor_id(key_actor, "actor")
            key_role = Actor(name, role).role  # validates the role
            if label is not None:
                check_actor_id(label, "label")
            if name == SERVICE_ACTOR:
                raise PermissionDeniedError(f"'{SERVICE_ACTOR}' is the service's own actor: no key may act as it",
                                            reason="reserved_actor")
            key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(16)
            data = {"key_id": key_id, "actor": name, "role": key_role.value, "label": label, "salt": salt,
                    "digest": _digest(salt, secret), "created_at": to_iso(self.now()), "created_by": actor.id,
                    "revoked_at": None, "revoked_by": None}
            with self.store.transaction() as tx:
                tx.put_record(API_KEY, key_id, data)
                op.reference = f"key:{key_id}"
                self._commit(tx, op, {"key_id": key_id, "key_actor": name, "key_role": key_role.value})
        return _key_of(data), f"{TOKEN_PREFIX}_{key_id}_{secret}"

    def list_keys(self, actor: Actor) -> list[ApiKey]:
        """Every key (active and revoked), oldest first; never a secret or its hash."""
        op = Op(actor, Operation.KEY_LIST)
        with self._guard(op):
            self._permit(op)
            keys = sorted((_key_of(r.data) for r in self.store.list_records(API_KEY)),
                          key=lambda k: (from_iso(k.created_at), k.key_id))
            self._log(op, "ok", {"keys": len(keys), "active": sum(k.active for k in keys)})
        return keys

    def revoke_key(self, actor: Actor, key_id: str) -> ApiKey:
        """Revoke a key from now on (revoking twice keeps the first time). The last active admin
        key cannot be revoked (:class:`ConflictError`): create another admin key first."""
        op = Op(actor, Operation.KEY_REVOKE)
        if isinstance(key_id, str) and _KEY_ID.match(key_id):
            op.reference = f"key:{key_id}"
        with self._guard(op):
            self._permit(op)
            with self.store.transaction() as tx:
                try:
                    data = dict(tx.get_record(API_KEY, key_id).data)
                except NotFoundError:
                    raise NotFoundError(f"no API key with id {key_id!r}") from None
                if _is_active_admin(data):
                    others = [r for r in tx.list_records(API_KEY) if r.record_id != key_id and _is_active_admin(r.data)]
                    if not others:
                        raise ConflictError(f"key {key_id} is the last active admin key: create another admin key "
                                            "before revoking it", key_id=key_id)
                if data.get("revoked_at") is None:
                    data["revoked_at"], data["revoked_by"] = to_iso(self.now()), actor.id
                    tx.put_record(API_KEY, key_id, data)
                self._commit(tx, op, {"key_id": key_id, "key_actor": data["actor"], "key_role": data["role"],
                                      "self": actor.credential == f"key:{key_id}"})
        return _key_of(data)
