"""Face quality from landmarks and the aligned crop: size, sharpness, pose proxies."""

from __future__ import annotations

import math

import numpy as np

from faceledger._cv import cv2
from faceledger.types import Box, Quality

__all__ = ["pose_from_landmarks", "quality_of", "sharpness"]


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of a crop's grey levels (higher is sharper)."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def pose_from_landmarks(landmarks: np.ndarray) -> tuple[float, float, float]:
    """Return ``(interocular, yaw, roll)`` from five landmarks (see :class:`Quality`)."""
    le, re, nose = landmarks[0], landmarks[1], landmarks[2]
    d = re - le
    iod = float(math.hypot(d[0], d[1]))
    if not np.isfinite(iod) or iod <= 1e-6:
        return (float("nan"), float("nan"), float("nan"))
    roll = math.degrees(math.atan2(d[1], d[0]))
    # Nose offset from the eyes' midpoint, measured along the eye line.
    mid = (le + re) / 2.0
    yaw = float(np.dot(nose - mid, d) / (iod * iod)) if np.isfinite(nose).all() else float("nan")
    return (iod, yaw, roll)


def quality_of(box: Box, landmarks: np.ndarray, aligned_crop: np.ndarray | None) -> Quality:
    """Assemble a :class:`Quality` from a box, its landmarks and (optionally) its aligned crop."""
    iod, yaw, roll = pose_from_landmarks(landmarks)
    sharp = sharpness(aligned_crop) if aligned_crop is not None else float("nan")
    return Quality(size=float(box.w), interocular=iod, sharpness=sharp, yaw=yaw, roll=roll)
