"""Camera motion between frames, estimated from faces tracked in both (pure: arrays in, arrays out).

A pan, a zoom or a small rotation moves every face of a crowd the same way. A face
seen only every few frames (small faces found by the fine pass) moves too far
between sightings to be matched by overlap; carrying its box with the motion of
the faces that are seen every frame puts it back where it is.

Motions are 2x3 similarity matrices (rotation, uniform scale, translation) mapping
pixel coordinates of one frame to the next. Boxes are ``(x, y, w, h)``.
"""

from __future__ import annotations

import numpy as np

from faceledger._cv import cv2
from faceledger.redact.planes import Picture

__all__ = ["IDENTITY", "CameraMotion", "carry_box", "compose", "fit_motion", "invert"]

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])

#: Fewest faces matched between two frames to trust a camera motion fitted to them.
MIN_POINTS = 3
#: Share of those faces that must agree with the fit (the rest move on their own).
MIN_INLIERS = 0.6


def fit_motion(before: np.ndarray, after: np.ndarray) -> np.ndarray | None:
    """The similarity that maps the ``before`` boxes onto the ``after`` boxes, or ``None``.

    ``before`` and ``after`` are ``(n, 4)`` boxes of the same faces in two frames.
    RANSAC on the box centres, with a tolerance of a third of the median width;
    ``None`` when fewer than :data:`MIN_POINTS` faces are given or fewer than
    :data:`MIN_INLIERS` of them agree (people moving, not the camera).
    """
    before = np.asarray(before, dtype=np.float64).reshape(-1, 4)
    after = np.asarray(after, dtype=np.float64).reshape(-1, 4)
    if len(before) < MIN_POINTS:
        return None
    src = (before[:, :2] + before[:, 2:] / 2.0).astype(np.float32)
    dst = (after[:, :2] + after[:, 2:] / 2.0).astype(np.float32)
    tolerance = max(1.5, float(np.median(before[:, 2])) / 3.0)
    matrix, inliers = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=tolerance, maxIters=200, confidence=0.98
    )
    if matrix is None or inliers is None or inliers.sum() < max(MIN_POINTS, MIN_INLIERS * len(src)):
        return None
    return matrix.astype(np.float64)


def compose(motions: list[np.ndarray | None]) -> np.ndarray | None:
    """The single motion equal to applying ``motions`` in order; ``None`` if one is unknown."""
    out = np.eye(3)
    for m in motions:
        if m is None:
            return None
        out = np.vstack([m, [0.0, 0.0, 1.0]]) @ out
    return out[:2]


def carry_box(box: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """``box`` moved by ``motion``: its centre mapped, its size scaled by the motion's scale."""
    box = np.asarray(box, dtype=np.float64)
    a = motion[:, :2]
    scale = float(np.sqrt(abs(a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0])))
    centre = a @ (box[:2] + box[2:] / 2.0) + motion[:, 2]
    size = box[2:] * scale
    return np.concatenate([centre - size / 2.0, size])


def invert(m: np.ndarray | None) -> np.ndarray | None:
    """The inverse of a 2x3 similarity (``None`` stays ``None``)."""
    if m is None:
        return None
    return cv2.invertAffineTransform(m).astype(np.float64)


#: Long side (pixels) of the grey copy the camera motion is estimated on.
_MOTION_LONG_SIDE = 320
#: Fewest corners followed from one frame to the next to trust a motion fitted to them.
_MIN_CORNERS = 12


class CameraMotion:
    """The camera motion between successive frames, from the picture itself (not from faces).

    Corners of a small grey copy of the previous frame are followed into the next with
    pyramidal Lucas-Kanade optical flow, and a similarity is fitted to them with RANSAC
    (tolerance one pixel of the small copy). The background usually dominates the corners,
    so this is the camera's motion; people moving on their own are outliers. ``None``
    when too few corners are followed or too few agree (a cut, a blank or blurred frame):
    the tracker then falls back to each face's own velocity and grows held boxes.
    About 2 ms per 720p frame here.
    """

    def __init__(self, width: int, height: int) -> None:
        self._scale = min(1.0, _MOTION_LONG_SIDE / max(width, height))
        self._size = (max(8, round(width * self._scale)), max(8, round(height * self._scale)))
        self._prev: np.ndarray | None = None

    def grey(self, frame: np.ndarray | Picture) -> np.ndarray:
        """The small grey copy of a frame (RGB array or :class:`~faceledger.redact.planes.Picture`)."""
        picture = frame if isinstance(frame, Picture) else Picture(rgb=frame)
        return picture.grey(self._size)

    def step(self, grey: np.ndarray) -> np.ndarray | None:
        """The motion (full-resolution pixels) from the previous frame's grey copy to ``grey``."""
        prev, self._prev = self._prev, grey
        if prev is None:
            return None
        corners = cv2.goodFeaturesToTrack(prev, maxCorners=200, qualityLevel=0.01, minDistance=7, blockSize=5)
        if corners is None or len(corners) < _MIN_CORNERS:
            return None
        moved, status, _ = cv2.calcOpticalFlowPyrLK(prev, grey, corners, None, winSize=(11, 11), maxLevel=2)
        ok = status.reshape(-1) == 1
        if ok.sum() < _MIN_CORNERS:
            return None
        src, dst = corners.reshape(-1, 2)[ok], moved.reshape(-1, 2)[ok]
        matrix, inliers = cv2.estimateAffinePartial2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=1.0, maxIters=200, confidence=0.98
        )
        if matrix is None or inliers is None or inliers.sum() < max(_MIN_CORNERS, MIN_INLIERS * len(src)):
            return None
        matrix = matrix.astype(np.float64)
        matrix[:, 2] /= self._scale  # the linear part is the same at every scale
        return matrix
