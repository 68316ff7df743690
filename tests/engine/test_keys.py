"""API keys as engine operations: tokens shown once and stored as salted hashes; creation, listing and
revocation ledgered as key_create / key_list / key_revoke, with their refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceledger.engine import Actor, Engine
from faceledger.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from faceledger.governance.ledger import LedgerEntry
from faceledger.governance.policy import parse_policy
from faceledger.records import SERVICE_ACTOR, parse_token

ADMIN = Actor("ada", "admin", credential="os:ada")


@pytest.fixture
def keys(tmp_path: Path):
    from faceledger.store import open_store

    engine = Engine(open_store(f"sqlite:///{tmp_path}/fl.db"), recognizer="yunet-sface")  # models never load here
    yield engine
    engine.close()


def ledger(engine: Engine) -> list[LedgerEntry]:
    """The entries, without the policy_change that opens every fresh ledger."""
    return [e for e in map(LedgerEntry.from_row, engine.store.iter_ledger()) if e.operation != "policy_change"]


def test_token_authenticates_and_is_stored_only_as_a_salted_hash(keys: Engine, tmp_path: Path):
    key, token = keys.create_key(ADMIN, "carl", "enroller", label="front desk")
    assert parse_token(token) == (key.key_id, token.split("_", 2)[2])
    found = keys.authenticate(token)
    assert found is not None and found.as_actor() == Actor("carl", "enroller", f"key:{key.key_id}")
    record = keys.store.get_record("api_key", key.key_id).data
    secret = token.split("_", 2)[2]
    assert secret not in json.dumps(record) and len(record["salt"]) == 32 and len(record["digest"]) == 64
    assert secret.encode() not in (tmp_path / "fl.db").read_bytes()
    other, token2 = keys.create_key(ADMIN, "carl", "enroller")
    assert keys.store.get_record("api_key", other.key_id).data["salt"] != record["salt"]
    assert token2 != token


@pytest.mark.parametrize("bad", ["", "flk_", "Bearer x", "flk_0123456789ab_short", "x" * 80])
def test_malformed_tokens_are_refused(keys: Engine, bad: str):
    assert keys.authenticate(bad) is None


def test_wrong_secret_for_a_real_key_id_is_refused(keys: Engine):
    key, token = keys.create_key(ADMIN, "vera", "verifier")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert keys.authenticate(forged) is None


def test_each_key_operation_has_its_own_ledger_entry(keys: Engine):
    keys.create_key(ADMIN, "root", "admin")
    key, token = keys.create_key(ADMIN, "vera", "verifier")
    listed = keys.list_keys(ADMIN)
    assert [k.key_id for k in listed][1:] == [key.key_id] and listed[1].active
    revoked = keys.revoke_key(ADMIN, key.key_id)
    assert not revoked.active and revoked.revoked_by == "ada"
    assert keys.authenticate(token) is None
    got = [(e.operation, e.outcome, e.actor, e.credential, e.reference) for e in ledger(keys)]
    assert got[1:] == [("key_create", "ok", "ada", "os:ada", f"key:{key.key_id}"),
                       ("key_list", "ok", "ada", "os:ada", None),
                       ("key_revoke", "ok", "ada", "os:ada", f"key:{key.key_id}")]
    assert ledger(keys)[2].result == {"keys": 2, "active": 2}
    assert all(token.split("_", 2)[2] not in json.dumps(e.to_dict()) for e in ledger(keys))


def test_non_admin_is_refused_and_the_refusal_ledgered(keys: Engine):
    with pytest.raises(PermissionDeniedError):
        keys.create_key(Actor("carl", "enroller"), "mallory", "admin")
    with pytest.raises(PermissionDeniedError):
        keys.list_keys(Actor("aud", "auditor"))
    with pytest.raises(PermissionDeniedError):
        keys.revoke_key(Actor("aud", "auditor"), "0123456789ab")
    assert [(e.operation, e.outcome, e.result["error"]) for e in ledger(keys)] == [
        ("key_create", "refused", "permission_denied"), ("key_list", "refused", "permission_denied"),
        ("key_revoke", "refused", "permission_denied")]
    assert keys.store.list_records("api_key") == []


def test_bad_input_and_unknown_key(keys: Engine):
    with pytest.raises(InputError):
        keys.create_key(ADMIN, "carl", "superuser")
    with pytest.raises(InputError):
        keys.create_key(ADMIN, "bad\nactor", "enroller")
    with pytest.raises(InputError):
        keys.create_key(ADMIN, "carl\u202e", "enroller")
    with pytest.raises(NotFoundError):
        keys.revoke_key(ADMIN, "000000000000")
    assert [e.outcome for e in ledger(keys)] == ["error"] * 4


def test_no_key_acts_as_the_reserved_service_actor(keys: Engine):
    with pytest.raises(PermissionDeniedError) as refused:
        keys.create_key(ADMIN, SERVICE_ACTOR, "admin")
    assert refused.value.details["reason"] == "reserved_actor"
    assert (ledger(keys)[-1].operation, ledger(keys)[-1].outcome) == ("key_create", "refused")
    assert keys.store.list_records("api_key") == []


def test_the_last_active_admin_key_cannot_be_revoked_not_even_by_itself(keys: Engine):
    only, token = keys.create_key(ADMIN, "root", "admin")
    itself = keys.authenticate(token).as_actor()
    with pytest.raises(ConflictError):
        keys.revoke_key(itself, only.key_id)
    with pytest.raises(ConflictError):
        keys.revoke_key(ADMIN, only.key_id)
    assert keys.authenticate(token) is not None and keys.has_admin_key()
    second, _ = keys.create_key(itself, "root2", "admin")
    assert keys.revoke_key(itself, only.key_id).revoked_by == "root"  # another admin key exists now
    assert ledger(keys)[-1].result["self"] is True and ledger(keys)[-1].credential == f"key:{only.key_id}"
    assert keys.authenticate(token) is None
    with pytest.raises(ConflictError):
        keys.revoke_key(ADMIN, second.key_id)
    outcomes = [(e.operation, e.outcome) for e in ledger(keys)]
    assert outcomes.count(("key_revoke", "error")) == 3


def test_has_admin_key(keys: Engine):
    assert not keys.has_admin_key()
    keys.create_key(ADMIN, "root", "admin")
    assert keys.has_admin_key()


def test_a_policy_naming_key_change_still_grants_key_management(tmp_path: Path):
    from faceledger.store import open_store

    policy = parse_policy('[roles]\nauditor = ["key_change", "ledger_verify"]\nadmin = ["gallery_list"]\n')
    engine = Engine(open_store(f"sqlite:///{tmp_path}/k.db"), recognizer="yunet-sface", policy=policy)
    try:
        aud = Actor("aud", "auditor")
        key, _ = engine.create_key(aud, "x", "verifier")
        assert [k.key_id for k in engine.list_keys(aud)] == [key.key_id]
        assert engine.revoke_key(aud, key.key_id).revoked_by == "aud"
        with pytest.raises(PermissionDeniedError):
            engine.list_keys(Actor("ada", "admin"))
    finally:
        engine.close()
