"""Verifying a one-million-entry ledger: FaceLedger's verifiers against their peers, in one run.

Builds a hash-chained ledger of ``--entries`` varied entries (identifications with
candidates, verifications, refusals, reviews, erasures, enrollments) with the chain's
definition (``faceledger.core.chain.entry_hash``) into a temporary SQLite file (stdlib
``sqlite3``) in the layout of ``faceledger.store``: ``ledger(seq, prev_hash, hash,
fields)`` with ``fields`` the canonical JSON of every hashed field but ``seq``. Then it
times, on that file:

* floor, read: scanning every row (``SELECT ... ORDER BY seq``), nothing else;
* floor, read + SHA-256: the scan plus one SHA-256 over each row's link and fields;
* ``verify_chain`` on the raw rows ``(seq, prev_hash, hash, fields text)``; ``verify_ledger``,
  the same plus a signed checkpoint every 10,000 entries; ``verify_parallel``, 8 seq
  ranges in 2 processes (its CPU time includes the workers');
* ``verify_chain`` on parsed rows, as ``Store.iter_ledger`` yields them today
  (``json.loads`` of ``fields`` into a ``LedgerRow``), on the first ``--naive`` entries;
* naive peer: the straightforward verifier, ``json.loads`` then ``entry_hash`` of the
  fields plus ``seq``, on the first ``--naive`` entries.

Rates measured on fewer entries are scaled to the full size and marked so. Goal:
one million entries in under 10 s on this machine. Wall time depends on what else
runs; CPU time (this process and its workers) is what the work needs. Run from the
repository root::

    .venv/bin/python bench/ledger_verify.py                 # 1,000,000 entries, ~3-6 min with the build
    .venv/bin/python bench/ledger_verify.py --entries 100000 --runs 3
    .venv/bin/python bench/ledger_verify.py --db /tmp/ledger-1m.db   # keep the built file for reruns
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from _common import cpu_model, load_average, md_table, reproduce_command
from faceledger.core.chain import GENESIS, canonical_json, entry_hash
from faceledger.governance.checkpoint import generate_key, make_checkpoint, verify_ledger
from faceledger.governance.ledger import ChainHead
from faceledger.governance.verify import verify_chain, verify_parallel
from faceledger.store.base import LedgerRow

GOAL_S = 10.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _digest(i: int, salt: str) -> str:
    return hashlib.sha256(f"{salt}{i}".encode()).hexdigest()


def entry_fields(i: int) -> dict[str, Any]:
    """The hashed fields of entry ``i`` (0-based): six kinds of operations in turn."""
    base: dict[str, Any] = dict.fromkeys(("purpose", "reference", "gallery", "subject_ref"))
    base.update(seq=i + 1, ts=(T0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    base.update(outcome="ok", policy_digest="9f" * 32, inputs={}, result={})
    kind = i % 6
    if kind == 0:
        base.update(
            actor="ines",
            role="investigator",
            operation="identify",
            purpose="missing_person",
            reference="MP-2026-7",
            gallery="staff",
            inputs={"probe": _digest(i, "p")},
            result={
                "candidates": [
                    {"subject_ref": f"emp-{i % 997}", "score": 0.5 + (i % 40) / 100},
                    {"subject_ref": f"emp-{i % 991}", "score": 0.46},
                ],
                "threshold": 0.45,
                "model_id": "yunet-sface/2023mar",
                "lead_id": f"L{i}",
            },
        )
    elif kind == 1:
        base.update(
            actor="vera",
            role="verifier",
            operation="verify",
            purpose="access_control",
            inputs={"a": _digest(i, "a"), "b": _digest(i, "b")},
            result={"score": 0.71, "threshold": 0.45, "match": True, "model_id": "yunet-sface/2023mar"},
        )
    elif kind == 2:
        base.update(
            actor="vera",
            role="verifier",
            operation="identify",
            outcome="refused",
            result={
                "error": "permission_denied",
                "reason": None,
                "message": "role 'verifier' may not run 'identify' under this policy",
            },
        )
    elif kind == 3:
        base.update(
            actor="rita",
            role="reviewer",
            operation="review",
            subject_ref=f"emp-{i % 997}",
            result={
                "lead_id": f"L{i - 3}",
                "decision": "confirmed",
                "status": "confirmed",
                "reviews": 1,
                "review_seconds": 5400.0,
            },
        )
    elif kind == 4:
        base.update(
            actor="adam",
            role="admin",
            operation="erase",
            gallery="staff",
            subject_ref=f"emp-{i % 991}",
            result={"reason": "consent_withdrawn", "templates": 2},
        )
    else:
        base.update(
            actor="erin",
            role="enroller",
            operation="enroll",
            purpose="access_control",
            gallery="staff",
            subject_ref=f"emp-{i}",
            inputs={"photo": _digest(i, "e")},
            result={"template_id": f"t{i}", "model_id": "yunet-sface/2023mar", "consent_id": f"c{i}"},
        )
    return base


def build(path: Path, n: int) -> list[ChainHead]:
    """Write ``n`` chained entries to a new SQLite file; return the head after every entry 10,000."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE ledger (seq INTEGER PRIMARY KEY, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, "
               "fields TEXT NOT NULL)")  # fmt: skip
    prev, heads, batch = GENESIS, [], []
    for i in range(n):
        fields = entry_fields(i)
        h = entry_hash(prev, fields)
        del fields["seq"]
        batch.append((i + 1, prev, h, canonical_json(fields).decode()))
        prev = h
        if (i + 1) % 10_000 == 0:
            heads.append(ChainHead(i + 1, h))
        if len(batch) == 50_000:
            db.executemany("INSERT INTO ledger VALUES (?, ?, ?, ?)", batch)
            batch.clear()
    db.executemany("INSERT INTO ledger VALUES (?, ?, ?, ?)", batch)
    db.commit()
    db.close()
    return heads


