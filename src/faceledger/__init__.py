"""FaceLedger: face detection and verification that is accountable by construction.

The public API::

    import faceledger
    faces = faceledger.detect("group.jpg")              # list[Face]
    result = faceledger.verify("a.jpg", "b.jpg")        # VerifyResult
    recognizer = faceledger.Recognizer()                # keep one for repeated calls

The module-level functions keep one lazily loaded :class:`Recognizer` per backend
for the life of the process (loaded on first use, shared by every thread, one call
at a time per backend), so a loop over them costs what a held Recognizer costs.
Build your own :class:`Recognizer` for other limits or options, or for calls in
parallel threads.
"""

from __future__ import annotations

import threading

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


_SHARED: dict[str, tuple[Recognizer, threading.Lock]] = {}
_SHARED_LOCK = threading.Lock()


def _shared(backend: str) -> tuple[Recognizer, threading.Lock]:
    """The process's Recognizer for ``backend`` and the lock that serialises its use (built once)."""
    entry = _SHARED.get(backend)
    if entry is None:
        with _SHARED_LOCK:
            entry = _SHARED.get(backend)
            if entry is None:  # checked again: another thread may have loaded it meanwhile
                entry = (Recognizer(backend), threading.Lock())
                _SHARED[backend] = entry
    return entry


def detect(image: ImageSource, *, backend: str = DEFAULT_BACKEND, **options: object) -> list[Face]:
    """Detect every face in ``image`` (see :meth:`Recognizer.detect`); the models load once per process."""
    recognizer, lock = _shared(backend)
    with lock:
        return recognizer.detect(image, **options)  # type: ignore[arg-type]


def verify(a: ImageSource, b: ImageSource, *, backend: str = DEFAULT_BACKEND, **options: object) -> VerifyResult:
    """Verify two photos (see :meth:`Recognizer.verify`); the models load once per process."""
    recognizer, lock = _shared(backend)
    with lock:
        return recognizer.verify(a, b, **options)  # type: ignore[arg-type]
