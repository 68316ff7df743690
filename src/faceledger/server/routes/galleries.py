"""Galleries, subjects (list, erase, data-subject export), consent and enrollment."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, UploadFile

from faceledger.records import ConsentRequest

from ..deps import Auth
from ..problems import ServiceError, responses
from ..schemas import (
    ConsentIn,
    ConsentOut,
    EnrollOut,
    ErasedOut,
    GalleryIn,
    GalleryOut,
    SubjectFacesOut,
    SubjectOut,
    WithdrawIn,
)
from . import FACE_CHOICE_HELP, face_choice, jpeg_data_url

router = APIRouter(prefix="/v1/galleries", tags=["galleries"])

GalleryName = Annotated[str, Path(max_length=128, description="The gallery's name.")]
SubjectRef = Annotated[str, Path(min_length=1, max_length=256, description="The subject's external reference.")]


def gallery_out(engine: Any, actor: Any, g: Any) -> GalleryOut:
    stats = engine.gallery_stats(actor, g.name)
    return GalleryOut(name=g.name, model_id=g.model_id, dimension=g.dimension, retention_days=g.retention_days,
                      thresholds=g.thresholds, operating_point=g.operating_point, keep_photos=g.keep_photos,
                      quality_gate=g.quality_gate, created_at=g.created_at, subjects=stats.subjects,
                      templates=stats.templates)


@router.get("", response_model=list[GalleryOut], responses=responses(403))
async def list_galleries(call: Auth):
    """Every gallery with its model, thresholds and counts."""
    return await call.respond(lambda: call.gov(lambda e, a: [gallery_out(e, a, g).model_dump(mode="json")
                                                           for g in e.list_galleries(a)]))


@router.post("", status_code=201, response_model=GalleryOut, responses=responses(403, 409))
async def create_gallery(call: Auth, body: GalleryIn):
    """A gallery pinned to the service's model and its calibrated thresholds."""
    gate = body.quality_gate.model_dump() if body.quality_gate else None

    async def work() -> GalleryOut:
        return await call.gov(lambda e, a: gallery_out(e, a, e.create_gallery(
            a, body.name, retention_days=body.retention_days, operating_point=body.operating_point,
            quality_gate=gate, keep_photos=body.keep_photos)))

    return await call.respond(work, 201)


@router.get("/{gallery}", response_model=GalleryOut, responses=responses(403, 404))
async def show_gallery(call: Auth, gallery: GalleryName):
    """One gallery's settings and counts."""
    return await call.respond(lambda: call.gov(lambda e, a: gallery_out(e, a, e.gallery(a, gallery))))


@router.delete("/{gallery}", response_model=ErasedOut, responses=responses(403, 404, 409))
async def delete_gallery(call: Auth, gallery: GalleryName,
                         erase_subjects: Annotated[bool, Query(description="Also erase its subjects.")] = False):
    """Delete a gallery; refused while it holds subjects unless ``erase_subjects``."""
    async def work() -> ErasedOut:
        n = await call.gov(lambda e, a: e.delete_gallery(a, gallery, erase_subjects=erase_subjects))
        return ErasedOut(subjects_erased=n)
    return await call.respond(work)


# -- subjects ----------------------------------------------------------------------------------------
@router.get("/{gallery}/subjects", response_model=list[SubjectOut], responses=responses(403, 404))
async def list_subjects(call: Auth, gallery: GalleryName):
    """The subjects of a gallery (references, names, template counts; never templates)."""
    def run(e, a):  # noqa: ANN001, ANN202
        return [SubjectOut(id=s.id, gallery=s.gallery, subject_ref=s.external_ref, display_name=s.display_name,
                           created_at=s.created_at, templates=s.template_count).model_dump(mode="json")
                for s in e.list_subjects(a, gallery)]
    return await call.respond(lambda: call.gov(run))


@router.delete("/{gallery}/subjects/{subject_ref}", response_model=ErasedOut, responses=responses(403, 404))
async def erase_subject(call: Auth, gallery: GalleryName, subject_ref: SubjectRef,
                        reason: Annotated[str, Query(min_length=1, max_length=200)] = "erasure_request"):
    """Erase a subject: templates, photos, index entries and its data key; the ledger proves it."""
    async def work() -> ErasedOut:
        n = await call.gov(lambda e, a: e.erase_subject(a, gallery, subject_ref, reason=reason))
        return ErasedOut(templates_erased=n)
    return await call.respond(work)


@router.get("/{gallery}/subjects/{subject_ref}/faces", response_model=SubjectFacesOut,
            responses=responses(403, 404))
