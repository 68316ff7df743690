"""``POST /v1/detect``, ``/v1/verify`` and ``/v1/redact``: photos in; faces, 1:1 decisions or a redacted
photo out (each ledgered by the engine)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Response, UploadFile

from faceledger.core.redaction import RedactionStyle
from faceledger.redact import RedactOptions

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


_IMAGE = {"schema": {"type": "string", "format": "binary"}}
_REDACTED = {200: {"description": "The redacted photo (same format as the upload, no metadata), as an attachment.",
                   "content": {"image/jpeg": _IMAGE, "image/png": _IMAGE, "image/webp": _IMAGE},
                   "headers": {"X-Faces-Redacted": {"description": "Face regions obscured.",
                                                    "schema": {"type": "integer"}},
                               "X-Fully-Obscured": {"description": "true: detection failed and the whole photo "
                                                    "was painted over (fail closed).", "schema": {"type": "string"}},
                               "X-Ledger-Seq": {"description": "The ledger entry of this redaction.",
                                                "schema": {"type": "integer"}}}}}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@router.post("/redact", response_class=Response, responses={**responses(403, 413, 503), **_REDACTED})
async def redact(
    call: Auth,
    photo: Photo,
    purpose: Purpose = None,
    method: Annotated[Literal["blur", "pixelate", "fill"], Form(description="How faces are obscured.")] = "blur",
    mask: Annotated[Literal["ellipse", "box"], Form(description="The ellipse in the grown box, or the box.")]
    = "ellipse",
    mask_scale: Annotated[float, Form(ge=1, le=4, description="Face box growth (width and height x this).")] = 1.5,
):
    """Every face in the photo made unrecognisable; the answer is the redacted photo itself.

    Nothing is stored: the ledger records the photo's digest, the output's digest and the face count.
    Idempotency-Key is not honoured here (the service never keeps a photo to replay); a repeat runs again."""
    data = await call.photo(photo)
    options = RedactOptions(style=RedactionStyle(method=method, mask=mask, mask_scale=mask_scale))
    out = await call.model("redact", lambda e, a: e.redact_photo(a, data, purpose=purpose or None, options=options))
    name = f"{_stem(photo.filename)}_redacted.{out.extension}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "X-Faces-Redacted": str(out.faces),
               "X-Fully-Obscured": "true" if out.obscured else "false", "X-Ledger-Seq": str(out.ledger_seq)}
    return Response(out.data, media_type=out.media_type, headers=headers)


def _stem(filename: str | None) -> str:
    """A safe download name from an upload's file name (no path, no quotes; ``photo`` if nothing is left)."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return _UNSAFE.sub("_", stem).strip("._")[:64] or "photo"
