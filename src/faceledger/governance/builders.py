"""Building and checking the records callers hand to the engine: the one place for it.

The CLI, the HTTP service and Python callers describe a new consent or authorization
with a :class:`ConsentRequest` or :class:`AuthorizationRequest` (plain values, times as
text or datetimes, defaults left out); the engine turns it into a
:class:`~faceledger.governance.consent.ConsentRecord` or
:class:`~faceledger.governance.authorization.Authorization` with :meth:`build`, using
its own clock and the calling actor. So every adapter gets the same defaults and the
same refusals:

* a time must carry its zone (``2026-05-01T09:00:00Z``, ``...+02:00``): a time without one
  is refused everywhere, never guessed (:func:`parse_time`);
* a subject reference is 1-256 characters of visible text: no ``/`` or ``\\``, no control
  characters (NUL, newlines), no format characters (right-to-left overrides, zero-width
  spaces and joiners), no line separators, no private-use or unassigned code points, no
  leading or trailing space, and in Unicode NFC (:func:`check_subject_ref`);
* an actor id (an API key's actor, an operator) follows the same rules, ``/`` allowed,
  at most 128 characters (:func:`check_actor_id`);
* an authorization names its galleries and purposes one by one: ``*`` or any other
  pattern is refused (:func:`check_names`).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from faceledger.errors import InputError
from faceledger.governance._time import from_iso, utc
from faceledger.governance.authorization import Authorization, AuthorizationKind
from faceledger.governance.consent import ConsentMethod, ConsentRecord, LegalBasis

__all__ = [
    "AuthorizationRequest",
    "ConsentRequest",
    "check_actor_id",
    "check_names",
    "check_subject_ref",
    "parse_time",
]

#: Unicode categories never allowed in a reference: control, format (bidi overrides, zero-width
#: characters), surrogate, private use, unassigned, line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_PURPOSE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_GALLERY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def parse_time(value: str | datetime | None, name: str, default: datetime | None = None) -> datetime | None:
    """``value`` as a UTC datetime; ``None`` gives ``default``. Text is ISO-8601 with a zone
    (``Z`` or an offset); a time without a zone is refused (:class:`InputError`), as is a
    naive datetime: its zone is unknown, and guessing it would move the record by hours."""
    if value is None:
        return default
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise InputError(f"{name}: not an ISO-8601 date and time: {value!r}", field=name) from None
        if parsed.tzinfo is None:
            raise InputError(f"{name}: {value!r} has no time zone; add one, e.g. '{text}Z' (UTC) or "
                             f"'{text}+02:00'", field=name)
        return from_iso(parsed, name)
    if isinstance(value, datetime) and value.tzinfo is None:
        raise InputError(f"{name}: a time without a time zone is refused; give it in UTC or with an offset",
                         field=name)
    return utc(value, name)


def _check_visible(value: object, what: str, max_len: int, forbidden: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"{what} is required (a non-empty string)", field=what)
    if len(value) > max_len:
        raise InputError(f"{what} is {len(value)} characters long (at most {max_len})", field=what)
    if value != value.strip():
        raise InputError(f"{what} {value!r} starts or ends with a space", field=what)
    for ch in value:
        if ch in forbidden:
            raise InputError(f"{what} {value!r} contains {ch!r}, which is not allowed", field=what)
        if unicodedata.category(ch) in _REFUSED_CATEGORIES:
            raise InputError(f"{what} {value!r} contains the invisible or control character U+{ord(ch):04X} "
                             f"({unicodedata.name(ch, 'unnamed')})", field=what)
    if unicodedata.normalize("NFC", value) != value:
        raise InputError(f"{what} {value!r} is not in Unicode NFC form; normalise it first", field=what)
    return value


def check_subject_ref(value: object) -> str:
    """A subject reference fit to store, show, export and erase (see the module docstring)."""
    ref = _check_visible(value, "subject_ref", 256, "/\\")
    if set(ref) == {"."}:
        raise InputError(f"subject_ref {ref!r} is only dots", field="subject_ref")
    return ref


def check_actor_id(value: object, what: str = "actor") -> str:
    """An actor id fit for the ledger: 1-128 visible characters (see the module docstring)."""
    return _check_visible(value, what, 128, "")


def check_names(values: Iterable[str] | str, what: str) -> frozenset[str]:
    """Authorization scope names, each spelled out: purposes like the policy's, galleries like the store's."""
    if isinstance(values, str):
        raise InputError(f"authorization: {what} must be a list of names, not one string", field=what)
    names = frozenset(values)
    pattern = _PURPOSE if what == "purposes" else _GALLERY
    if not names:
        raise InputError(f"authorization: {what} must name at least one", field=what)
    for name in sorted(names, key=str):
        if not isinstance(name, str) or not pattern.match(name):
            hint = " (there is no wildcard: name each one)" if isinstance(name, str) and "*" in name else ""
            raise InputError(f"authorization: {what} has {name!r}, which is not a valid name{hint}", field=what)
    return names


@dataclass(frozen=True)
class ConsentRequest:
    """A new consent as a caller gives it; :meth:`build` makes the :class:`ConsentRecord`.

    ``given_at`` defaults to now, ``expires_at`` to ``given_at + valid_days``,
    ``collected_by`` to the actor recording it, ``id`` to a random one.
    """

    gallery: str
    subject_ref: str
    purpose: str
    notice_version: str
    method: ConsentMethod | str
    legal_basis: LegalBasis | str = LegalBasis.EXPLICIT_CONSENT
    given_at: datetime | str | None = None
    expires_at: datetime | str | None = None
    valid_days: int = 365
    collected_by: str | None = None
    id: str | None = None
    supersedes: str | None = None

    def build(self, now: datetime, actor_id: str) -> ConsentRecord:
        """The record, recorded at ``now`` by ``actor_id``; raises :class:`InputError` on bad input."""
        if type(self.valid_days) is not int or not 1 <= self.valid_days <= 36_500:
            raise InputError("valid_days must be a whole number of days between 1 and 36500", field="valid_days")
        given = parse_time(self.given_at, "given_at", now)
        expires = parse_time(self.expires_at, "expires_at", given + timedelta(days=self.valid_days))
        return ConsentRecord(
            id=self.id or uuid.uuid4().hex, gallery=self.gallery, subject_ref=check_subject_ref(self.subject_ref),
            notice_version=self.notice_version, purpose=self.purpose, method=self.method, given_at=given,
            collected_by=self.collected_by or actor_id, expires_at=expires, legal_basis=self.legal_basis,
            supersedes=self.supersedes)


@dataclass(frozen=True)
class AuthorizationRequest:
    """A new authorization as a caller gives it; :meth:`build` makes the :class:`Authorization`.

    ``valid_from`` defaults to now, ``valid_until`` to ``valid_from + valid_days``; the
    recording actor is ``recorded_by``.
    """

    kind: AuthorizationKind | str
    reference: str
    issuer: str
    galleries: Iterable[str]
    purposes: Iterable[str]
    valid_from: datetime | str | None = None
    valid_until: datetime | str | None = None
    valid_days: int = 30
    live_allowed: bool = False
    id: str | None = None

    def build(self, now: datetime, actor_id: str) -> Authorization:
        """The authorization, recorded at ``now`` by ``actor_id``; raises :class:`InputError` on bad input."""
        if type(self.valid_days) is not int or not 1 <= self.valid_days <= 3650:
            raise InputError("valid_days must be a whole number of days between 1 and 3650", field="valid_days")
        start = parse_time(self.valid_from, "valid_from", now)
        until = parse_time(self.valid_until, "valid_until", start + timedelta(days=self.valid_days))
        return Authorization(
            id=self.id or uuid.uuid4().hex, kind=self.kind, reference=self.reference, issuer=self.issuer,
            galleries=check_names(self.galleries, "galleries"), purposes=check_names(self.purposes, "purposes"),
            valid_from=start, valid_until=until, recorded_by=actor_id, live_allowed=self.live_allowed)
