"""Ed25519 keys and signed checkpoints: files, signatures, and verification against the chain."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from govhelp import T0, chain

from faceledger.errors import ConfigError, ConflictError, InputError
from faceledger.governance.checkpoint import (
    Checkpoint,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    make_checkpoint,
    read_checkpoint,
    save_private_key,
    save_public_key,
    signature_ok,
    verify_ledger,
    write_checkpoint,
)
from faceledger.governance.ledger import LedgerEntry
from faceledger.governance.verify import ProblemKind

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return generate_key()


@posix_only
def test_private_key_file_is_0600_never_overwritten_and_round_trips(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    path = save_private_key(key, tmp_path / "ledger.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ConflictError, match="already exists"):
        save_private_key(generate_key(), path)
    assert key_id(load_private_key(path)) == key_id(key)


@posix_only
def test_a_private_key_readable_by_others_is_refused(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    path = save_private_key(key, tmp_path / "ledger.key")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_private_key(path)


def test_encrypted_private_key_needs_its_password(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    path = save_private_key(key, tmp_path / "ledger.key", password=b"correct horse")
    assert key_id(load_private_key(path, password=b"correct horse")) == key_id(key)
    with pytest.raises(ConfigError, match="cannot read private key"):
        load_private_key(path, password=b"wrong")


def test_public_key_files_and_key_ids(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    public = load_public_key(save_public_key(key, tmp_path / "ledger.pub"))
    assert key_id(public) == key_id(key)
    assert len(key_id(key)) == 16 and key_id(key) != key_id(generate_key())
    not_a_key = tmp_path / "notes.txt"
    not_a_key.write_text("hello")
    with pytest.raises(ConfigError):
        load_public_key(not_a_key)
    with pytest.raises(ConfigError, match="cannot read"):
        load_public_key(tmp_path / "absent.pub")


def test_a_checkpoint_signs_the_head_and_any_change_breaks_the_signature(key: Ed25519PrivateKey) -> None:
    head = chain(5)[-1].head
    cp = make_checkpoint(head, key, T0)
    assert (cp.seq, cp.head_hash, cp.key_id) == (5, head.hash, key_id(key))
    assert signature_ok(cp, key.public_key())
    for changed in (
        replace(cp, seq=6),
        replace(cp, head_hash="0" * 64),
        replace(cp, ts="2027-01-01T00:00:00.000000Z"),
        replace(cp, signature="00" * 64),
        replace(cp, signature="not hex"),
    ):
        assert not signature_ok(changed, key.public_key())
    assert not signature_ok(cp, generate_key().public_key())


def test_checkpoint_files_round_trip_and_bad_files_are_refused(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    cp = make_checkpoint(chain(3)[-1].head, key, T0)
    path = write_checkpoint(cp, tmp_path / "cp-3.json")
    assert json.loads(path.read_text())["format"] == "faceledger-checkpoint/1"
    assert read_checkpoint(path) == cp
    with pytest.raises(ConflictError):
        write_checkpoint(cp, path)
    bad = tmp_path / "bad.json"
    for content in ("{", json.dumps({"seq": 3}), json.dumps({**cp.to_dict(), "seq": "3"})):
        bad.write_text(content)
        with pytest.raises(InputError):
            read_checkpoint(bad)


def _rows(entries: list[LedgerEntry]) -> list[dict]:
    return [e.to_row() for e in entries]


def test_verify_ledger_with_good_checkpoints(key: Ed25519PrivateKey) -> None:
    entries = chain(12)
    cps = [make_checkpoint(entries[i].head, key, T0) for i in (3, 7, 11)]
    report = verify_ledger(_rows(entries), cps, [key.public_key()])
    assert report.ok and report.checkpoints == 3


def test_truncation_after_a_checkpoint_is_found(key: Ed25519PrivateKey) -> None:
    entries = chain(12)
    cp = make_checkpoint(entries[10].head, key, T0)
    report = verify_ledger(_rows(entries[:8]), [cp], [key.public_key()])
    assert (report.problem.kind, report.problem.seq) == (ProblemKind.TRUNCATED, 11)


def test_a_forged_checkpoint_is_reported_and_not_trusted(key: Ed25519PrivateKey) -> None:
    entries = chain(12)
    honest = make_checkpoint(entries[5].head, key, T0)
    forged = replace(honest, head_hash="e" * 64)  # claims another head, keeps the old signature
    report = verify_ledger(_rows(entries), [forged, honest], [key.public_key()])
    assert [p.kind for p in report.problems] == [ProblemKind.BAD_CHECKPOINT]
    assert "does not verify" in report.problems[0].message
    assert report.checkpoints == 1  # the honest one was used


def test_a_checkpoint_from_an_unknown_key_is_reported_and_keys_can_rotate(key: Ed25519PrivateKey) -> None:
    entries = chain(12)
    new_key = generate_key()
    old_cp, new_cp = make_checkpoint(entries[3].head, key, T0), make_checkpoint(entries[9].head, new_key, T0)
    report = verify_ledger(_rows(entries), [old_cp, new_cp], [key.public_key()])
    assert report.problem.kind is ProblemKind.BAD_CHECKPOINT and "unknown key" in report.problem.message
    rotated = verify_ledger(_rows(entries), [old_cp, new_cp], [key.public_key(), new_key.public_key()])
    assert rotated.ok and rotated.checkpoints == 2


def test_a_bad_checkpoint_and_a_broken_chain_are_both_reported(key: Ed25519PrivateKey) -> None:
    entries = chain(12)
    rows = _rows(entries)
    rows[4]["actor"] = "someone else"
    cp = Checkpoint(seq=2, head_hash=entries[1].hash, ts=entries[1].ts, key_id=key_id(key), signature="ab" * 64)
    report = verify_ledger(rows, [cp], [key.public_key()])
    assert [p.kind for p in report.problems] == [ProblemKind.BAD_CHECKPOINT, ProblemKind.CHANGED]
