"""Pure core functions: boxes, NMS, similarity alignment, quality, cosine."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceledger.core.align import ARCFACE_112, align_face, similarity_transform
from faceledger.core.geometry import iou, nms, overlap_of_smaller
from faceledger.core.quality import pose_from_landmarks, sharpness
from faceledger.core.similarity import cosine, l2_normalize


def test_iou_known_values():
    a = np.array([[0, 0, 10, 10]])
    assert iou(a, a)[0, 0] == pytest.approx(1.0)
    assert iou(a, np.array([[5, 0, 10, 10]]))[0, 0] == pytest.approx(50 / 150)
    assert iou(a, np.array([[20, 20, 5, 5]]))[0, 0] == 0.0
    assert overlap_of_smaller(a, np.array([[2, 2, 4, 4]]))[0, 0] == pytest.approx(1.0)


def test_nms_keeps_best_and_separate_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 10, 10]])
    scores = np.array([0.8, 0.9, 0.7])
    assert nms(boxes, scores, 0.4).tolist() == [1, 2]
    # A small box inside a big one survives IoU-NMS but not containment-NMS.
    nested = np.array([[0, 0, 40, 40], [10, 10, 12, 12]])
    assert nms(nested, np.array([0.9, 0.8]), 0.4).tolist() == [0, 1]
    assert nms(nested, np.array([0.9, 0.8]), 0.4, containment=0.5).tolist() == [0]
    assert nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, t = math.radians(17), 1.7, np.array([12.0, -4.0])
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    dst = scale * src @ rot.T + t
    m = similarity_transform(src, dst)
    assert np.allclose(m[:, :2], scale * rot, atol=1e-9)
    assert np.allclose(m[:, 2], t, atol=1e-9)


def test_similarity_transform_ignores_missing_points_and_rejects_degenerate():
    src = ARCFACE_112.copy()
    src[3:] = np.nan
    m = similarity_transform(src * 2 + 5, ARCFACE_112)
    assert np.allclose(m[:, :2], np.eye(2) * 0.5, atol=1e-9)
    with pytest.raises(ValueError):
        similarity_transform(np.ones((5, 2)), ARCFACE_112)
    with pytest.raises(ValueError):
        similarity_transform(np.full((5, 2), np.nan), ARCFACE_112)


def test_align_face_puts_landmarks_on_the_reference():
    # Draw five dots where landmarks are, rotate/scale the layout, align, and find the dots again.
    img = np.zeros((300, 300, 3), np.uint8)
    angle = math.radians(-20)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    marks = (ARCFACE_112 - 56) @ rot.T * 2.0 + 150
    for x, y in marks:
        img[int(round(y)) - 1 : int(round(y)) + 2, int(round(x)) - 1 : int(round(x)) + 2] = 255
    crop = align_face(img, marks)
    assert crop.shape == (112, 112, 3)
    for rx, ry in ARCFACE_112:
        patch = crop[int(ry) - 2 : int(ry) + 3, int(rx) - 2 : int(rx) + 3, 0]
        assert patch.max() > 100


def test_pose_proxies():
    frontal = ARCFACE_112.copy()
    iod, yaw, roll = pose_from_landmarks(frontal)
    assert iod == pytest.approx(35.24, abs=0.01)
    assert abs(yaw) < 0.05 and abs(roll) < 1
    turned = frontal.copy()
    turned[2, 0] += 15  # nose towards the image right
    assert pose_from_landmarks(turned)[1] > 0.3
    assert all(math.isnan(v) for v in pose_from_landmarks(np.zeros((5, 2))))


def test_sharpness_drops_with_blur():
    rng = np.random.default_rng(1)
    crop = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
    import cv2

    assert sharpness(cv2.GaussianBlur(crop, (9, 9), 3)) < sharpness(crop) / 10


def test_cosine_and_normalisation():
    v = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert np.allclose(v[0], [0.6, 0.8]) and np.allclose(v[1], 0)
    assert cosine([1, 0], [0, 2]) == pytest.approx(0.0)
    assert cosine([1, 1], [2, 2]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        cosine([1, 0], [1, 0, 0])


def test_clip_to_image_drops_non_finite_and_outside_and_clips():
    from faceledger.core.geometry import clip_to_image

    boxes = np.array([[10, 10, 20, 20], [-15, 5, 20, 20], [np.nan, 0, 5, 5], [200, 10, 5, 5],
                      [5, 5, np.inf, 5], [0, 0, 0, 10]], np.float32)
    marks = np.zeros((6, 5, 2), np.float32)
    marks[1] = np.nan  # a detector without landmarks: allowed
    scores = np.array([0.9, 0.8, 0.9, 0.9, 0.9, 0.9], np.float32)
    keep, clipped = clip_to_image(boxes, marks, scores, 100, 50)
    assert keep.tolist() == [True, False, False, False, False, False]  # box 1's centre is outside (x=-5)
    boxes[1] = [-5, 5, 20, 20]
    keep, clipped = clip_to_image(boxes, marks, scores, 100, 50)
    assert keep.tolist() == [True, True, False, False, False, False]
    assert np.allclose(clipped[1], [0, 5, 15, 20])
    scores[0] = np.nan
    assert not clip_to_image(boxes, marks, scores, 100, 50)[0][0]


@pytest.mark.parametrize("factor", [2.3, 3.0, 4.7, 8.0])
def test_a_large_face_is_aligned_as_the_same_face_at_crop_size(factor):
    """A face several times the crop's size (whole-number area step, then the bilinear warp) gives the
    crop of the same face drawn at about the crop's size: the reduction keeps its place and detail."""
    from faceledger._cv import cv2

    rng = np.random.default_rng(7)
    small = cv2.GaussianBlur(rng.integers(0, 256, (160, 160, 3), dtype=np.uint8), (0, 0), 1.2)
    marks = ARCFACE_112 + 24.0  # the layout at crop size, inside the 160 px picture
    big = cv2.resize(small, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    # the same points in the enlarged picture (pixel centres: x' = (x + 0.5) * f - 0.5)
    big_marks = (marks + 0.5) * factor - 0.5
    a = align_face(small, marks).astype(np.float32)
    b = align_face(big, big_marks).astype(np.float32)
    inner = (slice(8, 104), slice(8, 104))
    # 1.1-1.8 grey levels here; 3.3-4.9 when the reduced pixels were placed half a cell off
    assert np.abs(a[inner] - b[inner]).mean() < 2.5, "the reduced face must line up with the small one"
    shifted = align_face(big, big_marks + factor).astype(np.float32)  # one crop pixel off
    assert np.abs(a[inner] - shifted[inner]).mean() > np.abs(a[inner] - b[inner]).mean() + 2.0


@pytest.mark.parametrize("containment", [None, 0.5])
def test_nms_from_one_matrix_decides_as_box_by_box(monkeypatch, containment):
    """The matrix path (up to 1,024 boxes) keeps exactly what the box-by-box loop keeps: clusters,
    nested boxes, ties and degenerate boxes included."""
    from faceledger.core import geometry

    rng = np.random.default_rng(11)
    for trial in range(60):
        n = int(rng.integers(2, 300))
        centres = rng.uniform(0, 400, (int(rng.integers(1, 20)), 2))
        c = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 6, (n, 2))
        wh = rng.uniform(0, 60, (n, 2))
        wh[rng.random(n) < 0.05] = 0.0  # degenerate boxes
        boxes = np.column_stack([c - wh / 2, wh])
        scores = np.round(rng.random(n), 2)  # ties
        fast = nms(boxes, scores, 0.3, containment)
        monkeypatch.setattr(geometry, "_NMS_MATRIX_MAX", 0)
        slow = nms(boxes, scores, 0.3, containment)
        monkeypatch.setattr(geometry, "_NMS_MATRIX_MAX", 1024)
        assert fast.tolist() == slow.tolist(), trial