def rows(path: Path, first: int | None = None, last: int | None = None, limit: int | None = None) -> Iterator[tuple]:
    """Raw rows ``(seq, prev_hash, hash, fields)`` with ``first <= seq <= last`` (``None``: open end).

    With ``path`` bound (``functools.partial``) it is a RowSource for ``verify_parallel``.
    """
    where = [f"seq >= {int(first)}"] if first is not None else []
    where += [f"seq <= {int(last)}"] if last is not None else []
    sql = "SELECT seq, prev_hash, hash, fields FROM ledger"
    sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq"
    sql += f" LIMIT {int(limit)}" if limit else ""
    db = sqlite3.connect(path)
    try:
        yield from db.execute(sql)
    finally:
        db.close()


def parsed_rows(path: Path, limit: int) -> Iterator[LedgerRow]:
    """What ``Store.iter_ledger`` yields: ``fields`` parsed with ``json.loads``."""
    for seq, prev, h, fields in rows(path, limit=limit):
        yield LedgerRow(seq, prev, h, json.loads(fields))


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the verify_parallel workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall s, CPU s, result) of one call."""
    c0, t0 = _cpu(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, _cpu() - c0, out


def naive_verify(path: Path, limit: int) -> int:
    """The straightforward verifier: parse each row's fields, hash them with ``seq`` by the definition."""
    prev, count = GENESIS, 0
    for seq, link, h, text in rows(path, limit=limit):
        if link != prev or entry_hash(link, {**json.loads(text), "seq": seq}) != h:
            raise SystemExit(f"naive verifier: entry {seq} does not verify")
        prev, count = h, count + 1
    return count


def floor_read(path: Path) -> int:
    """Every row read, nothing else."""
    return sum(1 for _ in rows(path))


def floor_hash(path: Path) -> int:
    """Every row read and one SHA-256 over its link and fields: the least a verifier must do."""
    n = 0
    for _, link, _, text in rows(path):
        hashlib.sha256(f"{link}\x1f{text}".encode()).hexdigest()
        n += 1
    return n


def prepare(path: Path, n: int) -> tuple[list[ChainHead], str]:
    """Build the ledger at ``path``, or reuse it if it already holds ``n`` entries."""
    if path.exists():
        db = sqlite3.connect(path)
        count = db.execute("SELECT count(*) FROM ledger").fetchone()[0]
        heads = [ChainHead(*r) for r in db.execute("SELECT seq, hash FROM ledger WHERE seq % 10000 = 0 ORDER BY seq")]
        db.close()
        if count != n:
            sys.exit(f"{path} holds {count:,} entries, not {n:,}: remove it or pass --entries {count}")
        return heads, f"reused {path}"
    wall, _, heads = timed(lambda: build(path, n))
    return heads, f"built in {wall:.1f} s wall"


