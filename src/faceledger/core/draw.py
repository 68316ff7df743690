"""Drawing on images (pure: an array in, a new array out)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceledger._cv import cv2
from faceledger.types import Face

__all__ = ["draw_faces"]


def draw_faces(rgb: np.ndarray, faces: Sequence[Face], color: tuple[int, int, int] = (0, 220, 90)) -> np.ndarray:
    """A copy of ``rgb`` with each face's box, landmarks and index drawn on it."""
    out = np.array(rgb, copy=True)
    thick = max(1, round(max(out.shape[:2]) / 600))
    for i, face in enumerate(faces):
        x, y, w, h = (round(v) for v in face.box.as_tuple())
        cv2.rectangle(out, (x, y), (x + w, y + h), color, thick)
        for px, py in face.landmarks:
            if np.isfinite(px) and np.isfinite(py):
                cv2.circle(out, (round(px), round(py)), max(1, thick), (255, 60, 60), -1)
        cv2.putText(out, str(i), (x, max(0, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, color, thick)
    return out
