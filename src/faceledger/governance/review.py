"""Human review of identification results.

Every 1:N search result becomes a :class:`Lead`, labelled "not a basis for action on
its own", in a review queue. A reviewer confirms it (naming the candidate), rejects it,
or marks it inconclusive, always with a rationale. The person who ran the search can
never review it, and nobody reviews the same lead twice.

With ``review.required_reviewers = 2`` in the policy (EU AI Act Art. 14(5): two
natural persons verify a remote biometric identification before action), a lead stays
``pending`` after the first review; after the second it takes the common decision if
both agree (for ``confirmed``: on the same candidate), and ``inconclusive`` if they
disagree. Disagreement is never settled by a third review: the lead is closed as
inconclusive and a new search (a new lead) is needed.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from faceledger.errors import ConflictError, InputError, SelfReviewError
from faceledger.governance._time import from_iso, to_iso, utc
from faceledger.governance.policy import Policy

__all__ = [
    "LEAD_LABEL",
    "Decision",
    "Lead",
    "LeadCandidate",
    "LeadStatus",
    "Review",
    "ReviewOutcome",
    "add_review",
    "duration_stats",
    "lead_from_dict",
    "review_from_dict",
    "review_result",
    "review_stats",
]

LEAD_LABEL = "not a basis for action on its own"
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_COSINE_SLACK = 1e-5


class LeadStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    INCONCLUSIVE = "inconclusive"


class Decision(StrEnum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class LeadCandidate:
    """One candidate of a search: a subject reference, its cosine similarity in [-1, 1], and the
    template that scored it (whose enrolled face crop the reviewer sees)."""

    subject_ref: str
    score: float
    template_id: int | None = None


@dataclass(frozen=True, slots=True)
class Lead:
    """An identification result waiting for (or closed by) human review.

    ``search_seq`` is the ledger ``seq`` of the ``identify`` entry; ``probe_digest``
    the SHA-256 of the probe photo; ``candidates`` best first, each scoring
    ``>= threshold`` under ``model_id``. ``confirmed_subject`` is set when the
    status is ``confirmed``; ``decided_at`` when it is no longer pending. ``evidence`` says the
    probe's face crop is kept for review, until ``evidence_until`` (set when the lead is decided:
    ``decided_at`` plus the policy's ``review.evidence_days``). ``disagreement`` marks a lead the
    two required reviewers decided differently (closed as inconclusive).
    """

    id: str
    search_seq: int
    gallery: str
    probe_digest: str
    candidates: tuple[LeadCandidate, ...]
    threshold: float
    model_id: str
    searched_by: str
    created_at: datetime
    purpose: str | None = None
    reference: str | None = None
    status: LeadStatus = LeadStatus.PENDING
    confirmed_subject: str | None = None
    decided_at: datetime | None = None
    label: str = field(default=LEAD_LABEL)
    evidence: bool = False
    evidence_until: datetime | None = None
    disagreement: bool = False

    def __post_init__(self) -> None:
        for name in ("id", "gallery", "model_id", "searched_by"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise InputError(f"lead: {name} is required", field=name)
        if not isinstance(self.probe_digest, str) or not _DIGEST.match(self.probe_digest):
            raise InputError("lead: probe_digest must be a SHA-256 hex digest", field="probe_digest")
        if self.label != LEAD_LABEL:
            raise InputError(f"lead: the label is always {LEAD_LABEL!r}", field="label")
        cands = tuple(c if isinstance(c, LeadCandidate) else LeadCandidate(**c) for c in self.candidates)
        for c in cands:
            if not isinstance(c.score, int | float) or not math.isfinite(c.score) or abs(c.score) > 1 + _COSINE_SLACK:
                raise InputError("lead: candidate scores are cosine similarities in [-1, 1]", field="candidates")
        # float32 dot products of unit vectors land up to a few 1e-7 outside [-1, 1]: bring them back in
        cands = tuple(replace(c, score=min(1.0, max(-1.0, float(c.score)))) for c in cands)
        object.__setattr__(self, "candidates", cands)
        object.__setattr__(self, "status", LeadStatus(self.status))
        object.__setattr__(self, "created_at", utc(self.created_at, "lead created_at"))

    @property
    def subject_refs(self) -> tuple[str, ...]:
        return tuple(c.subject_ref for c in self.candidates)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (times ISO-8601 UTC, candidates as ``{subject_ref, score}``)."""
        return {
            "id": self.id,
            "search_seq": self.search_seq,
            "gallery": self.gallery,
            "probe_digest": self.probe_digest,
            "candidates": [{"subject_ref": c.subject_ref, "score": c.score, "template_id": c.template_id}
                           for c in self.candidates],
            "threshold": self.threshold,
            "model_id": self.model_id,
            "searched_by": self.searched_by,
            "created_at": to_iso(self.created_at),
            "purpose": self.purpose,
            "reference": self.reference,
            "status": self.status.value,
            "confirmed_subject": self.confirmed_subject,
            "decided_at": None if self.decided_at is None else to_iso(self.decided_at),
            "label": self.label,
            "evidence": self.evidence,
            "evidence_until": None if self.evidence_until is None else to_iso(self.evidence_until),
            "disagreement": self.disagreement,
        }


