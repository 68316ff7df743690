"""FaceLedger: face detection and verification that is accountable by construction.

The public API::

    import faceledger
    faces = faceledger.detect("group.jpg")              # list[Face]
    result = faceledger.verify("a.jpg", "b.jpg")        # VerifyResult
    recognizer = faceledger.Recognizer()                # keep one for repeated calls

The module-level functions load the models on every call; build a
:class:`Recognizer` once when you call them more than once.
"""

from __future__ import annotations

from faceledger.engine import Engine
from faceledger.errors import FaceLedgerError
from faceledger.media.image import DecodedImage, ImageLimits, ImageSource, load_image
from faceledger.models.base import DetectOptions
from faceledger.models.registry import BACKENDS
from faceledger.recognizer import DEFAULT_BACKEND, FaceChoice, Recognizer
from faceledger.types import Box, Face, ModelInfo, OperatingPoint, Quality, Template, VerifyResult

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "Box",
    "DecodedImage",
    "DetectOptions",
    "Engine",
    "Face",
    "FaceChoice",
    "FaceLedgerError",
    "ImageLimits",
    "ImageSource",
    "ModelInfo",
    "OperatingPoint",
    "Quality",
    "Recognizer",
    "Template",
    "VerifyResult",
    "__version__",
    "detect",
    "load_image",
    "verify",
]


def detect(image: ImageSource, *, backend: str = DEFAULT_BACKEND, **options: object) -> list[Face]:
    """Detect every face in ``image`` with a freshly loaded engine (see :meth:`Recognizer.detect`)."""
    return Recognizer(backend).detect(image, **options)  # type: ignore[arg-type]


def verify(a: ImageSource, b: ImageSource, *, backend: str = DEFAULT_BACKEND, **options: object) -> VerifyResult:
    """Verify two photos with a freshly loaded engine (see :meth:`Recognizer.verify`)."""
    return Recognizer(backend).verify(a, b, **options)  # type: ignore[arg-type]
