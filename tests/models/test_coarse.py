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


def test_shrink_maps_back_to_image_pixels():
    rgb = np.zeros((5140, 7720, 3), np.uint8)
    rgb[1000:1100, 2000:2100] = 255
    small, sx, sy = shrink(rgb, 1280)
    assert max(small.shape[:2]) == 1280
    ys, xs = np.nonzero(small[..., 0] > 127)
    assert abs(xs.min() * sx - 2000) <= 2 * sx and abs(ys.min() * sy - 1000) <= 2 * sy


@pytest.mark.parametrize("shape", [(1, 30000), (30000, 1), (2, 5000), (3, 3000)])
def test_shrink_keeps_a_pixel_of_a_one_pixel_wide_image(shape):
    """Found by bench/fuzz.py: a 1-pixel-high strip cut to a multiple of the reduction was empty."""
    small, sx, sy = shrink(np.full((*shape, 3), 9, np.uint8), 1280)
    assert small.size > 0 and max(small.shape[:2]) == 1280 and sx > 0 and sy > 0
