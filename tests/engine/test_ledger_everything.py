"""Everything is ledgered: unexpected exceptions (even when the store fails too), a changed policy
before anything else runs, policy changes through the Engine, and training the policy requires."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from faceledger.engine import Engine
from faceledger.errors import (
    ConfigError,
    ConflictError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
    TrainingRequiredError,
)
from faceledger.governance.ledger import LedgerEntry
from faceledger.governance.policy import load_policy, parse_policy
from faceledger.store.sqlite_tx import SqliteTransaction

from .conftest import ADMIN, AUDITOR, CLERK, GALLERY, INVESTIGATOR, POLICY, REVIEWER, consent, photo
from .test_accountability import authorization


def ledger(engine) -> list[LedgerEntry]:
    return [LedgerEntry.from_row(r) for r in engine.store.iter_ledger()]


def test_an_unexpected_exception_half_way_leaves_no_effect_an_error_entry_and_an_intact_ledger(
        engine, lfw, monkeypatch):
    engine.create_gallery(ADMIN, GALLERY)
    consent(engine, "Aaron_Peirsol")
    real = SqliteTransaction.put_record

    def fail_on_consent(self, kind, record_id, data, **kw):  # noqa: ANN001, ANN202
        if kind == "consent":  # enrollment re-writes the consent after adding subject and template
            raise RuntimeError(f"disk on fire at {object()!r}")
        return real(self, kind, record_id, data, **kw)

    monkeypatch.setattr(SqliteTransaction, "put_record", fail_on_consent)
    with pytest.raises(RuntimeError, match="disk on fire"):
        engine.enroll(CLERK, GALLERY, "Aaron_Peirsol", [photo(lfw, "Aaron_Peirsol", 1)], purpose="access_control")
    monkeypatch.undo()
    with pytest.raises(NotFoundError):
        engine.store.find_subject(GALLERY, "Aaron_Peirsol")  # the subject and template were rolled back
    last = ledger(engine)[-1]
    assert (last.operation, last.outcome, last.subject_ref) == ("enroll", "error", "Aaron_Peirsol")
    assert last.result == {"error": "internal_error", "reason": None,
                           "message": "the operation stopped on an unexpected internal error"}
    assert "0x" not in str(last.to_dict()) and "fire" not in str(last.to_dict())
    assert engine.verify_ledger(AUDITOR).ok


def test_when_the_store_fails_too_the_original_error_is_not_masked(engine, lfw, monkeypatch):
    engine.create_gallery(ADMIN, GALLERY)
    consent(engine, "Aaron_Peirsol")
    head = engine.store.ledger_head()

    def broken_embed(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        raise ValueError("the model fell over")

    def broken_append(self, fields):  # noqa: ANN001, ANN202
        raise StoreError("the disk is gone")

    monkeypatch.setattr(engine.recognizer, "embed", broken_embed)
    monkeypatch.setattr(SqliteTransaction, "append_ledger", broken_append)
    with pytest.raises(ValueError, match="the model fell over") as info:
        engine.enroll(CLERK, GALLERY, "Aaron_Peirsol", [photo(lfw, "Aaron_Peirsol", 1)], purpose="access_control")
    assert any("could not be written (store_error)" in n for n in info.value.__notes__)
    monkeypatch.undo()
    assert engine.store.ledger_head() == head and engine.verify_ledger(AUDITOR).ok


def test_a_fresh_ledger_opens_with_the_policy_and_a_different_one_is_recorded_before_anything_else(make_engine):
    first = make_engine()
    first.create_gallery(ADMIN, GALLERY)
    opening, created = ledger(first)
    assert (opening.operation, opening.actor, opening.credential) == ("policy_change", "faceledger", "service")
    assert opening.result["old_digest"] is None and opening.result["new_digest"] == first.policy.digest
    assert created.operation == "gallery_create" and created.policy_digest == first.policy.digest
    stricter = POLICY.replace("max_candidates = 5", "max_candidates = 3")
    second = make_engine(stricter)
    second.list_galleries(ADMIN)
    second.create_gallery(ADMIN, "other")
    change, made = ledger(second)[-2:]
    assert (change.operation, change.result["old_digest"], change.result["new_digest"]) == (
        "policy_change", first.policy.digest, second.policy.digest)
    assert change.result["changes"] == [{"key": "limits.max_candidates", "old": 5, "new": 3}]
    assert change.result["source"] == "code" and made.operation == "gallery_create"
    second.create_gallery(ADMIN, "third")  # recorded once, not at every operation
    assert [e.operation for e in ledger(second)].count("policy_change") == 2
    assert second.verify_ledger(AUDITOR).ok


@pytest.fixture
def file_engines(tmp_path: Path, recognizer, clock):
    from faceledger.store import open_store

    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(POLICY)
    engines = [Engine(open_store(f"sqlite:///{tmp_path}/fl.db"), recognizer=recognizer,
                      policy=load_policy(policy_file), clock=clock) for _ in range(2)]
    yield policy_file, *engines
    for e in engines:
        e.close()


def test_admins_change_the_policy_through_the_engine_validated_and_ledgered(file_engines):
    policy_file, engine, other = file_engines
    engine.list_galleries(ADMIN)
    with pytest.raises(PermissionDeniedError):
        engine.change_policy(INVESTIGATOR, POLICY + "\n[review]\nrequired_reviewers = 2\n")
    with pytest.raises(InputError, match="review.required_reviewers"):
        engine.change_policy(ADMIN, POLICY + "\n[review]\nrequired_reviewers = 3\n")
    with pytest.raises(ConflictError):
        engine.change_policy(ADMIN, POLICY)
    assert [(e.outcome, e.result["error"]) for e in ledger(engine)[-3:]] == [
        ("refused", "permission_denied"), ("error", "invalid_input"), ("error", "conflict")]
    assert engine.policy.required_reviewers == 1 and policy_file.read_text() == POLICY
    new_text = POLICY + "\n[review]\nrequired_reviewers = 2\n"
    new = engine.change_policy(ADMIN, new_text)
    entry = ledger(engine)[-1]
    assert (entry.operation, entry.actor, entry.outcome, entry.result["source"]) == ("policy_change", "ada", "ok",
                                                                                     "engine")
    assert {"key": "review.required_reviewers", "old": 1, "new": 2} in entry.result["changes"]
    assert entry.policy_digest == new.digest == engine.policy.digest and policy_file.read_text() == new_text
    # Another engine on the same file reloads it at its next operation, with no second entry.
    other.list_galleries(ADMIN)
    assert other.policy.digest == new.digest and ledger(other)[-1].seq == entry.seq
    # An edit of the file on disk is picked up and ledgered before the next operation.
    policy_file.write_text(new_text.replace("max_candidates = 5", "max_candidates = 4"))
    other.create_gallery(ADMIN, GALLERY)
    edited, created = ledger(other)[-2:]
    assert (edited.operation, edited.result["source"], created.operation) == ("policy_change", "file",
                                                                              "gallery_create")
    assert edited.result["changes"] == [{"key": "limits.max_candidates", "old": 5, "new": 4}]
    view = other.policy_view(AUDITOR)
    assert view["digest"] == other.policy.digest and view["policy"]["limits"]["max_candidates"] == 4
    # A broken edit fails closed: refused with a typed error, ledgered, nothing runs.
    policy_file.write_text("[limits\n")
    with pytest.raises(ConfigError):
        other.list_galleries(ADMIN)
    failed = ledger(other)[-1]
    assert (failed.operation, failed.outcome, failed.result["error"]) == ("gallery_list", "error", "invalid_config")
    policy_file.write_text(new_text)
    assert other.verify_ledger(AUDITOR).ok


TRAINED = POLICY + '\n[training]\nrequired_for = ["investigator", "reviewer"]\n'


def test_the_policy_can_require_current_training_before_searching_or_reviewing(make_engine, lfw, clock):
    engine = make_engine(TRAINED)
    engine.create_gallery(ADMIN, GALLERY)
    consent(engine, "Aaron_Peirsol")
    engine.enroll(CLERK, GALLERY, "Aaron_Peirsol", [photo(lfw, "Aaron_Peirsol", 1)], purpose="access_control")
    authorization(engine)
    probe = photo(lfw, "Aaron_Peirsol", 2)
    with pytest.raises(TrainingRequiredError) as info:
        engine.identify(INVESTIGATOR, GALLERY, probe, purpose="investigation")
    assert info.value.details["reason"] == "none"
    last = ledger(engine)[-1]
    assert (last.operation, last.outcome, last.result["error"]) == ("identify", "refused", "training_required")
    with pytest.raises(PermissionDeniedError):
        engine.record_training(INVESTIGATOR, INVESTIGATOR.id, "FRT oversight")
    now = engine.now()
    for person in (INVESTIGATOR.id, REVIEWER.id):
        engine.record_training(ADMIN, person, "FRT oversight 2026", completed_at=now - timedelta(days=1),
                               expires_at=(now + timedelta(days=30)).isoformat())
    recorded = ledger(engine)[-1]
    assert (recorded.operation, recorded.result["person"], recorded.result["course"]) == (
        "training_record", REVIEWER.id, "FRT oversight 2026")
    assert {t.actor for t in engine.trainings(AUDITOR)} == {INVESTIGATOR.id, REVIEWER.id}
    lead = engine.identify(INVESTIGATOR, GALLERY, probe, purpose="investigation").faces[0].lead_id
    clock.advance(days=31)
    with pytest.raises(TrainingRequiredError) as info:
        engine.review(REVIEWER, lead, "rejected", "not the same person")
    assert info.value.details["reason"] == "expired" and ledger(engine)[-1].result["error"] == "training_required"
    assert parse_policy(TRAINED).to_dict()["training"] == {"required_for": ["investigator", "reviewer"]}


def test_engine_open_with_a_policy_file_records_it(tmp_path: Path, recognizer):
    (tmp_path / "p.toml").write_text(POLICY)
    engine = Engine.open(f"sqlite:///{tmp_path}/x.db", policy=tmp_path / "p.toml", recognizer=recognizer)
    try:
        engine.list_galleries(ADMIN)
        (opening,) = ledger(engine)
        assert (opening.operation, opening.result["source"]) == ("policy_change", "file")
    finally:
        engine.close()
