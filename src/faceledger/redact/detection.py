"""Run a face detector the way redaction needs it: high recall, boxes at full resolution.

Boxes are ``(n, 4)`` float arrays, ``(x, y, w, h)`` in pixels of the full-size
image. Any exception the detector raises is left to the caller, which obscures the
whole photo or frame (fail closed).

Video uses two passes (see :class:`~faceledger.redact.options.VideoSettings`): a
*coarse* pass on a downscaled copy of every frame finds the larger faces; every
``fine_every`` frames a *fine* pass runs on a copy scaled so the smallest faces
asked for are 12 px wide (the detector's own floor), cut into tiles small enough
that the detector's pyramid runs a single level on each (the coarse pass already
covers the larger faces the other levels would find).
"""

from __future__ import annotations

import math

import numpy as np

from faceledger._cv import cv2
from faceledger.core.geometry import iou, tiles
from faceledger.models.base import DetectOptions, Detector
from faceledger.models.pyramid import SMALLEST_LONG_SIDE
from faceledger.redact.options import RedactOptions
from faceledger.redact.planes import Picture

__all__ = ["FrameFinder", "find_faces"]

#: The smallest face width (pixels of its input) the coarse pass relies on the detector for.
_DETECTOR_MIN_FACE = 16.0
#: The smallest face width the fine pass asks of the detector at native resolution (no
#: upsampling). On bench/redact_leaks.py's 720p group videos YuNet at native resolution
#: found every face of 12-24 px that CenterFace found, so 12 px faces need no upscaled copy.
_FINE_DETECTOR_MIN_FACE = 12.0
#: The coarse pass keeps faces down to this width (pixels of its downscaled copy), not only
#: the 16 px it relies on: on a dense crowd frame (1280x720, faces of 14-28 px) YuNet at
#: 640x360 finds, at 7-14 px and scores 0.4-0.7, 31 faces that it misses at native resolution
#: and on 1.25x-2x upscaled copies alike; keeping them closed the gap from 159 to 190 of 190.
_COARSE_KEEP_MIN_FACE = 7.0
#: Automatic ``fine_every``: every 4th frame up to this long side (pixels), every 3rd above.
_FINE_EVERY_4_UP_TO = 1280
#: The default long side of the copy searched every frame. Issue 13's second round tried, for
#: 720p, a 960 px copy every 2nd frame plus a 640 px copy every 4th: on bench/redact_video.py's
#: 720p clip it left 5 face-frames uncovered by CenterFace's count against 0 for this (640 px
#: every frame, native-resolution fine pass every 4th) and saved no CPU, so it was reverted.
_DETECT_LONG_SIDE = 640
_SECOND_LONG_SIDE = 640
_MAX_FACES = 5000
#: The fine pass keeps faces up to this multiple of the coarse pass's smallest face.
_FINE_UPPER = 1.5


def find_faces(detector: Detector, rgb: np.ndarray, options: RedactOptions) -> np.ndarray:
    """Faces in a photo, down to ``options.min_face_size`` pixels wide."""
    found = detector.detect(rgb, _detect_options(options.min_face_size, options.score_threshold))
    return np.asarray(found.boxes, dtype=np.float64).reshape(-1, 4)


def _detect_options(min_face: float, threshold: float, upsample: bool = True) -> DetectOptions:
    return DetectOptions(min_face_size=min_face, score_threshold=threshold, max_faces=_MAX_FACES, upsample=upsample)


