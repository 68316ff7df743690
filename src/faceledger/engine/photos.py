"""Detection, 1:1 verification and redaction through the engine: permitted, purposeful, ledgered.

Redaction enrolls nobody and stores nothing: the ledger entry holds the input's
SHA-256, the output's SHA-256 and counts (faces obscured, method, mask, model), never
boxes or pixels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from faceledger.errors import InputError
from faceledger.governance.policy import check_purpose
from faceledger.governance.roles import Operation
from faceledger.media.encode import encode_image
from faceledger.media.image import ImageSource
from faceledger.recognizer import FaceChoice
from faceledger.redact import RedactedImage, RedactOptions, redact_image
from faceledger.types import Face, VerifyResult

from ._base import EngineBase, Op
from .results import Actor

__all__ = ["PhotoOps", "RedactedPhoto"]

#: Output encoding per input format (``array`` inputs are written as PNG, losslessly).
_ENCODE = ("jpeg", "png", "webp")
_QUALITY = 92
_MAX_MESSAGE = 300


@dataclass(frozen=True, eq=False, slots=True)
class RedactedPhoto:
    """A photo redacted by :meth:`PhotoOps.redact_photo`, encoded and ready to hand out.

    ``data`` is the encoded photo (``format``: ``jpeg``, ``png`` or ``webp``, the input's
    own format), written from pixels only: no EXIF, GPS, XMP, IPTC, ICC or comment.
    ``width`` and ``height`` are pixels of the upright image. ``faces`` is the number
    of face regions obscured. ``obscured`` is true when detection failed and the whole
    photo was painted one colour (fail closed); ``error`` then says why. ``sha256`` is
    the digest of ``data``, the same one the ledger entry ``ledger_seq`` records.
    """

    data: bytes
    format: str
    width: int
    height: int
    faces: int
    obscured: bool
    error: str | None
    model_id: str
    sha256: str
    ledger_seq: int

    @property
    def media_type(self) -> str:
        """The MIME type of ``data``, e.g. ``image/jpeg``."""
        return f"image/{self.format}"

    @property
    def extension(self) -> str:
        """The file extension of ``data``, without the dot: ``jpg``, ``png`` or ``webp``."""
        return "jpg" if self.format == "jpeg" else self.format


class PhotoOps(EngineBase):
    def detect(self, actor: Actor, photo: ImageSource, *, purpose: str | None = None, **options: float) -> list[Face]:
        """Every face in ``photo`` (see :meth:`Recognizer.detect`); the ledger records the count."""
        op = Op(actor, Operation.DETECT, purpose=purpose)
        with self._guard(op):
            self._permit(op)
            if purpose is not None:
                op.purpose = check_purpose(self.policy, purpose)
            image = self.recognizer.load(photo, for_search=True)
            op.inputs = {"photo": image.sha256}
            faces = self.recognizer.detect(image, **options)  # type: ignore[arg-type]
            self._log(op, "ok", {"faces": len(faces), "model_id": self.recognizer.model_id})
        return faces

    def verify(
        self,
        actor: Actor,
        a: ImageSource,
        b: ImageSource,
        *,
        purpose: str | None = None,
        face_a: FaceChoice = None,
        face_b: FaceChoice = None,
        operating_point: str | None = None,
    ) -> VerifyResult:
        """1:1 verification of two photos for a declared ``purpose`` (see :meth:`Recognizer.verify`).

        Without a ``purpose`` the policy's purpose is used when it allows exactly one.
        """
        op = Op(actor, Operation.VERIFY, purpose=purpose)
        with self._guard(op):
            self._permit(op)
            if purpose is None and len(self.policy.purposes) == 1:
                (purpose,) = self.policy.purposes
            op.purpose = check_purpose(self.policy, purpose)
            rec = self.recognizer
            ia, ib = rec.load(a, for_search=True), rec.load(b, for_search=True)
            op.inputs = {"photo_a": ia.sha256, "photo_b": ib.sha256}
            result = rec.verify(ia, ib, face_a=face_a, face_b=face_b, operating_point=operating_point)
            self._log(op, "ok", {
                "score": round(result.score, 6),
                "threshold": round(result.threshold, 6),
                "match": result.match,
                "operating_point": result.operating_point,
                "model_id": result.model_id,
            })
        return result

    def redact_photo(
        self,
        actor: Actor,
        photo: ImageSource,
        *,
        purpose: str | None = None,
        options: RedactOptions | None = None,
    ) -> RedactedPhoto:
        """Obscure every face of ``photo`` with the engine's detector; nothing is enrolled or stored.

        ``options`` are the redaction options (style, score threshold, minimum face
        size); ``keep_metadata`` is refused, since the engine never hands out a photo's
        metadata. Fail closed: if the detector raises, the whole photo is painted over,
        returned with ``obscured=True``, and the ledger entry's outcome is ``error``
        (``detection_failed``). Otherwise the entry is ``ok`` with the face count.
        """
        op = Op(actor, Operation.REDACT, purpose=purpose)
        with self._guard(op):
            self._permit(op)
            if purpose is not None:
                op.purpose = check_purpose(self.policy, purpose)
            options = options or RedactOptions()
            if options.keep_metadata:
                raise InputError("the engine never keeps photo metadata: redact without keep_metadata",
                                 field="keep_metadata")
            image = self.recognizer.load(photo)
            op.inputs = {"photo": image.sha256}
            result = redact_image(image.rgb, self.recognizer.backend.detector, options)
            fmt = image.format if image.format in _ENCODE else "array"
            data = encode_image(result.rgb, _format_name(fmt), quality=_QUALITY)
            digest = hashlib.sha256(data).hexdigest()
            model_id = self.recognizer.model_id
            summary = _redaction_summary(result, options, model_id, fmt, digest)
            row = self._log(op, "error" if result.obscured else "ok", summary)
        return RedactedPhoto(
            data=data, format=_format_name(fmt), width=image.width, height=image.height,
            faces=len(result.boxes), obscured=result.obscured, error=result.error, model_id=model_id,
            sha256=digest, ledger_seq=row.seq,
        )


def _format_name(fmt: str) -> str:
    return "png" if fmt == "array" else fmt


def _redaction_summary(
    result: RedactedImage, options: RedactOptions, model_id: str, fmt: str, digest: str
) -> dict[str, object]:
    """The ledger's ``result`` of a redaction: counts and settings only, never boxes or pixels."""
    summary: dict[str, object] = {
        "faces": len(result.boxes),
        "obscured": result.obscured,
        "method": options.style.method,
        "mask": options.style.mask,
        "mask_scale": options.style.mask_scale,
        "model_id": model_id,
        "detectors": ",".join(result.detectors),
        "search": "fast" if options.photo.fast else "thorough",
        "output_format": _format_name(fmt),
        "output_sha256": digest,
    }
    if result.obscured:
        summary["error"] = "detection_failed"
        summary["message"] = (result.error or "face detection failed")[:_MAX_MESSAGE]
    return summary
