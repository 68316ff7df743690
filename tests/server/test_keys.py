"""API keys: tokens shown once and stored as salted hashes; creation, listing and revocation ledgered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceledger.engine import Actor, Engine
from faceledger.errors import InputError, NotFoundError, PermissionDeniedError
from faceledger.governance.ledger import LedgerEntry
from faceledger.server.keys import API_KEY, KeyManager, parse_token

ADMIN = Actor("ada", "admin")


@pytest.fixture
def keys(tmp_path: Path):
    from faceledger.store import open_store

    engine = Engine(open_store(f"sqlite:///{tmp_path}/fl.db"), recognizer="yunet-sface")  # models never load here
    yield KeyManager(engine)
    engine.close()


def ledger(keys: KeyManager) -> list[LedgerEntry]:
    return [LedgerEntry.from_row(r) for r in keys.engine.store.iter_ledger()]


def test_token_authenticates_and_is_stored_only_as_a_salted_hash(keys: KeyManager, tmp_path: Path):
    key, token = keys.create(ADMIN, "carl", "enroller", "front desk")
    assert parse_token(token) == (key.key_id, token.split("_", 2)[2])
    found = keys.authenticate(token)
    assert found is not None and found.as_actor() == Actor("carl", "enroller", f"key:{key.key_id}")
    record = keys.engine.store.get_record(API_KEY, key.key_id).data
    secret = token.split("_", 2)[2]
    assert secret not in json.dumps(record) and len(record["salt"]) == 32 and len(record["digest"]) == 64
    assert secret.encode() not in (tmp_path / "fl.db").read_bytes()
    other, token2 = keys.create(ADMIN, "carl", "enroller")
    assert keys.engine.store.get_record(API_KEY, other.key_id).data["salt"] != record["salt"]
    assert token2 != token


@pytest.mark.parametrize("bad", ["", "flk_", "Bearer x", "flk_0123456789ab_short", "x" * 80])
def test_malformed_tokens_are_refused(keys: KeyManager, bad: str):
    assert keys.authenticate(bad) is None


def test_wrong_secret_for_a_real_key_id_is_refused(keys: KeyManager):
    key, token = keys.create(ADMIN, "vera", "verifier")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert keys.authenticate(forged) is None


def test_revoked_key_no_longer_authenticates_and_every_step_is_ledgered(keys: KeyManager):
    key, token = keys.create(ADMIN, "vera", "verifier")
    listed = keys.list(ADMIN)
    assert [k.key_id for k in listed] == [key.key_id] and listed[0].active
    revoked = keys.revoke(ADMIN, key.key_id)
    assert not revoked.active and revoked.revoked_by == "ada"
    assert keys.authenticate(token) is None
    actions = [(e.operation, e.outcome, e.result["action"], e.actor) for e in ledger(keys)]
    assert actions == [("key_change", "ok", "api_key_create", "ada"), ("key_change", "ok", "api_key_list", "ada"),
                       ("key_change", "ok", "api_key_revoke", "ada")]
    assert all(token.split("_", 2)[2] not in json.dumps(e.to_dict()) for e in ledger(keys))


def test_non_admin_is_refused_and_the_refusal_ledgered(keys: KeyManager):
    with pytest.raises(PermissionDeniedError):
        keys.create(Actor("carl", "enroller"), "mallory", "admin")
    with pytest.raises(PermissionDeniedError):
        keys.list(Actor("aud", "auditor"))
    assert [(e.outcome, e.result["action"], e.result["error"]) for e in ledger(keys)] == [
        ("refused", "api_key_create", "permission_denied"), ("refused", "api_key_list", "permission_denied")]
    assert keys.engine.store.list_records(API_KEY) == []


def test_bad_input_and_unknown_key(keys: KeyManager):
    with pytest.raises(InputError):
        keys.create(ADMIN, "carl", "superuser")
    with pytest.raises(InputError):
        keys.create(ADMIN, "bad\nactor", "enroller")
    with pytest.raises(NotFoundError):
        keys.revoke(ADMIN, "000000000000")
    assert [e.outcome for e in ledger(keys)] == ["error", "error", "error"]


def test_has_active_admin(keys: KeyManager):
    assert not keys.has_active_admin()
    key, _ = keys.create(ADMIN, "root", "admin")
    assert keys.has_active_admin()
    keys.revoke(ADMIN, key.key_id)
    assert not keys.has_active_admin()
