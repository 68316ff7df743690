"""Typed results returned by FaceLedger (frozen dataclasses).

Conventions used everywhere:

* Pixel coordinates are floats in the frame of the *upright* image (EXIF
  orientation applied), origin at the top-left corner.
* Boxes are ``(x, y, w, h)``.
* Landmarks are five ``(x, y)`` points in image order: the eye on the image's
  left (the subject's right eye), the eye on the image's right, the nose tip,
  the mouth corner on the image's left, the mouth corner on the image's right.
  A detector that does not locate a point reports ``nan`` for it.
* Colour images are RGB, ``uint8``, shape ``(height, width, 3)``.
* Similarity scores are cosine similarities in ``[-1, 1]``; higher is more alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Box",
    "Face",
    "ModelInfo",
    "OperatingPoint",
    "Quality",
    "Template",
    "VerifyResult",
]

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in pixels: top-left corner ``(x, y)``, width, height."""

    x: float
    y: float
    w: float
    h: float

    @property
    def area(self) -> float:
        return max(self.w, 0.0) * max(self.h, 0.0)

    @property
    def center(self) -> Point:
        return (self.x + self.w / 2.0, self.y + self.h / 2.0)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.w, self.h)


@dataclass(frozen=True, slots=True)
class Quality:
    """How usable a detected face is for recognition.

    ``size`` is the box width in pixels; ``interocular`` the distance between the
    eye landmarks in pixels; ``sharpness`` the variance of the Laplacian of the
    aligned 112x112 grey crop (higher is sharper; below ~50 is usually blurred);
    ``yaw`` and ``roll`` are pose proxies from the landmarks: ``yaw`` is the nose's
    horizontal offset from the eyes' midpoint divided by the inter-ocular distance
    (0 is frontal, about +-0.5 is a strong profile), ``roll`` the eye line's angle
    in degrees. Values are ``nan`` when they could not be computed.
    """

    size: float
    interocular: float
    sharpness: float
    yaw: float
    roll: float


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face."""

    box: Box
    landmarks: tuple[Point, Point, Point, Point, Point]
    score: float
    quality: Quality | None = None

    def landmarks_array(self) -> np.ndarray:
        """The landmarks as a ``(5, 2)`` float32 array."""
        return np.asarray(self.landmarks, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a backend is made of: enough to reproduce and to audit it."""

    backend: str
    model_id: str
    detector: str
    embedder: str
    dimension: int
    runtime: str
    licence: str
    files: tuple[tuple[str, str], ...] = ()  # (path, sha256)
    operating_points: tuple[OperatingPoint, ...] = ()
    default_operating_point: str | None = None


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """A calibrated decision threshold: ``score >= threshold`` means "same person"."""

    name: str  # e.g. "fmr1e-3"
    target_fmr: float
    threshold: float
    measured_fmr: float
    measured_fnmr: float
    dataset: str
    fmr_upper: float | None = None  # upper confidence bound of the FMR at this threshold, if published


@dataclass(frozen=True, eq=False, slots=True)
class Template:
    """A face template: an L2-normalised float32 vector and the model that made it.

    Templates from different ``model_id`` values are not comparable.
    ``source_sha256`` is the SHA-256 of the photo's bytes (never the photo itself).
    """

    vector: np.ndarray = field(repr=False)
    model_id: str
    face: Face | None = None
    source_sha256: str | None = None

    @property
    def dimension(self) -> int:
        return int(self.vector.shape[0])


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of a 1:1 comparison.

    ``match`` is ``score >= threshold``; the score, the threshold, the operating
    point and the model are always reported together.
    """

    score: float
    threshold: float
    match: bool
    operating_point: str
    model_id: str
    face_a: Face | None = None
    face_b: Face | None = None
