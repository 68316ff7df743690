"""Coarse-to-fine detection: a bounded pass over a scaled copy, then each face refined on a crop.

Finding the faces of a 12 or 40 megapixel photo does not need a detector pass over every
pixel: one pass over a copy whose long side is ``DetectOptions.max_side`` (1280 px by
default) finds every face at least 16 px wide at that scale, in a time and memory that do
not grow with the photo. A face found there with too few pixels for the aligner (narrower
than :data:`REFINE_BELOW` at the coarse scale) is detected again on a crop of the
full-resolution pixels around it, scaled so the face is :data:`REFINE_WIDTH` px wide
(never enlarged), in a fixed :data:`CANVAS` x :data:`CANVAS` input: one detector network
size serves every refinement. Its box and landmarks then come from those pixels.

Works over any :class:`~faceledger.models.base.Detector`; photos no larger than
``max_side`` go to the detector unchanged, and ``max_side=None`` asks for the detector's
own full-coverage search.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from faceledger._cv import cv2
from faceledger.core.geometry import iou
from faceledger.models.base import Detections, DetectOptions, Detector
from faceledger.models.pyramid import DETECTOR_MIN_FACE

__all__ = [
    "CANVAS", "REFINE_BELOW", "REFINE_WIDTH", "coarse_factor", "detect_coarse_to_fine", "needs_refining", "refine",
    "shrink",
]

#: A face narrower than this at the coarse scale (pixels) is refined on a full-resolution crop.
REFINE_BELOW = 112.0
#: The width a refined face is given in its crop (pixels; never more than its native width).
REFINE_WIDTH = 112.0
#: The side of the refinement input: the crop spans this many face widths.
CANVAS = 320
_CONTEXT = CANVAS / REFINE_WIDTH
#: A coarse copy's long side is kept at least this share of the one asked for (see :func:`shrink`).
SHRINK_FLOOR = 0.8
#: A refined detection must overlap the coarse one this much (IoU) to replace it.
_MATCH_IOU = 0.3


def coarse_factor(width: int, height: int, options: DetectOptions) -> float | None:
    """Image pixels per coarse-copy pixel when the search of a ``width`` x ``height`` image is
    coarse-to-fine (``None``: the detector searches the image itself)."""
    side = options.max_side
    if side is None or max(width, height) <= side:
        return None
    return max(width, height) / side


def needs_refining(box_width: float, factor: float | None) -> bool:
    """Whether a face of ``box_width`` image pixels has too few pixels in the coarse copy."""
    return factor is not None and box_width / factor < REFINE_BELOW


def detect_coarse_to_fine(
    detector: Detector, rgb: np.ndarray, options: DetectOptions, refine_faces: bool = True
) -> Detections:
    """Faces in ``rgb`` (boxes x, y, w, h and landmarks in its pixels), bounded by ``options.max_side``.

    ``refine_faces=False`` returns the coarse detections (mapped to ``rgb``'s pixels) for a
    caller that refines only the faces it uses (:func:`refine`, :func:`needs_refining`).
    """
    h, w = rgb.shape[:2]
    side = options.max_side
    if coarse_factor(w, h, options) is None:
        return detector.detect(rgb, options)
    small, sx, sy = shrink(rgb, side)
    coarse_min = max(DETECTOR_MIN_FACE, options.min_face_size / sx)
    found = detector.detect(small, replace(options, min_face_size=coarse_min, upsample=False))
    if not len(found):
        return found
    boxes = found.boxes.astype(np.float32) * np.array([sx, sy, sx, sy], np.float32)
    marks = found.landmarks.astype(np.float32) * np.array([sx, sy], np.float32)
    for i in np.flatnonzero(found.boxes[:, 2] < REFINE_BELOW) if refine_faces else ():
        refined = refine(detector, rgb, boxes[i], options.score_threshold)
        if refined is not None:
            boxes[i], marks[i] = refined
    keep = boxes[:, 2] >= options.min_face_size
    return Detections(boxes[keep], marks[keep], found.scores[keep])


def shrink(rgb: np.ndarray, long_side: int) -> tuple[np.ndarray, float, float]:
    """``rgb`` reduced to a long side of at most ``long_side`` (and at least :data:`SHRINK_FLOOR` of it);
    and the image pixels per copy pixel (x, y).

    OpenCV's area filter is fast only for a whole-number factor (a 2005x1396 photo: ~5 ms by 3,
    13 ms to 640 px exactly). So the reduction is one whole-number area step when that lands
    within [:data:`SHRINK_FLOOR`, 1] of ``long_side``, on the image cut to a multiple of it (at
    most a few border pixels are left out); otherwise the largest whole-number step that stays
    above ``long_side``, then a bilinear step of under 1.6x to it (bilinear skips no pixel below 2x).
    """
    h, w = rgb.shape[:2]
    ratio = max(w, h) / long_side
    k = min(int(np.ceil(ratio)), h, w)  # never more than the short side: the cut must keep a pixel
    if k < 2 or max(w, h) // k < SHRINK_FLOOR * long_side:
        k = min(int(ratio), h, w)
    if k >= 2:
        cut = rgb[: h - h % k, : w - w % k]
        rgb = cv2.resize(cut, (cut.shape[1] // k, cut.shape[0] // k), interpolation=cv2.INTER_AREA)
    k = max(k, 1)
    if max(rgb.shape[:2]) > long_side:
        s = long_side / max(rgb.shape[:2])
        target = (max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s)))
        # Under 2x bilinear skips no pixel (only a strip thinner than the step reaches here otherwise).
        interp = cv2.INTER_LINEAR if s > 0.5 else cv2.INTER_AREA
        small = cv2.resize(rgb, target, interpolation=interp)
    else:
        small = rgb
    sx = k * rgb.shape[1] / small.shape[1]
    sy = k * rgb.shape[0] / small.shape[0]
    return small, sx, sy


def refine(
    detector: Detector, rgb: np.ndarray, box: np.ndarray, score_threshold: float, canvas: int = CANVAS
) -> tuple[np.ndarray, np.ndarray] | None:
    """Detect the face at ``box`` again on a full-resolution crop; its (box, landmarks), or None.

    ``canvas``: the side of the detector's input (the crop spans ``canvas / REFINE_WIDTH`` face widths).
    """
    h, w = rgb.shape[:2]
    bw = float(max(box[2], box[3]))
    r = min(1.0, REFINE_WIDTH / max(float(box[2]), 1.0))  # crop pixels per image pixel
    half = canvas / r / 2.0
    cx, cy = float(box[0] + box[2] / 2.0), float(box[1] + box[3] / 2.0)
    x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
    x1, y1 = min(w, int(np.ceil(cx + half))), min(h, int(np.ceil(cy + half)))
    if x1 - x0 < 2 or y1 - y0 < 2 or bw <= 0:
        return None
    cw, ch = min(canvas, max(1, round((x1 - x0) * r))), min(canvas, max(1, round((y1 - y0) * r)))
    pixels = np.zeros((canvas, canvas, 3), np.uint8)
    interp = cv2.INTER_AREA if r < 1.0 else cv2.INTER_LINEAR
    pixels[:ch, :cw] = cv2.resize(rgb[y0:y1, x0:x1], (cw, ch), interpolation=interp)
    options = DetectOptions(min_face_size=DETECTOR_MIN_FACE, score_threshold=min(score_threshold, 0.5),
                            max_faces=50, upsample=False, max_side=None)
    d = detector.detect(pixels, options)
    if not len(d):
        return None
    fx, fy = (x1 - x0) / cw, (y1 - y0) / ch  # canvas pixel -> image pixel
    to_image = np.array([fx, fy, fx, fy], np.float32)
    boxes = d.boxes.astype(np.float32) * to_image + np.array([x0, y0, 0, 0], np.float32)
    overlap = iou(box[None, :], boxes)[0]
    best = int(np.argmax(overlap))
    if overlap[best] < _MATCH_IOU:
        return None
    marks = d.landmarks[best].astype(np.float32) * np.array([fx, fy], np.float32) + np.array([x0, y0], np.float32)
    return boxes[best], marks
