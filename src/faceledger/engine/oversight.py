"""Oversight: verifying and exporting the ledger, signed checkpoints, usage reports."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from faceledger.evaluate.independent import PairTestResult
from faceledger.governance._time import to_iso
from faceledger.governance.ledger import LedgerEntry
from faceledger.governance.reports import UsageReport, usage_report
from faceledger.governance.roles import Operation
from faceledger.governance.verify import ChainReport
from faceledger.media.image import ImageSource

from ._base import EngineBase, Op
from .results import Actor

__all__ = ["OversightOps"]


class OversightOps(EngineBase):
    def _ledger_rows(self) -> Iterator[Any]:
        """The raw rows ``(seq, prev_hash, hash, fields text)``: hashing needs the stored text, not
        parsed fields (5x faster on a million entries, see bench/ledger_verify.py)."""
        return self.store.ledger_rows()

    def verify_ledger(
        self,
        actor: Actor,
        *,
        checkpoints: Iterable[str | Path] = (),
        public_keys: Iterable[str | Path] = (),
    ) -> ChainReport:
        """Check the whole hash chain, and its agreement with exported, signed checkpoints.

        The report says where the first problem is (changed, deleted, inserted, reordered,
        truncated or diverged entry, bad checkpoint). The check itself is then ledgered.
        """
        op = Op(actor, Operation.LEDGER_VERIFY)
        with self._guard(op):
            self._permit(op)
            cps = list(checkpoints)
            if cps:
                from faceledger.governance.checkpoint import load_public_key, read_checkpoint, verify_ledger

                report = verify_ledger(self._ledger_rows(), [read_checkpoint(p) for p in cps],
                                       [load_public_key(k) for k in public_keys])
            else:
                from faceledger.governance.verify import verify_chain

                report = verify_chain(self._ledger_rows())
            self._log(op, "ok", {"intact": report.ok, "checked": report.checked, "checkpoints": len(cps),
                                 "problem": None if report.ok else report.summary()[:500]})
        return report

    def checkpoint(self, actor: Actor, key_file: str | Path, out: str | Path) -> Path:
        """Sign the ledger's head with the Ed25519 key in ``key_file`` and write it to ``out``
        (a new file: ship it somewhere the database's operators cannot change it)."""
        from faceledger.governance.checkpoint import load_private_key, make_checkpoint, write_checkpoint
        from faceledger.governance.ledger import ChainHead

        op = Op(actor, Operation.LEDGER_CHECKPOINT)
        with self._guard(op):
            self._permit(op)
            key = load_private_key(key_file)
            head = self.store.ledger_head()
            cp = make_checkpoint(ChainHead(head.seq, head.hash), key, self.now())
            path = write_checkpoint(cp, out)
            self._log(op, "ok", {"seq": cp.seq, "head_hash": cp.head_hash, "key_id": cp.key_id})
        return path

    def export_ledger(self, actor: Actor, out: str | Path, *, start_seq: int = 1) -> int:
        """Write the ledger from ``start_seq`` to ``out`` as JSON lines; returns the entry count."""
        op = Op(actor, Operation.LEDGER_EXPORT)
        with self._guard(op):
            self._permit(op)
            path, count = Path(out), 0
            tmp = path.with_name(f".{path.name}.tmp")
            with tmp.open("w", encoding="utf-8") as f:
                for row in self.store.iter_ledger(start_seq):
                    f.write(json.dumps(LedgerEntry.from_row(row).to_dict(), sort_keys=True) + "\n")
                    count += 1
            tmp.replace(path)
            self._log(op, "ok", {"entries": count, "start_seq": start_seq})
        return count

    def usage_report(self, actor: Actor, start: datetime, end: datetime) -> UsageReport:
        """Counts by operation, purpose, actor, authorization and outcome; refusals, erasures,
        review outcomes and times (the annual report Washington's SB 6280 asks for)."""
        op = Op(actor, Operation.REPORT)
        with self._guard(op):
            self._permit(op)
            report = usage_report(self.store.iter_ledger(), start, end, self.policy.organisation)
            self._log(op, "ok", {"from": start.isoformat(), "to": end.isoformat()})
        return report

    def check_checkpoint_key(self, key_file: str | Path) -> str:
        """The key id of the checkpoint signing key in ``key_file``, or :class:`~faceledger.errors.ConfigError`
        if it cannot be used to sign (unreadable, not Ed25519, or readable by group or others).
        Reads the key only: nothing is signed or ledgered (a start-up check)."""
        from faceledger.governance.checkpoint import key_id, load_private_key

        return key_id(load_private_key(key_file))

    def create_checkpoint_key(self, actor: Actor, key_file: str | Path, public_key_file: str | Path) -> str:
        """Generate the Ed25519 key pair that signs checkpoints; returns its key id."""
        from faceledger.governance.checkpoint import generate_key, key_id, save_private_key, save_public_key

        op = Op(actor, Operation.KEY_CHANGE)
        with self._guard(op):
            self._permit(op)
            key = generate_key()
            save_private_key(key, key_file)
            save_public_key(key, public_key_file)
            kid = key_id(key)
            self._log(op, "ok", {"key_id": kid, "purpose": "ledger checkpoints"})
        return kid

    def independent_test(
        self,
        actor: Actor,
        pairs: Sequence[tuple[ImageSource, ImageSource]],
        *,
        operating_point: str | None = None,
        on_pair: Callable[[int], None] | None = None,
    ) -> PairTestResult:
        """Independent testing (SB 6280): raw score and decision for each photo pair, with the model id.

        Auditors only, rate-limited like searches (``limits.max_searches_per_actor_per_hour``
        batches per hour). Nothing about the photos is kept: the ledger records that a test
        was run, by whom, and how many comparisons. ``on_pair(done)`` reports progress.
        """
        from faceledger.errors import InputError, RateLimitedError
        from faceledger.evaluate.independent import score_pairs

        op = Op(actor, Operation.INDEPENDENT_TEST)
        with self._guard(op):
            self._permit(op)
            if not pairs:
                raise InputError("give at least one pair of photos")
            key, limit = f"independent_test:{actor.id}", self.policy.limits.max_searches_per_actor_per_hour
            recent = self._recent_searches(self.store, key)  # type: ignore[attr-defined]
            if len(recent) >= limit:
                raise RateLimitedError(f"{actor.id} ran {len(recent)} test batches in the last hour (limit {limit})")
            result = score_pairs(self.recognizer, pairs, operating_point, on_pair=on_pair)
            with self.store.transaction() as tx:
                tx.put_record("search_window", key, {"times": [*recent, to_iso(self.now())]})
                self._commit(tx, op, {"comparisons": len(result.results), "model_id": result.model_id,
                                      "operating_point": result.operating_point,
                                      "failed": sum(r.error is not None for r in result.results)})
        return result
