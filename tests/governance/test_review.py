"""Human review of leads: who may review, one review each, one or two reviewers, statistics."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from govhelp import T0, digest, policy

from faceledger.errors import ConflictError, InputError, SelfReviewError
from faceledger.governance.policy import Policy
from faceledger.governance.review import (
    LEAD_LABEL,
    Decision,
    Lead,
    LeadCandidate,
    LeadStatus,
    Review,
    add_review,
    duration_stats,
    lead_from_dict,
    review_from_dict,
    review_result,
    review_stats,
)

HOUR = timedelta(hours=1)
ONE = Policy.default()
TWO = policy(review={"required_reviewers": 2})


def lead(**changes: object) -> Lead:
    values = {
        "id": "L1",
        "search_seq": 41,
        "gallery": "staff",
        "probe_digest": digest("probe"),
        "candidates": (LeadCandidate("emp-7", 0.62), LeadCandidate("emp-9", 0.48)),
        "threshold": 0.45,
        "model_id": "yunet-sface",
        "searched_by": "ines",
        "created_at": T0,
        "purpose": "missing_person",
        "reference": "MP-2026-7",
    }
    return Lead(**{**values, **changes})


def review(
    reviewer: str, decision: str, hours: float = 1, subject: str | None = None, why: str = "faces match"
) -> Review:
    return Review("L1", reviewer, Decision(decision), why, T0 + hours * HOUR, subject)


def test_a_lead_carries_its_label_and_starts_pending() -> None:
    lead_ = lead()
    assert lead_.label == LEAD_LABEL == "not a basis for action on its own"
    assert lead_.status is LeadStatus.PENDING
    with pytest.raises(InputError, match="label"):
        lead(label="confirmed identity")


def test_one_reviewer_decides_when_the_policy_says_one() -> None:
    out = add_review(lead(), [], review("rita", "confirmed", subject="emp-9"), ONE)
    assert out.lead.status is LeadStatus.CONFIRMED and out.lead.confirmed_subject == "emp-9"
    assert out.lead.decided_at == T0 + HOUR
    rejected = add_review(lead(), [], review("rita", "rejected"), ONE).lead
    assert rejected.status is LeadStatus.REJECTED and rejected.confirmed_subject is None


def test_the_searcher_cannot_review_their_own_search() -> None:
    with pytest.raises(SelfReviewError) as err:
        add_review(lead(), [], review("ines", "confirmed", subject="emp-7"), ONE)
    assert err.value.details == {"lead_id": "L1", "reviewer": "ines"}


@pytest.mark.parametrize("why", ["", "   ", None])
def test_a_rationale_is_required(why: str | None) -> None:
    with pytest.raises(InputError, match="rationale"):
        add_review(lead(), [], review("rita", "rejected", why=why), ONE)  # type: ignore[arg-type]


def test_one_review_per_reviewer_and_none_after_a_decision() -> None:
    first = review("rita", "confirmed", subject="emp-7")
    pending = add_review(lead(), [], first, TWO)
    assert pending.lead.status is LeadStatus.PENDING
    with pytest.raises(ConflictError, match="one review per reviewer"):
        add_review(pending.lead, pending.reviews, review("rita", "rejected", 2), TWO)
    decided = add_review(lead(), [], review("rita", "rejected"), ONE)
    with pytest.raises(ConflictError, match="already rejected"):
        add_review(decided.lead, decided.reviews, review("raj", "confirmed", subject="emp-7"), ONE)


def test_two_reviewers_who_agree_decide() -> None:
    step = add_review(lead(), [], review("rita", "confirmed", 1, "emp-7"), TWO)
    done = add_review(step.lead, step.reviews, review("raj", "confirmed", 3, "emp-7"), TWO)
    assert done.lead.status is LeadStatus.CONFIRMED and done.lead.confirmed_subject == "emp-7"
    assert done.lead.decided_at == T0 + 3 * HOUR and len(done.reviews) == 2
    assert review_result(done) == {
        "lead_id": "L1",
        "decision": "confirmed",
        "status": "confirmed",
        "reviews": 2,
        "disagreement": False,
        "review_seconds": 3 * 3600.0,
    }


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("confirmed", "emp-7"), ("rejected", None)),
        (("confirmed", "emp-7"), ("confirmed", "emp-9")),  # agree it is someone, not on whom
        (("rejected", None), ("inconclusive", None)),
    ],
)
def test_two_reviewers_who_disagree_close_the_lead_as_inconclusive(first: tuple, second: tuple) -> None:
    step = add_review(lead(), [], review("rita", first[0], 1, first[1]), TWO)
    done = add_review(step.lead, step.reviews, review("raj", second[0], 2, second[1]), TWO)
    assert done.lead.status is LeadStatus.INCONCLUSIVE and done.lead.confirmed_subject is None


def test_the_second_reviewer_cannot_be_the_searcher_either() -> None:
    step = add_review(lead(), [], review("rita", "rejected"), TWO)
    with pytest.raises(SelfReviewError):
        add_review(step.lead, step.reviews, review("ines", "rejected", 2), TWO)


@pytest.mark.parametrize(
    ("rev", "fragment"),
    [
        (review("rita", "confirmed"), "naming one of its candidates"),
        (review("rita", "confirmed", subject="emp-1"), "naming one of its candidates"),
        (review("rita", "rejected", subject="emp-7"), "only a confirmation"),
        (review("rita", "rejected", hours=-1), "before its lead"),
        (Review("L2", "rita", Decision.REJECTED, "wrong lead", T0 + HOUR), "not L1"),
    ],
)
def test_inconsistent_reviews_are_refused(rev: Review, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        add_review(lead(), [], rev, ONE)


def test_other_leads_reviews_do_not_count() -> None:
    elsewhere = Review("L0", "rita", Decision.REJECTED, "other lead", T0)
    step = add_review(lead(), [elsewhere], review("rita", "rejected"), TWO)
    assert step.lead.status is LeadStatus.PENDING and step.reviews == (review("rita", "rejected"),)


def test_records_round_trip_through_json() -> None:
    done = add_review(lead(), [], review("rita", "confirmed", subject="emp-7"), ONE)
    assert lead_from_dict(json.loads(json.dumps(done.lead.to_dict()))) == done.lead
    r = done.reviews[0]
    assert review_from_dict(json.loads(json.dumps(r.to_dict()))) == r
    with pytest.raises(InputError):
        lead_from_dict({"id": "L1"})
    with pytest.raises(InputError):
        Review("L1", "rita", "maybe", "unsure", T0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="probe_digest"):
        lead(probe_digest="not a digest")
    with pytest.raises(InputError, match="cosine"):
        lead(candidates=(LeadCandidate("x", 1.5),))


def test_duration_stats_and_queue_stats() -> None:
    assert duration_stats([]) == {"count": 0, "median_hours": None, "p90_hours": None, "max_hours": None}
    stats = duration_stats([3600.0 * h for h in range(1, 11)])
    assert stats == {"count": 10, "median_hours": 5.5, "p90_hours": 9.0, "max_hours": 10.0}
    closed = add_review(lead(), [], review("rita", "rejected", hours=2), ONE).lead
    waiting = lead(id="L2", created_at=T0 + HOUR)
    queue = review_stats([closed, waiting], at=T0 + 5 * HOUR)
    assert queue["by_status"] == {"pending": 1, "confirmed": 0, "rejected": 1, "inconclusive": 0}
    assert queue["time_to_decision"]["median_hours"] == 2.0
    assert queue["pending_age"]["max_hours"] == 4.0
