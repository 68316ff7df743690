"""The HTTP edge's request and response models (pydantic), and converters from engine results.

Conventions: boxes are ``x, y, w, h`` in pixels of the upright photo; landmarks are five
``[x, y]`` points (image-left eye, image-right eye, nose, mouth corners); scores are cosine
similarities in ``[-1, 1]``; times are ISO-8601 UTC. No model here carries a template.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from faceledger.records import AuthorizationKind, ConsentMethod, Decision, LegalBasis, Role
from faceledger.types import Face, VerifyResult

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
Text = Field(min_length=1, max_length=256)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- faces ---------------------------------------------------------------------------------
class BoxOut(BaseModel):
    x: float
    y: float
    w: float
    h: float


class QualityOut(BaseModel):
    size: float | None
    interocular: float | None
    sharpness: float | None
    yaw: float | None
    roll: float | None


class FaceOut(BaseModel):
    box: BoxOut
    landmarks: list[list[float]]
    score: float
    quality: QualityOut | None


def _num(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 4)


def face_out(face: Face | None) -> FaceOut | None:
    if face is None:
        return None
    q = face.quality
    quality = None if q is None else QualityOut(size=_num(q.size), interocular=_num(q.interocular),
                                                sharpness=_num(q.sharpness), yaw=_num(q.yaw), roll=_num(q.roll))
    b = face.box
    return FaceOut(box=BoxOut(x=round(b.x, 2), y=round(b.y, 2), w=round(b.w, 2), h=round(b.h, 2)),
                   landmarks=[[round(x, 2), round(y, 2)] for x, y in face.landmarks], score=round(face.score, 4),
                   quality=quality)


class DetectOut(BaseModel):
    faces: list[FaceOut]
    count: int
    model_id: str


class VerifyOut(BaseModel):
    match: bool
    score: float = Field(description="Cosine similarity in [-1, 1].")
    threshold: float
    operating_point: str
    model_id: str
    face_a: FaceOut | None
    face_b: FaceOut | None


def verify_out(r: VerifyResult) -> VerifyOut:
    return VerifyOut(match=r.match, score=round(r.score, 6), threshold=round(r.threshold, 6),
                     operating_point=r.operating_point, model_id=r.model_id, face_a=face_out(r.face_a),
                     face_b=face_out(r.face_b))


# -- galleries, subjects, consent ------------------------------------------------------------------
class QualityGateIn(Strict):
    min_size: float = Field(40.0, ge=0, le=10000, description="Minimum face width, pixels.")
    min_sharpness: float = Field(30.0, ge=0, le=100000)
    max_abs_yaw: float = Field(0.45, ge=0, le=10)


class GalleryIn(Strict):
    name: str = Field(pattern=NAME, max_length=128)
    retention_days: int | None = Field(None, ge=1, le=36500)
    operating_point: str | None = Field(None, max_length=64)
    quality_gate: QualityGateIn | None = None
    keep_photos: bool = False


class GalleryOut(BaseModel):
    name: str
    model_id: str
    dimension: int
    retention_days: int | None
    thresholds: dict[str, float]
    operating_point: str | None
    keep_photos: bool
    quality_gate: dict[str, Any]
    created_at: datetime
    subjects: int
    templates: int


class SubjectOut(BaseModel):
    id: int
    gallery: str
    subject_ref: str
    display_name: str | None
    created_at: datetime
    templates: int


class ConsentIn(Strict):
    subject_ref: str = Text
    purpose: str = Field(min_length=1, max_length=64)
    notice_version: str = Text
    method: ConsentMethod
    legal_basis: LegalBasis = LegalBasis.EXPLICIT_CONSENT
    valid_days: int = Field(365, ge=1, le=36500, description="Days until it expires (ignored with expires_at).")
    expires_at: datetime | None = None
    given_at: datetime | None = Field(None, description="Default: now.")
    collected_by: str | None = Field(None, min_length=1, max_length=256, description="Default: the caller.")
    supersedes: str | None = Field(None, min_length=1, max_length=128, description=(
        "The subject's active consent for this purpose that this one renews (a second active one is refused)."))


class ConsentOut(BaseModel):
    id: str
    gallery: str
    subject_ref: str
    notice_version: str
    purpose: str
    method: str
    given_at: datetime
    collected_by: str
    expires_at: datetime
    legal_basis: str
    withdrawn_at: datetime | None
    supersedes: str | None = None
    superseded_by: str | None = None


class WithdrawIn(Strict):
    subject_ref: str = Text


class EnrollOut(BaseModel):
    gallery: str
    subject_ref: str
    subject_id: int
    templates_added: int
    templates_existing: int
    ledger_seq: int


class ErasedOut(BaseModel):
    subjects_erased: int | None = None
    templates_erased: int | None = None


# -- authorizations, identification, review -------------------------------------------------------------
class AuthorizationIn(Strict):
    kind: AuthorizationKind
    reference: str = Text
    issuer: str = Text
    galleries: list[str] = Field(min_length=1, max_length=100)
    purposes: list[str] = Field(min_length=1, max_length=100)
    valid_from: datetime | None = Field(None, description="Default: now.")
    valid_until: datetime | None = Field(None, description="Default: valid_from + valid_days.")
    valid_days: int = Field(30, ge=1, le=3650)
    live_allowed: bool = False


class AuthorizationOut(BaseModel):
    id: str
    kind: str
    reference: str
    issuer: str
    galleries: list[str]
    purposes: list[str]
    valid_from: datetime
    valid_until: datetime
    recorded_by: str
    live_allowed: bool
    revoked_at: datetime | None


class CandidateOut(BaseModel):
    subject_ref: str
    score: float
    rank: int


class FaceCandidatesOut(BaseModel):
    face: FaceOut
    candidates: list[CandidateOut]
    lead_id: str | None
    no_match: bool


class IdentifyOut(BaseModel):
    label: str
    gallery: str
    no_match: bool
    threshold: float
    operating_point: str
    model_id: str
    authorization_id: str
    ledger_seq: int
    faces: list[FaceCandidatesOut]
    gallery_subjects: int
    expected_fpir: float | None = Field(
        None, description="Expected share of searches for someone not enrolled that return a candidate: "
        "1 - (1 - FMR) ** gallery_subjects (null when the threshold is not a calibrated point).")


class SubjectFacesOut(BaseModel):
    subject_ref: str
    faces: list[str] = Field(description="The enrolled face crops, as data:image/jpeg URLs.")


class LeadCandidateOut(BaseModel):
    subject_ref: str
    score: float


class TargetsOut(BaseModel):
    allowed: list[str] = Field(description="What a search may declare it is aimed at.")
    prohibited: list[str] = Field(description="What a search may never be aimed at: refused and ledgered.")


class LeadOut(BaseModel):
    id: str
    search_seq: int
    gallery: str
    probe_digest: str
    candidates: list[LeadCandidateOut]
    threshold: float
    model_id: str
    searched_by: str
    created_at: datetime
    purpose: str | None
    reference: str | None
    status: str
    confirmed_subject: str | None
    decided_at: datetime | None
    label: str
    evidence: bool = False
    evidence_until: datetime | None = None
    disagreement: bool = False


class EvidenceCandidateOut(BaseModel):
    subject_ref: str
    score: float
    rank: int
    crop: str | None = Field(description="The enrolled face, as a data: URL (JPEG); null if erased or never kept.")


class ReviewOut(BaseModel):
    reviewer: str
    decision: str
    rationale: str
    at: datetime
    subject_ref: str | None


class LeadEvidenceOut(BaseModel):
    lead: LeadOut
    label: str
    probe_crop: str | None = Field(description="The probe's face, as a data: URL (JPEG); null once deleted.")
    candidates: list[EvidenceCandidateOut]
    reviews: list[ReviewOut] = Field(description="Your own review while the lead is pending; all once it is closed.")


class LeadStatusQ(StrEnum):
    pending = "pending"
    confirmed = "confirmed"
    rejected = "rejected"
    inconclusive = "inconclusive"


class ReviewIn(Strict):
    decision: Decision
    rationale: str = Field(min_length=1, max_length=4000)
    subject_ref: str | None = Field(None, min_length=1, max_length=256,
                                    description="With confirmed: the candidate confirmed.")


# -- oversight -----------------------------------------------------------------------------------
class LedgerVerifyIn(Strict):
    checkpoints: bool = Field(True, description="Also check the service's signed checkpoints.")


class LedgerVerifyOut(BaseModel):
    ok: bool
    checked: int
    head: dict[str, Any] | None
    checkpoints: int
    problems: list[dict[str, Any]]
    summary: str


class CheckpointOut(BaseModel):
    format: str
    seq: int
    head_hash: str
    ts: str
    key_id: str
    signature: str
    file: str


class PolicyIn(Strict):
    toml: str = Field(min_length=1, max_length=65536, description="The whole new policy, as policy.toml text.")


class PolicyOut(BaseModel):
    digest: str
    source: str
    policy: dict[str, Any]


class TrainingIn(Strict):
    person: str = Field(min_length=1, max_length=256, description="The actor id of who was trained.")
    course: str = Field(min_length=1, max_length=256)
    completed_at: datetime | None = Field(None, description="Default: now.")
    valid_days: int = Field(365, ge=1, le=3650, description="Days the training counts (ignored with expires_at).")
    expires_at: datetime | None = None


class TrainingOut(BaseModel):
    id: str
    actor: str
    course: str
    completed_at: datetime
    expires_at: datetime
    recorded_by: str


class RetentionIn(Strict):
    dry_run: bool = False


class RetentionOut(BaseModel):
    dry_run: bool
    at: datetime
    kept: int
    purge: list[dict[str, Any]]


# -- keys and the caller ---------------------------------------------------------------------------
class KeyIn(Strict):
    actor: str = Field(min_length=1, max_length=128)
    role: Role
    label: str | None = Field(None, max_length=200)


class KeyOut(BaseModel):
    key_id: str
    actor: str
    role: str
    label: str | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None
    active: bool


class KeyCreatedOut(KeyOut):
    token: str | None = Field(description="The API key: shown once, never stored (null in an idempotent replay).")


class MeOut(BaseModel):
    actor: str
    role: str
    key_id: str
    operations: list[str]
    purposes: list[str]
    identification_enabled: bool
    required_reviewers: int
    organisation: str
    model_id: str
