"""The engine: the one accountable entry point of FaceLedger.

An :class:`Engine` wires a :class:`~faceledger.recognizer.Recognizer` (the models), a
store (galleries and the ledger) and a policy. Every operation takes an
:class:`Actor`, is checked against the policy, and is written to the hash-chained
ledger in the same transaction as its effect; refusals are ledgered too. The CLI and
the HTTP service only ever call an Engine, so none of them can skip a rule.

>>> engine = Engine.open()                          # data dir, SQLite store, policy file
>>> clerk = Actor("clerk-7", "enroller")
>>> engine.record_consent(clerk, ConsentRequest("staff", "emp-0042", "access_control", "v3", "signed_form"))
>>> engine.enroll(clerk, "staff", "emp-0042", ["id.jpg"], purpose="access_control")

Adapters do not build actors themselves: :meth:`Engine.operator` (an OS user, by the
policy's ``[operators]``) and :meth:`Engine.key_holder` (an API key) return them, with
the credential the ledger records. The value types callers need are in
:mod:`faceledger.records`; paths and settings in :mod:`faceledger.config`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from pathlib import Path

from faceledger.errors import NotFoundError
from faceledger.governance.policy import Policy, load_policy
from faceledger.recognizer import Recognizer

from .deployment import DeploymentOps
from .evidence import EvidenceCandidate, EvidenceOps, LeadEvidence
from .galleries import DEFAULT_QUALITY_GATE, GalleryOps, gate_problem
from .identification import IdentifyOps
from .identity import IdentityOps
from .keys import SERVICE_ACTOR, ApiKey, KeyOps
from .oversight import OversightOps
from .photos import PhotoOps, RedactedPhoto
from .replays import ReplayOps
from .results import Actor, EnrollResult, FaceCandidates, IdentifyResult, LeadCandidateView

__all__ = [
    "DEFAULT_QUALITY_GATE",
    "SERVICE_ACTOR",
    "Actor",
    "ApiKey",
    "EnrollResult",
    "EvidenceCandidate",
    "LeadEvidence",
    "Engine",
    "FaceCandidates",
    "IdentifyResult",
    "LeadCandidateView",
    "RedactedPhoto",
    "gate_problem",
]


class Engine(PhotoOps, GalleryOps, IdentifyOps, OversightOps, KeyOps, IdentityOps, ReplayOps, DeploymentOps,
             EvidenceOps):
    """Models + store + policy, with every rule applied (see the module docstring)."""

    def sharing_store(self, recognizer: Recognizer | str | None = None, *,
                      clock: Callable[[], datetime] | None = None) -> Engine:
        """Another engine on this one's store and policy, with its own ``recognizer`` (e.g. one per
        model worker of a service) and optionally another ``clock``; closing either closes the store."""
        return Engine(self.store, recognizer=recognizer, policy=self.policy, clock=clock or self.clock)

    def status(self) -> dict[str, object]:
        """What a readiness check reports: the ledger's last ``seq`` and the store backend (raises
        if the store cannot be read)."""
        return {"ledger_seq": self.store.ledger_head().seq, "store": self.store.backend}

    def warm_galleries(self, progress: Callable[[str, int, int], None] | None = None) -> dict[str, int]:
        """Load every gallery's search index now, so that no request pays for it (a million templates
        take seconds to read). Returns the templates held per gallery. It searches no one and returns
        no one, so it needs no actor and writes no ledger entry; every search still does both.
        ``progress(gallery, done, total)`` is called after each gallery. A gallery deleted meanwhile
        is skipped."""
        names = [g.name for g in self.store.list_galleries()]
        held: dict[str, int] = {}
        for done, name in enumerate(names, 1):
            with suppress(NotFoundError):  # deleted since the list was read
                held[name] = self.store.warm(name)
            if progress is not None:
                progress(name, done, len(names))
        return held

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        policy: Policy | str | Path | None = None,
        recognizer: Recognizer | str | None = None,
        **store_options: object,
    ) -> Engine:
        """Open the store at ``url`` (default: SQLite in the data directory) with ``policy``
        (a :class:`Policy`, a TOML file, or the safe default)."""
        from faceledger.store import open_store

        if isinstance(policy, (str, Path)):
            policy = load_policy(policy)
        return cls(open_store(url, **store_options), recognizer=recognizer, policy=policy)

    def close(self) -> None:
        close = getattr(self.store, "close", None)
        if close is not None:
            close()
