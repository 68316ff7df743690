"""Tracker logic on fake boxes: interpolation, hold, lead, association, buffering."""

from __future__ import annotations

import numpy as np
import pytest

from faceledger.redact.tracker import FaceTracker, TrackerConfig


def run(tracker: FaceTracker, frames: list[list[tuple[float, float, float, float]]]) -> dict[int, list]:
    """Push every frame, flush, and return {frame index: [TrackedBox, ...]}."""
    out: dict[int, list] = {}
    for boxes in frames:
        for index, tracked in tracker.push(np.array(boxes, dtype=np.float64).reshape(-1, 4)):
            out[index] = tracked
    for index, tracked in tracker.flush():
        out[index] = tracked
    return out


def test_every_frame_comes_back_once_in_order_after_the_lookahead():
    tracker = FaceTracker(TrackerConfig(lookahead=3, max_gap=3, hold=2, lead=2))
    seen = []
    for i in range(10):
        ready = tracker.push(np.array([[i, 0, 10, 10]], dtype=np.float64))
        seen += [idx for idx, _ in ready]
        assert tracker.pending == min(i + 1, 3)
    seen += [idx for idx, _ in tracker.flush()]
    assert seen == list(range(10))
    assert tracker.pending == 0


def test_a_short_gap_is_interpolated_linearly():
    tracker = FaceTracker(TrackerConfig(lookahead=4, max_gap=4, hold=0, lead=0))
    out = run(tracker, [[(0, 0, 10, 10)], [], [], [(12, 3, 16, 10)]])
    assert [t.kind for t in out[1]] == ["interpolated"]
    assert out[1][0].box == pytest.approx((4.0, 1.0, 12.0, 10.0))
    assert out[2][0].box == pytest.approx((8.0, 2.0, 14.0, 10.0))
    assert out[0][0].kind == out[3][0].kind == "detected"


def test_a_lost_track_is_held_for_hold_frames_then_dropped():
    tracker = FaceTracker(TrackerConfig(lookahead=2, max_gap=2, hold=3, lead=0, grow=0.1))
    out = run(tracker, [[(100, 100, 20, 20)], [(102, 100, 20, 20)], [], [], [], [], []])
    kinds = [[t.kind for t in out[i]] for i in range(7)]
    assert kinds == [["detected"], ["detected"], ["held"], ["held"], ["held"], [], []]
    # Held boxes move on with the track's velocity (+2 px/frame) and grow 10 % per frame.
    x, y, w, h = out[3][0].box
    assert w == pytest.approx(20 * 1.1**2)
    assert x + w / 2 == pytest.approx(112 + 2 * 2)


def test_a_new_track_is_covered_for_lead_frames_before_its_first_detection():
    tracker = FaceTracker(TrackerConfig(lookahead=3, max_gap=3, hold=0, lead=2, grow=0.0))
    out = run(tracker, [[], [], [], [(50, 50, 10, 10)], [(50, 50, 10, 10)]])
    assert out[0] == []
    assert [t.kind for t in out[1]] == ["lead"]
    assert [t.kind for t in out[2]] == ["lead"]
    assert out[2][0].box == pytest.approx((50, 50, 10, 10))


def test_a_gap_longer_than_max_gap_is_held_and_led_but_not_interpolated():
    tracker = FaceTracker(TrackerConfig(lookahead=6, max_gap=2, hold=2, lead=2, grow=0.0))
    out = run(tracker, [[(0, 0, 10, 10)], [], [], [], [], [(4, 0, 10, 10)]])
    assert [t.kind for t in out[1]] == ["held"]
    assert out[2] and all(t.kind == "held" for t in out[2])
    assert out[3] and {t.kind for t in out[3]} == {"lead"}
    assert all(t.kind != "interpolated" for frame in out.values() for t in frame)


def test_two_faces_keep_their_own_tracks():
    tracker = FaceTracker(TrackerConfig(lookahead=3, max_gap=3, hold=0, lead=0))
    a = [(10 + 3 * i, 10, 20, 20) for i in range(6)]
    b = [(200 - 3 * i, 10, 20, 20) for i in range(6)]
    frames = [[a[i], b[i]] if i != 2 else [b[i]] for i in range(6)]  # a is missed in frame 2
    out = run(tracker, frames)
    ids = {t.track_id for frame in out.values() for t in frame}
    assert len(ids) == 2
    interp = [t for t in out[2] if t.kind == "interpolated"]
    assert len(interp) == 1 and interp[0].box == pytest.approx(a[2])


