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
refused attempt is on the ledger too. Any other exception (a bug, a lost disk) writes an
``error`` entry with a fixed text, then propagates unchanged; if even that entry cannot be
written, the original exception still propagates (with a note), never the ledger's.

Before any operation runs, the policy in force is compared with the one the ledger last
recorded (and a policy file is re-read when it changed on disk): a difference writes a
``policy_change`` entry first, saying what changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faceledger.errors import FaceLedgerError, ModelMismatchError, NotFoundError, RefusedError
from faceledger.governance.ledger import EntryDraft, entry_fields, refusal_result
from faceledger.governance.policy import Policy, check_operation, load_policy
from faceledger.governance.policy_history import POLICY_RECORD, policy_change_result
from faceledger.governance.roles import Operation, Role
from faceledger.governance.training import TRAINING, TrainingRecord, require_training, training_from_dict
from faceledger.recognizer import DEFAULT_BACKEND, Recognizer
from faceledger.store.base import Gallery, LedgerRow, Store

from .results import Actor

__all__ = ["INTERNAL_ERROR", "SYSTEM_ACTOR", "EngineBase", "Op"]

#: The result of an ``error`` entry for an unexpected exception: fixed text, no repr, no address.
INTERNAL_ERROR = {"error": "internal_error", "reason": None,
                  "message": "the operation stopped on an unexpected internal error"}
#: Who writes the entries nobody asked for (a policy read from a file).
SYSTEM_ACTOR = Actor("faceledger", Role.ADMIN, credential="service")


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
        self._policy_stamp = _file_stamp(self.policy.source)

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

    def _require_training(self, op: Op) -> None:
        """Refuse (:class:`TrainingRequiredError`) when the policy requires current training for the
        actor's role and the actor has no training record valid now."""
        if op.actor.role in self.policy.training_required_for:
            require_training(_trainings(self.store), op.actor.id, op.actor.role, self.policy.training_required_for,
                             self.now())

    @contextmanager
    def _guard(self, op: Op) -> Iterator[None]:
        """Record a changed policy first; ledger a refusal (``refused``) or any failure (``error``) of
        ``op``, then re-raise it unchanged."""
        try:
            self._sync_policy()
            yield
        except RefusedError as exc:
            self._log_failure(op, "refused", refusal_result(exc), exc)
            raise
        except FaceLedgerError as exc:
            self._log_failure(op, "error", refusal_result(exc), exc)
            raise
        except Exception as exc:
            self._log_failure(op, "error", INTERNAL_ERROR, exc)
            raise

    def _log_failure(self, op: Op, outcome: str, result: dict[str, Any], exc: BaseException) -> None:
        """Ledger a failed operation; if the store cannot (it may be what failed), keep the original error."""
        try:
            self._log(op, outcome, result)
        except Exception as log_exc:
            code = getattr(log_exc, "code", "internal_error")
            exc.add_note(f"faceledger: the ledger entry of this failure could not be written ({code})")

    # -- the policy in force -------------------------------------------------------------------
    def _sync_policy(self) -> None:
        """Re-read a policy file changed on disk, then write ``policy_change`` if the policy differs
        from the one the ledger last recorded (nothing else runs before that entry)."""
        stamp = _file_stamp(self.policy.source)
        if stamp != self._policy_stamp:
            self.policy, self._policy_stamp = load_policy(self.policy.source), stamp
        if _recorded_digest(self.store) == self.policy.digest:
            return
        source = "file" if stamp is not None else "default" if self.policy.source == "<default>" else "code"
        with self.store.transaction() as tx:
            self._record_policy(tx, SYSTEM_ACTOR, Op(SYSTEM_ACTOR, Operation.POLICY_CHANGE), source)

    def _record_policy(self, tx: Any, actor: Actor, op: Op, source: str) -> dict[str, Any] | None:
        """In ``tx``: the ``policy_change`` entry and the record of the policy now in force (no-op if
        the ledger already records it). Returns the entry's result."""
        try:
            old: dict[str, Any] | None = tx.get_record(*POLICY_RECORD).data
        except NotFoundError:
            old = None
        if old is not None and old["digest"] == self.policy.digest:
            return None
        new = {"digest": self.policy.digest, "policy": self.policy.to_dict()}
        result = policy_change_result(old, new, source)
        tx.put_record(*POLICY_RECORD, new)
        tx.append_ledger(self._fields(op, "ok", result))
        return result


def _trainings(reader: Any) -> list[TrainingRecord]:
    return [training_from_dict(r.data) for r in reader.list_records(TRAINING)]


def _recorded_digest(store: Store) -> str | None:
    try:
        return store.get_record(*POLICY_RECORD).data["digest"]
    except NotFoundError:
        return None


def _file_stamp(source: str) -> tuple[int, int] | None:
    """``(mtime_ns, size)`` of a policy file, or ``None`` when the policy came from no file."""
    try:
        st = Path(source).stat()
    except (OSError, ValueError):
        return None
    return (st.st_mtime_ns, st.st_size)
