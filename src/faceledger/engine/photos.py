"""Detection and 1:1 verification through the engine: permitted, purposeful, ledgered."""

from __future__ import annotations

from faceledger.governance.policy import check_purpose
from faceledger.governance.roles import Operation
from faceledger.media.image import ImageSource
from faceledger.recognizer import FaceChoice
from faceledger.types import Face, VerifyResult

from ._base import EngineBase, Op
from .results import Actor

__all__ = ["PhotoOps"]


class PhotoOps(EngineBase):
    def detect(self, actor: Actor, photo: ImageSource, *, purpose: str | None = None, **options: float) -> list[Face]:
        """Every face in ``photo`` (see :meth:`Recognizer.detect`); the ledger records the count."""
        op = Op(actor, Operation.DETECT, purpose=purpose)
        with self._guard(op):
            self._permit(op)
            if purpose is not None:
                op.purpose = check_purpose(self.policy, purpose)
            image = self.recognizer.load(photo)
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
            ia, ib = rec.load(a), rec.load(b)
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
