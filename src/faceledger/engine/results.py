"""Typed results of the accountable engine's operations."""

from __future__ import annotations

from dataclasses import dataclass, field

from faceledger.governance.review import LEAD_LABEL
from faceledger.governance.roles import Role
from faceledger.types import Face

__all__ = ["Actor", "EnrollResult", "FaceCandidates", "IdentifyResult", "LeadCandidateView"]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is calling, in which role, and how that was established. Every engine call carries one.

    ``credential`` is written into every ledger entry the actor causes: ``key:<key id>``
    for an API key (the HTTP service), ``os:<user>`` for the operating-system user who
    runs the CLI, ``service`` for what the service does by itself; ``None`` when the
    caller is trusted code calling the Python API directly.
    """

    id: str
    role: Role
    credential: str | None = None

    def __post_init__(self) -> None:
        from faceledger.errors import InputError

        if not isinstance(self.id, str) or not self.id.strip():
            raise InputError("an actor id is required")
        cred = self.credential
        if cred is not None and (not isinstance(cred, str) or not cred.strip() or len(cred) > 256
                                 or not cred.isprintable()):
            raise InputError("an actor's credential must be 1-256 printable characters")
        try:
            object.__setattr__(self, "role", Role(self.role))
        except ValueError:
            known = ", ".join(r.value for r in Role)
            raise InputError(f"unknown role {self.role!r} (roles: {known})") from None


@dataclass(frozen=True, slots=True)
class EnrollResult:
    """What an enrollment stored: the subject, how many templates were new, and the ledger entry."""

    gallery: str
    subject_ref: str
    subject_id: int
    templates_added: int
    templates_existing: int
    ledger_seq: int


@dataclass(frozen=True, slots=True)
class LeadCandidateView:
    """A candidate subject of an identification: a lead for human review, never a decision."""

    subject_ref: str
    score: float
    rank: int


@dataclass(frozen=True, slots=True)
class FaceCandidates:
    """The candidates found for one face of the probe photo (empty: an explicit "no match")."""

    face: Face
    candidates: tuple[LeadCandidateView, ...]
    lead_id: str | None

    @property
    def no_match(self) -> bool:
        return not self.candidates


@dataclass(frozen=True, slots=True)
class IdentifyResult:
    """The outcome of a 1:N search: per face, candidates at or above ``threshold``.

    Candidates are leads for trained human review (``label``), stored in the review
    queue; when nobody passes the threshold the answer is "no match", never the
    nearest stranger.
    """

    gallery: str
    faces: tuple[FaceCandidates, ...]
    threshold: float
    operating_point: str
    model_id: str
    authorization_id: str
    ledger_seq: int
    label: str = field(default=LEAD_LABEL)
    #: Subjects searched, and the expected share of searches for someone *not* enrolled that
    #: still return a candidate: 1 - (1 - FMR) ** subjects, FMR being the operating point's
    #: calibrated false-match rate (``None`` when the model has no such calibrated point).
    gallery_subjects: int = 0
    expected_fpir: float | None = None

    @property
    def no_match(self) -> bool:
        return all(f.no_match for f in self.faces)
