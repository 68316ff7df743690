"""Verify a ledger's hash chain, streaming, and say where and how it was tampered with.

:func:`verify_chain` reads the rows once, in the order given (the store yields them
by ``seq``), keeps O(1) state, and stops at the first problem, classified as:

* ``changed``   an entry's stored hash does not match its content, or an entry was
  rewritten with a recomputed hash (the next entry recorded a different hash for it);
* ``deleted``   sequence numbers are missing (at the start: the head of the chain was cut);
* ``inserted``  two entries carry the same ``seq``, or an entry sits between two
  entries that link to each other;
* ``reordered`` sequence numbers go backwards, or an entry is followed by the one that
  should precede it;
* ``truncated`` a checkpoint names a ``seq`` beyond the ledger's end;
* ``diverged``  the entry at a checkpoint's ``seq`` has another hash than the one
  signed: the chain was rewritten from that point back (a rewrite that recomputes every
  later hash is invisible without checkpoints);
* ``malformed`` a row cannot be read (missing column, wrong type);
* ``bad_checkpoint`` (set by :mod:`faceledger.governance.checkpoint`) a checkpoint's
  signature does not verify.

What no hash chain can show: entries appended by someone who can write the database
and recompute hashes after the last exported checkpoint. Ship checkpoints elsewhere often.

Rows may come in either storage layout (wide rows of ``ROW_COLUMNS``, or the store's
``(seq, prev_hash, hash, fields)``), as tuples, mappings or objects; see
:mod:`faceledger.governance.rowhash`, which recomputes hashes from stored JSON text
without parsing it. :func:`verify_parallel` splits the work over processes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from faceledger.governance.ledger import GENESIS_HEAD, ChainHead
from faceledger.governance.rowhash import Parts, peek, row_parts

__all__ = ["ChainProblem", "ChainReport", "ProblemKind", "RowSource", "row_hash", "verify_chain", "verify_parallel"]


class ProblemKind(StrEnum):
    CHANGED = "changed"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    DIVERGED = "diverged"
    MALFORMED = "malformed"
    BAD_CHECKPOINT = "bad_checkpoint"


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """Where the chain breaks: ``seq`` of the entry at fault (``None`` if unknown),
    ``position`` its 0-based index in the rows read (``None`` for problems found at the end)."""

    kind: ProblemKind
    seq: int | None
    position: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "seq": self.seq, "position": self.position, "message": self.message}


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of a verification.

    ``checked`` entries were verified before the first problem (all of them if
    ``ok``); ``head`` is the last verified entry (``None`` if none); ``checkpoints``
    is how many checkpoints were matched against the chain.
    """

    checked: int
    head: ChainHead | None
    checkpoints: int
    problems: tuple[ChainProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problem(self) -> ChainProblem | None:
        return self.problems[0] if self.problems else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "head": None if self.head is None else {"seq": self.head.seq, "hash": self.head.hash},
            "checkpoints": self.checkpoints,
            "problems": [p.to_dict() for p in self.problems],
        }

    def summary(self) -> str:
        """One line for humans."""
        if self.ok:
            head = f" up to seq {self.head.seq}" if self.head else ""
            return f"ledger intact: {self.checked} entries{head}, {self.checkpoints} checkpoint(s) matched"
        p = self.problems[0]
        return f"ledger NOT intact: {p.kind.value} at seq {p.seq}: {p.message}"


def row_hash(row: Any) -> str:
    """The hash a row's content gives by the chain's definition (either layout); ``ValueError`` if unreadable."""
    _, _, _, computed, why = row_parts(row)
    if computed is None:
        raise ValueError(why or "unreadable row")
    return computed


def _anchors(checkpoints: Iterable[Any]) -> dict[int, str]:
    """``{seq: head_hash}`` from checkpoints (objects with ``seq``/``head_hash``, or pairs)."""
    out: dict[int, str] = {}
    for cp in checkpoints:
        seq, head = (cp.seq, cp.head_hash) if hasattr(cp, "head_hash") else (cp[0], cp[1])
        out[int(seq)] = str(head)
    return out


