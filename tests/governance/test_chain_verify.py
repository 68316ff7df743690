"""verify_chain: an intact ledger passes; each kind of tampering is found, classified and located."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from govhelp import T0, chain
from hypothesis import given, settings
from hypothesis import strategies as st

from faceledger.core.chain import GENESIS, canonical_json
from faceledger.governance.ledger import HASHED_FIELDS, ROW_COLUMNS, EntryDraft, LedgerEntry, seal
from faceledger.governance.verify import ProblemKind, verify_chain
from faceledger.store.base import LedgerRow

N = 20
CHAIN = chain(N, T0 + timedelta(days=1))


def rows(entries: list[LedgerEntry]) -> list[dict[str, Any]]:
    return [e.to_row() for e in entries]


def rehashed(entries: list[LedgerEntry], start: int) -> list[LedgerEntry]:
    """The chain with every hash from index ``start`` on recomputed (an attacker with write access)."""
    out = list(entries[:start])
    for e in entries[start:]:
        prev = out[-1].hash if out else GENESIS
        e = replace(e, prev_hash=prev)
        out.append(replace(e, hash=e.compute_hash()))
    return out


def problem_of(data: list[Any], **kwargs: Any) -> tuple[ProblemKind, int | None]:
    report = verify_chain(data, **kwargs)
    assert not report.ok
    return report.problem.kind, report.problem.seq


def test_an_intact_ledger_verifies_in_every_row_shape(entries: list[LedgerEntry]) -> None:
    as_tuples = [tuple(r.values()) for r in rows(entries)]
    for data in (entries, rows(entries), as_tuples, [e.to_dict() for e in entries]):
        report = verify_chain(data)
        assert report.ok, report.summary()
        assert report.checked == N
        assert report.head == entries[-1].head
    assert verify_chain(iter(rows(entries))).ok  # a one-pass iterator is enough


def test_an_empty_ledger_is_intact_unless_a_checkpoint_says_otherwise() -> None:
    assert verify_chain([]).ok and verify_chain([]).head is None
    kind, seq = problem_of([], checkpoints=[(3, "f" * 64)])
    assert (kind, seq) == (ProblemKind.TRUNCATED, 3)


@pytest.mark.parametrize("field", [f for f in HASHED_FIELDS if f != "seq"] + ["hash"])
def test_changing_any_field_is_found_at_that_entry(entries: list[LedgerEntry], field: str) -> None:
    data = rows(entries)
    data[7][field] = "tampered" if field != "result" else '{"score":0.99}'
    assert problem_of(data) == (ProblemKind.CHANGED, 8)


def test_a_rewritten_entry_with_a_new_hash_is_found_by_its_successor(
    entries: list[LedgerEntry],
) -> None:
    forged = replace(entries[7], actor="nobody")
    entries[7] = replace(forged, hash=forged.compute_hash())
    report = verify_chain(rows(entries))
    assert (report.problem.kind, report.problem.seq, report.problem.position) == (ProblemKind.CHANGED, 8, 7)
    assert "rewritten" in report.problem.message


def test_a_changed_first_link_is_found(entries: list[LedgerEntry]) -> None:
    first = replace(entries[0], prev_hash="1" * 64)
    entries[0] = replace(first, hash=first.compute_hash())
    assert problem_of(rows(entries)) == (ProblemKind.CHANGED, 1)


@pytest.mark.parametrize(("drop", "missing"), [([5], 6), ([0], 1), ([5, 6, 7], 6)])
def test_deleted_entries_are_found(entries: list[LedgerEntry], drop: list[int], missing: int) -> None:
    data = [r for i, r in enumerate(rows(entries)) if i not in drop]
    report = verify_chain(data)
    assert (report.problem.kind, report.problem.seq) == (ProblemKind.DELETED, missing)
    assert report.checked == drop[0]


def test_an_inserted_entry_with_a_duplicate_seq_is_found(entries: list[LedgerEntry]) -> None:
    forged = seal(EntryDraft(actor="mallory", role="admin", operation="erase"), entries[4].head, T0)
    data = rows(entries)
    data.insert(5, forged.to_row())  # a valid link from entry 5, carrying seq 6 like the real 6
    assert problem_of(data) == (ProblemKind.INSERTED, 6)


def test_an_inserted_entry_with_renumbered_successors_is_found(entries: list[LedgerEntry]) -> None:
    forged = seal(EntryDraft(actor="mallory", role="admin", operation="erase"), entries[4].head, T0)
    later = [replace(e, seq=e.seq + 1) for e in entries[5:]]  # renumbered, hashes left alone
    data = rows([*entries[:5], forged, *later])
    report = verify_chain(data)
    assert (report.problem.kind, report.problem.seq, report.problem.position) == (ProblemKind.INSERTED, 6, 5)


def test_swapped_rows_are_found_as_reordered(entries: list[LedgerEntry]) -> None:
    data = rows(entries)
    data[5], data[6] = data[6], data[5]
    assert problem_of(data) == (ProblemKind.REORDERED, 7)
    data = rows(entries)
    data[5], data[9] = data[9], data[5]  # far apart: the gap shows first
    kind, seq = problem_of(data)
    assert kind in (ProblemKind.REORDERED, ProblemKind.DELETED) and seq == 6


def test_swapped_seq_numbers_are_found_as_reordered(entries: list[LedgerEntry]) -> None:
    """What ``UPDATE ledger SET seq = ...`` on two rows gives, read back in seq order."""
    data = rows(entries)
    data[5]["seq"], data[6]["seq"] = 7, 6
    data[5], data[6] = data[6], data[5]
    assert problem_of(data) == (ProblemKind.REORDERED, 6)


def test_truncation_is_invisible_without_a_checkpoint_and_found_with_one(entries: list[LedgerEntry]) -> None:
    cut = rows(entries)[:15]
    assert verify_chain(cut).ok  # what no hash chain alone can show
    checkpoint = (entries[17].seq, entries[17].hash)
    report = verify_chain(cut, checkpoints=[checkpoint])
    assert (report.problem.kind, report.problem.seq, report.checked) == (ProblemKind.TRUNCATED, 18, 15)


def test_a_full_rewrite_is_invisible_without_a_checkpoint_and_diverges_from_one(
    entries: list[LedgerEntry],
) -> None:
    tampered = list(entries)
    tampered[3] = replace(tampered[3], purpose="something else")
    tampered = rehashed(tampered, 3)
    assert verify_chain(rows(tampered)).ok
    good = [(entries[9].seq, entries[9].hash)]
    report = verify_chain(rows(tampered), checkpoints=good)
    assert (report.problem.kind, report.problem.seq, report.checkpoints) == (ProblemKind.DIVERGED, 10, 0)
    early = [(entries[1].seq, entries[1].hash)]  # before the rewrite: still matches
    assert verify_chain(rows(tampered), checkpoints=early).checkpoints == 1


def test_checkpoints_that_match_are_counted(entries: list[LedgerEntry]) -> None:
    cps = [(e.seq, e.hash) for e in entries[4::5]]
    report = verify_chain(rows(entries), checkpoints=cps)
    assert report.ok and report.checkpoints == 4


def test_a_range_verifies_from_a_known_head(entries: list[LedgerEntry]) -> None:
    assert verify_chain(rows(entries[10:]), after=entries[9].head).ok
    assert problem_of(rows(entries[10:]))[0] is ProblemKind.DELETED  # not from the genesis


@pytest.mark.parametrize(
    "mangle",
    [
        lambda r: r.pop("actor"),
        lambda r: r.update(seq="8"),
        lambda r: r.update(hash=None),
    ],
)
def test_unreadable_rows_are_reported_as_malformed(entries: list[LedgerEntry], mangle: Any) -> None:
    data = rows(entries)
    mangle(data[7])
    report = verify_chain(data)
    assert report.problem.kind is ProblemKind.MALFORMED and report.problem.position == 7


def test_moving_bytes_between_fields_cannot_fool_the_fast_path() -> None:
    """A legitimate entry whose result happens to contain keys named like ledger fields: an
    attacker rewrites the row so its columns change (operation verify -> identify) while the
    concatenated bytes, hence a naive hash, stay the same. verify_chain must not accept it."""
    result = {
        "k": "v",
        "operation": "identify",
        "outcome": "ok",
        "policy_digest": None,
        "purpose": None,
        "reference": None,
        "result": {},
    }
    e = seal(EntryDraft(actor="a", role="auditor", operation="verify", result=result), chain(1)[0].head, T0)
    row = e.to_row()
    middle = ',"outcome":"ok","policy_digest":null,"purpose":null,"reference":null,"result":'
    forged = dict(row, inputs=row["inputs"] + ',"operation":"verify"' + middle + '{"k":"v"', result="{}}")
    forged["operation"] = "identify"
    naive = (
        f'{{"actor":"a","gallery":null,"inputs":{forged["inputs"]},"operation":"identify"{middle}'
        f'{forged["result"]},"role":"auditor","seq":2,"subject_ref":null,"ts":"{e.ts}"}}'
    )
    assert hashlib.sha256(f"{e.prev_hash}\x1f{naive}".encode()).hexdigest() == e.hash  # the attack is real
    data = [chain(1)[0].to_row(), forged]
    report = verify_chain(data)
    assert not report.ok and report.problem.position == 1


def test_tampering_in_a_real_sqlite_file_is_found(tmp_path: Path, entries: list[LedgerEntry]) -> None:
    db = sqlite3.connect(tmp_path / "ledger.db")
    cols = ", ".join(ROW_COLUMNS)
    db.execute(f"CREATE TABLE ledger ({cols.replace('seq', 'seq INTEGER PRIMARY KEY')})")
    db.executemany(
        f"INSERT INTO ledger VALUES ({', '.join('?' * len(ROW_COLUMNS))})",
        [tuple(r.values()) for r in rows(entries)],
    )
    db.commit()

    def check() -> Any:
        return verify_chain(db.execute(f"SELECT {cols} FROM ledger ORDER BY seq"))

    assert check().ok
    original = entries[11].to_row()["result"]
    db.execute("UPDATE ledger SET result = ? WHERE seq = 12", (json.dumps({"score": 0.2}),))
    assert (check().problem.kind, check().problem.seq) == (ProblemKind.CHANGED, 12)
    db.execute("UPDATE ledger SET result = ? WHERE seq = 12", (original,))
    assert check().ok
    db.execute("DELETE FROM ledger WHERE seq = 4")
    assert (check().problem.kind, check().problem.seq) == (ProblemKind.DELETED, 4)
    db.close()


@settings(max_examples=150, deadline=None)
@given(
    index=st.integers(0, N - 1),
    field=st.sampled_from([*HASHED_FIELDS, "prev_hash", "hash"]),
    value=st.one_of(st.text(max_size=20), st.integers(-5, 10**6), st.none(), st.booleans(), st.floats(allow_nan=False)),
)
def test_any_single_field_change_is_detected(index: int, field: str, value: Any) -> None:
    data = rows(CHAIN)
    if field in ("inputs", "result"):
        value = json.dumps({"x": value}, sort_keys=True, separators=(",", ":"))
    if data[index][field] == value:
        return  # not a change
    data[index][field] = value
    report = verify_chain(data)
    assert not report.ok
    assert report.problem.position == index


# -- the store's layout: (seq, prev_hash, hash, fields) ---------------------------------------------------


def store_rows(entries: list[LedgerEntry]) -> list[tuple[int, str, str, str]]:
    return [(e.seq, e.prev_hash, e.hash, canonical_json(e.store_fields()).decode()) for e in entries]


def test_store_rows_verify_as_text_parsed_objects_and_named_rows(tmp_path: Path, entries: list[LedgerEntry]) -> None:
    raw = store_rows(entries)
    assert verify_chain(raw).ok and verify_chain(raw).head == entries[-1].head
    parsed = [LedgerRow(seq, prev, h, json.loads(text)) for seq, prev, h, text in raw]
    assert verify_chain(parsed).ok
    assert [LedgerEntry.from_row(r) for r in parsed] == entries == [LedgerEntry.from_row(r) for r in raw]
    db = sqlite3.connect(tmp_path / "store.db")
    db.row_factory = sqlite3.Row
    db.execute("CREATE TABLE ledger (seq INTEGER PRIMARY KEY, prev_hash TEXT, hash TEXT, fields TEXT)")
    db.executemany("INSERT INTO ledger VALUES (?, ?, ?, ?)", raw)
    assert verify_chain(db.execute("SELECT * FROM ledger ORDER BY seq")).ok
    db.execute("UPDATE ledger SET fields = replace(fields, '\"vera\"', '\"mallory\"') WHERE seq = 7")
    report = verify_chain(db.execute("SELECT * FROM ledger ORDER BY seq"))
    assert (report.problem.kind, report.problem.seq) == (ProblemKind.CHANGED, 7)
    db.close()


@pytest.mark.parametrize(
    "rewrite",
    [
        lambda text: text.replace('","', '", "', 1),  # same content, not canonical
        lambda text: text.replace('{"actor":"vera"', '{"actor":"mallory","actor":"vera"', 1),  # duplicate key
        lambda text: text.replace('"actor":"vera"', '"actor":"mallory"'),
        lambda text: text[:-1],
    ],
)
def test_store_text_must_be_exactly_what_was_hashed(entries: list[LedgerEntry], rewrite: Any) -> None:
    raw = store_rows(entries)
    seq, prev, h, text = raw[6]
    assert '"actor":"vera"' in text
    raw[6] = (seq, prev, h, rewrite(text))
    assert problem_of(raw) == (ProblemKind.CHANGED, 7)


def test_a_store_row_with_a_nested_seq_key_verifies_by_the_definition(entries: list[LedgerEntry]) -> None:
    draft = EntryDraft(actor="a", role="auditor", operation="report", result={"lead": {"seq": 12, "subject_ref": "x"}})
    extra = seal(draft, entries[-1].head, T0)
    raw = store_rows([*entries, extra])
    assert verify_chain(raw).ok
    seq, prev, h, text = raw[-1]
    raw[-1] = (seq, prev, h, text.replace('"seq":12', '"seq":13'))
    assert problem_of(raw) == (ProblemKind.CHANGED, extra.seq)


@settings(max_examples=150, deadline=None)
@given(
    index=st.integers(0, N - 1),
    column=st.integers(0, 3),
    value=st.one_of(st.text(max_size=30), st.integers(-5, 10**6), st.none()),
)
def test_any_single_column_change_of_a_store_row_is_detected(index: int, column: int, value: Any) -> None:
    raw = [list(r) for r in store_rows(CHAIN)]
    if raw[index][column] == value:
        return
    raw[index][column] = value
    report = verify_chain([tuple(r) for r in raw])
    assert not report.ok and report.problem.position == index
