"""Find every face of a photo: several scales, two independent detectors, boxes grown to heads.

A photo is searched once, so it can afford what a video frame cannot. The *thorough*
search (the default) runs:

1. the main detector (YuNet) at native resolution through its own pyramid, for faces
   from 12 px up to the whole photo;
2. the main detector again on a copy upsampled ``upsample`` times (2 by default), cut
   into tiles of at most 960 px so each runs a single level, for faces of 6-16 px;
3. CenterFace (when installed, see :mod:`faceledger.redact.centerface`) at native
   resolution and on the upsampled copy: it finds crowd faces YuNet misses and the
   other way round.

The upsampled copy is capped at ``max_search_side`` pixels on its long side, so a 12 MP
photo is not upsampled at all. Boxes of all passes are merged (overlapping boxes of one
face become their union: an extra margin is better than a missed chin). The *fast*
search is the main detector once, through its pyramid (upsampled only for faces under
16 px), as before.

Small faces get a larger mask: detectors box the face from brows to chin, and at 10 px
that leaves hair, ears and forehead, which together still identify someone, outside a
1.5x mask. :func:`head_boxes` grows boxes narrower than 32 px by up to 1.4x more.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from faceledger._cv import cv2
from faceledger.core.geometry import iou, tiles
from faceledger.models.base import DetectOptions, Detector
from faceledger.models.pyramid import SMALLEST_LONG_SIDE

__all__ = ["PhotoSearch", "head_boxes", "search_photo", "second_detector"]

_MAX_FACES = 5000
#: The main detector's floor at native resolution (pixels of its input).
_NATIVE_MIN_FACE = 12.0
#: Boxes from the upsampled passes wider than this (native pixels) are left to the native passes.
_UPSAMPLED_MAX_FACE = 48.0
#: Two boxes of one face from different passes or detectors are merged above this IoU.
_SAME_FACE_IOU = 0.35
#: Boxes narrower than this get the extra head margin.
_HEAD_FROM = 32.0
_HEAD_EXTRA = 1.4


@dataclass(frozen=True, slots=True)
class PhotoSearch:
    """How hard a photo is searched (see the module docstring).

    ``fast`` runs the main detector once. ``centerface`` is ``"auto"`` (used when its
    model is installed), ``"on"`` (required: an error if missing) or ``"off"``.
    ``upsample`` is the factor of the small-face pass (1 turns it off);
    ``max_search_side`` caps the long side of the upsampled copy.
    ``centerface_threshold`` is CenterFace's own score scale (0-1).
    """

    fast: bool = False
    centerface: str = "auto"
    upsample: float = 2.0
    max_search_side: int = 4096
    centerface_threshold: float = 0.35

    def __post_init__(self) -> None:
        if self.centerface not in ("auto", "on", "off"):
            raise ValueError("centerface must be auto, on or off")
        if not (1.0 <= self.upsample <= 4.0):
            raise ValueError("upsample must be within [1, 4]")
        if self.max_search_side < 320:
            raise ValueError("max_search_side must be at least 320 pixels")
        if not (0.05 <= self.centerface_threshold <= 1.0):
            raise ValueError("centerface_threshold must be within [0.05, 1]")


_SECOND: dict[str, Detector] = {}
_SECOND_LOCK = threading.Lock()


def second_detector(search: PhotoSearch) -> Detector | None:
    """The second detector ``search`` asks for (CenterFace, loaded once per process), or ``None``.

    ``"auto"`` gives ``None`` when the model package is not installed; a file that is
    installed but fails its SHA-256 check raises in every mode.
    """
    from faceledger.redact.centerface import CenterFaceDetector, centerface_available

    if search.fast or search.centerface == "off":
        return None
    if search.centerface == "auto" and not centerface_available():
        return None
    with _SECOND_LOCK:
        if "centerface" not in _SECOND:
            _SECOND["centerface"] = CenterFaceDetector()
        return _SECOND["centerface"]


def search_photo(
    rgb: np.ndarray,
    detector: Detector,
    second: Detector | None,
    threshold: float,
    search: PhotoSearch,
) -> np.ndarray:
    """Face boxes ``(n, 4)`` (x, y, w, h, pixels of ``rgb``) found by every pass of ``search``."""
    boxes, scores = [], []
    native = detector.detect(rgb, _options(_NATIVE_MIN_FACE, threshold))
    boxes.append(native.boxes)
    scores.append(native.scores)
    scale = _upsample_scale(rgb.shape, search)
    if scale > 1.0:
        big = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        b, s = _tiled(detector, big, _options(_NATIVE_MIN_FACE, threshold), scale)
        boxes.append(b)
        scores.append(s)
    if second is not None:
        cf_options = _options(4.0, search.centerface_threshold)
        found = second.detect(rgb, cf_options)
        boxes.append(found.boxes)
        scores.append(found.scores)
        if scale > 1.0:
            found = second.detect(big, cf_options)
            small = found.boxes[:, 2] < _UPSAMPLED_MAX_FACE * scale
            boxes.append(found.boxes[small] / scale)
            scores.append(found.scores[small])
    return merge_union(
        np.concatenate([np.asarray(b, np.float64).reshape(-1, 4) for b in boxes]),
        np.concatenate([np.asarray(s, np.float64).reshape(-1) for s in scores]),
    )


def head_boxes(boxes: np.ndarray) -> np.ndarray:
    """``boxes`` with those narrower than 32 px grown about their centre (x1.4 at 10 px and below)."""
    out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    if not len(out):
        return out
    width = out[:, 2]
    t = np.clip((_HEAD_FROM - width) / (_HEAD_FROM - 10.0), 0.0, 1.0)
    grow = 1.0 + (_HEAD_EXTRA - 1.0) * t
    cx, cy = out[:, 0] + out[:, 2] / 2, out[:, 1] + out[:, 3] / 2
    out[:, 2] *= grow
    out[:, 3] *= grow
    out[:, 0] = cx - out[:, 2] / 2
    out[:, 1] = cy - out[:, 3] / 2
    return out


def merge_union(boxes: np.ndarray, scores: np.ndarray, threshold: float = _SAME_FACE_IOU) -> np.ndarray:
    """One box per face: boxes overlapping a better-scored one above ``threshold`` IoU join it (union)."""
    if len(boxes) < 2:
        return boxes
    order = np.argsort(-scores, kind="stable")
    ordered = boxes[order]
    same = iou(ordered, ordered) > threshold
    taken = np.zeros(len(ordered), dtype=bool)
    merged = []
    for i in range(len(ordered)):
        if taken[i]:
            continue
        group = np.nonzero(same[i] & ~taken)[0]
        taken[group] = True
        x0 = ordered[group, 0].min()
        y0 = ordered[group, 1].min()
        x1 = (ordered[group, 0] + ordered[group, 2]).max()
        y1 = (ordered[group, 1] + ordered[group, 3]).max()
        merged.append((x0, y0, x1 - x0, y1 - y0))
    return np.asarray(merged, dtype=np.float64).reshape(-1, 4)


def _options(min_face: float, threshold: float) -> DetectOptions:
    return DetectOptions(min_face_size=min_face, score_threshold=threshold, max_faces=_MAX_FACES, upsample=False)


def _upsample_scale(shape: tuple[int, ...], search: PhotoSearch) -> float:
    long_side = max(shape[:2])
    return max(1.0, min(search.upsample, search.max_search_side / long_side))


def _tiled(detector: Detector, big: np.ndarray, options: DetectOptions, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Small faces of an upsampled copy, found tile by tile, in pixels of the original."""
    height, width = big.shape[:2]
    overlap = math.ceil(_UPSAMPLED_MAX_FACE * scale) + 2
    boxes, scores = [np.zeros((0, 4))], [np.zeros(0)]
    for x0, y0, x1, y1 in tiles((width, height), SMALLEST_LONG_SIDE, overlap):
        found = detector.detect(big[y0:y1, x0:x1], options)
        b = np.asarray(found.boxes, np.float64).reshape(-1, 4) + [x0, y0, 0.0, 0.0]
        small = b[:, 2] < _UPSAMPLED_MAX_FACE * scale
        boxes.append(b[small] / scale)
        scores.append(np.asarray(found.scores, np.float64).reshape(-1)[small])
    return np.concatenate(boxes), np.concatenate(scores)