def verify_chain(rows: Iterable[Any], checkpoints: Iterable[Any] = (), after: ChainHead = GENESIS_HEAD) -> ChainReport:
    """Verify ``rows`` in the order given (either storage layout, see :mod:`~faceledger.governance.rowhash`).

    ``checkpoints`` are trusted anchors ``(seq, head_hash)`` (objects with those
    attributes or pairs): check their signatures first
    (:func:`faceledger.governance.checkpoint.verify_ledger` does both). ``after`` is the
    entry just before the first row: the genesis by default; another head verifies a
    range (an export from a checkpoint on). Reads each row once and stops at the first problem.
    """
    anchors = _anchors(checkpoints)
    matched = 0
    prev_seq, prev_hash = after
    before_prev: str | None = None
    position = 0
    it = iter(rows)
    end = object()
    row = next(it, end)
    while row is not end:
        following = next(it, end)
        seq, link, stored, computed, why = row_parts(row)
        # The hot path: the next seq, linked to its predecessor, hashing to its stored hash.
        if seq != prev_seq + 1 or link != prev_hash or computed != stored or seq in anchors:
            state = _State(position, prev_seq, prev_hash, before_prev)
            problem = _classify((seq, link, stored, computed, why), state, following, end)
            if problem is None and seq in anchors:
                problem = _against_anchor(seq, stored, anchors[seq], position)
                matched += problem is None
            if problem is not None:
                return _report(position, prev_seq, prev_hash, matched, problem)
        before_prev, prev_seq, prev_hash = prev_hash, seq, stored
        position += 1
        row = following
    beyond = sorted(s for s in anchors if s > prev_seq)
    if beyond:
        problem = ChainProblem(
            ProblemKind.TRUNCATED,
            beyond[0],
            None,
            f"a checkpoint names entry {beyond[0]} but the ledger ends at {prev_seq}: entries were removed",
        )
        return _report(position, prev_seq, prev_hash, matched, problem)
    return _report(position, prev_seq, prev_hash, matched, None)


def _report(checked: int, seq: int, hash_: str, matched: int, problem: ChainProblem | None) -> ChainReport:
    head = ChainHead(seq, hash_) if checked else None
    problems = (problem,) if problem else ()
    return ChainReport(checked=checked, head=head, checkpoints=matched, problems=problems)


def _malformed(position: int, why: str) -> ChainProblem:
    return ChainProblem(ProblemKind.MALFORMED, None, position, f"row {position} unreadable: {why}")


def _against_anchor(seq: int, stored: str, signed: str, position: int) -> ChainProblem | None:
    if signed == stored:
        return None
    return ChainProblem(
        ProblemKind.DIVERGED,
        seq,
        position,
        f"entry {seq} has hash {stored[:12]}..., the checkpoint signed {signed[:12]}...: "
        "the chain was rewritten at or before this entry",
    )


@dataclass(frozen=True, slots=True)
class _State:
    """Where the walk is: this row's position and the two entries before it."""

    position: int
    prev_seq: int
    prev_hash: str
    before_prev: str | None


def _classify(parts: Parts, s: _State, following: Any, end: object) -> ChainProblem | None:
    """The first problem of one row given its predecessors, or ``None``."""
    seq, link, stored, computed, why = parts
    position, prev_seq = s.position, s.prev_seq
    if type(seq) is not int or type(stored) is not str or type(link) is not str:
        return _malformed(position, why or "seq must be an integer, prev_hash and hash strings")
    if seq <= prev_seq:
        kind = ProblemKind.INSERTED if seq == prev_seq else ProblemKind.REORDERED
        what = f"a second entry {seq}" if seq == prev_seq else f"entry {seq} comes after entry {prev_seq}"
        return ChainProblem(kind, seq, position, what)
    if seq > prev_seq + 1:
        if following is not end and peek(following)[0] == prev_seq + 1:
            return ChainProblem(ProblemKind.REORDERED, seq, position, f"entry {seq} comes before entry {prev_seq + 1}")
        missing = f"{prev_seq + 1}" if seq == prev_seq + 2 else f"{prev_seq + 1}..{seq - 1}"
        return ChainProblem(ProblemKind.DELETED, prev_seq + 1, position, f"entries {missing} are missing")
    if link != s.prev_hash and s.before_prev is not None and link == s.before_prev:
        return ChainProblem(
            ProblemKind.INSERTED,
            prev_seq,
            position - 1,
            f"entry {prev_seq} was inserted: entry {seq} links to the entry before it",
        )
    if computed is None:  # seq, links and hash are sound, the content cannot be read: it was altered
        return ChainProblem(ProblemKind.CHANGED, seq, position, f"entry {seq} does not match its hash ({why})")
    if computed != stored:
        if following is not end and link == peek(following)[1]:
            return ChainProblem(ProblemKind.REORDERED, seq, position, f"entry {seq} links to the entry stored after it")
        return ChainProblem(ProblemKind.CHANGED, seq, position, f"entry {seq} does not match its hash")
    if link != s.prev_hash:
        if position == 0:
            return ChainProblem(ProblemKind.CHANGED, seq, position, f"entry {seq} does not link to its start")
        return ChainProblem(
            ProblemKind.CHANGED,
            prev_seq,
            position - 1,
            f"entry {prev_seq} was rewritten or replaced: entry {seq} recorded another hash for it",
        )
    return None


