"""Training records: who completed which course, and until when it counts.

Washington's SB 6280 (and the EU AI Act's Art. 14 on human oversight) expect the people who
run searches and review their results to be trained for it. The policy names the roles that
need a current record (``[training] required_for = ["investigator", "reviewer"]``); an admin
records completed training (who, which course, when, until when), and the engine refuses a
search, a review or a look at a lead's evidence by someone in such a role without a record
that is valid at that moment (:class:`~faceledger.errors.TrainingRequiredError`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from faceledger.errors import InputError, TrainingRequiredError
from faceledger.governance._time import from_iso, to_iso, utc
from faceledger.governance.roles import Role

__all__ = ["TRAINING", "TrainingRecord", "require_training", "training_from_dict"]

#: Record kind of training records.
TRAINING = "training"


@dataclass(frozen=True, slots=True)
class TrainingRecord:
    """``actor`` completed ``course`` at ``completed_at``; it counts until ``expires_at`` (exclusive)."""

    id: str
    actor: str
    course: str
    completed_at: datetime
    expires_at: datetime
    recorded_by: str

    def __post_init__(self) -> None:
        for name in ("id", "actor", "course", "recorded_by"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip() or len(value) > 256 or not value.isprintable():
                raise InputError(f"training record: {name} is required (1-256 printable characters)", field=name)
        object.__setattr__(self, "completed_at", utc(self.completed_at, "training completed_at"))
        object.__setattr__(self, "expires_at", utc(self.expires_at, "training expires_at"))
        if self.expires_at <= self.completed_at:
            raise InputError("training record: expires_at must be after completed_at", field="expires_at")

    def current(self, at: datetime) -> bool:
        return self.completed_at <= utc(at, "at") < self.expires_at

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (to_iso(v) if isinstance(v := getattr(self, f.name), datetime) else v)
                for f in fields(self)}


def training_from_dict(data: Mapping[str, Any]) -> TrainingRecord:
    try:
        return TrainingRecord(**{**data, "completed_at": from_iso(data["completed_at"], "training completed_at"),
                                 "expires_at": from_iso(data["expires_at"], "training expires_at")})
    except (KeyError, TypeError) as exc:
        raise InputError(f"training record is incomplete or has unknown fields: {exc}") from None


def require_training(records: Iterable[TrainingRecord], actor: str, role: Role, required_for: Iterable[Role],
                     at: datetime) -> TrainingRecord | None:
    """The actor's current record if ``role`` needs one (``None`` if it does not), else
    :class:`TrainingRequiredError` (reason ``"none"`` or ``"expired"``)."""
    if role not in set(required_for):
        return None
    mine = sorted((r for r in records if r.actor == actor), key=lambda r: r.expires_at, reverse=True)
    for r in mine:
        if r.current(at):
            return r
    reason = "expired" if mine else "none"
    text = f"the training of {actor} expired on {to_iso(mine[0].expires_at)}" if mine else \
        f"{actor} has no training record"
    raise TrainingRequiredError(f"the policy requires current training for the role '{role.value}': {text} "
                                "(an admin records it: `faceledger training record`)", reason=reason)
