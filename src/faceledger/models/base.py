"""The two small protocols every backend implements, and the bundle that holds them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from faceledger.models.thresholds import Thresholds
from faceledger.types import ModelInfo

__all__ = ["Backend", "DetectOptions", "Detections", "Detector", "Embedder"]


@dataclass(frozen=True, slots=True)
class DetectOptions:
    """What to look for. ``min_face_size`` is a box width in pixels of the input image.

    ``upsample=False`` asks a detector never to enlarge the image for faces below its
    own reliable floor: it reports what it finds at native resolution, down to
    ``min_face_size`` (video redaction's fine pass, which cannot afford upsampling).

    ``max_side`` bounds the :class:`~faceledger.Recognizer`'s search (detectors themselves
    ignore it): a photo whose long side is larger is searched on a copy scaled to this
    long side, then each face is refined on a crop of the full-resolution pixels (see
    :mod:`faceledger.models.coarse`). Faces narrower than 16 px at that scale are not
    searched for (in a 4000x3000 photo: faces under 50 px). ``None`` is the full-coverage
    search every small face needs (crowds; redaction always runs it).
    """

    min_face_size: float = 20.0
    score_threshold: float = 0.6
    max_faces: int = 2000
    upsample: bool = True
    max_side: int | None = 1280

    def __post_init__(self) -> None:
        if not (self.min_face_size >= 1):
            raise ValueError("min_face_size must be at least 1 pixel")
        if not (0.0 <= self.score_threshold <= 1.0):
            raise ValueError("score_threshold must be within [0, 1]")
        if self.max_faces < 1:
            raise ValueError("max_faces must be at least 1")
        if self.max_side is not None and self.max_side < 64:
            raise ValueError("max_side must be at least 64 pixels (or None for full coverage)")


class Detections(NamedTuple):
    """Raw detector output: ``boxes`` (n, 4) x, y, w, h; ``landmarks`` (n, 5, 2); ``scores`` (n,)."""

    boxes: np.ndarray
    landmarks: np.ndarray
    scores: np.ndarray

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32), np.zeros((0,), np.float32))

    def __len__(self) -> int:  # type: ignore[override]
        return int(self.scores.shape[0])


@runtime_checkable
class Detector(Protocol):
    """Finds faces in an RGB ``uint8`` image."""

    name: str

    def detect(self, rgb: np.ndarray, options: DetectOptions) -> Detections: ...


@runtime_checkable
class Embedder(Protocol):
    """Turns faces (given by their boxes and landmarks) into unit vectors."""

    name: str
    dimension: int

    def embed(self, rgb: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Return an ``(n, dimension)`` float32 array of L2-normalised rows."""
        ...


@dataclass(frozen=True, eq=False)
class Backend:
    """A loaded detector and embedder, their description and calibrated thresholds."""

    info: ModelInfo
    detector: Detector
    embedder: Embedder
    thresholds: Thresholds

    @classmethod
    def build(cls, info: ModelInfo, detector: Detector, embedder: Embedder, thresholds: Thresholds) -> Backend:
        """Bundle the parts, recording the thresholds' operating points in ``info``."""
        info = replace(
            info,
            operating_points=tuple(thresholds.points.values()),
            default_operating_point=thresholds.default,
        )
        return cls(info, detector, embedder, thresholds)

    @property
    def name(self) -> str:
        return self.info.backend

    @property
    def model_id(self) -> str:
        return self.info.model_id
