"""Face tracks across video frames, so that one missed detection never reveals a face.

Pure logic on boxes (``(x, y, w, h)`` in pixels, floats); no images. Frames are
pushed in order and come back out ``lookahead`` frames later, each with the boxes
to redact in it. The delay is what lets a box be decided with the future known:

* **detected**: the detector found the face in this frame;
* **interpolated**: the track was seen before and after this frame, within
  ``max_gap`` frames, so the box is the linear interpolation of the two;
* **held**: the track was lost at most ``hold`` frames ago; its last box is moved
  on (by the camera motion, else by the track's own velocity) and grown by
  ``grow`` per frame;
* **lead**: the track is first seen at most ``lead`` frames later (a face turning
  towards the camera); its first box, moved back and grown likewise, is used.

Camera motion (pan, zoom, small rotation) is fitted each frame to the faces
matched in consecutive frames (see :mod:`faceledger.redact.motion`); boxes carried
across frames follow it, so a small face seen only every few frames, or lost for a
few, stays covered during a fast pan.

Detections are matched to tracks greedily, best first, by the IoU between the
detection and the track's predicted box (last box moved on by its velocity), or,
for small faces whose boxes no longer overlap (fast motion, or a face seen only
every few frames), by a centre distance below half the box width per frame since
the track was last seen, with a similar size.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np

from faceledger.core.geometry import iou
from faceledger.redact.motion import carry_box, compose, fit_motion, invert

__all__ = ["BoxKind", "FaceTracker", "TrackedBox", "TrackerConfig"]

BoxKind = Literal["detected", "interpolated", "held", "lead"]


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """How long a face stays covered without a detection (all counts in frames)."""

    lookahead: int = 6
    max_gap: int = 6
    hold: int = 8
    lead: int = 4
    grow: float = 0.04
    iou_match: float = 0.2

    def __post_init__(self) -> None:
        if min(self.lookahead, self.max_gap, self.hold, self.lead) < 0:
            raise ValueError("tracker frame counts must not be negative")
        if self.max_gap > self.lookahead or self.lead > self.lookahead:
            raise ValueError("max_gap and lead cannot exceed lookahead (the frames buffered)")
        if not (0.0 <= self.grow <= 0.5) or not (0.0 < self.iou_match <= 1.0):
            raise ValueError("grow must be within [0, 0.5] and iou_match within (0, 1]")


class TrackedBox(NamedTuple):
    """A box to redact in one output frame, the track it belongs to, and why."""

    box: tuple[float, float, float, float]
    track_id: int
    kind: BoxKind


@dataclass(slots=True)
class _Track:
    track_id: int
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)

    @property
    def last(self) -> int:
        return self.frames[-1]

    def velocity(self) -> np.ndarray:
        """Per-frame change of (x, y, w, h) over the last two observations (zeros if one)."""
        if len(self.frames) < 2:
            return np.zeros(4)
        return (self.boxes[-1] - self.boxes[-2]) / (self.frames[-1] - self.frames[-2])

    def predict(self, frame: int) -> np.ndarray:
        box = self.boxes[-1] + self.velocity() * (frame - self.last)
        box[2:] = np.maximum(box[2:], 1.0)
        return box


class FaceTracker:
    """Associate detections over frames and decide the boxes to redact in each frame.

    >>> tracker = FaceTracker(TrackerConfig(lookahead=2, max_gap=2, hold=2, lead=1))
    >>> ready = tracker.push(boxes)        # boxes: (n, 4) detections of the next frame
    >>> for index, tracked in ready: ...   # frames whose boxes are final, in order
    >>> for index, tracked in tracker.flush(): ...   # at the end of the video
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._frame = -1  # index of the last frame pushed
        self._pending: deque[int] = deque()
        self._motions: dict[int, np.ndarray | None] = {}  # frame f-1 -> f, stored at f
        self._composed: dict[tuple[int, int], np.ndarray | None] = {}  # (start, end) -> motion

    @property
    def pending(self) -> int:
        """Frames pushed but not returned yet."""
        return len(self._pending)

    def push(
        self, boxes: np.ndarray | None, motion: np.ndarray | None = None
    ) -> list[tuple[int, list[TrackedBox]]]:
        """Add the next frame's detections; return the frames that are now final.

        ``boxes`` is ``None`` for a frame that was not searched (its boxes come from the
        tracks around it). ``motion`` is the camera motion from the previous frame to this
        one (a 2x3 similarity, e.g. from :class:`~faceledger.redact.motion.CameraMotion`);
        when ``None`` it is fitted to the faces matched in both frames, if any.
        """
        self._frame += 1
        if boxes is None:
            self._motions[self._frame] = motion
        else:
            self._associate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), motion)
        self._pending.append(self._frame)
        ready = []
        while self._pending and self._pending[0] <= self._frame - self.config.lookahead:
            ready.append(self._emit(self._pending.popleft()))
        return ready

    def flush(self) -> list[tuple[int, list[TrackedBox]]]:
        """Return every frame still pending (at the end of the video)."""
        ready = [self._emit(i) for i in self._pending]
        self._pending.clear()
        return ready

    # -- association ------------------------------------------------------------------
    def _alive(self) -> list[_Track]:
        horizon = max(self.config.hold, self.config.max_gap) + 1
        return [t for t in self._tracks if self._frame - t.last <= horizon]

    def _associate(self, dets: np.ndarray, motion: np.ndarray | None) -> None:
        """Match detections to tracks in two passes, fitting the camera motion in between.

        First the tracks seen in the previous frame (predicted by their own velocity);
        the faces matched there give the camera motion; then the older tracks,
        carried by that motion, against the detections left. With the camera motion
        given, every track is carried by it and matched in one pass.
        """
        alive = self._alive()
        free = set(range(len(dets)))
        if motion is not None:
            self._motions[self._frame] = motion
            self._match(alive, [self._predict(t) for t in alive], dets, free)
            self._start_tracks(dets, free)
            return
        recent = [t for t in alive if t.last == self._frame - 1]
        first = self._match(recent, [t.predict(self._frame) for t in recent], dets, free)
        before = [recent[ti].boxes[-2] for ti, _ in first]  # already extended by this frame
        self._motions[self._frame] = fit_motion(np.array(before), dets[[di for _, di in first]]) if first else None
        matched = {id(recent[ti]) for ti, _ in first}
        rest = [t for t in alive if id(t) not in matched]
        self._match(rest, [self._predict(t) for t in rest], dets, free)
        self._start_tracks(dets, free)

    def _start_tracks(self, dets: np.ndarray, free: set[int]) -> None:
        for di in sorted(free):
            self._tracks.append(_Track(self._next_id, [self._frame], [dets[di]]))
            self._next_id += 1

    def _match(
        self, tracks: list[_Track], preds: list[np.ndarray], dets: np.ndarray, free: set[int]
    ) -> list[tuple[int, int]]:
        """Extend ``tracks`` with the free detections they match; return (track, detection) pairs."""
        cols = sorted(free)
        if not tracks or not cols:
            return []
        gaps = np.array([self._frame - t.last for t in tracks], dtype=np.float64)
        pairs = _greedy_pairs(np.stack(preds), gaps, dets[cols], self.config.iou_match)
        out = []
        for ti, ci in pairs:
            di = cols[ci]
            tracks[ti].frames.append(self._frame)
            tracks[ti].boxes.append(dets[di])
            free.discard(di)
            out.append((ti, di))
        return out

    def _predict(self, track: _Track) -> np.ndarray:
        """Where ``track`` should be now: carried by the camera motion, else by its velocity."""
        carried = self._carry(track.boxes[-1], track.last, self._frame)
        return carried if carried is not None else track.predict(self._frame)

    def _carry(self, box: np.ndarray, start: int, end: int) -> np.ndarray | None:
        """``box`` of frame ``start`` moved to frame ``end`` by the camera motions (``None`` if unknown)."""
        key = (start, end)
        if key not in self._composed:
            if end >= start:
                steps = [self._motions.get(f) for f in range(start + 1, end + 1)]
            else:
                steps = [invert(self._motions.get(f)) for f in range(start, end, -1)]
            self._composed[key] = compose(steps)
        motion = self._composed[key]
        return None if motion is None else carry_box(box, motion)

    # -- decisions ----------------------------------------------------------------------
    def _emit(self, index: int) -> tuple[int, list[TrackedBox]]:
        # In box order, not track order: overlapping masks are drawn in an order that does not depend
        # on when the tracks began (a split video's segments start them at different frames).
        out = sorted((tb for t in self._tracks for tb in self._boxes_at(t, index)), key=lambda tb: (tb.box, tb.kind))
        self._forget(index)
        return index, out

    def _boxes_at(self, track: _Track, index: int) -> list[TrackedBox]:
        """The boxes of ``track`` to redact in frame ``index`` (none, one, or held + lead)."""
        cfg = self.config
        frames = track.frames
        pos = int(np.searchsorted(frames, index))
        if pos < len(frames) and frames[pos] == index:
            return [TrackedBox(_as_tuple(track.boxes[pos]), track.track_id, "detected")]
        prev = pos - 1 if pos > 0 else None
        nxt = pos if pos < len(frames) else None
        if prev is not None and nxt is not None and frames[nxt] - frames[prev] <= cfg.max_gap + 1:
            t = (index - frames[prev]) / (frames[nxt] - frames[prev])
            a = self._carry(track.boxes[prev], frames[prev], index)
            b = self._carry(track.boxes[nxt], frames[nxt], index)
            if a is None or b is None:
                a, b = track.boxes[prev], track.boxes[nxt]
            return [TrackedBox(_as_tuple(a * (1.0 - t) + b * t), track.track_id, "interpolated")]
        out = []
        if prev is not None and index - frames[prev] <= cfg.hold:
            steps = index - frames[prev]
            moved = self._carry(track.boxes[prev], frames[prev], index)
            if moved is None:
                moved = track.boxes[prev] + _velocity_before(track, prev) * steps
            out.append(TrackedBox(_grown(moved, cfg.grow, steps), track.track_id, "held"))
        if nxt is not None and frames[nxt] - index <= cfg.lead:
            steps = frames[nxt] - index
            moved = self._carry(track.boxes[nxt], frames[nxt], index)
            box = moved if moved is not None else track.boxes[nxt]
            out.append(TrackedBox(_grown(box, cfg.grow, steps), track.track_id, "lead"))
        return out

    def _forget(self, emitted: int) -> None:
        """Drop observations no later frame can need (one older is kept for velocity)."""
        keep_from = emitted + 1 - max(self.config.hold, self.config.max_gap + 1)
        for t in self._tracks:
            cut = int(np.searchsorted(t.frames, keep_from)) - 1
            if cut > 0:
                del t.frames[:cut]
                del t.boxes[:cut]
        self._tracks = [t for t in self._tracks if t.last >= keep_from]
        for f in [f for f in self._motions if f < keep_from - 1]:
            del self._motions[f]
        self._composed = {k: v for k, v in self._composed.items() if min(k) >= keep_from - 1}


