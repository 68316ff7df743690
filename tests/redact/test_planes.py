"""Redaction drawn on YUV 4:2:0 planes: the same obscuring as on RGB, nothing changed outside the masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceledger._cv import cv2
from faceledger.core.redaction import RedactionStyle, redact_faces
from faceledger.media.image import load_image
from faceledger.redact.planes import Picture, draw_boxes_i420, fill_i420, i420_planes, redact_i420, yuv_of

# Odd positions and sizes, boxes reaching over every edge, one wholly outside, two overlapping.
BOXES = np.array([
    [101.3, 57.7, 31.0, 37.0], [-12.5, 40.0, 29.0, 33.0], [600.0, 330.0, 61.0, 75.0], [300.0, -20.0, 13.0, 15.0],
    [900.0, 900.0, 20.0, 20.0], [200.0, 200.0, 45.0, 54.0], [221.0, 213.0, 45.0, 54.0],
])


@pytest.fixture(scope="module")
def frame(groups: Path) -> np.ndarray:
    rgb = load_image(groups / "ultralight_10.jpg").rgb
    return np.ascontiguousarray(cv2.resize(rgb, (640, 360), interpolation=cv2.INTER_AREA))


def _grown_mask(shape: tuple[int, int], boxes: np.ndarray, scale: float) -> np.ndarray:
    """Pixels inside any box grown by ``scale`` (and one pixel of slack for chroma rounding)."""
    inside = np.zeros(shape, bool)
    for x, y, w, h in boxes:
        cx, cy, hw, hh = x + w / 2, y + h / 2, w * scale / 2 + 2, h * scale / 2 + 2
        inside[max(0, int(cy - hh)) : max(0, int(cy + hh) + 1), max(0, int(cx - hw)) : max(0, int(cx + hw) + 1)] = True
    return inside


@pytest.mark.parametrize("method", ["blur", "pixelate", "fill"])
@pytest.mark.parametrize("mask", ["ellipse", "box"])
def test_planes_are_obscured_like_rgb_and_untouched_outside_the_masks(frame: np.ndarray, method: str, mask: str):
    style = RedactionStyle(method=method, mask=mask, fill_color=(200, 30, 60))
    yuv = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420)
    before = yuv.copy()
    redact_i420(yuv, BOXES, style)
    # Outside the grown boxes every plane is exactly as it was.
    y0, u0, v0 = i420_planes(before)
    y1, u1, v1 = i420_planes(yuv)
    inside = _grown_mask(y0.shape, BOXES, style.mask_scale)
    assert np.array_equal(y0[~inside], y1[~inside])
    inside_c = _grown_mask(u0.shape, BOXES / 2, style.mask_scale)
    assert np.array_equal(u0[~inside_c], u1[~inside_c]) and np.array_equal(v0[~inside_c], v1[~inside_c])
    # Inside, the result matches drawing on RGB (the reference), up to 4:2:0 rounding.
    reference = redact_faces(cv2.cvtColor(before, cv2.COLOR_YUV2RGB_I420), BOXES, style)
    ours = cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)
    diff = np.abs(ours.astype(int) - reference.astype(int)).mean(axis=2)
    core = np.zeros(y0.shape, bool)  # the middle of each face, away from the mask's edge
    for x, y, w, h in BOXES[[0, 2, 5]]:
        core[int(y + h / 4) : int(y + 3 * h / 4), int(x + w / 4) : int(x + 3 * w / 4)] = True
    if method != "blur":  # blur's strength: test_grouped_blur_is_at_least_as_strong_as_one_box_at_a_time
        assert diff[core].mean() < 3.0
    changed = np.abs(ours.astype(int) - cv2.cvtColor(before, cv2.COLOR_YUV2RGB_I420).astype(int)).mean(axis=2)
    assert changed[core].mean() > 8.0  # and it really was obscured
    if method == "fill":
        assert np.abs(ours[core].astype(int) - [200, 30, 60]).max() <= 3


def _one_box_at_a_time(yuv: np.ndarray, boxes: np.ndarray, style: RedactionStyle) -> np.ndarray:
    """The drawing before issue 13's grouping: each box's mask blurred on its own, on every plane."""
    from faceledger.core.redaction import mask_region
    from faceledger.redact.planes import _obscure_plane

    for plane, factor in zip(i420_planes(yuv), (1.0, 0.5, 0.5), strict=True):
        for box in boxes:
            region = mask_region(box * factor, style.mask_scale, plane.shape[1], plane.shape[0])
            if region is not None:
                _obscure_plane(plane, region, style, 0)
    return yuv


@pytest.mark.parametrize("mask", ["ellipse", "box"])
def test_grouped_blur_covers_exactly_the_masks_of_one_box_at_a_time(mask: str):
    # A crowd of 150 boxes from 3 to 260 px wide, many overlapping, some over the edges, on a 720p
    # checkerboard (every pixel a blur touches changes): the pixels changed are the same.
    rng = np.random.default_rng(13)
    widths = np.exp(rng.uniform(np.log(3), np.log(260), 150))
    boxes = np.column_stack([rng.uniform(-40, 1280, 150), rng.uniform(-40, 720, 150), widths,
                             widths * rng.uniform(1.0, 1.4, 150)])
    checker = ((np.indices((1080, 1280)).sum(axis=0) % 2) * 255).astype(np.uint8)
    style = RedactionStyle(mask=mask)
    ours = redact_i420(checker.copy(), boxes, style) != checker
    reference = _one_box_at_a_time(checker.copy(), boxes, style) != checker
    assert ours.sum() > 0.3 * ours.size
    assert np.array_equal(ours, reference)


@pytest.mark.parametrize("width", [9.0, 17.0, 26.0, 41.0, 77.0, 150.0])
def test_grouped_blur_is_at_least_as_strong_as_one_box_at_a_time(width: float):
    # A bright square in the middle of a dark face box: the blur spreads it; the spread (the second
    # moment of the brightness) measures the blur's sigma. Grouping rounds the shrink up, never down.
    yuv = np.full((540, 640), 128, np.uint8)
    luma = i420_planes(yuv)[0]
    luma[...] = 16
    box = np.array([[320 - width / 2, 180 - width / 2, width, width]])
    side = max(1, round(width / 4))
    luma[180 - side // 2 : 180 - side // 2 + side, 320 - side // 2 : 320 - side // 2 + side] = 235
    spreads = []
    for drawn in (redact_i420(yuv.copy(), box, RedactionStyle()), _one_box_at_a_time(yuv.copy(), box,
                                                                                    RedactionStyle())):
        light = i420_planes(drawn)[0].astype(float) - 16
        xs = np.arange(light.shape[1]) - 320 + 0.5
        spreads.append((light.sum(axis=0) * xs**2).sum() / light.sum())
    ours, before = spreads
    assert before * 0.98 <= ours <= before * 4.5  # at least as strong, at most twice the sigma


def test_picture_copies_match_the_rgb_conversion(frame: np.ndarray):
    yuv = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420)
    picture = Picture(yuv=yuv)
    assert picture.shape == (360, 640)
    full = cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)
    assert np.array_equal(picture.rgb(), full)
    small = Picture(yuv=yuv).scaled_rgb((320, 180))
    expected = cv2.resize(full, (320, 180), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - expected.astype(int)).mean() < 3.0  # measured 2.0: chroma scaled apart
    assert np.array_equal(picture.grey((160, 90)), cv2.resize(i420_planes(yuv)[0], (160, 90),
                                                              interpolation=cv2.INTER_AREA))
    with pytest.raises(ValueError):
        Picture()


def test_fail_closed_fill_and_box_outlines_on_planes(frame: np.ndarray):
    yuv = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420)
    flat = fill_i420(yuv, (0, 0, 0))
    assert flat.shape == yuv.shape
    assert cv2.cvtColor(flat, cv2.COLOR_YUV2RGB_I420).max() <= 2
    assert yuv_of((255, 255, 255))[0] >= 230 and yuv_of((0, 0, 0))[0] <= 20  # video range
    draw_boxes_i420(yuv, BOXES[:1], [(0, 230, 0)])
    rgb = cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)
    x, y, w = 101, 58, 31
    top = rgb[y, x + 2 : x + w - 2].astype(int)
    assert (top[:, 1] > 150).all() and (top[:, 0] < 90).all()  # a green line along the top edge