def test_a_small_fast_face_is_matched_by_distance_when_boxes_stop_overlapping():
    """A 12-px face seen every third frame moves 9 px between sightings: no IoU, same track."""
    tracker = FaceTracker(TrackerConfig(lookahead=3, max_gap=3, hold=0, lead=0))
    frames = [[(3.0 * i, 40, 12, 12)] if i % 3 == 0 else [] for i in range(10)]
    out = run(tracker, frames)
    assert len({t.track_id for frame in out.values() for t in frame}) == 1
    assert [len(out[i]) for i in range(10)] == [1] * 10
    assert out[4][0].box == pytest.approx((12.0, 40, 12, 12))


def test_faces_far_apart_are_not_matched():
    tracker = FaceTracker(TrackerConfig(lookahead=1, max_gap=1, hold=0, lead=0))
    out = run(tracker, [[(0, 0, 10, 10)], [(100, 100, 10, 10)]])
    assert out[0][0].track_id != out[1][0].track_id


@pytest.mark.parametrize(
    "kwargs", [{"max_gap": 5, "lookahead": 4}, {"lead": 5, "lookahead": 4}, {"hold": -1}, {"grow": 1.0}]
)
def test_invalid_config_is_refused(kwargs: dict):
    with pytest.raises(ValueError):
        TrackerConfig(**kwargs)


def test_small_faces_seen_every_third_frame_stay_covered_during_a_fast_pan():
    """The camera pans 11 px per frame; big faces are detected in every frame, 14-px faces
    only every third frame (the fine pass), 33 px apart: too far to link by position alone."""
    big = [(100.0 + 90 * k, 400.0, 40.0, 48.0) for k in range(4)]
    small = [(50.0 + 16 * k, 100.0, 14.0, 17.0) for k in range(0, 30, 2)]
    frames = []
    for i in range(15):
        dx = -11.0 * i
        boxes = [(x + dx, y, w, h) for x, y, w, h in big]
        if i % 3 == 0:
            boxes += [(x + dx, y, w, h) for x, y, w, h in small]
        frames.append(boxes)
    out = run(FaceTracker(), frames)
    for i in range(1, 14):
        centres = np.array([(t.box[0] + t.box[2] / 2, t.box[1] + t.box[3] / 2) for t in out[i]])
        for x, y, w, h in small:
            truth = np.array([x - 11.0 * i + w / 2, y + h / 2])
            nearest = np.linalg.norm(centres - truth, axis=1).min()
            assert nearest < 3.0, f"frame {i}: small face at {truth} uncovered (nearest box {nearest:.1f} px away)"


def test_frames_not_searched_get_boxes_carried_by_the_given_camera_motion():
    """Every 2nd frame searched; the camera pans 13 px per frame (motion given, as from the picture).
    Faces of 14 px seen in every searched frame, and one seen in a single searched frame only."""
    pan = np.array([[1.0, 0.0, -13.0], [0.0, 1.0, 0.0]])
    faces = [(200.0 + 30 * k, 150.0, 14.0, 17.0) for k in range(6)]
    once = (500.0, 300.0, 30.0, 36.0)
    tracker = FaceTracker()
    out: dict[int, list] = {}
    for i in range(16):
        boxes = None
        if i % 2 == 0:
            boxes = [(x - 13.0 * i, y, w, h) for x, y, w, h in faces]
            if i == 8:
                boxes.append((once[0] - 13.0 * i, *once[1:]))
            boxes = np.array(boxes)
        for index, tracked in tracker.push(boxes, None if i == 0 else pan):
            out[index] = tracked
    out.update(dict(tracker.flush()))
    assert sorted(out) == list(range(16))
    for i in range(16):
        centres = np.array([(t.box[0] + t.box[2] / 2, t.box[1] + t.box[3] / 2) for t in out[i]])
        for x, y, w, h in faces:
            truth = np.array([x - 13.0 * i + w / 2, y + h / 2])
            assert np.linalg.norm(centres - truth, axis=1).min() < 1.0, f"frame {i}: face at {truth} uncovered"
        if i % 2:
            assert all(t.kind != "detected" for t in out[i])
    for i in range(5, 12):  # the face seen once is led into and held after frame 8, moving with the camera
        truth = np.array([once[0] - 13.0 * i + once[2] / 2, once[1] + once[3] / 2])
        near = [t for t in out[i] if np.hypot(*(np.array(t.box[:2]) + np.array(t.box[2:]) / 2 - truth)) < 1]
        assert near and near[0].box[2] >= once[2], f"frame {i}: the face seen once is uncovered"
