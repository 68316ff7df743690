"""Redaction drawing (pure): what each method changes, and what it leaves alone."""

from __future__ import annotations

import numpy as np
import pytest

from faceledger.core.redaction import (
    RedactionStyle,
    draw_boxes,
    mask_region,
    obscure_frame,
    redact_faces,
)


def _textured(h: int = 120, w: int = 160) -> np.ndarray:
    """A deterministic image with detail at every scale (so a blur visibly changes it)."""
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


BOX = (40.0, 30.0, 40.0, 40.0)  # x, y, w, h; grown by 1.5 it spans x 30..90, y 20..80


@pytest.mark.parametrize("method", ["blur", "pixelate", "fill"])
@pytest.mark.parametrize("mask", ["ellipse", "box"])
def test_each_method_changes_the_face_and_nothing_outside_the_mask(method: str, mask: str):
    img = _textured()
    out = redact_faces(img, [BOX], RedactionStyle(method=method, mask=mask))
    changed = (out != img).any(axis=2)
    # The face box itself is almost entirely changed.
    assert changed[30:70, 40:80].mean() > 0.9
    # Nothing outside the grown box (x 30..90, y 20..80) is touched.
    outside = np.ones_like(changed)
    outside[20:80, 30:90] = False
    assert not changed[outside].any()
    # The ellipse spares the grown box's corners; the box covers them.
    corner = changed[20:24, 30:34].any()
    assert corner == (mask == "box")
    # The input is left as it was (a new array is returned).
    assert not np.shares_memory(out, img)


def test_fill_paints_the_fill_color_and_blur_removes_detail():
    img = _textured()
    filled = redact_faces(img, [BOX], RedactionStyle(method="fill", fill_color=(10, 200, 30)))
    assert (filled[50, 60] == [10, 200, 30]).all()
    blurred = redact_faces(img, [BOX], RedactionStyle(method="blur"))
    face = blurred[35:65, 45:75].astype(np.float64)
    # Random noise has a per-pixel std of ~74; a face-sized blur leaves almost none of it.
    assert np.abs(np.diff(face, axis=1)).mean() < 5
    pixelated = redact_faces(img, [BOX], RedactionStyle(method="pixelate", pixel_blocks=6))
    # 6 blocks across a 60-pixel mask: runs of ~10 equal pixels.
    row = pixelated[50, 45:75]
    assert len(np.unique(row, axis=0)) <= 5


def test_blur_strength_scales_with_face_size():
    """A big face keeps no more detail than a small one: sigma follows the mask width."""
    img = np.zeros((400, 400, 3), np.uint8)
    img[:, ::8] = 255  # vertical stripes every 8 px
    small = redact_faces(img, [(20, 20, 30, 30)])[25:45, 25:45].astype(float)
    large = redact_faces(img, [(100, 100, 200, 200)])[150:250, 150:250].astype(float)
    assert small.std() < 25 and large.std() < 25


def test_inplace_changes_the_given_array():
    img = _textured()
    same = redact_faces(img, [BOX], inplace=True)
    assert same is img


def test_boxes_outside_or_degenerate_are_ignored():
    img = _textured()
    out = redact_faces(img, [(500, 500, 20, 20), (10, 10, 0, 5), (float("nan"), 0, 5, 5)])
    assert (out == img).all()
    assert redact_faces(img, np.zeros((0, 4))).shape == img.shape


def test_box_at_the_border_is_clipped():
    img = _textured()
    out = redact_faces(img, [(-10, -10, 30, 30)], RedactionStyle(method="fill", mask="box"))
    assert (out[0:12, 0:12] == 0).all()
    # Centre (5, 5), grown half-size 22.5: pixels 0..27 inside the image.
    assert mask_region((-10, -10, 30, 30), 1.5, 160, 120)[4:] == (0, 0, 28, 28)
    assert mask_region((200, 200, 10, 10), 1.5, 160, 120) is None


def test_obscure_frame_leaves_nothing_of_the_image():
    img = _textured()
    out = obscure_frame(img, (1, 2, 3))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (out == [1, 2, 3]).all()


def test_draw_boxes_outlines_only():
    img = np.zeros((50, 50, 3), np.uint8)
    out = draw_boxes(img, [(10, 10, 20, 20)], [(255, 0, 0)])
    assert (out[10, 10:31] == [255, 0, 0]).all()
    assert (out[20, 20] == 0).all()
    assert (img == 0).all()


@pytest.mark.parametrize(
    "kwargs",
    [{"method": "smudge"}, {"mask": "circle"}, {"mask_scale": 0.5}, {"blur_sigma": 0.0}, {"pixel_blocks": 1},
     {"fill_color": (0, 0, 300)}],
)
def test_invalid_style_is_refused(kwargs: dict):
    with pytest.raises(ValueError):
        RedactionStyle(**kwargs)


def test_non_rgb_input_is_refused():
    with pytest.raises(ValueError):
        redact_faces(np.zeros((10, 10), np.uint8), [BOX])
