"""What a reviewer sees: the probe's face and each candidate's enrolled face, side by side, with scores.

A lead keeps the probe's face crop (under a key of its own on SQLite) until it is decided plus the
policy's ``review.evidence_days``; each template keeps its enrolled face crop (under the subject's
data key) and loses it with the subject. With two required reviewers, each sees only their own
decision until the lead is closed, so neither is anchored by the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from faceledger.errors import NotFoundError
from faceledger.governance.review import LEAD_LABEL, Lead, LeadStatus, Review, lead_from_dict, review_from_dict
from faceledger.governance.roles import Operation
from faceledger.media.encode import encode_image
from faceledger.types import Face

from ._base import EngineBase, Op
from .results import Actor

__all__ = ["CROP_SIDE", "EvidenceCandidate", "EvidenceOps", "LeadEvidence", "face_crop"]

LEAD, REVIEW = "lead", "review"
CROP_SIDE = 192  # pixels: the longer side of a kept face crop
_MARGIN = 0.35  # of the face box, on every side: forehead, chin and ears help a human compare


def face_crop(rgb: np.ndarray, face: Face) -> bytes:
    """The face with a margin, at most :data:`CROP_SIDE` px on its longer side, as JPEG without metadata."""
    import cv2

    b, h, w = face.box, rgb.shape[0], rgb.shape[1]
    x0, y0 = int(max(0, b.x - _MARGIN * b.w)), int(max(0, b.y - _MARGIN * b.h))
    x1, y1 = int(min(w, b.x + b.w * (1 + _MARGIN))), int(min(h, b.y + b.h * (1 + _MARGIN)))
    crop = rgb[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
    scale = CROP_SIDE / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                          interpolation=cv2.INTER_AREA)
    return encode_image(crop, "jpeg", quality=90)


@dataclass(frozen=True, slots=True)
class EvidenceCandidate:
    """A candidate as the reviewer sees it: its enrolled face crop (``None`` if erased or never kept)."""

    subject_ref: str
    score: float
    rank: int
    crop: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class LeadEvidence:
    """A lead with the faces to compare. ``reviews`` are the caller's own while the lead is pending
    (each reviewer decides without seeing another's decision), all of them once it is closed."""

    lead: Lead
    probe_crop: bytes | None = field(repr=False)
    candidates: tuple[EvidenceCandidate, ...]
    reviews: tuple[Review, ...]
    label: str = LEAD_LABEL

    def side_by_side(self, height: int = CROP_SIDE) -> bytes:
        """One JPEG: the probe, then each candidate best first (grey where a crop is missing)."""
        import cv2

        tiles = []
        for data in (self.probe_crop, *(c.crop for c in self.candidates)):
            if data is None:
                tiles.append(np.full((height, height * 3 // 4, 3), 128, np.uint8))
                continue
            img = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            width = max(1, round(img.shape[1] * height / img.shape[0]))
            tiles.append(cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA))
        gap = np.full((height, 8, 3), 255, np.uint8)
        row = [t for tile in tiles for t in (tile, gap)][:-1]
        return encode_image(np.hstack(row), "jpeg", quality=90)


class EvidenceOps(EngineBase):
    def lead_evidence(self, actor: Actor, lead_id: str) -> LeadEvidence:
        """The probe and candidate face crops of a lead, with scores, for its review (ledgered: who looked)."""
        op = Op(actor, Operation.LEAD_SHOW)
        with self._guard(op):
            self._permit(op)
            self._require_training(op)
            lead = lead_from_dict(self.store.get_record(LEAD, lead_id).data)
            op.gallery, op.reference, op.purpose = lead.gallery, lead.reference, lead.purpose
            reviews = [review_from_dict(r.data) for r in self.store.list_records(REVIEW, gallery=lead.gallery)
                       if r.data["lead_id"] == lead_id]
            shown = reviews if lead.status is not LeadStatus.PENDING else [r for r in reviews if r.reviewer == actor.id]
            probe = self.store.get_evidence(lead.id) if lead.evidence else None
            cands = tuple(EvidenceCandidate(c.subject_ref, c.score, i + 1, self._crop(c.template_id))
                          for i, c in enumerate(lead.candidates))
            self._log(op, "ok", {"lead_id": lead.id, "probe_crop": probe is not None,
                                 "candidate_crops": sum(c.crop is not None for c in cands),
                                 "reviews_shown": len(shown)})
        return LeadEvidence(lead, probe, cands, tuple(sorted(shown, key=lambda r: r.at)))

    def _crop(self, template_id: int | None) -> bytes | None:
        if template_id is None:
            return None
        try:
            return self.store.get_crop(template_id)
        except NotFoundError:  # the subject was erased since: its face went with it
            return None

    # -- keeping and deleting the probe's crop ---------------------------------------------------------
    def _close_evidence(self, tx: Any, lead: Lead) -> Lead:
        """A decided lead keeps its probe crop ``review.evidence_days`` more (none: deleted now)."""
        if lead.status is LeadStatus.PENDING or not lead.evidence or lead.decided_at is None:
            return lead
        days = self.policy.evidence_days
        if days == 0:
            tx.delete_evidence(lead.id)
            return replace(lead, evidence=False, evidence_until=lead.decided_at)
        return replace(lead, evidence_until=lead.decided_at + timedelta(days=days))

    def _purge_evidence(self, tx: Any, at: datetime, subject_ref: str | None = None,
                        gallery: str | None = None) -> int:
        """Delete probe crops whose time is up at ``at`` (or, with ``subject_ref``, every one of a lead
        naming that subject in ``gallery``); returns how many."""
        purged = 0
        for r in tx.list_records(LEAD, gallery=gallery):
            lead = lead_from_dict(r.data)
            due = lead.evidence_until is not None and lead.evidence_until <= at
            names = subject_ref is not None and subject_ref in lead.subject_refs
            if lead.evidence and (names if subject_ref is not None else due):
                tx.delete_evidence(lead.id)
                tx.put_record(LEAD, lead.id, replace(lead, evidence=False).to_dict(), gallery=lead.gallery)
                purged += 1
        return purged
