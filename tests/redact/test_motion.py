"""Camera motion from tracked faces, and the fine pass's tiling (pure logic)."""

from __future__ import annotations

import numpy as np
import pytest

from faceledger.core.geometry import tiles
from faceledger.redact.motion import CameraMotion, carry_box, compose, fit_motion, invert


def _grid(n: int = 12, w: float = 20.0) -> np.ndarray:
    rng = np.random.default_rng(3)
    xy = rng.uniform(50, 600, (n, 2))
    return np.c_[xy, np.full(n, w), np.full(n, w * 1.2)]


def _move(boxes: np.ndarray, zoom: float, dx: float, dy: float) -> np.ndarray:
    centres = (boxes[:, :2] + boxes[:, 2:] / 2) * zoom + [dx, dy]
    sizes = boxes[:, 2:] * zoom
    return np.c_[centres - sizes / 2, sizes]


def test_fit_motion_recovers_a_pan_and_zoom_and_carries_boxes():
    before = _grid()
    after = _move(before, 1.05, -11.0, 3.0)
    m = fit_motion(before, after)
    assert m is not None
    assert m[:, 2] == pytest.approx([-11.0, 3.0], abs=0.5)
    assert np.sqrt(np.linalg.det(m[:, :2])) == pytest.approx(1.05, abs=1e-3)
    assert carry_box(before[0], m) == pytest.approx(after[0], abs=0.5)


def test_fit_motion_ignores_a_few_faces_moving_on_their_own():
    before = _grid(12)
    after = _move(before, 1.0, 8.0, 0.0)
    after[:3, 0] += 60  # three people walk the other way
    m = fit_motion(before, after)
    assert m is not None and m[0, 2] == pytest.approx(8.0, abs=0.5)


def test_no_motion_from_too_few_or_disagreeing_faces():
    before = _grid(2)
    assert fit_motion(before, _move(before, 1.0, 5.0, 0.0)) is None
    before = _grid(6)
    scattered = before + np.random.default_rng(1).uniform(-80, 80, before.shape) * [1, 1, 0, 0]
    assert fit_motion(before, scattered) is None


def test_compose_and_invert():
    a = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, -2.0]])
    b = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    ab = compose([a, b])  # first a, then b
    assert carry_box(np.array([0.0, 0.0, 10.0, 10.0]), ab) == pytest.approx([10.0, -4.0, 20.0, 20.0])
    back = compose([invert(b), invert(a)])
    assert carry_box(carry_box(np.array([3.0, 4.0, 6.0, 8.0]), ab), back) == pytest.approx([3, 4, 6, 8])
    assert compose([a, None]) is None


@pytest.mark.parametrize("size", [(1707, 960), (1920, 1080), (640, 360), (3000, 500)])
def test_tiles_cover_the_image_with_overlap_and_bounded_sides(size: tuple[int, int]):
    found = tiles(size, 960, 70)
    covered = np.zeros(size[::-1], bool)
    for x0, y0, x1, y1 in found:
        assert x1 - x0 <= 960 and y1 - y0 <= 960
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    xs = sorted({(x0, x1) for x0, _, x1, _ in found})
    for (_, a1), (b0, _) in zip(xs[:-1], xs[1:], strict=True):
        assert a1 - b0 >= 70  # a face up to the overlap lies whole in some tile


def _photo_frames(groups, shifts):  # noqa: ANN001, ANN202
    """Frames of a real group photo, each moved by one (zoom, dx, dy) of ``shifts``."""
    from faceledger._cv import cv2
    from faceledger.media.image import load_image

    rgb = load_image(groups / "ultralight_10.jpg").rgb
    out = []
    for zoom, dx, dy in shifts:
        m = np.array([[zoom, 0.0, dx], [0.0, zoom, dy]])
        out.append(cv2.warpAffine(rgb, m, (640, 360), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return out


def test_camera_motion_from_the_picture_recovers_a_pan_and_a_zoom(groups):  # noqa: ANN001
    frames = _photo_frames(groups, [(1.0, -40.0, -30.0), (1.0, -49.0, -27.0), (1.03, -49.0, -27.0)])
    camera = CameraMotion(640, 360)
    assert camera.step(camera.grey(frames[0])) is None  # no previous frame yet
    pan = camera.step(camera.grey(frames[1]))
    assert pan is not None
    assert pan[:, 2] == pytest.approx([-9.0, 3.0], abs=0.6)
    assert pan[:, :2] == pytest.approx(np.eye(2), abs=0.01)
    zoom = camera.step(camera.grey(frames[2]))
    assert zoom is not None
    assert np.sqrt(np.linalg.det(zoom[:, :2])) == pytest.approx(1.03, abs=0.005)
    # A face box follows the zoom: centre mapped, size scaled.
    box = np.array([300.0, 100.0, 20.0, 24.0])
    moved = carry_box(box, zoom)
    assert moved[2] == pytest.approx(20.6, abs=0.15)


def test_camera_motion_is_unknown_on_a_cut_to_a_blank_frame(groups):  # noqa: ANN001
    (frame,) = _photo_frames(groups, [(1.0, 0.0, 0.0)])
    camera = CameraMotion(640, 360)
    camera.step(camera.grey(np.full_like(frame, 128)))
    assert camera.step(camera.grey(frame)) is None  # nothing to follow from a flat frame
    assert camera.step(camera.grey(np.full_like(frame, 128))) is None  # nothing found in a flat frame
