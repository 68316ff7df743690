"""Ledger entries: sealing by the chain's definition, storage rows, and the biometric-data guard."""

from __future__ import annotations

import base64
import json
import math
from datetime import timedelta

import numpy as np
import pytest
from govhelp import T0, chain, digest
from hypothesis import given, settings
from hypothesis import strategies as st

from faceledger.core.chain import GENESIS, canonical_json, entry_hash
from faceledger.errors import ConsentRequiredError, InputError, PermissionDeniedError
from faceledger.governance.ledger import (
    GENESIS_HEAD,
    HASHED_FIELDS,
    LEGACY_ROW_COLUMNS,
    ROW_COLUMNS,
    ChainHead,
    EntryDraft,
    LedgerEntry,
    check_entry_data,
    refusal_result,
    seal,
)
from faceledger.governance.rowhash import _store_fast, _wide_fast
from faceledger.governance.verify import row_hash


def test_seal_follows_the_chain_definition() -> None:
    first = seal(EntryDraft(actor="vera", role="verifier", operation="verify"), GENESIS_HEAD, T0)
    assert (first.seq, first.prev_hash) == (1, GENESIS)
    assert first.ts == "2026-03-01T09:00:00.000000Z"
    fields = first.fields()
    assert set(fields) == set(HASHED_FIELDS) - {"credential"} and "hash" not in fields and "prev_hash" not in fields
    assert first.hash == entry_hash(GENESIS, fields)
    second = seal(EntryDraft(actor="vera", role="verifier", operation="detect"), first.head, T0)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert second.head == ChainHead(2, second.hash)


def test_seq_is_covered_by_the_hash() -> None:
    e = chain(1)[0]
    moved = LedgerEntry(**{**e.to_dict(), "seq": 2})
    assert moved.compute_hash() != e.hash


def test_rows_round_trip_and_hash_like_entries() -> None:
    for e in chain(10):
        row = e.to_row()
        assert tuple(row) == ROW_COLUMNS
        assert isinstance(row["inputs"], str) and isinstance(row["result"], str)
        assert json.loads(row["result"]) == e.result
        assert LedgerEntry.from_row(row) == e
        assert LedgerEntry.from_row(tuple(row.values())) == e
        assert LedgerEntry.from_row(e.to_dict()) == e  # JSONB-like: already parsed
        assert row_hash(tuple(row.values())) == row_hash(list(e.to_dict().values())) == e.hash


def test_refusals_are_ledgered_with_code_and_reason() -> None:
    err = ConsentRequiredError("consent c1 is expired", reason="expired")
    assert refusal_result(err) == {"error": "consent_required", "reason": "expired", "message": str(err)}
    assert refusal_result(PermissionDeniedError("no", role="x"))["reason"] is None
    draft = EntryDraft(actor="a", role="enroller", operation="enroll", outcome="refused", result=refusal_result(err))
    assert seal(draft, GENESIS_HEAD, T0).outcome == "refused"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"actor": ""}, "actor is required"),
        ({"role": " "}, "role is required"),
        ({"operation": "sell_data"}, "unknown operation"),
        ({"outcome": "maybe"}, "outcome must be one of"),
        ({"gallery": 3}, "gallery must be a string"),
    ],
)
def test_drafts_are_validated(kwargs: dict, fragment: str) -> None:
    base = {"actor": "a", "role": "admin", "operation": "report"}
    with pytest.raises(InputError, match=fragment):
        EntryDraft(**{**base, **kwargs})


_VECTOR = np.random.default_rng(0).normal(size=128).astype(np.float32)
_PHOTO_B64 = base64.b64encode(bytes(range(256)) * 4).decode()