# -- several processes ----------------------------------------------------------------------------------

#: ``source(first_seq, last_seq)`` -> the rows with ``first_seq <= seq <= last_seq`` in seq order; ``None``
#: leaves that end open. It runs in worker processes, so it must be picklable (a module-level function
#: or a ``functools.partial`` of one) and open its own database connection.
RowSource = Callable[[int | None, int | None], Iterable[Any]]


def verify_parallel(source: RowSource, last_seq: int, checkpoints: Iterable[Any] = (), workers: int = 2) -> ChainReport:
    """:func:`verify_chain` over seq ranges in ``workers`` processes, joined at the range boundaries.

    ``last_seq`` is the ledger's head as the store last saw it (rows appended since are verified too:
    the last range is open). The first range is open below as well, so no row escapes. Each range is
    verified from the ``prev_hash`` of its first row; the links between ranges are then checked here,
    so the verdict equals the serial one (a problem may be classified differently at a boundary).
    """
    anchors = _anchors(checkpoints)
    chunks = max(1, workers) * 4
    if last_seq < chunks * 1000 or workers <= 1:
        return verify_chain(source(None, None), anchors.items())
    step = -(-last_seq // chunks)
    bounds = [(lo, lo + step - 1) for lo in range(1, last_seq + 1, step)]
    tasks = []
    for i, (lo, hi) in enumerate(bounds):
        first, last = (None if i == 0 else lo), (None if i == len(bounds) - 1 else hi)
        mine = {s: h for s, h in anchors.items() if (first is None or s >= lo) and (last is None or s <= hi)}
        tasks.append((source, first, last, mine))
    from concurrent.futures import ProcessPoolExecutor  # loads multiprocessing: only when used

    with ProcessPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(_verify_range, tasks))
    return _join(parts, bounds)


def _verify_range(
    task: tuple[RowSource, int | None, int | None, dict[int, str]],
) -> tuple[ChainReport, bool, str | None]:
    """One range: its report, whether it has rows, and the ``prev_hash`` its first row links to when that
    row is the range's first ``seq`` (else the report itself says what is wrong)."""
    source, first, last, anchors = task
    it = iter(source(first, last))
    head = next(it, None)
    rows = it if head is None else itertools.chain([head], it)
    if first is None:
        return verify_chain(rows, anchors.items()), head is not None, None
    link: Any = None
    if head is not None:
        seq, prev = row_parts(head)[:2]
        link = prev if seq == first and isinstance(prev, str) else None
    after = ChainHead(first - 1, link if link is not None else "")
    return verify_chain(rows, anchors.items(), after), head is not None, link


def _join(parts: list[tuple[ChainReport, bool, str | None]], bounds: list[tuple[int, int]]) -> ChainReport:
    """Check the links between consecutive ranges and merge their reports in order."""
    head, checked, matched = GENESIS_HEAD, 0, 0
    for (report, has_rows, link), (lo, _) in zip(parts, bounds, strict=True):
        problem = _boundary(head, link, lo, checked) if has_rows and lo > 1 else None
        if problem is not None:
            return ChainReport(checked, head if checked else None, matched, (problem,))
        if report.problems:
            p = report.problems[0]
            p = replace(p, position=None if p.position is None else p.position + checked)
            total = checked + report.checked
            return ChainReport(total, report.head or (head if checked else None), matched + report.checkpoints, (p,))
        checked += report.checked
        matched += report.checkpoints
        head = report.head or head
    return ChainReport(checked=checked, head=head if checked else None, checkpoints=matched)


def _boundary(head: ChainHead, link: str | None, lo: int, position: int) -> ChainProblem | None:
    """The problem, if any, between the last entry of the ranges so far and the first row of the next."""
    if head.seq != lo - 1:
        missing = f"{head.seq + 1}..{lo - 1}" if head.seq + 1 < lo - 1 else f"{lo - 1}"
        return ChainProblem(ProblemKind.DELETED, head.seq + 1, position, f"entries {missing} are missing")
    if link is not None and link != head.hash:
        return ChainProblem(
            ProblemKind.CHANGED,
            head.seq,
            position - 1,
            f"entry {head.seq} was rewritten or replaced: entry {lo} recorded another hash for it",
        )
    return None
