"""The engine: the one accountable entry point of FaceLedger.

An :class:`Engine` wires a :class:`~faceledger.recognizer.Recognizer` (the models), a
store (galleries and the ledger) and a policy. Every operation takes an
:class:`Actor`, is checked against the policy, and is written to the hash-chained
ledger in the same transaction as its effect; refusals are ledgered too. The CLI and
the HTTP service only ever call an Engine, so none of them can skip a rule.

>>> engine = Engine.open()                          # data dir, SQLite store, policy file
>>> clerk = Actor("clerk-7", "enroller")
>>> engine.record_consent(clerk, ConsentRecord(...))
>>> engine.enroll(clerk, "staff", "emp-0042", ["id.jpg"], purpose="access_control")
"""

from __future__ import annotations

from pathlib import Path

from faceledger.governance.policy import Policy, load_policy
from faceledger.recognizer import Recognizer

from .galleries import DEFAULT_QUALITY_GATE, GalleryOps, gate_problem
from .identification import IdentifyOps
from .oversight import OversightOps
from .photos import PhotoOps, RedactedPhoto
from .results import Actor, EnrollResult, FaceCandidates, IdentifyResult, LeadCandidateView

__all__ = [
    "DEFAULT_QUALITY_GATE",
    "Actor",
    "EnrollResult",
    "Engine",
    "FaceCandidates",
    "IdentifyResult",
    "LeadCandidateView",
    "RedactedPhoto",
    "gate_problem",
]


class Engine(PhotoOps, GalleryOps, IdentifyOps, OversightOps):
    """Models + store + policy, with every rule applied (see the module docstring)."""

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