def lead_from_dict(data: Mapping[str, Any]) -> Lead:
    """Rebuild a lead from :meth:`Lead.to_dict` output."""
    values = dict(data)
    try:
        values["created_at"] = from_iso(values["created_at"], "lead created_at")
        for name in ("decided_at", "evidence_until"):
            if values.get(name) is not None:
                values[name] = from_iso(values[name], f"lead {name}")
        values["candidates"] = tuple(LeadCandidate(**c) for c in values.get("candidates", ()))
        return Lead(**values)
    except (KeyError, TypeError) as exc:
        raise InputError(f"lead record is incomplete or has unknown fields: {exc}") from None


@dataclass(frozen=True, slots=True)
class Review:
    """One reviewer's decision on one lead. ``subject_ref`` names the confirmed candidate."""

    lead_id: str
    reviewer: str
    decision: Decision
    rationale: str
    at: datetime
    subject_ref: str | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "decision", Decision(self.decision))
        except ValueError:
            known = ", ".join(d.value for d in Decision)
            raise InputError(f"review: decision must be one of {known}", field="decision") from None
        object.__setattr__(self, "at", utc(self.at, "review at"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "lead_id": self.lead_id,
            "reviewer": self.reviewer,
            "decision": self.decision.value,
            "rationale": self.rationale,
            "at": to_iso(self.at),
            "subject_ref": self.subject_ref,
        }


def review_from_dict(data: Mapping[str, Any]) -> Review:
    """Rebuild a review from :meth:`Review.to_dict` output."""
    try:
        return Review(**{**data, "at": from_iso(data["at"], "review at")})
    except (KeyError, TypeError) as exc:
        raise InputError(f"review record is incomplete or has unknown fields: {exc}") from None


@dataclass(frozen=True, slots=True)
class ReviewOutcome:
    """The lead after a review (its status possibly unchanged) and all of its reviews so far."""

    lead: Lead
    reviews: tuple[Review, ...]


def add_review(lead: Lead, reviews: Iterable[Review], review: Review, policy: Policy) -> ReviewOutcome:
    """Apply ``review`` to ``lead`` given its earlier ``reviews``.

    Refuses: a blank rationale (:class:`InputError`); the searcher reviewing their own
    search (:class:`SelfReviewError`); a lead already decided, or a second review by the
    same reviewer (:class:`ConflictError`); ``confirmed`` without naming one of the
    lead's candidates, a review dated before the lead (:class:`InputError`).
    """
    if review.lead_id != lead.id:
        raise InputError(f"review is for lead {review.lead_id}, not {lead.id}")
    if not isinstance(review.rationale, str) or not review.rationale.strip():
        raise InputError("a review needs a rationale: say why", field="rationale")
    if not isinstance(review.reviewer, str) or not review.reviewer.strip():
        raise InputError("a review needs a reviewer", field="reviewer")
    if review.reviewer == lead.searched_by:
        raise SelfReviewError(
            f"{review.reviewer} ran this search and cannot review it",
            lead_id=lead.id,
            reviewer=review.reviewer,
        )
    if lead.status is not LeadStatus.PENDING:
        raise ConflictError(f"lead {lead.id} is already {lead.status.value}")
    earlier = tuple(r for r in reviews if r.lead_id == lead.id)
    if any(r.reviewer == review.reviewer for r in earlier):
        raise ConflictError(f"{review.reviewer} has already reviewed lead {lead.id}; one review per reviewer")
    if review.at < lead.created_at:
        raise InputError("a review cannot be dated before its lead", field="at")
    if review.decision is Decision.CONFIRMED and review.subject_ref not in lead.subject_refs:
        raise InputError("confirming a lead means naming one of its candidates (subject_ref)", field="subject_ref")
    if review.decision is not Decision.CONFIRMED and review.subject_ref is not None:
        raise InputError("only a confirmation names a candidate", field="subject_ref")
    all_reviews = (*earlier, review)
    return ReviewOutcome(lead=_decide(lead, all_reviews, policy.required_reviewers), reviews=all_reviews)


def _decide(lead: Lead, reviews: tuple[Review, ...], required: int) -> Lead:
    if len(reviews) < required:
        return lead
    last = reviews[-1]
    votes = {(r.decision, r.subject_ref) for r in reviews[-required:]}
    if len(votes) == 1:
        status = LeadStatus(last.decision.value)
        confirmed = last.subject_ref if status is LeadStatus.CONFIRMED else None
    else:
        status, confirmed = LeadStatus.INCONCLUSIVE, None
    return replace(lead, status=status, confirmed_subject=confirmed, decided_at=last.at, disagreement=len(votes) > 1)


def review_result(outcome: ReviewOutcome) -> dict[str, Any]:
    """The ledger ``result`` of a review entry (what reports count): the decision, the lead's
    status after it, how many reviews it has, and seconds from search to this review."""
    review = outcome.reviews[-1]
    return {
        "lead_id": outcome.lead.id,
        "decision": review.decision.value,
        "status": outcome.lead.status.value,
        "reviews": len(outcome.reviews),
        "disagreement": outcome.lead.disagreement,
        "review_seconds": round((review.at - outcome.lead.created_at).total_seconds(), 3),
    }


def duration_stats(seconds: Iterable[float]) -> dict[str, float | int | None]:
    """``count``, ``median_hours``, ``p90_hours``, ``max_hours`` of durations given in seconds."""
    values = sorted(float(s) / 3600.0 for s in seconds)
    if not values:
        return {"count": 0, "median_hours": None, "p90_hours": None, "max_hours": None}
    p90 = values[min(len(values) - 1, math.ceil(0.9 * len(values)) - 1)]
    return {
        "count": len(values),
        "median_hours": round(statistics.median(values), 3),
        "p90_hours": round(p90, 3),
        "max_hours": round(values[-1], 3),
    }


def review_stats(leads: Iterable[Lead], at: datetime) -> dict[str, Any]:
    """Queue statistics at ``at``: leads by status, time from search to decision, pending ages."""
    at = utc(at, "at")
    by_status = {s.value: 0 for s in LeadStatus}
    decided, waiting = [], []
    for lead in leads:
        by_status[lead.status.value] += 1
        if lead.decided_at is not None:
            decided.append((lead.decided_at - lead.created_at).total_seconds())
        elif lead.status is LeadStatus.PENDING:
            waiting.append((at - lead.created_at).total_seconds())
    return {
        "by_status": by_status,
        "time_to_decision": duration_stats(decided),
        "pending_age": duration_stats(waiting),
    }
