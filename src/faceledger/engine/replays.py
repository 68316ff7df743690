"""Answers kept for replay (the HTTP service's ``Idempotency-Key``), and their purge on erasure.

The service keeps the first answer to a request that carried an ``Idempotency-Key`` so a
retry gets the same answer; those answers can name subjects and carry candidate scores.
They live in the store through these methods only, and erasing a subject deletes every
kept answer that mentions its reference (anywhere in the answer: a field or a message) in
the erasure's own transaction, so nothing about an erased subject survives in them. A
kept answer is not ledgered: it is a copy of what was already answered and ledgered.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from faceledger.errors import FaceLedgerError, NotFoundError
from faceledger.governance._time import utc

from ._base import EngineBase

__all__ = ["REPLAY", "ReplayOps", "purge_answers"]

REPLAY = "idempotency"


class ReplayOps(EngineBase):
    def stored_answer(self, answer_id: str) -> dict[str, Any] | None:
        """The answer kept under ``answer_id``, or None."""
        try:
            return self.store.get_record(REPLAY, answer_id).data
        except NotFoundError:
            return None

    def keep_answer(self, answer_id: str, answer: dict[str, Any]) -> None:
        """Keep ``answer`` (plain JSON data with an ISO-8601 ``at``) under ``answer_id`` for replays."""
        with self.store.transaction() as tx:
            tx.put_record(REPLAY, answer_id, answer)

    def forget_answers(self, kept_before: datetime) -> int:
        """Delete the answers kept before ``kept_before`` (their replay window is over); returns how many."""
        limit = utc(kept_before, "kept_before")
        stale = [r.record_id for r in self.store.list_records(REPLAY) if _kept_at(r.data) < limit]
        if not stale:
            return 0
        with self.store.transaction() as tx:
            return sum(tx.delete_records(kind=REPLAY, record_id=rid) for rid in stale)


def purge_answers(tx: Any, subject_refs: Iterable[str]) -> int:
    """Inside an erasure's transaction: delete every kept answer naming one of ``subject_refs``."""
    refs = [r for r in subject_refs if r]
    if not refs:
        return 0
    doomed = [r.record_id for r in tx.list_records(REPLAY) if any(ref in text for text in _texts(r.data)
                                                                  for ref in refs)]
    return sum(tx.delete_records(kind=REPLAY, record_id=rid) for rid in doomed)


def _kept_at(answer: dict[str, Any]) -> datetime:
    try:
        return utc(datetime.fromisoformat(str(answer.get("at"))), "at")
    except (ValueError, FaceLedgerError):
        return datetime.min.replace(tzinfo=UTC)  # unreadable: as old as can be


def _texts(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _texts(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _texts(v)
