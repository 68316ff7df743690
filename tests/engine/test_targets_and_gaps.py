"""Declared targets through the Engine, and the smaller gaps of issue 11: the enrolled photo as probe,
no-match searches in reports, a second active consent."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from faceledger.errors import ConflictError, ProhibitedUseError, UnknownTargetError
from faceledger.governance.consent import ConsentRecord
from faceledger.governance.ledger import LedgerEntry

from .conftest import AUDITOR, CLERK, GALLERY, INVESTIGATOR, consent, photo
from .test_accountability import authorization


def ledger(engine) -> list[LedgerEntry]:
    return [LedgerEntry.from_row(r) for r in engine.store.iter_ledger()]


@pytest.mark.parametrize("given", ["Protest", " protest", "protests", "lawful-assembly", "religious activity",
                                   "prot\u0435st", "pro\u200btest", "\u202eprotest"])
def test_prohibited_targets_are_refused_however_spelt_and_ledgered(enrolled, lfw, given):
    authorization(enrolled)
    with pytest.raises(ProhibitedUseError):
        enrolled.identify(INVESTIGATOR, GALLERY, photo(lfw, "Aaron_Peirsol", 3), purpose="investigation",
                          flags=[given])
    last = ledger(enrolled)[-1]
    assert (last.operation, last.outcome, last.result["error"]) == ("identify", "refused", "prohibited_use")
    assert last.result["targets"]["given"] == [given.encode("ascii", "backslashreplace").decode()]
    assert last.result["targets"]["prohibited"] and not last.inputs  # no photo was read


def test_unknown_targets_are_refused_and_allowed_ones_recorded(enrolled, lfw):
    authorization(enrolled)
    probe = photo(lfw, "Aaron_Peirsol", 3)
    for given in ("demonstration", "s\u0443spect"):  # the second has a Cyrillic у: never maps onto "suspect"
        with pytest.raises(UnknownTargetError):
            enrolled.identify(INVESTIGATOR, GALLERY, probe, purpose="investigation", flags=[given])
        last = ledger(enrolled)[-1]
        assert (last.outcome, last.result["error"], last.result["targets"]["normalised"]) == (
            "refused", "unknown_target", [None])
    enrolled.identify(INVESTIGATOR, GALLERY, probe, purpose="investigation", flags=["Suspects", "Missing-Person"])
    ok = ledger(enrolled)[-1]
    assert ok.outcome == "ok" and ok.result["targets"] == {
        "given": ["Suspects", "Missing-Person"], "normalised": ["suspect", "missing_person"], "prohibited": []}
    enrolled.identify(INVESTIGATOR, GALLERY, probe, purpose="investigation")
    assert ledger(enrolled)[-1].result["targets"] == {"given": [], "normalised": [], "prohibited": []}


def test_the_enrolled_photo_itself_is_found(enrolled, lfw):
    """The first thing a new user tries: its cosine comes out a hair above 1.0 in float32."""
    authorization(enrolled)
    result = enrolled.identify(INVESTIGATOR, GALLERY, photo(lfw, "Aaron_Peirsol", 1), purpose="investigation")
    best = result.faces[0].candidates[0]
    assert best.subject_ref == "Aaron_Peirsol" and best.score == pytest.approx(1.0, abs=1e-5) and best.score <= 1.0
    (lead,) = enrolled.leads(INVESTIGATOR, status="pending")
    assert lead.candidates[0].score <= 1.0


def test_reports_count_a_no_match_search_as_without_candidates(enrolled, lfw):
    authorization(enrolled)
    start = enrolled.now() - timedelta(minutes=1)
    enrolled.identify(INVESTIGATOR, GALLERY, photo(lfw, "Hal_Sutton", 2), purpose="investigation")
    enrolled.identify(INVESTIGATOR, GALLERY, photo(lfw, "Aaron_Peirsol", 3), purpose="investigation")
    report = enrolled.usage_report(AUDITOR, start, enrolled.now() + timedelta(minutes=1))
    assert report.identifications == {"searches": 2, "with candidates": 1, "without candidates": 1}


def _record(engine, ref: str, supersedes: str | None = None) -> ConsentRecord:
    now = engine.now()
    return ConsentRecord(id=uuid.uuid4().hex, gallery=GALLERY, subject_ref=ref, notice_version="notice-v4",
                         purpose="access_control", method="signed_form", given_at=now, collected_by=CLERK.id,
                         expires_at=now + timedelta(days=30), supersedes=supersedes)


def test_a_second_active_consent_is_refused_unless_it_names_the_one_it_renews(enrolled, lfw):
    first = enrolled.consents(CLERK, GALLERY, "Aaron_Peirsol")[0]
    with pytest.raises(ConflictError, match="already has an active consent"):
        enrolled.record_consent(CLERK, _record(enrolled, "Aaron_Peirsol"))
    assert ledger(enrolled)[-1].outcome == "error" and len(enrolled.consents(CLERK, GALLERY, "Aaron_Peirsol")) == 1
    with pytest.raises(ConflictError, match="not an active consent"):
        enrolled.record_consent(CLERK, _record(enrolled, "Aaron_Peirsol", supersedes="nope"))
    renewal = enrolled.record_consent(CLERK, _record(enrolled, "Aaron_Peirsol", supersedes=first.id))
    entry = ledger(enrolled)[-1]
    assert (entry.operation, entry.outcome, entry.result["supersedes"]) == ("consent_record", "ok", first.id)
    held = {c.id: c for c in enrolled.consents(CLERK, GALLERY, "Aaron_Peirsol")}
    assert held[first.id].superseded_by == renewal.id and held[first.id].status(enrolled.now()) == "superseded"
    assert held[renewal.id].status(enrolled.now()) is None
    # The renewal covers enrollment; the superseded record cannot be renewed again.
    enrolled.enroll(CLERK, GALLERY, "Aaron_Peirsol", [photo(lfw, "Aaron_Peirsol", 3)], purpose="access_control")
    with pytest.raises(ConflictError):
        enrolled.record_consent(CLERK, _record(enrolled, "Aaron_Peirsol", supersedes=first.id))
    # A consent for a new subject, and one for another purpose, are not duplicates.
    consent(enrolled, "Hal_Sutton")
    consent(enrolled, "Aaron_Peirsol", purpose="investigation")
    assert len(enrolled.consents(CLERK, GALLERY, "Aaron_Peirsol")) == 3
