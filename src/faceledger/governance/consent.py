"""Consent records: no valid record, no template.

A :class:`ConsentRecord` documents the lawful basis on which one subject's face is
enrolled in one gallery for one purpose: the version of the notice shown, how and
when agreement was given, who collected it, and when it expires. It holds a
``subject_ref`` (the deployment's own pseudonymous reference), never a photo.

Legal bases. Biometric data used to identify a person is "special category" data
under GDPR Art. 9(1), whose processing is prohibited unless one of the Art. 9(2)
conditions applies in addition to an Art. 6 basis. :class:`LegalBasis` names both
kinds; :data:`ART9_CONDITIONS` says which members are Art. 9(2) conditions and which
letter. ``contract``, ``legal_obligation``, ``public_interest`` and
``legitimate_interests`` are Art. 6 bases only: on their own they do **not** allow
biometric identification in the EU. Illinois BIPA asks for a written release, which
``explicit_consent`` with ``signed_form`` or ``e_signature`` records. The policy
decides which bases a deployment accepts (``[consent] legal_bases``, default
``explicit_consent`` only).

All times are timezone-aware UTC datetimes (see :mod:`faceledger.governance._time`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from faceledger.errors import ConflictError, ConsentRequiredError, InputError
from faceledger.governance._time import from_iso, to_iso, utc

__all__ = [
    "ART9_CONDITIONS",
    "ConsentMethod",
    "ConsentRecord",
    "LegalBasis",
    "check_supersession",
    "consent_from_dict",
    "require_valid_consent",
    "validate_new_consent",
    "withdraw",
]

#: How far in the future ``given_at`` may be when a record is created (clock skew between machines).
DEFAULT_SKEW = timedelta(minutes=5)


class LegalBasis(StrEnum):
    """The legal basis a consent record documents (see the module docstring)."""

    EXPLICIT_CONSENT = "explicit_consent"
    EMPLOYMENT_LAW = "employment_law"
    VITAL_INTERESTS = "vital_interests"
    LEGAL_CLAIMS = "legal_claims"
    SUBSTANTIAL_PUBLIC_INTEREST = "substantial_public_interest"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    PUBLIC_INTEREST = "public_interest"
    LEGITIMATE_INTERESTS = "legitimate_interests"


#: The members that are GDPR Art. 9(2) conditions for biometric data, with their letter.
ART9_CONDITIONS: Mapping[LegalBasis, str] = MappingProxyType(
    {
        LegalBasis.EXPLICIT_CONSENT: "Art. 9(2)(a) explicit consent",
        LegalBasis.EMPLOYMENT_LAW: "Art. 9(2)(b) obligations in employment and social protection law",
        LegalBasis.VITAL_INTERESTS: "Art. 9(2)(c) vital interests, when the subject cannot consent",
        LegalBasis.LEGAL_CLAIMS: "Art. 9(2)(f) legal claims or courts acting in their judicial capacity",
        LegalBasis.SUBSTANTIAL_PUBLIC_INTEREST: "Art. 9(2)(g) substantial public interest, based on law",
    }
)


class ConsentMethod(StrEnum):
    """How the subject's agreement (or the notice, for other bases) was recorded."""

    SIGNED_FORM = "signed_form"
    E_SIGNATURE = "e_signature"
    RECORDED_VERBAL = "recorded_verbal"


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One subject's consent (or other legal basis) for one gallery and purpose.

    ``given_at`` < ``expires_at``; ``withdrawn_at`` (if set) is not before ``given_at``.
    Strings are required and non-blank. Construction validates structure only; use
    :func:`validate_new_consent` when recording a new one (it checks against the clock).
    """

    id: str
    gallery: str
    subject_ref: str
    notice_version: str
    purpose: str
    method: ConsentMethod
    given_at: datetime
    collected_by: str
    expires_at: datetime
    legal_basis: LegalBasis = LegalBasis.EXPLICIT_CONSENT
    withdrawn_at: datetime | None = None
    #: The active consent this one renews (same gallery, subject and purpose); see :func:`check_supersession`.
    supersedes: str | None = None
    #: Set on the renewed record: the consent that replaced it (it no longer covers anything).
    superseded_by: str | None = None

    def __post_init__(self) -> None:
        for name in ("id", "gallery", "subject_ref", "notice_version", "purpose", "collected_by"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"consent record: {name} is required (a non-empty string)", field=name)
        set_ = object.__setattr__
        set_(self, "method", _enum(ConsentMethod, self.method, "method"))
        set_(self, "legal_basis", _enum(LegalBasis, self.legal_basis, "legal_basis"))
        set_(self, "given_at", utc(self.given_at, "consent given_at"))
        set_(self, "expires_at", utc(self.expires_at, "consent expires_at"))
        if self.expires_at <= self.given_at:
            raise InputError("consent record: expires_at must be after given_at", field="expires_at")
        if self.withdrawn_at is not None:
            set_(self, "withdrawn_at", utc(self.withdrawn_at, "consent withdrawn_at"))
            if self.withdrawn_at < self.given_at:
                raise InputError("consent record: withdrawn_at is before given_at", field="withdrawn_at")

    def status(self, at: datetime, purpose: str | None = None) -> str | None:
        """Why this record does not cover ``at`` (and ``purpose``), or ``None`` if it does.

        Reasons: ``"not_yet_given"``, ``"withdrawn"``, ``"expired"``, ``"purpose_mismatch"``, ``"superseded"``.
        """
        at = utc(at, "at")
        if purpose is not None and purpose != self.purpose:
            return "purpose_mismatch"
        if self.superseded_by is not None:
            return "superseded"
        if self.withdrawn_at is not None and self.withdrawn_at <= at:
            return "withdrawn"
        if at >= self.expires_at:
            return "expired"
        if at < self.given_at:
            return "not_yet_given"
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (times as ISO-8601 UTC strings, enums as their values)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = to_iso(value) if isinstance(value, datetime) else value
            if isinstance(value, StrEnum):
                out[f.name] = value.value
        return out


def consent_from_dict(data: Mapping[str, Any]) -> ConsentRecord:
    """Rebuild a record from :meth:`ConsentRecord.to_dict` output (unknown keys refused)."""
    known = {f.name for f in fields(ConsentRecord)}
    extra = set(data) - known
    if extra:
        raise InputError(f"consent record: unknown field(s) {', '.join(sorted(extra))}")
    missing = known - set(data) - {"legal_basis", "withdrawn_at", "supersedes", "superseded_by"}
    if missing:
        raise InputError(f"consent record: missing field(s) {', '.join(sorted(missing))}")
    values = dict(data)
    for name in ("given_at", "expires_at", "withdrawn_at"):
        if values.get(name) is not None:
            values[name] = from_iso(values[name], f"consent {name}")
    return ConsentRecord(**values)


def validate_new_consent(
    record: ConsentRecord,
    now: datetime,
    legal_bases: Iterable[LegalBasis] = (LegalBasis.EXPLICIT_CONSENT,),
    skew: timedelta = DEFAULT_SKEW,
) -> ConsentRecord:
    """Check a record about to be stored: given now (not later than ``now + skew``), not yet
    expired, not withdrawn, and a legal basis the policy accepts (``policy.legal_bases``).

    Raises :class:`InputError` for impossible data, :class:`ConsentRequiredError`
    (reason ``"legal_basis"``) for a basis the policy does not accept.
    """
    now = utc(now, "now")
    if record.given_at > now + skew:
        raise InputError(f"consent record: given_at {to_iso(record.given_at)} is in the future", field="given_at")
    if record.expires_at <= now:
        raise InputError(f"consent record: expires_at {to_iso(record.expires_at)} has passed", field="expires_at")
    if record.withdrawn_at is not None:
        raise InputError("consent record: a new record cannot already be withdrawn", field="withdrawn_at")
    accepted = frozenset(legal_bases)
    if record.legal_basis not in accepted:
        names = ", ".join(sorted(b.value for b in accepted))
        raise ConsentRequiredError(
            f"legal basis '{record.legal_basis}' is not accepted by the policy (accepted: {names})",
            reason="legal_basis",
        )
    return record


def require_valid_consent(
    records: ConsentRecord | Iterable[ConsentRecord] | None,
    at: datetime,
    purpose: str,
    gallery: str | None = None,
) -> ConsentRecord:
    """The record that covers ``purpose`` at ``at`` (the most recently given if several).

    ``records`` are the subject's records (one, many, or ``None``); with ``gallery``,
    records for other galleries are ignored. Raises :class:`ConsentRequiredError` with
    ``details["reason"]`` one of ``"none"``, ``"purpose_mismatch"``, ``"withdrawn"``,
    ``"expired"``, ``"not_yet_given"``; the reason given is that of the most recent
    record for this purpose.
    """
    if records is None:
        pool: list[ConsentRecord] = []
    elif isinstance(records, ConsentRecord):
        pool = [records]
    else:
        pool = list(records)
    if gallery is not None:
        pool = [r for r in pool if r.gallery == gallery]
    if not pool:
        raise ConsentRequiredError("no consent record for this subject", reason="none", purpose=purpose)
    same_purpose = sorted((r for r in pool if r.purpose == purpose), key=lambda r: r.given_at, reverse=True)
    if not same_purpose:
        held = ", ".join(sorted({r.purpose for r in pool}))
        raise ConsentRequiredError(
            f"consent covers purpose(s) {held}, not '{purpose}'", reason="purpose_mismatch", purpose=purpose
        )
    for record in same_purpose:
        if record.status(at, purpose) is None:
            return record
    latest = same_purpose[0]
    reason = latest.status(at, purpose)
    raise ConsentRequiredError(
        f"consent {latest.id} for '{purpose}' is {reason.replace('_', ' ')}",
        reason=reason,
        consent_id=latest.id,
    )


def check_supersession(existing: Iterable[ConsentRecord], record: ConsentRecord, at: datetime) -> ConsentRecord | None:
    """The active consent that the new ``record`` renews, marked superseded; ``None`` if it renews nothing.

    A subject has at most one active consent per gallery and purpose: a second one is a
    :class:`ConflictError` unless it names the active one in ``supersedes`` (a renewal,
    e.g. under a new notice version). Naming a consent that is not the active one of the
    same gallery, subject and purpose is a :class:`ConflictError` too.
    """
    active = [r for r in existing if (r.gallery, r.subject_ref, r.purpose) == (record.gallery, record.subject_ref,
                                                                                 record.purpose)
              and r.status(at) is None]
    if record.supersedes is None:
        if active:
            raise ConflictError(
                f"'{record.subject_ref}' already has an active consent ({active[0].id}) for purpose "
                f"'{record.purpose}' in gallery '{record.gallery}': to renew it, name it in supersedes",
                consent_id=active[0].id)
        return None
    renewed = [r for r in active if r.id == record.supersedes]
    if not renewed:
        raise ConflictError(f"consent {record.supersedes} is not an active consent of '{record.subject_ref}' for "
                            f"purpose '{record.purpose}' in gallery '{record.gallery}'", consent_id=record.supersedes)
    return replace(renewed[0], superseded_by=record.id)


def withdraw(record: ConsentRecord, at: datetime) -> ConsentRecord:
    """The record withdrawn at ``at``. Withdrawing twice is a :class:`ConflictError`."""
    if record.withdrawn_at is not None:
        raise ConflictError(f"consent {record.id} was already withdrawn at {to_iso(record.withdrawn_at)}")
    at = utc(at, "withdrawn_at")
    if at < record.given_at:
        raise InputError("consent withdrawal time is before the consent was given", field="withdrawn_at")
    return replace(record, withdrawn_at=at)


def _enum(enum: type[StrEnum], value: object, name: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        known = ", ".join(m.value for m in enum)
        raise InputError(f"consent record: {name} {value!r} is not one of {known}", field=name) from None
