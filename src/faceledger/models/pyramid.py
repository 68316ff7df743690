"""Run a fixed-scale detector over an image pyramid and merge the results.

One input size cannot serve a 20-pixel face in a crowd and a face that fills a
1920x1080 portrait. The pyramid runs the detector at full resolution (or
upsampled when tiny faces are asked for) and again at halves until the long side
is small, then merges the detections with non-maximum suppression.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from faceledger._cv import cv2
from faceledger.core.geometry import clip_to_image, nms
from faceledger.models.base import Detections, DetectOptions

__all__ = ["pyramid_scales", "run_pyramid"]

#: The smallest face (box width, pixels) the single-scale detector finds reliably.
DETECTOR_MIN_FACE = 16.0
#: A half-size level is added while the previous level's long side exceeds this (pixels).
#: One YuNet pass finds faces from ~16 px up to ~700 px, so 640x480 needs one level and
#: 1920x1080 two.
SMALLEST_LONG_SIDE = 960


def pyramid_scales(width: int, height: int, min_face_size: float, upsample: bool = True) -> list[float]:
    """Scales at which to run the detector, largest first (never above 1 without ``upsample``)."""
    first = min(2.0, max(1.0, DETECTOR_MIN_FACE / min_face_size)) if upsample else 1.0
    scales = [first]
    s = min(first, 1.0) / 2.0
    while max(width, height) * s * 2 > SMALLEST_LONG_SIDE:
        scales.append(s)
        s /= 2.0
    return scales


def run_pyramid(
    rgb: np.ndarray,
    options: DetectOptions,
    detect_once: Callable[[np.ndarray], Detections],
    nms_threshold: float = 0.3,
    containment: float = 0.5,
) -> Detections:
    """Detect at every scale of the pyramid, map back to the input's pixels, merge."""
    h, w = rgb.shape[:2]
    if min(w, h) < options.min_face_size:
        return Detections.empty()  # no face of the size asked for fits in the image
    found: list[Detections] = []
    for s in pyramid_scales(w, h, options.min_face_size, options.upsample):
        if min(w, h) * s < DETECTOR_MIN_FACE:
            continue  # a level narrower than the detector's smallest face finds only noise
        if s == 1.0:
            level = rgb
        else:
            interp = cv2.INTER_AREA if s < 1.0 else cv2.INTER_LINEAR
            level = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=interp)
        d = detect_once(level)
        if len(d):
            sx, sy = w / level.shape[1], h / level.shape[0]
            scale_xy = np.array([sx, sy, sx, sy], np.float32)
            found.append(Detections(d.boxes * scale_xy, d.landmarks * np.array([sx, sy], np.float32), d.scores))
    if not found:
        return Detections.empty()
    boxes = np.concatenate([d.boxes for d in found])
    marks = np.concatenate([d.landmarks for d in found])
    scores = np.concatenate([d.scores for d in found])
    inside, clipped = clip_to_image(boxes, marks, scores, w, h)
    keep = inside & (scores >= options.score_threshold) & (boxes[:, 2] >= options.min_face_size)
    boxes = clipped.astype(np.float32)
    boxes, marks, scores = boxes[keep], marks[keep], scores[keep]
    idx = nms(boxes, scores, nms_threshold, containment)
    idx = idx[: options.max_faces]
    return Detections(boxes[idx], marks[idx], scores[idx])
