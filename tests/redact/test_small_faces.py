"""Photos whose faces are 10-14 px wide (shared group photos downscaled at test time) are fully covered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceledger._cv import cv2
from faceledger.core.geometry import iou
from faceledger.media.image import load_image
from faceledger.models.base import DetectOptions
from faceledger.redact import RedactOptions, Redactor
from faceledger.redact.centerface import CenterFaceDetector
from faceledger.redact.photo_search import head_boxes

TARGET = 12.0  # median face width after downscaling (pixels)


def _small(groups: Path, name: str, detector) -> tuple[np.ndarray, np.ndarray]:
    """The photo downscaled so its clear faces are ~12 px, and those faces' boxes in it.

    The faces are the ones the default detector finds confidently (score >= 0.7, >= 24 px) on
    the full-size photo: the ground truth comes from the photo before it was made small.
    """
    rgb = load_image(groups / name).rgb
    found = detector.detect(rgb, DetectOptions(min_face_size=24, score_threshold=0.7, upsample=False))
    truth = np.asarray(found.boxes, np.float64)
    scale = TARGET / float(np.median(truth[:, 2]))
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return small, truth * scale


def _covered(truth: np.ndarray, boxes: np.ndarray, mask_scale: float) -> np.ndarray:
    """For each true face: is its box (inner 70 %) inside the ellipse of some redaction mask?"""
    out = np.zeros(len(truth), dtype=bool)
    for i, (x, y, w, h) in enumerate(truth):
        corners = np.array([[x + w * 0.15, y + h * 0.15], [x + w * 0.85, y + h * 0.15],
                            [x + w * 0.15, y + h * 0.85], [x + w * 0.85, y + h * 0.85], [x + w / 2, y + h / 2]])
        for bx, by, bw, bh in boxes:
            cx, cy, ax, ay = bx + bw / 2, by + bh / 2, bw * mask_scale / 2, bh * mask_scale / 2
            if np.all(((corners[:, 0] - cx) / ax) ** 2 + ((corners[:, 1] - cy) / ay) ** 2 <= 1.0):
                out[i] = True
                break
    return out


@pytest.mark.parametrize("name", ["facenetpytorch_multiface.jpg", "ultralight_10.jpg", "retinaface_img3.jpg"])
def test_faces_of_10_to_14_px_are_all_covered(groups: Path, detector, name: str):
    small, truth = _small(groups, name, detector)
    widths = truth[:, 2]
    assert len(truth) >= 5 and np.all((widths >= 8) & (widths <= 18)), widths
    assert np.mean((widths >= 10) & (widths <= 14)) >= 0.6, widths
    options = RedactOptions()
    result = Redactor(detector, options).image(small)
    assert not result.obscured and "centerface" in result.detectors
    covered = _covered(truth, result.boxes, options.style.mask_scale)
    assert covered.all(), f"{(~covered).sum()} of {len(truth)} faces not covered: {truth[~covered].round(1)}"
    # An independent check on the pixels: CenterFace no longer finds any of those faces.
    again = CenterFaceDetector().detect(result.rgb, DetectOptions(min_face_size=4, score_threshold=0.5))
    if len(again):
        assert not (iou(truth, np.asarray(again.boxes, np.float64)) >= 0.3).any()


def test_the_fast_search_is_one_detector(groups: Path, detector):
    small, _ = _small(groups, "ultralight_10.jpg", detector)
    from faceledger.redact import PhotoSearch

    result = Redactor(detector, RedactOptions(photo=PhotoSearch(fast=True))).image(small)
    assert result.detectors == (detector.name,)


def test_small_boxes_grow_to_cover_the_head():
    boxes = np.array([[100.0, 100.0, 10.0, 12.0], [0.0, 0.0, 40.0, 48.0]])
    grown = head_boxes(boxes)
    assert np.allclose(grown[0], [98.0, 97.6, 14.0, 16.8])  # x1.4 about the centre at 10 px
    assert np.allclose(grown[1], boxes[1])  # 32 px and wider: unchanged
