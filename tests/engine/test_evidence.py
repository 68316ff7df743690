"""Review with evidence, on real LFW photos: the reviewer sees the probe's face and each candidate's
enrolled face; two reviewers decide independently; evidence is kept for a time and erased with the subject."""

from __future__ import annotations

from datetime import timedelta

import cv2
import numpy as np
import pytest

from faceledger.errors import TrainingRequiredError
from faceledger.governance.ledger import LedgerEntry

from .conftest import ADMIN, AUDITOR, CLERK, GALLERY, INVESTIGATOR, POLICY, REVIEWER, REVIEWER2, consent, photo
from .test_accountability import authorization


def ledger(engine) -> list[LedgerEntry]:
    return [LedgerEntry.from_row(r) for r in engine.store.iter_ledger()]


def setup(engine, lfw) -> str:
    """Two enrolled people, an authorization, and a lead from a third photo of Aaron Peirsol."""
    engine.create_gallery(ADMIN, GALLERY)
    for name in ("Aaron_Peirsol", "Padraig_Harrington"):
        consent(engine, name)
        engine.enroll(CLERK, GALLERY, name, [photo(lfw, name, 1), photo(lfw, name, 2)], purpose="access_control")
    authorization(engine)
    result = engine.identify(INVESTIGATOR, GALLERY, photo(lfw, "Aaron_Peirsol", 3), purpose="investigation")
    return result.faces[0].lead_id


def decode(jpeg: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and jpeg[:3] == b"\xff\xd8\xff"
    return img


def test_the_reviewer_sees_the_probe_and_the_enrolled_faces_side_by_side(engine, lfw):
    lead_id = setup(engine, lfw)
    ev = engine.lead_evidence(REVIEWER, lead_id)
    assert ev.candidates[0].subject_ref == "Aaron_Peirsol" and ev.candidates[0].rank == 1
    assert ev.candidates[0].score == pytest.approx(ev.lead.candidates[0].score)
    probe, enrolled = decode(ev.probe_crop), decode(ev.candidates[0].crop)
    assert max(probe.shape[:2]) <= 192 and max(enrolled.shape[:2]) <= 192
    # The crops are faces, and the same person's: the recognizer verifies them as a match.
    rec = engine.recognizer
    assert rec.verify(ev.probe_crop, ev.candidates[0].crop).match
    wide = decode(ev.side_by_side())
    assert wide.shape[0] == 192 and wide.shape[1] > 192 * (1 + len(ev.candidates)) * 0.5
    entry = ledger(engine)[-1]
    assert (entry.operation, entry.actor, entry.outcome) == ("lead_show", REVIEWER.id, "ok")
    assert entry.result["probe_crop"] is True and entry.result["candidate_crops"] == len(ev.candidates)
    assert entry.gallery == GALLERY and entry.reference == "CASE-2026-0042"
    assert engine.verify_ledger(AUDITOR).ok


def test_two_reviewers_decide_without_seeing_each_other_and_disagreement_is_recorded(make_engine, lfw):
    engine = make_engine(POLICY + "\n[review]\nrequired_reviewers = 2\n")
    lead_id = setup(engine, lfw)
    engine.review(REVIEWER, lead_id, "confirmed", "same ears and hairline", subject_ref="Aaron_Peirsol")
    second = engine.lead_evidence(REVIEWER2, lead_id)
    assert second.lead.status.value == "pending" and second.reviews == ()  # not anchored by the first
    first = engine.lead_evidence(REVIEWER, lead_id)
    assert [r.reviewer for r in first.reviews] == [REVIEWER.id]  # only their own
    closed = engine.review(REVIEWER2, lead_id, "rejected", "the nose differs")
    assert closed.status.value == "inconclusive" and closed.disagreement and closed.confirmed_subject is None
    entry = ledger(engine)[-1]
    assert (entry.operation, entry.result["status"], entry.result["disagreement"]) == ("review", "inconclusive", True)
    start = engine.now() - timedelta(hours=1)
    report = engine.usage_report(AUDITOR, start, engine.now() + timedelta(hours=1))
    assert report.leads_closed == {"inconclusive": 1, "of which: reviewers disagreed": 1}
    after = engine.lead_evidence(REVIEWER2, lead_id)
    assert {r.reviewer: r.decision.value for r in after.reviews} == {REVIEWER.id: "confirmed",
                                                                      REVIEWER2.id: "rejected"}


def test_the_probe_crop_is_deleted_after_the_decision_plus_the_policy_period(make_engine, lfw, clock):
    engine = make_engine(POLICY + "\n[review]\nevidence_days = 2\n")
    lead_id = setup(engine, lfw)
    assert engine.store.get_evidence(lead_id) is not None
    plan = engine.run_retention(ADMIN)
    assert ledger(engine)[-1].result["evidence_purged"] == 0 and not plan.items  # pending: kept
    decided = engine.review(REVIEWER, lead_id, "rejected", "different chin")
    assert decided.evidence_until == decided.decided_at + timedelta(days=2)
    clock.advance(days=1)
    engine.run_retention(ADMIN)
    assert engine.store.get_evidence(lead_id) is not None
    clock.advance(days=1, seconds=1)
    engine.run_retention(ADMIN)
    assert ledger(engine)[-1].result["evidence_purged"] == 1 and engine.store.get_evidence(lead_id) is None
    ev = engine.lead_evidence(REVIEWER, lead_id)
    assert ev.probe_crop is None and ev.candidates[0].crop is not None and not ev.lead.evidence


def test_with_no_evidence_period_the_probe_crop_goes_at_the_decision(make_engine, lfw):
    engine = make_engine(POLICY + "\n[review]\nevidence_days = 0\n")
    lead_id = setup(engine, lfw)
    engine.review(REVIEWER, lead_id, "confirmed", "same face", subject_ref="Aaron_Peirsol")
    assert engine.store.get_evidence(lead_id) is None


def test_erasure_destroys_the_enrolled_crops_and_purges_probe_crops_that_name_the_subject(engine, lfw):
    lead_id = setup(engine, lfw)
    tids = [c.template_id for c in engine.leads(REVIEWER)[0].candidates if c.subject_ref == "Aaron_Peirsol"]
    assert tids and all(engine.store.get_crop(t) for t in tids)
    engine.erase_subject(ADMIN, GALLERY, "Aaron_Peirsol")
    entry = ledger(engine)[-1]
    assert (entry.operation, entry.result["evidence_purged"]) == ("erase", 1)
    ev = engine.lead_evidence(REVIEWER, lead_id)
    assert ev.probe_crop is None and ev.candidates[0].subject_ref == "Aaron_Peirsol" and ev.candidates[0].crop is None
    assert engine.store.get_evidence(lead_id) is None


def test_evidence_needs_the_role_and_the_training_the_policy_requires(make_engine, lfw):
    engine = make_engine(POLICY + '\n[training]\nrequired_for = ["reviewer"]\n')
    lead_id = setup(engine, lfw)
    with pytest.raises(TrainingRequiredError):
        engine.lead_evidence(REVIEWER, lead_id)
    assert ledger(engine)[-1].result["error"] == "training_required"
    engine.record_training(ADMIN, REVIEWER.id, "FRT review")
    assert engine.lead_evidence(REVIEWER, lead_id).probe_crop
    from faceledger.errors import PermissionDeniedError

    with pytest.raises(PermissionDeniedError):
        engine.lead_evidence(INVESTIGATOR, lead_id)  # the searcher does not see the evidence by default