def measure(path: Path, n: int, n_naive: int, heads: list[ChainHead], runs: int) -> list[tuple[str, int, float, float]]:
    """(name, entries, median wall s, median CPU s) of each verifier on the file."""
    key = generate_key()
    checkpoints = [make_checkpoint(h, key, T0) for h in heads]
    contenders = [
        ("floor: read rows from SQLite", n, lambda: floor_read(path)),
        ("floor: read + one SHA-256 per row", n, lambda: floor_hash(path)),
        ("FaceLedger `verify_chain`, raw rows", n, lambda: verify_chain(rows(path))),
        (
            f"FaceLedger `verify_ledger` + {len(checkpoints)} signed checkpoints",
            n,
            lambda: verify_ledger(rows(path), checkpoints, [key.public_key()]),
        ),
        (
            "FaceLedger `verify_parallel`, raw rows, 2 processes",
            n,
            lambda: verify_parallel(partial(rows, path), n, workers=2),
        ),
        (
            "FaceLedger `verify_chain`, rows parsed like `Store.iter_ledger`",
            n_naive,
            lambda: verify_chain(parsed_rows(path, n_naive)),
        ),
        ("naive peer: `json.loads` + `entry_hash`", n_naive, lambda: naive_verify(path, n_naive)),
    ]
    results = []
    for name, count, fn in contenders:
        walls, cpus = [], []
        for _ in range(runs):
            wall, cpu, out = timed(fn)
            if hasattr(out, "ok") and not out.ok:
                sys.exit(f"{name}: the ledger did not verify: {out.summary()}")
            walls.append(wall)
            cpus.append(cpu)
        results.append((name, count, statistics.median(walls), statistics.median(cpus)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="ledger size (default 1,000,000)")
    parser.add_argument("--naive", type=int, default=200_000, help="entries the naive peer verifies")
    parser.add_argument("--runs", type=int, default=1, help="timed runs per verifier (the median is shown)")
    parser.add_argument("--db", type=Path, help="keep the ledger in this SQLite file and reuse it on later runs")
    args = parser.parse_args()
    n, n_naive = args.entries, min(args.naive, args.entries)
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="fl-ledger-bench-") as tmp:
        path = args.db or Path(tmp) / "ledger.db"
        heads, provenance = prepare(path, n)
        size_mb = path.stat().st_size / 1e6
        results = measure(path, n, n_naive, heads, max(1, args.runs))
    print(f"# Ledger verification, {n:,} entries\n")
    print(
        md_table(
            ("what", "value"),
            [
                ("CPU", cpu_model()),
                ("load average before / after", f"{load_before} / {load_average()}"),
                ("ledger", f"{n:,} entries, SQLite file {size_mb:.0f} MB, {provenance}"),
            ],
        )
    )
    print()
    table = []
    for name, count, wall, cpu in results:
        scale = n / count
        note = "" if count == n else f" (measured on {count:,}, scaled x{scale:.0f})"
        per = wall / count * 1e6
        table.append((name + note, f"{wall * scale:.2f}", f"{cpu * scale:.2f}", f"{per:.2f}"))
    print(md_table((f"verifier ({n:,} entries)", "wall s", "CPU s", "µs/entry (wall)"), table))
    ours = next(r for r in results if r[0].startswith("FaceLedger `verify_chain`, raw"))
    per_million_wall, per_million_cpu = ours[2] / n * 1e6, ours[3] / n * 1e6
    verdict = "meets" if per_million_wall < GOAL_S else "misses"
    print(
        f"\n`verify_chain` {verdict} the goal of {GOAL_S:.0f} s per million entries "
        f"({per_million_wall:.2f} s wall, {per_million_cpu:.2f} s CPU per million)."
    )
    print(f"\nReproduce: `{reproduce_command()}`")


if __name__ == "__main__":
    main()
