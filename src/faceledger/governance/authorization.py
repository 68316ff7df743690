"""Authorizations for 1:N identification, and every precondition of a search in one place.

No search runs without an :class:`Authorization` that is valid at the time of the
search and whose scope covers the gallery searched and the purpose declared: a
court order, a warrant, a missing-person request, or the consent-based access-control
arrangement of a site. :func:`check_identification` applies all the rules in a fixed,
documented order, so the refusal a caller sees (and the ledger records) is always the
first rule that fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from faceledger.errors import (
    AuthorizationRequiredError,
    ConflictError,
    IdentificationDisabledError,
    InputError,
    ProhibitedUseError,
    RateLimitedError,
)
from faceledger.governance._time import from_iso, to_iso, utc
from faceledger.governance.policy import Policy, check_operation, check_purpose
from faceledger.governance.roles import Operation, Role
from faceledger.governance.targets import check_targets

__all__ = [
    "Authorization",
    "AuthorizationKind",
    "IdentificationRequest",
    "authorization_from_dict",
    "check_identification",
    "count_recent_searches",
    "require_authorization",
    "revoke",
]


class AuthorizationKind(StrEnum):
    """What kind of instrument allows the searches."""

    CONSENTED_ACCESS_CONTROL = "consented_access_control"
    COURT_ORDER = "court_order"
    WARRANT = "warrant"
    MISSING_PERSON = "missing_person"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Authorization:
    """One recorded authorization: what allows searches, in which galleries, for which purposes, when.

    Valid from ``valid_from`` (inclusive) until ``valid_until`` (exclusive), unless
    revoked earlier (``revoked_at``). ``live_allowed`` must be true for searches on
    live streams (and the policy must allow them too). ``galleries`` and ``purposes``
    are explicit lists: there is no wildcard.
    """

    id: str
    kind: AuthorizationKind
    reference: str
    issuer: str
    galleries: frozenset[str]
    purposes: frozenset[str]
    valid_from: datetime
    valid_until: datetime
    recorded_by: str
    live_allowed: bool = False
    revoked_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("id", "reference", "issuer", "recorded_by"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"authorization: {name} is required (a non-empty string)", field=name)
        set_ = object.__setattr__
        try:
            set_(self, "kind", AuthorizationKind(self.kind))
        except ValueError:
            known = ", ".join(k.value for k in AuthorizationKind)
            raise InputError(f"authorization: kind {self.kind!r} is not one of {known}", field="kind") from None
        for name in ("galleries", "purposes"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) and v for v in value) or not value:
                raise InputError(f"authorization: {name} must be a non-empty list of names", field=name)
            set_(self, name, frozenset(value))
        set_(self, "valid_from", utc(self.valid_from, "authorization valid_from"))
        set_(self, "valid_until", utc(self.valid_until, "authorization valid_until"))
        if self.valid_until <= self.valid_from:
            raise InputError("authorization: valid_until must be after valid_from", field="valid_until")
        if type(self.live_allowed) is not bool:
            raise InputError("authorization: live_allowed must be true or false", field="live_allowed")
        if self.revoked_at is not None:
            set_(self, "revoked_at", utc(self.revoked_at, "authorization revoked_at"))

    def problem(self, gallery: str, purpose: str, at: datetime) -> str | None:
        """Why this authorization does not allow a search, or ``None``.

        Reasons, in the order checked: ``"gallery_out_of_scope"``,
        ``"purpose_out_of_scope"``, ``"revoked"``, ``"not_yet_valid"``, ``"expired"``.
        """
        at = utc(at, "at")
        if gallery not in self.galleries:
            return "gallery_out_of_scope"
        if purpose not in self.purposes:
            return "purpose_out_of_scope"
        if self.revoked_at is not None and self.revoked_at <= at:
            return "revoked"
        if at < self.valid_from:
            return "not_yet_valid"
        if at >= self.valid_until:
            return "expired"
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (sorted lists, ISO-8601 UTC times)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = to_iso(value)
            elif isinstance(value, frozenset):
                value = sorted(value)
            elif isinstance(value, StrEnum):
                value = value.value
            out[f.name] = value
        return out


def authorization_from_dict(data: Mapping[str, Any]) -> Authorization:
    """Rebuild an authorization from :meth:`Authorization.to_dict` output (unknown keys refused)."""
    known = {f.name for f in fields(Authorization)}
    extra, missing = set(data) - known, known - set(data) - {"live_allowed", "revoked_at"}
    if extra or missing:
        raise InputError(f"authorization: unknown field(s) {sorted(extra)}, missing field(s) {sorted(missing)}")
    values = dict(data)
    for name in ("valid_from", "valid_until", "revoked_at"):
        if values.get(name) is not None:
            values[name] = from_iso(values[name], f"authorization {name}")
    return Authorization(**values)


def revoke(auth: Authorization, at: datetime) -> Authorization:
    """The authorization revoked from ``at`` on; revoking twice is a :class:`ConflictError`."""
    if auth.revoked_at is not None:
        raise ConflictError(f"authorization {auth.id} was already revoked at {to_iso(auth.revoked_at)}")
    return replace(auth, revoked_at=utc(at, "revoked_at"))


_REASON_RANK = {
    "gallery_out_of_scope": 0,
    "purpose_out_of_scope": 1,
    "revoked": 2,
    "not_yet_valid": 2,
    "expired": 2,
}
_REASON_TEXT = {
    "gallery_out_of_scope": "does not cover gallery '{gallery}'",
    "purpose_out_of_scope": "does not cover purpose '{purpose}'",
    "revoked": "was revoked",
    "not_yet_valid": "is not valid yet",
    "expired": "has expired",
}


def require_authorization(
    auths: Authorization | Iterable[Authorization] | None,
    gallery: str,
    purpose: str,
    at: datetime,
    live: bool = False,
) -> Authorization:
    """The authorization that allows a search of ``gallery`` for ``purpose`` at ``at``.

    Among several valid ones the one that stays valid longest is returned (ties: by id).
    With ``live=True`` only authorizations with ``live_allowed`` qualify; if some are
    valid but none allows live searches, :class:`ProhibitedUseError` (reason
    ``"live_not_authorized"``). Otherwise :class:`AuthorizationRequiredError` with
    ``details["reason"]``: ``"none"``, or the reason of the authorization that came
    closest (scope before time: an expired order for this gallery and purpose reports
    ``"expired"``, not ``"gallery_out_of_scope"``).
    """
    pool = [auths] if isinstance(auths, Authorization) else list(auths or ())
    if not pool:
        raise AuthorizationRequiredError("no authorization is recorded for this search", reason="none")
    valid, failed = [], []
    for a in pool:
        reason = a.problem(gallery, purpose, at)
        (valid if reason is None else failed).append((a, reason))
    if valid:
        usable = [a for a, _ in valid if a.live_allowed or not live]
        if not usable:
            raise ProhibitedUseError(
                "live identification needs an authorization that allows it; none in scope does",
                reason="live_not_authorized",
            )
        return max(usable, key=lambda a: (a.valid_until, a.id))
    closest, reason = max(failed, key=lambda p: (_REASON_RANK[p[1]], p[0].valid_until, p[0].id))
    text = _REASON_TEXT[reason].format(gallery=gallery, purpose=purpose)
    raise AuthorizationRequiredError(
        f"authorization {closest.id} ({closest.reference}) {text}", reason=reason, authorization_id=closest.id
    )


@dataclass(frozen=True, slots=True)
class IdentificationRequest:
    """Everything about one requested search that the rules look at.

    ``flags`` are what the requester declares about the search's target (for example
    ``{"suspect"}``), normalised by :mod:`faceledger.governance.targets`: a prohibited one refuses
    the search, and so does one outside the policy's vocabulary.
    ``recent_searches`` is how many identification searches the actor ran in the hour
    before ``at`` (the engine counts ``identify`` ledger entries with outcome ``ok``).
    """

    actor: str
    role: Role | str
    gallery: str
    purpose: str | None
    at: datetime
    live: bool = False
    flags: frozenset[str] = field(default_factory=frozenset)
    recent_searches: int = 0


def check_identification(
    policy: Policy,
    request: IdentificationRequest,
    authorizations: Authorization | Iterable[Authorization] | None,
) -> Authorization:
    """Apply every precondition of a 1:N search and return the authorization that allows it.

    The order (the first failing rule is the refusal):

    1. the role may run ``identify`` (:class:`PermissionDeniedError`);
    2. identification is enabled in the policy (:class:`IdentificationDisabledError`);
    3. the purpose is allowed (:class:`PurposeNotAllowedError`);
    4. no declared target (flag), once normalised, is prohibited (:class:`ProhibitedUseError`, reason
       ``"prohibited_target"``) and every one is in the policy's vocabulary (:class:`UnknownTargetError`);
    5. a live search needs ``identification.live_allowed`` (:class:`ProhibitedUseError`,
       reason ``"live_not_allowed"``);
    6. a valid authorization covers gallery and purpose (:class:`AuthorizationRequiredError`),
       and for a live search allows live use (:class:`ProhibitedUseError`, ``"live_not_authorized"``);
    7. the actor is under ``limits.max_searches_per_actor_per_hour`` (:class:`RateLimitedError`).
    """
    check_operation(policy, request.role, Operation.IDENTIFY)
    if not policy.identification.enabled:
        raise IdentificationDisabledError("1:N identification is disabled by the deployment policy")
    purpose = check_purpose(policy, request.purpose)
    check_targets(policy.resolve_targets(sorted(request.flags)))
    if request.live and not policy.identification.live_allowed:
        raise ProhibitedUseError("live identification is not allowed by the policy", reason="live_not_allowed")
    auth = require_authorization(authorizations, request.gallery, purpose, request.at, live=request.live)
    limit = policy.limits.max_searches_per_actor_per_hour
    if request.recent_searches >= limit:
        raise RateLimitedError(
            f"{request.actor} ran {request.recent_searches} searches in the last hour (limit {limit})",
            limit=limit,
            recent=request.recent_searches,
        )
    return auth


def count_recent_searches(entries: Iterable[Any], actor: str, at: datetime) -> int:
    """How many searches ``actor`` ran in the hour before ``at``: ledger entries (or rows) with
    operation ``identify``, outcome ``ok``, and ``at - 1 h < ts <= at``. Refused searches do
    not count. (A store may run the same count in SQL: ``ts`` text sorts like time.)"""
    end = utc(at, "at")
    lo, hi = to_iso(end - timedelta(hours=1)), to_iso(end)
    count = 0
    for e in entries:
        get = e.__getitem__ if isinstance(e, Mapping) else e.__getattribute__
        if get("actor") == actor and get("operation") == "identify" and get("outcome") == "ok":
            count += lo < get("ts") <= hi
    return count