@pytest.mark.parametrize(
    ("inputs", "result", "fragment"),
    [
        ({"probe": _PHOTO_B64}, {}, "SHA-256 hex digest"),
        ({"probe": b"\xff\xd8\xff"}, {}, "SHA-256 hex digest"),
        ({"probe": "A" * 64}, {}, "SHA-256 hex digest"),  # not lower-case hex
        ({}, {"template": _VECTOR}, "ndarray"),
        ({}, {"template": _VECTOR.tolist()}, "long list of numbers"),
        ({}, {"candidates": [{"vector": _VECTOR.tolist()}]}, "long list of numbers"),
        ({}, {"crop": [[1, 2, 3]] * 40}, "long list of numbers"),
        ({}, {"photo": _PHOTO_B64}, "encoded binary data"),
        ({}, {"template": _VECTOR.tobytes().hex()}, "encoded binary data"),
        ({}, {"photo": b"\x89PNG"}, "bytes"),
        ({}, {"note": "x " * 3000}, "limit 4096"),
        ({}, {"score": math.nan}, "finite"),
        ({}, {"score": np.float32(0.5)}, "float32"),
        ({}, {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}, "nested deeper"),
        ({}, {1: "x"}, "not allowed"),
        ({}, {"role": "admin"}, "not allowed"),  # reserved: would make stored text ambiguous
        ({"operation": digest("x")}, {}, "bad input name"),
    ],
)
def test_guard_refuses_biometric_and_opaque_data(inputs: dict, result: dict, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        check_entry_data(inputs, result)
    with pytest.raises(InputError):
        EntryDraft(actor="a", role="investigator", operation="identify", inputs=inputs, result=result)


def test_guard_accepts_real_summaries_and_makes_plain_copies() -> None:
    candidates = tuple({"subject_ref": f"s{i}", "score": np.float64(0.5 - i / 100)} for i in range(50))
    result = {
        "candidates": candidates,
        "threshold": 0.363,
        "model_id": "yunet-sface/2023mar",
        "scores": [0.1] * 10,
    }
    inputs, plain = check_entry_data({"probe": digest("p")}, result)
    assert type(plain["candidates"]) is list and type(plain["candidates"][0]["score"]) is float
    assert inputs == {"probe": digest("p")}
    signature = "ab" * 64  # a 128-hex Ed25519 signature or SHA-512 is fine
    check_entry_data({}, {"signature": signature, "path": "/var/lib/faceledger/" + "x" * 200})


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text.filter(lambda k: k != "role"), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    actor=_text.filter(str.strip),
    purpose=st.none() | _text,
    subject=st.none() | _text,
    result=st.dictionaries(_text.filter(lambda k: k != "role"), _json, max_size=5),
    seq=st.integers(0, 10**9),
    minutes=st.integers(0, 10**6),
)
def test_fast_row_hash_equals_the_chain_definition(
    actor: str, purpose: str | None, subject: str | None, result: dict, seq: int, minutes: int
) -> None:
    draft = EntryDraft(
        actor=actor,
        role="auditor",
        operation="report",
        purpose=purpose,
        subject_ref=subject,
        inputs={"in": digest(actor)},
        result=result,
    )
    e = seal(draft, ChainHead(seq, digest(str(seq))), T0 + timedelta(minutes=minutes))
    assert e.hash == entry_hash(e.prev_hash, e.fields())
    row = e.to_row()
    # the fast forms (no parsing) give the definition's hash whenever they apply
    assert _wide_fast(tuple(row.values())) == e.hash
    text = canonical_json(e.store_fields()).decode()
    fast = _store_fast(e.seq, e.prev_hash, text)
    assert fast == e.hash or (fast is None and '"seq":' in text)
    # and the public entry point agrees for every shape
    assert row_hash(tuple(row.values())) == row_hash(e) == row_hash((e.seq, e.prev_hash, e.hash, text)) == e.hash


# -- the credential field ----------------------------------------------------------------------------


def test_a_credential_is_hashed_and_a_missing_one_keeps_old_hashes() -> None:
    draft = EntryDraft(actor="vera", role="verifier", operation="verify")
    old = seal(draft, GENESIS_HEAD, T0)
    # the hash of an entry without a credential is the definition applied to the pre-credential fields
    legacy_fields = {k: v for k, v in old.fields().items()}
    assert "credential" not in legacy_fields and old.hash == entry_hash(GENESIS, legacy_fields)
    signed = seal(EntryDraft(actor="vera", role="verifier", operation="verify", credential="key:0123456789ab"),
                  GENESIS_HEAD, T0)
    assert signed.fields()["credential"] == "key:0123456789ab" and signed.hash != old.hash
    forged = LedgerEntry(**{**signed.to_dict(), "credential": "os:mallory"})
    assert forged.compute_hash() != signed.hash
    stripped = LedgerEntry(**{**signed.to_dict(), "credential": None})
    assert stripped.compute_hash() != signed.hash


def test_rows_with_a_credential_verify_in_every_layout_and_legacy_rows_still_do() -> None:
    entries = []
    head = GENESIS_HEAD
    for i in range(6):
        cred = None if i % 2 else f"os:user{i}"
        e = seal(EntryDraft(actor=f"a{i}", role="auditor", operation="report", credential=cred), head, T0)
        entries.append(e)
        head = e.head
    for e in entries:
        row = e.to_row()
        assert tuple(row) == ROW_COLUMNS
        assert row_hash(tuple(row.values())) == row_hash(row) == e.hash
        assert _wide_fast(list(row.values())) == e.hash
        stored = canonical_json(e.store_fields()).decode()
        assert ("credential" in stored) == (e.credential is not None)
        assert row_hash((e.seq, e.prev_hash, e.hash, stored)) == e.hash
        assert LedgerEntry.from_row((e.seq, e.prev_hash, e.hash, stored)) == e
        if e.credential is None:  # an export written before credentials existed: 15 columns
            legacy = {k: v for k, v in row.items() if k != "credential"}
            assert tuple(legacy) == LEGACY_ROW_COLUMNS
            assert row_hash(tuple(legacy.values())) == row_hash(legacy) == e.hash
            assert LedgerEntry.from_row(legacy) == LedgerEntry.from_row(tuple(legacy.values())) == e


def test_a_credential_must_be_printable_text() -> None:
    for bad in ("", " ", "os:a\nb", "x" * 300, 7):
        with pytest.raises(InputError):
            EntryDraft(actor="vera", role="verifier", operation="verify", credential=bad)
