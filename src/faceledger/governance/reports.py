"""Usage reports computed from the ledger alone (the annual report SB 6280 asks for).

:func:`usage_report` reads ledger entries with ``start <= ts < end`` and counts them
by operation, purpose, actor, authorization reference and outcome; it lists refusals
by error code, erasures by reason, identification searches, review decisions and the
time from search to a closed review. Output as a dict, JSON or Markdown. The report
names actors (accountability) but no subject references.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from faceledger.errors import InputError
from faceledger.governance._time import to_iso, utc
from faceledger.governance.ledger import LedgerEntry
from faceledger.governance.review import duration_stats

__all__ = ["UsageReport", "usage_report"]

_NONE = "(none)"


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Counts over ``[start, end)``; every mapping is ``{name: count}`` sorted by name."""

    start: datetime
    end: datetime
    organisation: str | None
    entries: int
    by_operation: Mapping[str, int]
    by_purpose: Mapping[str, int]
    by_actor: Mapping[str, int]
    by_authorization: Mapping[str, int]
    by_outcome: Mapping[str, int]
    refusals: Mapping[str, int]
    erasures: Mapping[str, int]
    identifications: Mapping[str, int]
    review_decisions: Mapping[str, int]
    leads_closed: Mapping[str, int]
    time_to_decision: Mapping[str, Any]
    policy_digests: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": to_iso(self.start), "end": to_iso(self.end)}
        for name in self.__slots__:  # type: ignore[attr-defined]
            if name not in ("start", "end"):
                value = getattr(self, name)
                out[name] = (
                    list(value) if isinstance(value, tuple) else (dict(value) if isinstance(value, Mapping) else value)
                )
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_markdown(self) -> str:
        """A human-readable report: one table per count."""
        title = f"# Usage report{f': {self.organisation}' if self.organisation else ''}"
        lines = [title, "", f"Period: {to_iso(self.start)} to {to_iso(self.end)} (end excluded).", ""]
        lines.append(f"Ledger entries in the period: **{self.entries}**.")
        lines.append("")
        sections = [
            ("Operations", self.by_operation),
            ("Outcomes", self.by_outcome),
            ("Declared purposes", self.by_purpose),
            ("Actors", self.by_actor),
            ("Authorizations and case references", self.by_authorization),
            ("Refusals by reason", self.refusals),
            ("Erasures by reason", self.erasures),
            ("Identification searches", self.identifications),
            ("Review decisions", self.review_decisions),
            ("Leads closed by review", self.leads_closed),
            ("Time from search to closed review (hours)", self.time_to_decision),
        ]
        for heading, counts in sections:
            lines += [f"## {heading}", ""]
            if not counts:
                lines += ["None.", ""]
                continue
            lines += ["| | |", "|---|---:|"]
            lines += [f"| {_cell(k)} | {'-' if v is None else v} |" for k, v in counts.items()]
            lines.append("")
        digests = ", ".join(f"`{d[:16]}`" for d in self.policy_digests) or "none"
        lines += [f"Policies in force (SHA-256 prefixes): {digests}.", ""]
        return "\n".join(lines)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def usage_report(
    entries: Iterable[LedgerEntry | Any], start: datetime, end: datetime, organisation: str | None = None
) -> UsageReport:
    """Count the entries with ``start <= ts < end`` (entries or storage rows, any order)."""
    start, end = utc(start, "start"), utc(end, "end")
    if end <= start:
        raise InputError("the report's end must be after its start")
    lo, hi = to_iso(start), to_iso(end)
    names = ("op", "purpose", "actor", "auth", "outcome", "refused", "erased", "ident", "decision", "closed")
    c: dict[str, Counter[str]] = {k: Counter() for k in names}
    seconds: list[float] = []
    digests: set[str] = set()
    total = 0
    for item in entries:
        e = item if isinstance(item, LedgerEntry) else LedgerEntry.from_row(item)
        if not lo <= e.ts < hi:
            continue
        total += 1
        _count(e, c, seconds)
        if e.policy_digest:
            digests.add(e.policy_digest)
    return UsageReport(
        start=start,
        end=end,
        organisation=organisation,
        entries=total,
        by_operation=_sorted(c["op"]),
        by_purpose=_sorted(c["purpose"]),
        by_actor=_sorted(c["actor"]),
        by_authorization=_sorted(c["auth"]),
        by_outcome=_sorted(c["outcome"]),
        refusals=_sorted(c["refused"]),
        erasures=_sorted(c["erased"]),
        identifications=_sorted(c["ident"]),
        review_decisions=_sorted(c["decision"]),
        leads_closed=_sorted(c["closed"]),
        time_to_decision=duration_stats(seconds),
        policy_digests=tuple(sorted(digests)),
    )


def _count(e: LedgerEntry, c: dict[str, Counter[str]], seconds: list[float]) -> None:
    result = e.result if isinstance(e.result, Mapping) else {}
    c["op"][e.operation] += 1
    c["purpose"][e.purpose or _NONE] += 1
    c["actor"][e.actor] += 1
    c["outcome"][e.outcome] += 1
    if e.reference:
        c["auth"][e.reference] += 1
    if e.outcome == "refused":
        c["refused"][str(result.get("error") or "unspecified")] += 1
    if e.operation == "erase" and e.outcome == "ok":
        c["erased"][str(result.get("reason") or "unspecified")] += 1
    if e.operation == "identify":
        if e.outcome == "ok":
            found = any(bool(face) for face in result.get("candidates") or ())  # one list per face
            c["ident"]["searches"] += 1
            c["ident"]["with candidates" if found else "without candidates"] += 1
        else:
            c["ident"][e.outcome] += 1
    if e.operation == "review" and e.outcome == "ok":
        c["decision"][str(result.get("decision"))] += 1
        status = result.get("status")
        if status and status != "pending":
            c["closed"][str(status)] += 1
            if result.get("disagreement"):
                c["closed"]["of which: reviewers disagreed"] += 1
            if isinstance(result.get("review_seconds"), int | float):
                seconds.append(float(result["review_seconds"]))


def _sorted(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items()))
