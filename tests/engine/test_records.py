"""Records are built and checked in one place (governance.builders via the Engine), and erasure
reaches the answers the service keeps for replays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from faceledger.errors import InputError, PurposeNotAllowedError
from faceledger.governance.ledger import LedgerEntry
from faceledger.records import AuthorizationRequest, ConsentRequest, parse_time

from .conftest import ADMIN, CLERK, GALLERY, photo


def test_times_without_a_zone_are_refused_everywhere():
    assert parse_time("2026-05-01T09:00:00Z", "t") == datetime(2026, 5, 1, 9, tzinfo=UTC)
    assert parse_time("2026-05-01T11:00:00+02:00", "t") == datetime(2026, 5, 1, 9, tzinfo=UTC)
    for naive in ("2026-05-01T09:00:00", "2026-05-01", datetime(2026, 5, 1, 9)):
        with pytest.raises(InputError):
            parse_time(naive, "t")
    with pytest.raises(InputError):
        parse_time("yesterday", "t")


def test_consent_requests_get_the_engines_defaults_and_checks(engine):
    engine.create_gallery(ADMIN, GALLERY)
    record = engine.record_consent(CLERK, ConsentRequest(GALLERY, "emp-1", "access_control", "v3", "signed_form"))
    assert record.given_at == engine.now() and record.collected_by == CLERK.id
    assert record.expires_at == engine.now() + timedelta(days=365)
    with pytest.raises(InputError):
        engine.record_consent(CLERK, ConsentRequest(GALLERY, "emp-2", "access_control", "v3", "signed_form",
                                                    given_at="2026-01-01T00:00:00"))
    for bad in ("a/b", "a\\b", "nul\x00", "new\nline", "rtl\u202eabc", "zw\u200bj", " lead", "..", "e\u0301"):
        with pytest.raises(InputError):
            engine.record_consent(CLERK, ConsentRequest(GALLERY, bad, "access_control", "v3", "signed_form"))
    assert engine.record_consent(CLERK, ConsentRequest(GALLERY, "Zoë Ångström-42", "access_control", "v3",
                                                       "signed_form")).subject_ref == "Zoë Ångström-42"
    entries = [LedgerEntry.from_row(r) for r in engine.store.iter_ledger() if r.fields["operation"] == "consent_record"]
    assert [e.outcome for e in entries] == ["ok"] + ["error"] * 10 + ["ok"]
    assert all(e.subject_ref is None for e in entries[2:11])  # invisible characters never reach the ledger


def test_enrollment_refuses_a_bad_reference_before_anything(engine, lfw):
    engine.create_gallery(ADMIN, GALLERY)
    with pytest.raises(InputError):
        engine.enroll(CLERK, GALLERY, "a/b", [photo(lfw, "Aaron_Peirsol", 1)], purpose="access_control")


def test_authorizations_name_galleries_and_allowed_purposes(engine):
    engine.create_gallery(ADMIN, GALLERY)
    make = lambda **kw: AuthorizationRequest(**{"kind": "court_order", "reference": "C-1",  # noqa: E731
                                                "issuer": "Court", "galleries": [GALLERY],
                                                "purposes": ["investigation"], **kw})
    auth = engine.record_authorization(ADMIN, make())
    assert auth.recorded_by == ADMIN.id and auth.valid_until == engine.now() + timedelta(days=30)
    with pytest.raises(InputError, match="no wildcard"):
        engine.record_authorization(ADMIN, make(purposes=["*"]))
    with pytest.raises(InputError, match="no wildcard"):
        engine.record_authorization(ADMIN, make(galleries=["*"]))
    with pytest.raises(InputError):
        engine.record_authorization(ADMIN, make(purposes="investigation"))
    with pytest.raises(PurposeNotAllowedError):
        engine.record_authorization(ADMIN, make(purposes=["marketing"]))
    with pytest.raises(InputError):
        engine.record_authorization(ADMIN, make(valid_from="2026-01-01T00:00:00"))


def test_erasure_deletes_kept_answers_that_name_the_subject(enrolled):
    engine = enrolled
    engine.keep_answer("k1:a", {"at": "x", "body": {"subject_ref": "Aaron_Peirsol", "templates_added": 2}})
    engine.keep_answer("k1:b", {"at": "x", "body": {"faces": [{"candidates": [{"subject_ref": "Aaron_Peirsol",
                                                                             "score": 0.71}]}]}})
    engine.keep_answer("k1:c", {"at": "x", "body": {"detail": "no active consent of 'Aaron_Peirsol' here"}})
    engine.keep_answer("k1:d", {"at": "x", "body": {"subject_ref": "Padraig_Harrington"}})
    assert engine.stored_answer("k1:a") is not None
    engine.erase_subject(ADMIN, GALLERY, "Aaron_Peirsol")
    assert [engine.stored_answer(k) for k in ("k1:a", "k1:b", "k1:c")] == [None, None, None]
    assert engine.stored_answer("k1:d") is not None
    erase = [LedgerEntry.from_row(r) for r in engine.store.iter_ledger()][-1]
    assert (erase.operation, erase.result["replays_purged"]) == ("erase", 3)
    engine.withdraw_consent(CLERK, GALLERY, "Padraig_Harrington")  # withdrawal erases too
    assert engine.stored_answer("k1:d") is None


def test_deleting_a_gallery_with_its_subjects_deletes_their_kept_answers(enrolled):
    enrolled.keep_answer("k2:a", {"at": "x", "body": {"subject_ref": "Padraig_Harrington"}})
    enrolled.keep_answer("k2:b", {"at": "x", "body": {"subject_ref": "someone-elsewhere"}})
    assert enrolled.delete_gallery(ADMIN, GALLERY, erase_subjects=True) == 2
    assert enrolled.stored_answer("k2:a") is None and enrolled.stored_answer("k2:b") is not None


def test_answers_past_their_replay_window_are_forgotten(engine):
    now = datetime.now(UTC)
    engine.keep_answer("k3:old", {"at": (now - timedelta(hours=30)).isoformat(), "body": {}})
    engine.keep_answer("k3:new", {"at": now.isoformat(), "body": {}})
    engine.keep_answer("k3:bad", {"at": "not a time", "body": {}})
    assert engine.forget_answers(now - timedelta(hours=24)) == 2
    assert engine.stored_answer("k3:new") is not None
    assert engine.stored_answer("k3:old") is None and engine.stored_answer("k3:bad") is None