async def subject_faces(call: Auth, gallery: GalleryName, subject_ref: SubjectRef):
    """The subject's enrolled face crops as ``data:image/jpeg`` URLs (roles with ``subject_faces``;
    each look ledgered). Templates enrolled before crops were kept have none."""
    def run(e, a):  # noqa: ANN001, ANN202
        crops = e.subject_faces(a, gallery, subject_ref)
        return SubjectFacesOut(subject_ref=subject_ref, faces=[jpeg_data_url(c) for c in crops])
    return await call.respond(lambda: call.gov(run))


@router.get("/{gallery}/subjects/{subject_ref}/export", response_model=dict[str, Any], responses=responses(403))
async def export_subject(call: Auth, gallery: GalleryName, subject_ref: SubjectRef):
    """Data-subject access: consents, template metadata (never vectors) and ledger entries naming them."""
    return await call.respond(lambda: call.gov(lambda e, a: e.export_subject(a, gallery, subject_ref)))


# -- consent -------------------------------------------------------------------------------------------
@router.post("/{gallery}/consents", status_code=201, response_model=ConsentOut, responses=responses(403, 404, 409))
async def record_consent(call: Auth, gallery: GalleryName, body: ConsentIn):
    """Record a subject's consent (required before enrollment)."""
    request = ConsentRequest(
        gallery=gallery, subject_ref=body.subject_ref, purpose=body.purpose, notice_version=body.notice_version,
        method=body.method, legal_basis=body.legal_basis, given_at=body.given_at, expires_at=body.expires_at,
        valid_days=body.valid_days, collected_by=body.collected_by,
        supersedes=body.supersedes)
    return await call.respond(lambda: call.gov(lambda e, a: e.record_consent(a, request).to_dict()), 201)


@router.get("/{gallery}/consents", response_model=list[ConsentOut], responses=responses(403))
async def list_consents(call: Auth, gallery: GalleryName,
                        subject_ref: Annotated[str | None, Query(max_length=256)] = None):
    """Consent records of a gallery, or of one subject."""
    return await call.respond(lambda: call.gov(lambda e, a: [r.to_dict() for r in e.consents(a, gallery,
                                                                                              subject_ref)]))


@router.post("/{gallery}/consents/withdraw", response_model=ErasedOut, responses=responses(403, 404, 409))
async def withdraw_consent(call: Auth, gallery: GalleryName, body: WithdrawIn):
    """Withdraw a subject's consent: the subject is erased at once."""
    async def work() -> ErasedOut:
        n = await call.gov(lambda e, a: e.withdraw_consent(a, gallery, body.subject_ref))
        return ErasedOut(templates_erased=n)
    return await call.respond(work)


# -- enrollment ----------------------------------------------------------------------------------------
@router.post("/{gallery}/enroll", status_code=201, response_model=EnrollOut, responses=responses(403, 404, 409, 413,
                                                                                                503))
async def enroll(
    call: Auth,
    gallery: GalleryName,
    subject_ref: Annotated[str, Form(min_length=1, max_length=256, description="The subject's reference.")],
    photos: Annotated[list[UploadFile], File(description="One or more photos of the subject.")],
    purpose: Annotated[str, Form(min_length=1, max_length=64)] = "access_control",
    display_name: Annotated[str | None, Form(max_length=256)] = None,
    face: Annotated[str | None, Form(max_length=16, description=FACE_CHOICE_HELP)] = None,
    faces: Annotated[list[Annotated[str, Form(max_length=16)]] | None, Form(
        description="One face choice per photo, in order (instead of face): " + FACE_CHOICE_HELP)] = None,
):
    """Enroll a consenting subject from photos (all must pass the quality gate, or nothing is stored).
    A photo with several faces and none chosen is refused; its rejection lists the faces' ``boxes``
    (x, y, w, h, in face-index order) so a client can let the user pick one (``faces``)."""
    limit = call.service.settings.max_enroll_photos
    if len(photos) > limit:
        raise ServiceError(413, "too_many_photos", f"at most {limit} photos per enrollment, got {len(photos)}")
    data = [await call.photo(p) for p in photos]
    choice = [face_choice(f) for f in faces] if faces else face_choice(face)

    async def work() -> EnrollOut:
        r = await call.model("enroll", lambda e, a: e.enroll(a, gallery, subject_ref, data, purpose=purpose,
                                                             display_name=display_name or None, face=choice))
        return EnrollOut(gallery=r.gallery, subject_ref=r.subject_ref, subject_id=r.subject_id,
                         templates_added=r.templates_added, templates_existing=r.templates_existing,
                         ledger_seq=r.ledger_seq)

    return await call.respond(work, 201)
