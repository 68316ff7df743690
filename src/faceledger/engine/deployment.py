"""The deployment's own governance: changing the policy, and the training records it may require."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from faceledger.errors import ConfigError, ConflictError, InputError
from faceledger.governance.builders import parse_time
from faceledger.governance.policy import Policy, parse_policy
from faceledger.governance.roles import Operation
from faceledger.governance.training import TRAINING, TrainingRecord

from ._base import EngineBase, Op, _file_stamp, _trainings
from .results import Actor

__all__ = ["DeploymentOps"]

MAX_POLICY_BYTES = 64 * 1024


class DeploymentOps(EngineBase):
    # -- the policy ------------------------------------------------------------------------------
    def policy_view(self, actor: Actor) -> dict[str, Any]:
        """The policy in force: its digest, where it came from, and its content (the TOML layout)."""
        op = Op(actor, Operation.POLICY_SHOW)
        with self._guard(op):
            self._permit(op)
            return {"digest": self.policy.digest, "source": _shown_source(self.policy.source),
                    "policy": self.policy.to_dict()}

    def change_policy(self, actor: Actor, text: str) -> Policy:
        """Replace the policy with ``text`` (policy TOML), validated first; ledgered as ``policy_change``
        with what changed. When this engine's policy came from a file, the file is rewritten
        (atomically) so the change survives a restart; other engines on that file reload it."""
        op = Op(actor, Operation.POLICY_CHANGE)
        with self._guard(op):
            self._permit(op)
            if not isinstance(text, str) or not text.strip() or len(text.encode("utf-8")) > MAX_POLICY_BYTES:
                raise InputError(f"a policy is TOML text of at most {MAX_POLICY_BYTES // 1024} KiB", field="policy")
            path = Path(self.policy.source) if _file_stamp(self.policy.source) else None
            try:
                new = parse_policy(text, source=str(path) if path else "<engine>")
            except ConfigError as exc:  # the caller's input, not this deployment's configuration
                raise InputError(f"the new policy is not valid: {exc.message}", field="policy",
                                 key=exc.details.get("key")) from None
            if new.digest == self.policy.digest:
                raise ConflictError("this policy is the one in force: nothing to change")
            old = self.policy
            with self.store.transaction() as tx:
                self.policy = new
                try:
                    self._record_policy(tx, actor, op, "engine")
                    if path is not None:
                        _replace_file(path, text)
                except BaseException:
                    self.policy = old
                    raise
            self._policy_stamp = _file_stamp(new.source)
        return new

    # -- training ------------------------------------------------------------------------------------
    def record_training(self, actor: Actor, person: str, course: str, *, completed_at: datetime | str | None = None,
                        expires_at: datetime | str | None = None, valid_days: int = 365) -> TrainingRecord:
        """Record that ``person`` (an actor id) completed ``course`` (default: now); it counts until
        ``expires_at`` (default: ``valid_days`` after completion). Times are UTC-aware or ISO-8601 with a zone."""
        op = Op(actor, Operation.TRAINING_RECORD)
        with self._guard(op):
            self._permit(op)
            if type(valid_days) is not int or not 1 <= valid_days <= 3650:
                raise InputError("valid_days must be a whole number of days between 1 and 3650", field="valid_days")
            done = parse_time(completed_at, "completed_at", self.now())
            until = parse_time(expires_at, "expires_at", done + timedelta(days=valid_days))
            record = TrainingRecord(uuid.uuid4().hex, person, course, done, until, actor.id)
            if not self.now() - timedelta(days=3650) <= record.completed_at <= self.now():
                raise InputError("training record: completed_at must lie in the last ten years", field="completed_at")
            if record.expires_at - record.completed_at > timedelta(days=3650):
                raise InputError("training record: it can count for at most ten years", field="expires_at")
            with self.store.transaction() as tx:
                tx.put_record(TRAINING, record.id, record.to_dict())
                self._commit(tx, op, {"training_id": record.id, "person": person, "course": course,
                                      "expires_at": record.to_dict()["expires_at"]})
        return record

    def trainings(self, actor: Actor, person: str | None = None) -> list[TrainingRecord]:
        op = Op(actor, Operation.TRAINING_LIST)
        with self._guard(op):
            self._permit(op)
            return [r for r in _trainings(self.store) if person is None or r.actor == person]



def _shown_source(source: str) -> str:
    return Path(source).name if _file_stamp(source) else source


def _replace_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, keeping its permissions."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, path.stat().st_mode & 0o777)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
