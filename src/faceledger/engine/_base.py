"""The engine's spine: the policy check, the ledger entry, and the ledgering of refusals.

Every public operation of :class:`~faceledger.engine.Engine` follows one pattern::

    op = Op(actor, Operation.X, purpose=...)
    with self._guard(op):            # a refusal or error is ledgered, then re-raised
        self._permit(op)             # the role may run X under the policy
        ...                          # read, compute (models run outside transactions)
        with self.store.transaction() as tx:
            ...                      # the effect
            self._commit(tx, op, result_summary)   # its ledger entry, same transaction

so no effect exists without its entry, no entry without its effect, and every
refused attempt is on the ledger too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from faceledger.errors import FaceLedgerError, ModelMismatchError, RefusedError
from faceledger.governance.ledger import EntryDraft, entry_fields, refusal_result
from faceledger.governance.policy import Policy, check_operation
from faceledger.governance.roles import Operation
from faceledger.recognizer import DEFAULT_BACKEND, Recognizer
from faceledger.store.base import Gallery, LedgerRow, Store

from .results import Actor

__all__ = ["EngineBase", "Op"]


@dataclass
class Op:
    """What the ledger entry of one operation will say; filled in as the operation runs."""

    actor: Actor
    operation: Operation
    purpose: str | None = None
    reference: str | None = None
    gallery: str | None = None
    subject_ref: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    #: Facts recorded in the entry's result whatever the outcome (e.g. an identification's declared targets).
    facts: dict[str, Any] = field(default_factory=dict)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EngineBase:
    """Holds the recognizer, the store, the policy and the clock; writes the ledger."""

    def __init__(
        self,
        store: Store,
        *,
        recognizer: Recognizer | str | None = None,
        policy: Policy | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """``recognizer`` is a loaded :class:`Recognizer` or a backend name (loaded on first
        use, so governance-only work starts fast); default: the default backend."""
        self.store = store
        self._recognizer = recognizer
        self.policy = policy or Policy.default()
        self.clock = clock

    @property
    def recognizer(self) -> Recognizer:
        """The models, loaded on first use (ledger and governance work needs none)."""
        if not isinstance(self._recognizer, Recognizer):
            self._recognizer = Recognizer(self._recognizer or DEFAULT_BACKEND)
        return self._recognizer

    def now(self) -> datetime:
        return self.clock()

    # -- the ledger ---------------------------------------------------------------
    def _fields(self, op: Op, outcome: str, result: dict[str, Any]) -> dict[str, Any]:
        draft = EntryDraft(
            actor=op.actor.id,
            role=op.actor.role.value,
            operation=op.operation.value,
            outcome=outcome,
            purpose=op.purpose,
            reference=op.reference,
            gallery=op.gallery,
            subject_ref=op.subject_ref,
            inputs=op.inputs,
            result={**op.facts, **result},
            policy_digest=self.policy.digest,
            credential=op.actor.credential,
        )
        return entry_fields(draft, self.now())

    def _commit(self, tx: Any, op: Op, result: dict[str, Any]) -> LedgerRow:
        """Append the operation's ``ok`` entry inside the effect's transaction."""
        return tx.append_ledger(self._fields(op, "ok", result))

    def _log(self, op: Op, outcome: str, result: dict[str, Any]) -> LedgerRow:
        """Append an entry in a transaction of its own (operations with no stored effect)."""
        with self.store.transaction() as tx:
            return tx.append_ledger(self._fields(op, outcome, result))

    def _check_model(self, gallery: Gallery) -> None:
        if gallery.model_id != self.recognizer.model_id:
            raise ModelMismatchError(
                f"gallery '{gallery.name}' holds templates of model '{gallery.model_id}', this engine runs "
                f"'{self.recognizer.model_id}': use that backend, or move the gallery to this model "
                "(`faceledger gallery set-model`) and re-enroll its subjects"
            )

    def _permit(self, op: Op) -> None:
        check_operation(self.policy, op.actor.role, op.operation)

    @contextmanager
    def _guard(self, op: Op) -> Iterator[None]:
        """Ledger a refusal (``refused``) or a failure (``error``) of ``op``, then re-raise it."""
        try:
            yield
        except RefusedError as exc:
            self._log(op, "refused", refusal_result(exc))
            raise
        except FaceLedgerError as exc:
            self._log(op, "error", refusal_result(exc))
            raise
