"""The accountable workload of the disk-full and lost-connection tests (imported as ``diskfull_work``;
also run by ``disk_full_child.py`` inside a private tmpfs).

:class:`Workload` drives a real :class:`~faceledger.engine.Engine` (real models, real photos) through
the four kinds of write the issue names: consent, enrollment, identification and a ledger-only
write (``verify_ledger``, whose check is itself an entry). :meth:`Workload.attempt` runs one and
says ``ok`` or the error code; :meth:`Workload.audit` reads the store back: the hash chain, the
ok entries per operation, the subjects and templates, the consents and leads, so a test can check
that every acknowledged operation has exactly its entry and nothing else was half-written.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

GALLERY = "door"
POLICY = """
[organisation]
name = "Test Org"
complaint_channel = "privacy@example.org"

[purposes]
allowed = ["access_control", "investigation"]

[identification]
enabled = true

[limits]
max_searches_per_actor_per_hour = 100000
"""
PEOPLE = ("Aaron_Peirsol", "Padraig_Harrington", "Hal_Sutton")
KINDS = ("consent", "enroll", "identify", "ledger")


def photo(lfw: Path, name: str, n: int) -> Path:
    return lfw / name / f"{name}_{n:04d}.jpg"


@dataclass
class Workload:
    engine: Any
    lfw: Path
    ok: Counter = field(default_factory=Counter)       # acknowledged operations by kind
    _next: int = 0

    @classmethod
    def open(cls, url: str, lfw: Path, recognizer: Any = None) -> Workload:
        from faceledger.engine import Engine
        from faceledger.governance.policy import parse_policy
        from faceledger.store import open_store

        return cls(Engine(open_store(url), recognizer=recognizer, policy=parse_policy(POLICY)), lfw)

    # -- actors ------------------------------------------------------------------------------------
    @staticmethod
    def actor(role: str) -> Any:
        from faceledger.engine import Actor

        return Actor({"admin": "ada", "enroller": "carl", "investigator": "ines"}[role], role)

    def setup(self, consents: int) -> None:
        """A gallery, an authorization, one enrolled person, and ``consents`` people who consented."""
        from faceledger.governance.authorization import Authorization

        e, now = self.engine, self.engine.now()
        e.create_gallery(self.actor("admin"), GALLERY)
        e.record_authorization(self.actor("admin"), Authorization(
            id=uuid.uuid4().hex, kind="court_order", reference="CASE-1", issuer="District Court",
            galleries=frozenset({GALLERY}), purposes=frozenset({"investigation"}),
            valid_from=now - timedelta(minutes=1), valid_until=now + timedelta(days=1), recorded_by="ada"))
        self._consent("base")
        e.enroll(self.actor("enroller"), GALLERY, "base", [photo(self.lfw, PEOPLE[0], 1)], purpose="access_control")
        for i in range(consents):
            self._consent(f"waiting-{i}")
        self.ok.clear()

    def _consent(self, ref: str) -> None:
        from faceledger.governance.consent import ConsentRecord

        now = self.engine.now()
        self.engine.record_consent(self.actor("enroller"), ConsentRecord(
            id=uuid.uuid4().hex, gallery=GALLERY, subject_ref=ref, notice_version="notice-v3",
            purpose="access_control", method="signed_form", given_at=now - timedelta(minutes=1),
            collected_by="carl", expires_at=now + timedelta(days=365)))

    # -- one operation -----------------------------------------------------------------------------
    def run(self, kind: str) -> None:
        e = self.engine
        if kind == "consent":
            self._consent(f"new-{uuid.uuid4().hex[:8]}")
        elif kind == "enroll":
            ref, person = f"waiting-{self._next}", PEOPLE[self._next % len(PEOPLE)]
            e.enroll(self.actor("enroller"), GALLERY, ref, [photo(self.lfw, person, 2)], purpose="access_control")
            self._next += 1
        elif kind == "identify":
            e.identify(self.actor("investigator"), GALLERY, photo(self.lfw, PEOPLE[0], 3), purpose="investigation")
        else:
            e.verify_ledger(self.actor("admin"))

    def attempt(self, kind: str) -> str:
        """``ok``, or the code of the FaceLedger error it raised (anything else propagates)."""
        from faceledger.errors import FaceLedgerError

        try:
            self.run(kind)
        except FaceLedgerError as exc:
            if kind == "enroll" and exc.code == "conflict":   # the subject was stored before: next one
                self._next += 1
            return exc.code
        self.ok[kind] += 1
        return "ok"

    # -- reading back -------------------------------------------------------------------------------
    def audit(self) -> dict[str, Any]:
        """What the store holds: chain intact, ok entries per operation, subjects, templates, records."""
        from faceledger.governance.ledger import LedgerEntry
        from faceledger.governance.verify import verify_chain

        store = self.engine.store
        report = verify_chain(store.ledger_rows())
        entries = [LedgerEntry.from_row(r) for r in store.iter_ledger(1)]
        subjects = store.list_subjects(GALLERY)
        return {"intact": report.ok, "problem": None if report.ok else report.summary()[:300],
                "entries": len(entries),
                "ok_entries": dict(Counter(e.operation for e in entries if e.outcome == "ok")),
                "error_entries": dict(Counter(e.operation for e in entries if e.outcome == "error")),
                "subjects": len(subjects), "templates": sum(s.template_count for s in subjects),
                "consents": len(self.engine.consents(self.actor("admin"), GALLERY)),
                "leads": len(self.engine.leads(self.actor("investigator")))}


def until_refused(w: Workload, rounds: int = 60) -> dict[str, list[str]]:
    """Every kind of write in turn, round after round, each until it is first refused (space runs
    out as they succeed); the outcomes of each kind, in order."""
    outcomes: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for _ in range(rounds):
        active = [k for k in KINDS if not outcomes[k] or outcomes[k][-1] == "ok"]
        if not active:
            break
        for kind in active:
            outcomes[kind].append(w.attempt(kind))
    return outcomes


#: The ledger operation each workload kind writes when it succeeds.
OPERATION = {"consent": "consent_record", "enroll": "enroll", "identify": "identify", "ledger": "ledger_verify"}


def acknowledged_match(before: dict[str, Any], after: dict[str, Any], ok: Counter) -> list[str]:
    """The differences between what the workload was told (``ok``) and what the store holds."""
    problems = []
    if not after["intact"]:
        problems.append(f"ledger not intact: {after['problem']}")
    for kind, op in OPERATION.items():
        written = after["ok_entries"].get(op, 0) - before["ok_entries"].get(op, 0)
        if written != ok[kind]:
            problems.append(f"{kind}: {ok[kind]} acknowledged, {written} ok entries written")
    for name, kind in (("subjects", "enroll"), ("templates", "enroll"), ("consents", "consent"),
                       ("leads", "identify")):
        grown = after[name] - before[name]
        if grown != ok[kind]:
            problems.append(f"{name}: grew by {grown}, {ok[kind]} {kind} acknowledged")
    return problems
