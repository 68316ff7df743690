"""``POST /v1/detect`` and ``POST /v1/verify``: photos in, faces and 1:1 decisions out (ledgered by the engine)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from ..deps import Auth
from ..problems import responses
from ..schemas import DetectOut, VerifyOut, face_out, verify_out
from . import FACE_CHOICE_HELP, face_choice

router = APIRouter(prefix="/v1", tags=["photos"])

Photo = Annotated[UploadFile, File(description="A JPEG, PNG or WebP photo (at most 15 MB, 40 megapixels).")]
Purpose = Annotated[str | None, Form(max_length=64, description="Declared purpose (allowed by the policy).")]


@router.post("/detect", response_model=DetectOut, responses=responses(403, 413, 503))
async def detect(
    call: Auth,
    photo: Photo,
    purpose: Purpose = None,
    min_face_size: Annotated[float | None, Form(ge=1, le=10000, description="Pixels.")] = None,
    score_threshold: Annotated[float | None, Form(ge=0, le=1)] = None,
):
    """Every face in the photo: box, five landmarks, detection score and quality."""
    data = await call.photo(photo)

    async def work() -> DetectOut:
        def run(e, a):  # noqa: ANN001, ANN202
            opts = {k: v for k, v in (("min_face_size", min_face_size), ("score_threshold", score_threshold))
                    if v is not None}
            return e.detect(a, data, purpose=purpose, **opts), e.recognizer.model_id
        faces, model_id = await call.model("detect", run)
        return DetectOut(faces=[face_out(f) for f in faces], count=len(faces), model_id=model_id)

    return await call.respond(work)


@router.post("/verify", response_model=VerifyOut, responses=responses(403, 413, 503))
async def verify(
    call: Auth,
    photo_a: Photo,
    photo_b: Photo,
    purpose: Purpose = None,
    face_a: Annotated[str | None, Form(max_length=16, description=FACE_CHOICE_HELP)] = None,
    face_b: Annotated[str | None, Form(max_length=16, description=FACE_CHOICE_HELP)] = None,
    operating_point: Annotated[str | None, Form(max_length=64, description="e.g. fmr1e-3 (default).")] = None,
):
    """Whether two photos show the same person (1:1), with the score, threshold and model."""
    a, b = await call.photo(photo_a), await call.photo(photo_b)
    choice_a, choice_b = face_choice(face_a), face_choice(face_b)

    async def work() -> VerifyOut:
        result = await call.model("verify", lambda e, actor: e.verify(
            actor, a, b, purpose=purpose or None, face_a=choice_a, face_b=choice_b,
            operating_point=operating_point or None))
        return verify_out(result)

    return await call.respond(work)
