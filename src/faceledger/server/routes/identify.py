"""Authorizations, 1:N identification (results are leads) and the human review of leads."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, UploadFile

from faceledger.records import AuthorizationRequest

from ..deps import Auth
from ..problems import responses
from ..schemas import (
    AuthorizationIn,
    AuthorizationOut,
    CandidateOut,
    EvidenceCandidateOut,
    FaceCandidatesOut,
    IdentifyOut,
    LeadEvidenceOut,
    LeadOut,
    LeadStatusQ,
    ReviewIn,
    TargetsOut,
    face_out,
)
from . import face_choice

router = APIRouter(prefix="/v1", tags=["identification"])

Id = Annotated[str, Path(min_length=1, max_length=128)]


# -- authorizations ------------------------------------------------------------------------------------
@router.post("/authorizations", status_code=201, response_model=AuthorizationOut, responses=responses(403, 404, 409))
async def record_authorization(call: Auth, body: AuthorizationIn):
    """Record what allows 1:N searches (court order, warrant, consented access control, ...)."""
    request = AuthorizationRequest(
        kind=body.kind, reference=body.reference, issuer=body.issuer, galleries=body.galleries,
        purposes=body.purposes, valid_from=body.valid_from, valid_until=body.valid_until, valid_days=body.valid_days,
        live_allowed=body.live_allowed)
    return await call.respond(lambda: call.gov(lambda e, a: e.record_authorization(a, request).to_dict()), 201)


@router.get("/authorizations", response_model=list[AuthorizationOut], responses=responses(403))
async def list_authorizations(call: Auth):
    """Every authorization, with its scope and validity."""
    return await call.respond(lambda: call.gov(lambda e, a: [x.to_dict() for x in e.authorizations(a)]))


@router.post("/authorizations/{authorization_id}/revoke", response_model=AuthorizationOut,
             responses=responses(403, 404, 409))
async def revoke_authorization(call: Auth, authorization_id: Id):
    """Revoke an authorization from now on."""
    return await call.respond(lambda: call.gov(lambda e, a: e.revoke_authorization(a, authorization_id).to_dict()))


# -- identification --------------------------------------------------------------------------------------
@router.get("/targets", response_model=TargetsOut, responses=responses())
async def targets(call: Auth):
    """The declared targets a search may name (``allowed``) and those that refuse it (``prohibited``)."""
    return await call.respond(lambda: call.gov(lambda e, a: e.target_vocabulary()))


@router.post("/galleries/{gallery}/identify", response_model=IdentifyOut,
             responses=responses(403, 404, 409, 413, 503))
async def identify(
    call: Auth,
    gallery: Annotated[str, Path(max_length=128)],
    photo: Annotated[UploadFile, File(description="The probe photo.")],
    purpose: Annotated[str, Form(min_length=1, max_length=64, description="Must be in the authorization's scope.")],
    flags: Annotated[list[str] | None, Form(description=(
        "Declared targets, words of the policy's vocabulary (GET /v1/targets); prohibited or unknown ones refuse."))]
    = None,
    top_k: Annotated[int | None, Form(ge=1, le=1000, description="Most candidates per face (capped by policy).")]
    = None,
    face: Annotated[str, Form(max_length=16, description="'all' (default), an index, 'largest' or 'center'.")]
    = "all",
):
    """1:N search under a valid authorization. Candidates are leads for human review, never decisions;
    when nobody reaches the threshold the answer is an explicit no match. Photos only: live streams
    are never searched over HTTP."""
    data = await call.photo(photo)
    choice = "all" if face.strip() in ("", "all") else face_choice(face)

    async def work() -> IdentifyOut:
        r = await call.model("identify", lambda e, a: e.identify(a, gallery, data, purpose=purpose,
                                                                 flags=[f for f in flags or () if f], top_k=top_k,
                                                                 face=choice))
        faces = [FaceCandidatesOut(face=face_out(f.face), lead_id=f.lead_id, no_match=f.no_match,
                                   candidates=[CandidateOut(subject_ref=c.subject_ref, score=round(c.score, 6),
                                                            rank=c.rank) for c in f.candidates]) for f in r.faces]
        return IdentifyOut(label=r.label, gallery=r.gallery, no_match=r.no_match, threshold=round(r.threshold, 6),
                           operating_point=r.operating_point, model_id=r.model_id, authorization_id=r.authorization_id,
                           ledger_seq=r.ledger_seq, faces=faces, gallery_subjects=r.gallery_subjects,
                           expected_fpir=None if r.expected_fpir is None else round(r.expected_fpir, 6))

    return await call.respond(work)


# -- review ----------------------------------------------------------------------------------------------
@router.get("/leads", response_model=list[LeadOut], responses=responses(403))
async def list_leads(call: Auth, status: LeadStatusQ | None = None,
                     gallery: Annotated[str | None, Query(max_length=128)] = None):
    """The review queue (``status=pending`` for what waits), newest first."""
    def run(e, a):  # noqa: ANN001, ANN202
        leads = e.leads(a, status=status.value if status else None, gallery=gallery)
        return [x.to_dict() for x in sorted(leads, key=lambda x: x.created_at, reverse=True)]
    return await call.respond(lambda: call.gov(run))


@router.get("/leads/{lead_id}/evidence", response_model=LeadEvidenceOut, responses=responses(403, 404))
async def lead_evidence(call: Auth, lead_id: Id):
    """The probe's face and each candidate's enrolled face, with scores, to compare before deciding
    (ledgered as ``lead_show``). With two reviewers, the other's decision is hidden until the lead closes."""
    def run(e, a):  # noqa: ANN001, ANN202
        ev = e.lead_evidence(a, lead_id)
        return LeadEvidenceOut(
            lead=LeadOut(**ev.lead.to_dict()), label=ev.label, probe_crop=_data_url(ev.probe_crop),
            candidates=[EvidenceCandidateOut(subject_ref=c.subject_ref, score=round(c.score, 6), rank=c.rank,
                                             crop=_data_url(c.crop)) for c in ev.candidates],
            reviews=[{k: v for k, v in r.to_dict().items() if k != "lead_id"} for r in ev.reviews])
    return await call.respond(lambda: call.gov(run))


def _data_url(jpeg: bytes | None) -> str | None:
    return None if jpeg is None else "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


@router.post("/leads/{lead_id}/reviews", response_model=LeadOut, responses=responses(403, 404, 409))
async def review_lead(call: Auth, lead_id: Id, body: ReviewIn):
    """Confirm, reject or mark a lead inconclusive, with a rationale (the searcher cannot)."""
    return await call.respond(lambda: call.gov(lambda e, a: e.review(
        a, lead_id, body.decision, body.rationale, subject_ref=body.subject_ref).to_dict()))
