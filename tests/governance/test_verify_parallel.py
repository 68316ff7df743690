"""verify_parallel: the same verdict as verify_chain, with the ranges joined correctly at their boundaries."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
from govhelp import chain, sqlite_ledger, sqlite_rows

from faceledger.core.chain import canonical_json
from faceledger.governance.ledger import LedgerEntry
from faceledger.governance.verify import ProblemKind, verify_chain, verify_parallel

N = 10_000  # 2 workers -> 8 ranges of 1,250 entries: range starts at 1, 1251, 2501, ...
START = 2501  # the first seq of the third range


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[LedgerEntry]]:
    entries = chain(N)
    return sqlite_ledger(tmp_path_factory.mktemp("ledger") / "ledger.db", entries), entries


@pytest.fixture
def ledger(built: tuple[Path, list[LedgerEntry]], tmp_path: Path) -> tuple[Path, list[LedgerEntry]]:
    """A private copy to tamper with."""
    return Path(shutil.copy(built[0], tmp_path / "ledger.db")), built[1]


def both(path: Path, checkpoints: list = ()) -> tuple:  # type: ignore[assignment]
    serial = verify_chain(sqlite_rows(path, None, None), checkpoints)
    parallel = verify_parallel(partial(sqlite_rows, path), N, checkpoints, workers=2)
    return serial, parallel


def sql(path: Path, statement: str, *params: object) -> None:
    db = sqlite3.connect(path)
    db.execute(statement, params)
    db.commit()
    db.close()


def test_an_intact_ledger_verifies_like_the_serial_verifier(ledger: tuple[Path, list[LedgerEntry]]) -> None:
    path, entries = ledger
    cps = [(e.seq, e.hash) for e in entries[999::1000]]
    serial, parallel = both(path, cps)
    assert serial.ok and parallel.ok
    assert parallel.checked == N and parallel.head == entries[-1].head and parallel.checkpoints == 10
    assert parallel == serial


@pytest.mark.parametrize("seq", [START, START - 1, 5000])
def test_a_changed_entry_is_found_at_the_same_place(ledger: tuple[Path, list[LedgerEntry]], seq: int) -> None:
    path, _ = ledger
    sql(path, "UPDATE ledger SET actor = 'mallory' WHERE seq = ?", seq)
    serial, parallel = both(path)
    assert (parallel.problem.kind, parallel.problem.seq) == (serial.problem.kind, serial.problem.seq)
    assert parallel.problem.position == serial.problem.position == seq - 1
    assert parallel.checked == serial.checked == seq - 1


@pytest.mark.parametrize("seq", [START, START - 1])
def test_deletions_at_a_range_boundary_are_found(ledger: tuple[Path, list[LedgerEntry]], seq: int) -> None:
    path, _ = ledger
    sql(path, "DELETE FROM ledger WHERE seq = ?", seq)
    serial, parallel = both(path)
    assert (
        (parallel.problem.kind, parallel.problem.seq)
        == (ProblemKind.DELETED, seq)
        == (
            serial.problem.kind,
            serial.problem.seq,
        )
    )


def test_a_whole_missing_range_is_found(ledger: tuple[Path, list[LedgerEntry]]) -> None:
    path, _ = ledger
    sql(path, "DELETE FROM ledger WHERE seq BETWEEN ? AND ?", START, START + 1249)
    _, parallel = both(path)
    assert (parallel.problem.kind, parallel.problem.seq) == (ProblemKind.DELETED, START)


def test_a_rewritten_last_entry_of_a_range_is_found_at_the_join(ledger: tuple[Path, list[LedgerEntry]]) -> None:
    path, entries = ledger
    forged = replace(entries[START - 2], actor="mallory")
    sql(path, "UPDATE ledger SET actor = ?, hash = ? WHERE seq = ?", "mallory", forged.compute_hash(), START - 1)
    serial, parallel = both(path)
    assert (parallel.problem.kind, parallel.problem.seq) == (ProblemKind.CHANGED, START - 1)
    assert parallel.problem == serial.problem


def test_rows_outside_the_expected_seqs_are_not_ignored(ledger: tuple[Path, list[LedgerEntry]]) -> None:
    path, entries = ledger
    stray = tuple(replace(entries[0], seq=-4).to_row().values())
    db = sqlite3.connect(path)
    db.execute(f"INSERT INTO ledger VALUES ({', '.join('?' * len(stray))})", stray)
    db.commit()
    db.close()
    serial, parallel = both(path)
    assert not serial.ok and not parallel.ok


def test_truncation_and_divergence_against_checkpoints(ledger: tuple[Path, list[LedgerEntry]]) -> None:
    path, entries = ledger
    sql(path, "DELETE FROM ledger WHERE seq > 9000")
    _, parallel = both(path, [(9500, entries[9499].hash)])
    assert (parallel.problem.kind, parallel.problem.seq) == (ProblemKind.TRUNCATED, 9500)
    _, parallel = both(path, [(4000, "0" * 64)])
    assert (parallel.problem.kind, parallel.problem.seq) == (ProblemKind.DIVERGED, 4000)


def test_small_ledgers_are_verified_in_one_process(tmp_path: Path) -> None:
    entries = chain(30)
    path = sqlite_ledger(tmp_path / "small.db", entries)
    report = verify_parallel(partial(sqlite_rows, path), 30, workers=2)
    assert report.ok and report.checked == 30


def store_rows(path: Path, first: int | None, last: int | None) -> Iterator[tuple]:
    """A RowSource over a table in the store's layout (module level: it must pickle)."""
    where = " AND ".join([f"seq >= {first}"] * (first is not None) + [f"seq <= {last}"] * (last is not None))
    db = sqlite3.connect(path)
    try:
        yield from db.execute(
            f"SELECT seq, prev_hash, hash, fields FROM ledger {'WHERE ' + where if where else ''} ORDER BY seq"
        )
    finally:
        db.close()


def test_the_store_layout_verifies_in_parallel(built: tuple[Path, list[LedgerEntry]], tmp_path: Path) -> None:
    _, entries = built
    path = tmp_path / "store.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE ledger (seq INTEGER PRIMARY KEY, prev_hash TEXT, hash TEXT, fields TEXT)")
    db.executemany(
        "INSERT INTO ledger VALUES (?, ?, ?, ?)",
        [(e.seq, e.prev_hash, e.hash, canonical_json(e.store_fields()).decode()) for e in entries],
    )
    db.commit()
    assert verify_parallel(partial(store_rows, path), N, workers=2).ok
    db.execute("UPDATE ledger SET fields = replace(fields, '\"vera\"', '\"mallory\"') WHERE seq = 6252")
    db.commit()
    db.close()
    report = verify_parallel(partial(store_rows, path), N, workers=2)
    assert (report.problem.kind, report.problem.seq, report.checked) == (ProblemKind.CHANGED, 6252, 6251)