class FrameFinder:
    """Faces in successive video frames of one size: a coarse pass on every frame, a fine pass on some."""

    def __init__(self, detector: Detector, options: RedactOptions, width: int, height: int) -> None:
        self._detector = detector
        self._threshold = options.score_threshold
        video = options.video
        long_side = max(width, height)
        self._scale = min(1.0, (video.detect_long_side or _DETECT_LONG_SIDE) / long_side)
        self._size = (max(1, round(width * self._scale)), max(1, round(height * self._scale)))
        self._coarse_min = _DETECTOR_MIN_FACE / self._scale
        fine_scale = 0.0
        if video.fine_min_face > 0:
            fine_scale = min(_FINE_DETECTOR_MIN_FACE / video.fine_min_face, video.fine_long_side / long_side)
        # Only when it looks for smaller faces than the coarse copy keeps, at a finer scale.
        finer = video.fine_min_face * self._scale < _COARSE_KEEP_MIN_FACE and fine_scale > self._scale * 1.05
        self._fine_scale = fine_scale if finer else 0.0
        self._fine_size = (round(width * self._fine_scale), round(height * self._fine_scale))
        overlap = math.ceil(self._coarse_min * _FINE_UPPER * self._fine_scale) + 2
        self._tiles = tiles(self._fine_size, SMALLEST_LONG_SIDE, overlap) if self._fine_scale else []
        self._search_every = video.detect_every or 1
        self._every = video.fine_every or (3 if long_side > _FINE_EVERY_4_UP_TO else 4)
        # With a coarse copy well above 640 px, fine frames also search a 640 px copy: dense crowds
        # have faces YuNet finds only there (see _COARSE_KEEP_MIN_FACE).
        self._second = 0.0
        if not self._tiles and self._scale * long_side > 1.2 * _SECOND_LONG_SIDE:
            self._second = _SECOND_LONG_SIDE / long_side
        self._second_size = (max(1, round(width * self._second)), max(1, round(height * self._second)))

    @property
    def coarse_min_face(self) -> float:
        """The smallest face width (full-resolution pixels) the every-frame pass looks for."""
        return self._coarse_min

    @property
    def fine_min_face(self) -> float | None:
        """The smallest face width the fine pass looks for (``None``: no fine pass)."""
        return _FINE_DETECTOR_MIN_FACE / self._fine_scale if self._fine_scale else None

    @property
    def fine_every(self) -> int:
        """The fine pass runs on frames whose 0-based index is a multiple of this."""
        return self._every

    @property
    def detect_every(self) -> int:
        """Frames whose 0-based index is a multiple of this are searched; the tracker covers the rest."""
        return self._search_every

    def searches(self, index: int) -> bool:
        """Whether frame number ``index`` is searched at all (every ``detect_every``-th, and fine frames)."""
        return index % self._search_every == 0 or (self._fine_frames and index % self._every == 0)

    @property
    def _fine_frames(self) -> bool:
        return bool(self._tiles) or self._second > 0.0

    def find(self, frame: np.ndarray | Picture, index: int) -> np.ndarray | None:
        """Boxes in frame number ``index`` (0-based) of the video (``None``: not searched).

        ``frame``: an RGB array, or a :class:`~faceledger.redact.planes.Picture` (I420 planes
        or RGB), from which only the copies the passes need are made.
        """
        if not self.searches(index):
            return None
        picture = frame if isinstance(frame, Picture) else Picture(rgb=frame)
        small = picture.scaled_rgb(self._size)
        boxes, scores = self._coarse(small, self._scale)
        if not self._fine_frames or index % self._every:
            return boxes
        if self._tiles:
            more_boxes, more_scores = self._fine(picture.rgb())
        else:
            more_boxes, more_scores = self._coarse(picture.scaled_rgb(self._second_size), self._second)
        return _merge(np.concatenate([boxes, more_boxes]), np.concatenate([scores, more_scores]))

    def _coarse(self, small: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        found = self._detector.detect(small, _detect_options(_COARSE_KEEP_MIN_FACE, self._threshold, upsample=False))
        boxes = np.asarray(found.boxes, dtype=np.float64).reshape(-1, 4) / scale
        return boxes, np.asarray(found.scores, dtype=np.float64).reshape(-1)

    def _fine(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        interp = cv2.INTER_LINEAR if self._fine_scale > 1.0 else cv2.INTER_AREA
        big = cv2.resize(rgb, self._fine_size, interpolation=interp)
        found_boxes, found_scores = [], []
        options = _detect_options(_FINE_DETECTOR_MIN_FACE, self._threshold, upsample=False)
        for x0, y0, x1, y1 in self._tiles:
            d = self._detector.detect(big[y0:y1, x0:x1], options)
            b = np.asarray(d.boxes, dtype=np.float64).reshape(-1, 4) + [x0, y0, 0.0, 0.0]
            found_boxes.append(b / self._fine_scale)
            found_scores.append(np.asarray(d.scores, dtype=np.float64).reshape(-1))
        boxes, scores = np.concatenate(found_boxes), np.concatenate(found_scores)
        small = boxes[:, 2] < self._coarse_min * _FINE_UPPER
        return boxes[small], scores[small]


def _merge(boxes: np.ndarray, scores: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """Greedy NMS over one IoU matrix (crowds give hundreds of boxes; one matrix keeps it fast)."""
    if len(boxes) < 2:
        return boxes
    order = np.argsort(-scores, kind="stable")
    ordered = boxes[order]
    suppress = iou(ordered, ordered) > threshold
    keep = np.ones(len(ordered), dtype=bool)
    for i in range(len(ordered)):
        if keep[i]:
            keep[i + 1 :] &= ~suppress[i, i + 1 :]
    return ordered[keep]