def _greedy_pairs(
    preds: np.ndarray, gaps: np.ndarray, dets: np.ndarray, min_iou: float
) -> list[tuple[int, int]]:
    """Pairs (track, detection), best first.

    A pair qualifies by IoU >= ``min_iou`` (ranked first, by IoU), or by centres
    closer than half the box width per frame since the track was last seen (capped
    at 1.5 widths) with widths within a factor 1.67 (ranked by closeness).
    """
    overlap = iou(preds, dets)
    pc = preds[:, :2] + preds[:, 2:] / 2.0
    dc = dets[:, :2] + dets[:, 2:] / 2.0
    dist = np.linalg.norm(pc[:, None] - dc[None], axis=2)
    width = np.maximum(preds[:, 2:3], dets[None, :, 2])
    reach = width * np.minimum(0.5 * np.maximum(gaps, 1.0), 1.5)[:, None]
    ratio = preds[:, 2:3] / np.maximum(dets[None, :, 2], 1e-6)
    near = (dist < reach) & (ratio > 0.6) & (ratio < 1.67)
    score = np.where(overlap >= min_iou, 1.0 + overlap, np.where(near, 1.0 - dist / reach, -1.0))
    cand = np.flatnonzero(score >= 0.0)
    cand = cand[np.argsort(-score.ravel()[cand], kind="stable")]
    pairs: list[tuple[int, int]] = []
    used_t: set[int] = set()
    used_d: set[int] = set()
    for flat in cand:
        ti, di = divmod(int(flat), score.shape[1])
        if ti not in used_t and di not in used_d:
            pairs.append((ti, di))
            used_t.add(ti)
            used_d.add(di)
    return pairs


def _velocity_before(track: _Track, pos: int) -> np.ndarray:
    if pos < 1:
        return np.zeros(4)
    return (track.boxes[pos] - track.boxes[pos - 1]) / (track.frames[pos] - track.frames[pos - 1])


def _grown(box: np.ndarray, grow: float, steps: int) -> tuple[float, float, float, float]:
    """``box`` scaled about its centre by ``(1 + grow) ** steps``."""
    x, y, w, h = (float(v) for v in box)
    k = (1.0 + grow) ** steps
    w2, h2 = max(w, 1.0) * k, max(h, 1.0) * k
    return (x + (w - w2) / 2.0, y + (h - h2) / 2.0, w2, h2)


def _as_tuple(box: np.ndarray) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in box)
    return (x, y, w, h)
