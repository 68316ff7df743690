"""1:N identification under an authorization, and the human review of its leads."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np

from faceledger.errors import NotFoundError
from faceledger.governance._time import from_iso, to_iso
from faceledger.governance.authorization import (
    Authorization,
    IdentificationRequest,
    authorization_from_dict,
    check_identification,
    revoke,
)
from faceledger.governance.builders import AuthorizationRequest, check_names
from faceledger.governance.fpir import check_expected_fpir, point_fmr
from faceledger.governance.fpir import expected_fpir as expected_fpir  # re-exported (earlier home)
from faceledger.governance.policy import check_purpose, search_limits
from faceledger.governance.review import (
    Decision,
    Lead,
    LeadCandidate,
    LeadStatus,
    Review,
    add_review,
    lead_from_dict,
    review_from_dict,
    review_result,
)
from faceledger.governance.roles import Operation
from faceledger.governance.targets import targets_summary
from faceledger.media.image import ImageSource
from faceledger.recognizer import FaceChoice, choose_face

from ._base import EngineBase, Op
from .evidence import face_crop
from .results import Actor, FaceCandidates, IdentifyResult, LeadCandidateView

__all__ = ["IdentifyOps"]

AUTHORIZATION, LEAD, REVIEW, SEARCH_WINDOW = "authorization", "lead", "review", "search_window"


class IdentifyOps(EngineBase):
    # -- authorizations ---------------------------------------------------------------
    def record_authorization(self, actor: Actor, auth: Authorization | AuthorizationRequest) -> Authorization:
        """Record what allows 1:N searches (a court order, consented access control, ...): an
        :class:`AuthorizationRequest` (built here, the engine's clock and the actor as defaults)
        or a ready :class:`Authorization`. Its galleries and purposes are named one by one (no
        wildcard), and each purpose must be one the policy allows."""
        op = Op(actor, Operation.AUTHORIZATION_RECORD, reference=auth.reference)
        with self._guard(op):
            self._permit(op)
            if isinstance(auth, AuthorizationRequest):
                auth = auth.build(self.now(), actor.id)
            check_names(auth.galleries, "galleries")
            for purpose in sorted(check_names(auth.purposes, "purposes")):
                check_purpose(self.policy, purpose)
            with self.store.transaction() as tx:
                for g in sorted(auth.galleries):
                    tx.get_gallery(g)
                tx.put_record(AUTHORIZATION, auth.id, auth.to_dict())
                self._commit(tx, op, {"authorization_id": auth.id, "kind": auth.kind.value, "issuer": auth.issuer,
                                      "galleries": sorted(auth.galleries), "purposes": sorted(auth.purposes),
                                      "valid_until": auth.to_dict()["valid_until"]})
        return auth

    def revoke_authorization(self, actor: Actor, authorization_id: str) -> Authorization:
        op = Op(actor, Operation.AUTHORIZATION_REVOKE)
        with self._guard(op):
            self._permit(op)
            with self.store.transaction() as tx:
                auth = revoke(authorization_from_dict(tx.get_record(AUTHORIZATION, authorization_id).data), self.now())
                op.reference = auth.reference
                tx.put_record(AUTHORIZATION, auth.id, auth.to_dict())
                self._commit(tx, op, {"authorization_id": auth.id})
        return auth

    def authorizations(self, actor: Actor) -> list[Authorization]:
        op = Op(actor, Operation.AUTHORIZATION_LIST)
        with self._guard(op):
            self._permit(op)
            return [authorization_from_dict(r.data) for r in self.store.list_records(AUTHORIZATION)]

    # -- identification ------------------------------------------------------------------
    def target_vocabulary(self) -> dict[str, list[str]]:
        """The words a search may declare it is aimed at (``allowed``) and those that refuse it (``prohibited``)."""
        return {"allowed": sorted(self.policy.allowed_targets), "prohibited": sorted(self.policy.prohibited_targets)}

    def identify(
        self,
        actor: Actor,
        gallery: str,
        photo: ImageSource,
        *,
        purpose: str,
        flags: Iterable[str] = (),
        live: bool = False,
        face: FaceChoice | str = "all",
        top_k: int | None = None,
        operating_point: str | None = None,
    ) -> IdentifyResult:
        """Search ``gallery`` for the faces of ``photo``; every rule is checked before any face is read.

        ``flags`` are the declared targets: words of the policy's vocabulary, normalised (see
        :mod:`faceledger.governance.targets`); a prohibited or unknown one refuses the search. The
        ledger entry records them as given and normalised, whatever the outcome.

        ``face="all"`` (default) searches every face; ``None`` requires exactly one; an index,
        ``"largest"`` or ``"center"`` picks one. Candidates become leads in the review queue.
        """
        op = Op(actor, Operation.IDENTIFY, gallery=gallery, purpose=purpose)
        with self._guard(op):
            declared = list(flags)
            op.facts["targets"] = targets_summary(self.policy.resolve_targets(declared))
            self._permit(op)
            self._require_training(op)
            auth = self._check_identification(op, gallery, declared, live)
            op.reference = auth.reference
            g = self.store.get_gallery(gallery)
            self._check_model(g)
            point = g.operating_point if operating_point is None else operating_point
            if point not in g.thresholds:
                raise NotFoundError(f"gallery '{gallery}' has no operating point '{point}'")
            limits = search_limits(self.policy, g.thresholds[point], top_k)
            subjects = self.store.gallery_stats(gallery).subjects
            fpir = check_expected_fpir(self.policy.identification.max_expected_fpir, gallery, subjects, point,
                                       self._point_fmr(point, limits.threshold, g.thresholds),
                                       self.recognizer.backend.thresholds.points, g.thresholds)
            image = self.recognizer.load(photo, for_search=True)
            op.inputs = {"photo": image.sha256}
            faces = self.recognizer.detect(image)
            if face != "all":
                faces = [choose_face(faces, face, *image.full_size)]  # type: ignore[arg-type]
            templates = self.recognizer.embed(image, faces)
            hits = self.store.search(gallery, np.stack([t.vector for t in templates]), limits.top_k,
                                     model_id=g.model_id) if templates else []
            per_face = [[replace(c, score=clamp_cosine(c.score)) for c in h if c.score >= limits.threshold]
                        for h in hits]
            crops = [face_crop(image.rgb, f) if cs else None for f, cs in zip(faces, per_face, strict=True)]
            with self.store.transaction() as tx:
                self._count_search(tx, actor)
                summary = [[{"subject_ref": c.external_ref, "score": round(c.score, 6)} for c in cs] for cs in per_face]
                row = self._commit(tx, op, {"faces": len(faces), "candidates": summary, "threshold": limits.threshold,
                                            "operating_point": point, "model_id": g.model_id,
                                            "authorization_id": auth.id, "no_match": not any(per_face),
                                            "gallery_subjects": subjects,
                                            "expected_fpir": None if fpir.expected_fpir is None
                                            else round(fpir.expected_fpir, 6),
                                            "max_expected_fpir": fpir.max_expected_fpir})
                lead_ids = [self._open_lead(tx, actor, (g.name, image.sha256, crop), cs, limits.threshold, g.model_id,
                                            row.seq, op) if cs else None for cs, crop in zip(per_face, crops,
                                                                                             strict=True)]
        results = tuple(
            FaceCandidates(f, tuple(LeadCandidateView(c.external_ref, c.score, i + 1) for i, c in enumerate(cs)), lid)
            for f, cs, lid in zip(faces, per_face, lead_ids, strict=True)
        )
        return IdentifyResult(gallery, results, limits.threshold, point, g.model_id, auth.id, row.seq,
                              gallery_subjects=subjects, expected_fpir=fpir.expected_fpir)

    def _point_fmr(self, point: str, threshold: float, thresholds: dict[str, float]) -> float | None:
        """The calibrated FMR (upper bound if published) of the threshold in use (``None`` if raised
        by policy or not calibrated)."""
        calibrated = self.recognizer.backend.thresholds.points.get(point)
        if calibrated is None or threshold != thresholds.get(point):
            return None
        return float(point_fmr(calibrated))

    def _check_identification(self, op: Op, gallery: str, flags: list[str], live: bool) -> Authorization:
        now = self.now()
        auths = [authorization_from_dict(r.data) for r in self.store.list_records(AUTHORIZATION)]
        request = IdentificationRequest(actor=op.actor.id, role=op.actor.role, gallery=gallery, purpose=op.purpose,
                                        at=now, live=live, flags=frozenset(flags),
                                        recent_searches=len(self._recent_searches(self.store, op.actor.id)))
        return check_identification(self.policy, request, auths)

    def _recent_searches(self, reader: Any, actor_id: str) -> list[str]:
        try:
            times = reader.get_record(SEARCH_WINDOW, actor_id).data["times"]
        except NotFoundError:
            return []
        since = self.now() - timedelta(hours=1)
        return [t for t in times if from_iso(t) > since]

    def _count_search(self, tx: Any, actor: Actor) -> None:
        times = [*self._recent_searches(tx, actor.id), to_iso(self.now())]
        tx.put_record(SEARCH_WINDOW, actor.id, {"times": times})

    def _open_lead(self, tx: Any, actor: Actor, probe: tuple[str, str, bytes | None], cands: list[Any],
                   threshold: float, model_id: str, seq: int, op: Op) -> str:
        """A pending lead for ``probe`` (gallery, photo digest, face crop kept as its evidence)."""
        gallery, digest, crop = probe
        lead = Lead(id=uuid.uuid4().hex, search_seq=seq, gallery=gallery, probe_digest=digest,
                    candidates=tuple(LeadCandidate(c.external_ref, float(c.score), c.template_id) for c in cands),
                    threshold=threshold, model_id=model_id, searched_by=actor.id, created_at=self.now(),
                    purpose=op.purpose, reference=op.reference, evidence=crop is not None)
        tx.put_record(LEAD, lead.id, lead.to_dict(), gallery=gallery)
        if crop is not None:
            tx.put_evidence(lead.id, crop)
        return lead.id

    # -- review -----------------------------------------------------------------------
    def leads(self, actor: Actor, *, status: str | None = None, gallery: str | None = None) -> list[Lead]:
        """The review queue (``status="pending"`` for what waits)."""
        op = Op(actor, Operation.LEAD_LIST, gallery=gallery)
        with self._guard(op):
            self._permit(op)
            leads = [lead_from_dict(r.data) for r in self.store.list_records(LEAD, gallery=gallery)]
            return [x for x in leads if status is None or x.status == LeadStatus(status)]

    def review(self, actor: Actor, lead_id: str, decision: Decision | str, rationale: str, *,
               subject_ref: str | None = None) -> Lead:
        """Confirm, reject or mark a lead inconclusive, with a rationale (the searcher cannot)."""
        op = Op(actor, Operation.REVIEW)
        with self._guard(op):
            self._permit(op)
            self._require_training(op)
            with self.store.transaction() as tx:
                lead = lead_from_dict(tx.get_record(LEAD, lead_id).data)
                op.gallery, op.reference, op.purpose = lead.gallery, lead.reference, lead.purpose
                earlier = [review_from_dict(r.data) for r in tx.list_records(REVIEW, gallery=lead.gallery)
                           if r.data["lead_id"] == lead_id]
                review = Review(lead_id, actor.id, Decision(decision), rationale, self.now(), subject_ref)
                outcome = add_review(lead, earlier, review, self.policy)
                tx.put_record(REVIEW, f"{lead_id}:{actor.id}", review.to_dict(), gallery=lead.gallery)
                decided = self._close_evidence(tx, outcome.lead)  # type: ignore[attr-defined]
                tx.put_record(LEAD, lead_id, decided.to_dict(), gallery=lead.gallery)
                self._commit(tx, op, review_result(outcome))
        return decided


def clamp_cosine(score: float) -> float:
    """A cosine similarity brought back into [-1, 1]: float32 dot products of unit vectors can land a
    hair outside (the very photo that was enrolled scores 1.0000001)."""
    return min(1.0, max(-1.0, float(score)))
