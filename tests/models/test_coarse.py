"""Coarse-to-fine search on real photos: the same faces, landmarks from full-resolution pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceledger._cv import cv2
from faceledger.core.geometry import iou
from faceledger.models.coarse import shrink


@pytest.fixture(scope="module")
def big_group(groups: Path, tmp_path_factory) -> Path:
    """ultralight_10.jpg (19 faces of ~40 px) enlarged 3x to 3072x2145: faces of ~120 px."""
    rgb = cv2.imread(str(groups / "ultralight_10.jpg"))
    big = cv2.resize(rgb, (rgb.shape[1] * 3, rgb.shape[0] * 3), interpolation=cv2.INTER_CUBIC)
    path = tmp_path_factory.mktemp("coarse") / "group-3x.jpg"
    cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def test_bounded_search_finds_the_faces_of_the_full_search_with_the_same_templates(engine, big_group: Path):
    full = engine.detect(big_group, full_coverage=True, quality=False)
    bounded = engine.detect(big_group, quality=False)
    assert len(full) >= 15
    fb = np.array([f.box.as_tuple() for f in full])
    pairs = []
    for f in bounded:
        overlap = iou(np.array([f.box.as_tuple()]), fb)[0]
        j = int(np.argmax(overlap))
        if overlap[j] >= 0.5:
            pairs.append((f, full[j]))
    assert len(pairs) >= 0.9 * len(full)
    ours = engine.embed(big_group, [a for a, _ in pairs])
    theirs = engine.embed(big_group, [b for _, b in pairs])
    cos = np.array([float(np.dot(a.vector, b.vector)) for a, b in zip(ours, theirs, strict=True)])
    # The same faces give the same identities (same-person scores are ~0.5+, threshold 0.36).
    assert np.median(cos) >= 0.9 and cos.min() >= 0.75, np.sort(cos)


def test_template_refines_only_the_chosen_face_and_agrees_with_detect(engine, big_group: Path):
    faces = engine.detect(big_group)
    largest = max(faces, key=lambda f: f.box.area)
    via_detect = engine.embed(big_group, [largest])[0]
    direct = engine.template(big_group, face="largest")
    assert np.abs(direct.face.landmarks_array() - largest.landmarks_array()).max() < 0.05 * largest.box.w
    # template() searches for the subject on a coarser copy (640 px); refined on the same pixels, the
    # face's landmarks differ by a few pixels and the templates agree far above any same-person score.
    assert float(np.dot(direct.vector, via_detect.vector)) > 0.9


@pytest.mark.parametrize(("h", "w", "side", "expected"), [
    (5140, 7720, 1280, None),  # 7720 / 7 = 1102 (>= 1024): one whole-number step of 7
    (1396, 2005, 640, None),
    (835, 1198, 640, (417, 599)),  # one whole-number step of 2 (599 >= 0.8 x 640)
    (457, 656, 640, None),  # 2.5% over: bilinear only
    (1088, 1920, 640, (362, 640)),  # exactly 3
])
def test_shrink_maps_back_to_image_pixels(h, w, side, expected):
    rgb = np.zeros((h, w, 3), np.uint8)
    y0, x0, n = h // 5, w // 4, max(8, w // 60)
    rgb[y0:y0 + n, x0:x0 + n] = 255
    small, sx, sy = shrink(rgb, side)
    assert 0.8 * side <= max(small.shape[:2]) <= side
    if expected is not None:
        assert small.shape[:2] == expected
    ys, xs = np.nonzero(small[..., 0] > 127)
    assert abs(xs.min() * sx - x0) <= 2 * sx and abs(ys.min() * sy - y0) <= 2 * sy
    assert abs((xs.max() + 1) * sx - (x0 + n)) <= 2 * sx and abs((ys.max() + 1) * sy - (y0 + n)) <= 2 * sy


@pytest.mark.parametrize("shape", [(1, 30000), (30000, 1), (2, 5000), (3, 3000)])
def test_shrink_keeps_a_pixel_of_a_one_pixel_wide_image(shape):
    """Found by bench/fuzz.py: a 1-pixel-high strip cut to a multiple of the reduction was empty."""
    small, sx, sy = shrink(np.full((*shape, 3), 9, np.uint8), 1280)
    assert small.size > 0 and 1024 <= max(small.shape[:2]) <= 1280 and sx > 0 and sy > 0
