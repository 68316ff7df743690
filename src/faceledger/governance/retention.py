"""Which enrolled subjects must be purged at a given time, and why (a plan, for dry runs).

A subject's templates, photos and index entries are kept only while both hold:

* at least one of its consent records for that gallery covers the time (given, not
  expired, not withdrawn), and
* the gallery's retention period, counted from enrollment, has not elapsed
  (``retention.default_days`` or ``[retention.galleries]`` in the policy): a valid
  consent does not extend it; re-enrolling with a fresh consent does.

:func:`plan_retention` only decides; the engine erases what the plan lists, one
ledger entry per subject (operation ``erase``, ``result.reason`` the first reason).
Consent records themselves are kept: they are the evidence that processing was
lawful, and they hold no biometric data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from faceledger.governance._time import to_iso, utc
from faceledger.governance.consent import ConsentRecord
from faceledger.governance.policy import Policy

__all__ = ["PurgeItem", "PurgeReason", "RetentionPlan", "SubjectInfo", "plan_retention"]


class PurgeReason(StrEnum):
    CONSENT_WITHDRAWN = "consent_withdrawn"
    CONSENT_EXPIRED = "consent_expired"
    NO_CONSENT = "no_consent"
    RETENTION_ELAPSED = "retention_elapsed"


@dataclass(frozen=True, slots=True)
class SubjectInfo:
    """An enrolled subject as the store knows it (no templates needed to plan)."""

    gallery: str
    subject_ref: str
    enrolled_at: datetime


@dataclass(frozen=True, slots=True)
class PurgeItem:
    """One subject to erase: every reason that applies, and since when it is due."""

    gallery: str
    subject_ref: str
    reasons: tuple[PurgeReason, ...]
    due_since: datetime
    consent_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "gallery": self.gallery,
            "subject_ref": self.subject_ref,
            "reasons": [r.value for r in self.reasons],
            "due_since": to_iso(self.due_since),
            "consent_ids": list(self.consent_ids),
        }


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    """What a retention run at ``at`` erases (``items``, most overdue first); ``kept`` subjects stay."""

    at: datetime
    items: tuple[PurgeItem, ...]
    kept: int

    def to_dict(self) -> dict[str, Any]:
        return {"at": to_iso(self.at), "kept": self.kept, "purge": [i.to_dict() for i in self.items]}


def plan_retention(
    subjects: Iterable[SubjectInfo], consents: Iterable[ConsentRecord], policy: Policy, at: datetime
) -> RetentionPlan:
    """The subjects due for purge at ``at``, with reasons (see the module docstring)."""
    at = utc(at, "at")
    by_subject: dict[tuple[str, str], list[ConsentRecord]] = defaultdict(list)
    for record in consents:
        by_subject[(record.gallery, record.subject_ref)].append(record)
    items, kept = [], 0
    for subject in subjects:
        item = _due(subject, by_subject.get((subject.gallery, subject.subject_ref), []), policy, at)
        if item is None:
            kept += 1
        else:
            items.append(item)
    items.sort(key=lambda i: (i.due_since, i.gallery, i.subject_ref))
    return RetentionPlan(at=at, items=tuple(items), kept=kept)


def _due(subject: SubjectInfo, records: list[ConsentRecord], policy: Policy, at: datetime) -> PurgeItem | None:
    """A purge item when ``subject`` is due at ``at``; its first reason is the one that made it due first."""
    enrolled = utc(subject.enrolled_at, "enrolled_at")
    due: list[tuple[datetime, PurgeReason]] = []  # (since, reason)
    end_of_retention = enrolled + timedelta(days=policy.retention_days_for(subject.gallery))
    if at >= end_of_retention:
        due.append((end_of_retention, PurgeReason.RETENTION_ELAPSED))
    given = [r for r in records if r.given_at <= at]
    if not any(r.status(at) is None for r in given):
        if not given:
            due.append((enrolled, PurgeReason.NO_CONSENT))
        else:
            # Coverage ended when the last record ended; its reason leads, the others follow.
            ended = sorted(given, key=lambda r: (_end(r, at), r.id))
            last_end = _end(ended[-1], at)
            due.extend((last_end, _reason(r, at)) for r in reversed(ended))
    if not due:
        return None
    due.sort(key=lambda d: d[0])
    reasons = tuple(dict.fromkeys(reason for _, reason in due))
    return PurgeItem(
        gallery=subject.gallery,
        subject_ref=subject.subject_ref,
        reasons=reasons,
        due_since=due[0][0],
        consent_ids=tuple(sorted(r.id for r in records)),
    )


def _end(record: ConsentRecord, at: datetime) -> datetime:
    if record.withdrawn_at is not None and record.withdrawn_at <= at:
        return min(record.withdrawn_at, record.expires_at)
    return record.expires_at


def _reason(record: ConsentRecord, at: datetime) -> PurgeReason:
    if record.withdrawn_at is not None and record.withdrawn_at <= at and record.withdrawn_at < record.expires_at:
        return PurgeReason.CONSENT_WITHDRAWN
    return PurgeReason.CONSENT_EXPIRED
