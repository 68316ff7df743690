"""The accountable engine end to end on real photos and a real SQLite store.

Every refusal path, the ledger written with each effect, identification as leads for
review, erasure, retention, data-subject access and ledger verification.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import timedelta

import numpy as np
import pytest

from faceledger.errors import (
    AuthorizationRequiredError,
    ConsentRequiredError,
    EnrollmentRejectedError,
    IdentificationDisabledError,
    NotFoundError,
    PermissionDeniedError,
    ProhibitedUseError,
    PurposeNotAllowedError,
    RateLimitedError,
    SelfReviewError,
)
from faceledger.governance.authorization import Authorization
from faceledger.governance.ledger import LedgerEntry

from .conftest import (
    ADMIN,
    AUDITOR,
    CLERK,
    GALLERY,
    INVESTIGATOR,
    POLICY,
    REVIEWER,
    REVIEWER2,
    VERIFIER,
    Actor,
    consent,
    photo,
)


def authorization(engine, days: int = 30, galleries=(GALLERY,), purposes=("investigation",)) -> Authorization:
    now = engine.now()
    auth = Authorization(
        id=uuid.uuid4().hex, kind="court_order", reference="CASE-2026-0042", issuer="District Court",
        galleries=frozenset(galleries), purposes=frozenset(purposes), valid_from=now - timedelta(hours=1),
        valid_until=now + timedelta(days=days), recorded_by=ADMIN.id,
    )
    return engine.record_authorization(ADMIN, auth)


def ledger(engine) -> list[LedgerEntry]:
    return [LedgerEntry.from_row(r) for r in engine.store.iter_ledger()]


def test_no_consent_no_template(engine, lfw):
    engine.create_gallery(ADMIN, GALLERY)
    with pytest.raises(ConsentRequiredError):
        engine.enroll(CLERK, GALLERY, "Aaron_Peirsol", [photo(lfw, "Aaron_Peirsol", 1)], purpose="access_control")
    with pytest.raises(NotFoundError):
        engine.store.find_subject(GALLERY, "Aaron_Peirsol")
    last = ledger(engine)[-1]
    assert (last.operation, last.outcome, last.subject_ref) == ("enroll", "refused", "Aaron_Peirsol")
    assert last.result["error"] == "consent_required"
    assert not last.inputs  # refused before any photo was read


def test_consent_for_another_purpose_or_expired_is_refused(engine, lfw, clock):
    engine.create_gallery(ADMIN, GALLERY)
    consent(engine, "Aaron_Peirsol", purpose="investigation")
    with pytest.raises(ConsentRequiredError):
        engine.enroll(CLERK, GALLERY, "Aaron_Peirsol", [photo(lfw, "Aaron_Peirsol", 1)], purpose="access_control")
    consent(engine, "Padraig_Harrington", days=1)
    clock.advance(days=2)
    with pytest.raises(ConsentRequiredError) as info:
        engine.enroll(CLERK, GALLERY, "Padraig_Harrington", [photo(lfw, "Padraig_Harrington", 1)],
                      purpose="access_control")
    assert info.value.details.get("reason") == "expired"


def test_enroll_writes_templates_and_entry_together(enrolled, lfw):
    subject = enrolled.store.find_subject(GALLERY, "Aaron_Peirsol")
    assert subject.template_count == 2
    entry = [e for e in ledger(enrolled) if e.operation == "enroll" and e.outcome == "ok"][0]
    assert entry.subject_ref == "Aaron_Peirsol" and entry.result["templates_added"] == 2
    assert set(entry.inputs) == {"photo_0", "photo_1"} and all(len(v) == 64 for v in entry.inputs.values())
    # Re-enrolling the same photo is idempotent.
    again = enrolled.enroll(CLERK, GALLERY, "Aaron_Peirsol", [photo(lfw, "Aaron_Peirsol", 1)],
                            purpose="access_control")
    assert (again.templates_added, again.templates_existing) == (0, 1)
    assert enrolled.store.find_subject(GALLERY, "Aaron_Peirsol").template_count == 2


def test_quality_gate_rejects_and_stores_nothing(engine, lfw, groups):
    engine.create_gallery(ADMIN, GALLERY)
    consent(engine, "Aaron_Peirsol")
    blank = np.full((300, 300, 3), 120, np.uint8)
    with pytest.raises(EnrollmentRejectedError) as info:
        engine.enroll(CLERK, GALLERY, "Aaron_Peirsol", [photo(lfw, "Aaron_Peirsol", 1), blank,
                                                         groups / "facenetpytorch_multiface.jpg"],
                      purpose="access_control")
    reasons = [r["reason"] for r in info.value.details["rejections"]]
    assert reasons[0].startswith("no_face") and reasons[1].startswith("multiple_faces")
    with pytest.raises(NotFoundError):
        engine.store.find_subject(GALLERY, "Aaron_Peirsol")
    small = engine.create_gallery(ADMIN, "strict", quality_gate={"min_size": 200})
    assert small.quality_gate["min_size"] == 200


def test_roles_are_enforced_and_refusals_ledgered(enrolled, lfw):
    a = photo(lfw, "Aaron_Peirsol", 1)
    with pytest.raises(PermissionDeniedError):
        enrolled.verify(ADMIN, a, a, purpose="access_control")
    with pytest.raises(PermissionDeniedError):
        enrolled.create_gallery(CLERK, "other")
    with pytest.raises(PermissionDeniedError):
        enrolled.erase_subject(INVESTIGATOR, GALLERY, "Aaron_Peirsol")
    refused = [e for e in ledger(enrolled) if e.outcome == "refused"]
    assert [(e.actor, e.operation) for e in refused] == [
        ("ada", "verify"), ("carl", "gallery_create"), ("ines", "erase")]


def test_verify_and_detect_are_ledgered_with_digests(enrolled, lfw):
    a, b = photo(lfw, "Aaron_Peirsol", 3), photo(lfw, "Aaron_Peirsol", 4)
    result = enrolled.verify(VERIFIER, a, b, purpose="access_control")
    assert result.match
    entry = ledger(enrolled)[-1]
    assert entry.operation == "verify" and entry.result["match"] is True
    assert entry.result["threshold"] == pytest.approx(result.threshold, abs=1e-6)
    assert entry.inputs["photo_a"] != entry.inputs["photo_b"]
    with pytest.raises(PurposeNotAllowedError):
        enrolled.verify(VERIFIER, a, b, purpose="marketing")
    assert len(enrolled.detect(VERIFIER, a)) == 1
    assert ledger(enrolled)[-1].result["faces"] == 1


def test_identification_is_off_by_default(make_engine, lfw):
    engine = make_engine(POLICY.replace("enabled = true", "enabled = false"))
    engine.create_gallery(ADMIN, GALLERY)
    with pytest.raises(IdentificationDisabledError):
        engine.identify(INVESTIGATOR, GALLERY, photo(lfw, "Aaron_Peirsol", 3), purpose="investigation")
    assert ledger(engine)[-1].result["error"] == "identification_disabled"


def test_identification_needs_a_valid_authorization_in_scope(enrolled, lfw, clock):
    probe = photo(lfw, "Aaron_Peirsol", 3)
    with pytest.raises(AuthorizationRequiredError):
        enrolled.identify(INVESTIGATOR, GALLERY, probe, purpose="investigation")
    authorization(enrolled, days=1, purposes=("access_control",))
    with pytest.raises((AuthorizationRequiredError, PurposeNotAllowedError)):
        enrolled.identify(INVESTIGATOR, GALLERY, probe, purpose="investigation")
    authorization(enrolled, days=1)
    clock.advance(days=2)
    with pytest.raises(AuthorizationRequiredError) as info:
        enrolled.identify(INVESTIGATOR, GALLERY, probe, purpose="investigation")
    assert info.value.details["reason"] == "expired"
    assert all(not e.inputs for e in ledger(enrolled) if e.operation == "identify")  # no photo was read


def test_prohibited_uses_are_refused(enrolled, lfw):
    authorization(enrolled)
    probe = photo(lfw, "Aaron_Peirsol", 3)
    with pytest.raises(ProhibitedUseError):
        enrolled.identify(INVESTIGATOR, GALLERY, probe, purpose="investigation", flags={"protest"})
    with pytest.raises(ProhibitedUseError):
        enrolled.identify(INVESTIGATOR, GALLERY, probe, purpose="investigation", live=True)
    with pytest.raises(PermissionDeniedError):
        enrolled.identify(VERIFIER, GALLERY, probe, purpose="investigation")


def test_identify_returns_leads_and_explicit_no_match(enrolled, lfw):
    auth = authorization(enrolled)
    result = enrolled.identify(INVESTIGATOR, GALLERY, photo(lfw, "Aaron_Peirsol", 3), purpose="investigation")
    (face,) = result.faces
    assert face.candidates[0].subject_ref == "Aaron_Peirsol" and face.candidates[0].rank == 1
    assert all(c.score >= result.threshold for c in face.candidates)
    assert result.label == "not a basis for action on its own" and face.lead_id
    entry = ledger(enrolled)[-1]
    assert entry.operation == "identify" and entry.reference == auth.reference
    assert entry.result["candidates"][0][0]["subject_ref"] == "Aaron_Peirsol"
    stranger = enrolled.identify(INVESTIGATOR, GALLERY, photo(lfw, "Hal_Sutton", 2), purpose="investigation")
    assert stranger.no_match and stranger.faces[0].lead_id is None
    assert ledger(enrolled)[-1].result["no_match"] is True
    # The answer and the ledger state how often a stranger would still get a candidate here.
    from faceledger.governance.fpir import point_fmr

    fmr = point_fmr(enrolled.recognizer.backend.thresholds.points[result.operating_point])
    assert result.gallery_subjects == 2
    assert result.expected_fpir == pytest.approx(1 - (1 - fmr) ** 2)
    assert ledger(enrolled)[-1].result["gallery_subjects"] == 2
    assert ledger(enrolled)[-1].result["expected_fpir"] == pytest.approx(result.expected_fpir, abs=1e-6)


def test_expected_fpir_grows_with_the_gallery():
    from faceledger.engine.identification import expected_fpir

    assert expected_fpir(None, 1000) is None
    assert expected_fpir(1e-3, 0) == 0.0
    assert expected_fpir(1e-3, 1) == pytest.approx(1e-3)
    assert expected_fpir(1e-3, 1000) == pytest.approx(0.632, abs=1e-3)
    assert expected_fpir(1e-4, 1000) < expected_fpir(1e-3, 1000) < expected_fpir(1e-3, 5000) < 1.0


def test_rate_limit(enrolled, lfw):
    authorization(enrolled)
    probe = photo(lfw, "Aaron_Peirsol", 3)
    for _ in range(4):
        enrolled.identify(INVESTIGATOR, GALLERY, probe, purpose="investigation")
    with pytest.raises(RateLimitedError):
        enrolled.identify(INVESTIGATOR, GALLERY, probe, purpose="investigation")


def test_review_rules(enrolled, lfw):
    authorization(enrolled)
    result = enrolled.identify(INVESTIGATOR, GALLERY, photo(lfw, "Aaron_Peirsol", 3), purpose="investigation")
    lead_id = result.faces[0].lead_id
    assert [x.id for x in enrolled.leads(REVIEWER, status="pending")] == [lead_id]
    with pytest.raises(PermissionDeniedError):
        enrolled.review(INVESTIGATOR, lead_id, "confirmed", "looks alike", subject_ref="Aaron_Peirsol")
    lead = enrolled.review(REVIEWER, lead_id, "confirmed", "same scar, same ears", subject_ref="Aaron_Peirsol")
    assert lead.status.value == "confirmed" and lead.confirmed_subject == "Aaron_Peirsol"
    entry = ledger(enrolled)[-1]
    assert entry.operation == "review" and entry.result["decision"] == "confirmed"


def test_two_reviewers_and_self_review(make_engine, lfw):
    policy = POLICY + (
        '\n[review]\nrequired_reviewers = 2\n\n[roles]\ninvestigator = ["identify", "review", "lead_list"]\n'
    )
    engine = make_engine(policy)
    engine.create_gallery(ADMIN, GALLERY)
    consent(engine, "Aaron_Peirsol")
    engine.enroll(CLERK, GALLERY, "Aaron_Peirsol", [photo(lfw, "Aaron_Peirsol", 1)], purpose="access_control")
    authorization(engine)
    lead_id = engine.identify(INVESTIGATOR, GALLERY, photo(lfw, "Aaron_Peirsol", 3),
                              purpose="investigation").faces[0].lead_id
    with pytest.raises(SelfReviewError):
        engine.review(INVESTIGATOR, lead_id, "confirmed", "it is him", subject_ref="Aaron_Peirsol")
    first = engine.review(REVIEWER, lead_id, "confirmed", "ears match", subject_ref="Aaron_Peirsol")
    assert first.status.value == "pending"
    second = engine.review(REVIEWER2, lead_id, "rejected", "different nose")
    assert second.status.value == "inconclusive"


def test_erasure_removes_templates_and_leaves_proof(enrolled, lfw, tmp_path):
    n = enrolled.erase_subject(ADMIN, GALLERY, "Aaron_Peirsol")
    assert n == 2
    with pytest.raises(NotFoundError):
        enrolled.store.find_subject(GALLERY, "Aaron_Peirsol")
    entry = ledger(enrolled)[-1]
    assert (entry.operation, entry.subject_ref, entry.result["reason"]) == ("erase", "Aaron_Peirsol",
                                                                          "erasure_request")
    authorization(enrolled)
    after = enrolled.identify(INVESTIGATOR, GALLERY, photo(lfw, "Aaron_Peirsol", 3), purpose="investigation")
    assert all(c.subject_ref != "Aaron_Peirsol" for f in after.faces for c in f.candidates)
    assert enrolled.verify_ledger(AUDITOR).ok


def test_withdrawal_erases(enrolled):
    assert enrolled.withdraw_consent(CLERK, GALLERY, "Padraig_Harrington") == 2
    ops = [(e.operation, e.subject_ref) for e in ledger(enrolled)[-2:]]
    assert ops == [("consent_withdraw", "Padraig_Harrington"), ("erase", "Padraig_Harrington")]
    with pytest.raises(NotFoundError):
        enrolled.store.find_subject(GALLERY, "Padraig_Harrington")


def test_retention_run_and_dry_run(enrolled, clock):
    clock.advance(days=400)  # past both consents' expiry
    plan = enrolled.run_retention(ADMIN, dry_run=True)
    assert len(plan.items) == 2
    assert enrolled.store.gallery_stats(GALLERY).subjects == 2
    enrolled.run_retention(ADMIN)
    assert enrolled.store.gallery_stats(GALLERY).subjects == 0
    erased = [e for e in ledger(enrolled) if e.operation == "erase"]
    assert len(erased) == 2 and all("consent_expired" in e.result["reason"] for e in erased)


def test_subject_export_has_no_vectors(enrolled, lfw):
    export = enrolled.export_subject(ADMIN, GALLERY, "Aaron_Peirsol")
    assert export["subject_ref"] == "Aaron_Peirsol"
    assert len(export["consents"]) == 1 and len(export["templates"]) == 2
    assert any(e["operation"] == "enroll" for e in export["ledger_entries"])
    text = repr(export)
    assert "Padraig_Harrington" not in text


def test_failure_inside_the_transaction_leaves_no_effect(enrolled, lfw, monkeypatch):
    consent(enrolled, "Hal_Sutton")
    import faceledger.store.sqlite_tx as tx_module

    def boom(self, fields):
        raise OSError("disk full")

    monkeypatch.setattr(tx_module.SqliteTransaction, "append_ledger", boom)
    with pytest.raises(OSError):
        enrolled.enroll(CLERK, GALLERY, "Hal_Sutton", [photo(lfw, "Hal_Sutton", 2)], purpose="access_control")
    monkeypatch.undo()
    with pytest.raises(NotFoundError):
        enrolled.store.find_subject(GALLERY, "Hal_Sutton")
    assert enrolled.verify_ledger(AUDITOR).ok


def test_ledger_tampering_is_detected(enrolled, tmp_path):
    assert enrolled.verify_ledger(AUDITOR).ok
    db = sqlite3.connect(tmp_path / "fl.db")
    seq, fields = db.execute("SELECT seq, fields FROM ledger WHERE seq = 3").fetchone()
    db.execute("UPDATE ledger SET fields = ? WHERE seq = ?", (fields.replace("carl", "mallory"), seq))
    db.commit()
    db.close()
    report = enrolled.verify_ledger(AUDITOR)
    assert not report.ok and report.problem.seq == 3 and report.problem.kind.value == "changed"


def test_checkpoint_and_usage_report(enrolled, tmp_path):
    from faceledger.governance.checkpoint import generate_key, save_private_key, save_public_key

    key = generate_key()
    save_private_key(key, tmp_path / "ledger.key")
    save_public_key(key, tmp_path / "ledger.pub")
    cp = enrolled.checkpoint(ADMIN, tmp_path / "ledger.key", tmp_path / "cp1.json")
    report = enrolled.verify_ledger(AUDITOR, checkpoints=[cp], public_keys=[tmp_path / "ledger.pub"])
    assert report.ok
    usage = enrolled.usage_report(AUDITOR, enrolled.now() - timedelta(days=1), enrolled.now() + timedelta(days=1))
    data = usage.to_dict()
    assert "enroll" in repr(data) and "# " in usage.to_markdown()
    count = enrolled.export_ledger(AUDITOR, tmp_path / "ledger.jsonl")
    assert count == len((tmp_path / "ledger.jsonl").read_text().splitlines()) > 5


def test_unknown_role_is_refused():
    from faceledger.errors import InputError

    with pytest.raises(InputError):
        Actor("x", "superuser")


def test_a_consent_record_is_never_rewritten(engine):
    from dataclasses import replace

    from faceledger.errors import ConflictError

    engine.create_gallery(ADMIN, GALLERY)
    record = consent(engine, "Aaron_Peirsol")
    with pytest.raises(ConflictError):
        engine.record_consent(CLERK, replace(record, notice_version="forged"))
