"""Builders shared by the governance tests (a fixed clock, policies, ledgers); imported as ``govhelp``."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from faceledger.governance.ledger import GENESIS_HEAD, ROW_COLUMNS, EntryDraft, LedgerEntry, seal
from faceledger.governance.policy import Policy, policy_from_dict

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def policy(**tables: dict) -> Policy:
    """A policy built from TOML-shaped tables, e.g. ``policy(identification={"enabled": True})``."""
    return policy_from_dict(tables, "<test>")


def drafts(n: int) -> list[EntryDraft]:
    """``n`` varied drafts: identifications, verifications, refusals, reviews, erasures."""
    out = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            d = EntryDraft(
                actor="ines",
                role="investigator",
                operation="identify",
                purpose="missing_person",
                reference="MP-2026-7",
                gallery="staff",
                inputs={"probe": digest(f"probe{i}")},
                result={
                    "candidates": [{"subject_ref": f"s{i}", "score": 0.51}],
                    "threshold": 0.4,
                    "model_id": "yunet-sface",
                },
                policy_digest="a" * 64,
            )
        elif kind == 1:
            d = EntryDraft(
                actor="vera",
                role="verifier",
                operation="verify",
                purpose="access_control",
                inputs={"a": digest(f"a{i}"), "b": digest(f"b{i}")},
                result={"score": 0.7, "match": True},
                policy_digest="a" * 64,
            )
        elif kind == 2:
            d = EntryDraft(
                actor="vera",
                role="verifier",
                operation="identify",
                outcome="refused",
                result={"error": "permission_denied", "reason": None, "message": "no"},
                policy_digest="a" * 64,
            )
        elif kind == 3:
            d = EntryDraft(
                actor="rita",
                role="reviewer",
                operation="review",
                subject_ref=f"s{i - 3}",
                result={
                    "lead_id": f"L{i}",
                    "decision": "confirmed",
                    "status": "confirmed",
                    "reviews": 1,
                    "review_seconds": 3600.0 * (i % 7 + 1),
                },
            )
        else:
            d = EntryDraft(
                actor="adam",
                role="admin",
                operation="erase",
                gallery="staff",
                subject_ref=f"s{i}",
                result={"reason": "consent_withdrawn", "templates": 2},
            )
        out.append(d)
    return out


def chain(n: int, start: datetime = T0) -> list[LedgerEntry]:
    """A valid ledger of ``n`` entries, one minute apart."""
    head, entries = GENESIS_HEAD, []
    for i, d in enumerate(drafts(n)):
        e = seal(d, head, start + timedelta(minutes=i))
        entries.append(e)
        head = e.head
    return entries


def sqlite_ledger(path: Path, entries: list[LedgerEntry]) -> Path:
    """Write ``entries`` to a SQLite ``ledger`` table with the storage row layout."""
    db = sqlite3.connect(path)
    columns = ", ".join(f"{c} INTEGER PRIMARY KEY" if c == "seq" else c for c in ROW_COLUMNS)
    db.execute(f"CREATE TABLE ledger ({columns})")
    marks = ", ".join("?" * len(ROW_COLUMNS))
    db.executemany(f"INSERT INTO ledger VALUES ({marks})", [tuple(e.to_row().values()) for e in entries])
    db.commit()
    db.close()
    return path


def sqlite_rows(path: Path, first: int | None, last: int | None) -> Iterator[tuple]:
    """A :data:`~faceledger.governance.verify.RowSource` over such a file (bind ``path`` with partial)."""
    db = sqlite3.connect(path)
    where = [f"seq >= {int(first)}"] if first is not None else []
    where += [f"seq <= {int(last)}"] if last is not None else []
    sql = f"SELECT {', '.join(ROW_COLUMNS)} FROM ledger {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY seq"
    try:
        yield from db.execute(sql)
    finally:
        db.close()
