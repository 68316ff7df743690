"""Box arithmetic: intersection over union, non-maximum suppression, keeping boxes inside an image,
and the overlapping tiles that cover an image."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["clip_to_image", "intersection", "iou", "nms", "overlap_of_smaller", "tiles"]


def intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection areas between each box of ``a`` ``(n, 4)`` and of ``b`` ``(m, 4)`` (x, y, w, h)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, 0:1], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, 1:2], b[None, :, 1]), 0, None)
    return iw * ih


def _areas(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.clip(boxes[:, 2], 0, None) * np.clip(boxes[:, 3], 0, None)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of each pair of boxes from ``a`` and ``b``."""
    inter = intersection(a, b)
    union = _areas(a)[:, None] + _areas(b)[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over the smaller box's area (1.0 when one box lies inside the other)."""
    inter = intersection(a, b)
    smaller = np.minimum(_areas(a)[:, None], _areas(b)[None])
    return np.where(smaller > 0, inter / np.maximum(smaller, 1e-12), 0.0)


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    threshold: float = 0.4,
    containment: float | None = None,
) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first.

    A box is suppressed by a better one when their IoU exceeds ``threshold`` or,
    if ``containment`` is given, when their intersection covers more than that
    share of the smaller box (merges detections of one face found at two scales).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    if 1 < order.size <= _NMS_MATRIX_MAX:
        return _nms_matrix(boxes[order], threshold, containment, order)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        if rest.size == 0:
            break
        drop = iou(boxes[i : i + 1], boxes[rest])[0] > threshold
        if containment is not None:
            drop |= overlap_of_smaller(boxes[i : i + 1], boxes[rest])[0] > containment
        order = rest[~drop]
    return np.asarray(keep, dtype=np.int64)


#: Up to this many boxes, :func:`nms` computes every pair's overlap at once (8 MB of float64 at most).
_NMS_MATRIX_MAX = 1024


def _nms_matrix(ordered: np.ndarray, threshold: float, containment: float | None, order: np.ndarray) -> np.ndarray:
    """:func:`nms` on boxes already sorted best first, from one matrix of pairwise overlaps (the same
    decisions: the same float64 formulas pair by pair; a few rows of numpy instead of a call per kept box)."""
    drop = iou(ordered, ordered) > threshold
    if containment is not None:
        drop |= overlap_of_smaller(ordered, ordered) > containment
    keep = np.ones(len(ordered), dtype=bool)
    for i in range(len(ordered)):
        if keep[i]:
            keep[i + 1 :] &= ~drop[i, i + 1 :]
    return order[keep].astype(np.int64)


def clip_to_image(
    boxes: np.ndarray, landmarks: np.ndarray, scores: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which detections to keep, and their boxes clipped to a ``width`` x ``height`` image.

    A detection is kept when its box, landmarks and score are finite, its box has a
    positive size and its centre lies inside the image; its box is then cut to the
    image. Landmarks are left as found (a face cut by the frame may have a point
    just outside it). Returns ``(keep mask (n,), clipped boxes (n, 4))``.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    marks = np.asarray(landmarks, dtype=np.float64).reshape(len(boxes), -1) if len(boxes) else np.zeros((0, 10))
    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(np.asarray(scores, dtype=np.float64).reshape(-1))
    # Landmarks a detector could not place are nan by convention; an infinite one is garbage.
    finite &= ~np.isinf(marks).any(axis=1)
    with np.errstate(invalid="ignore"):
        cx, cy = boxes[:, 0] + boxes[:, 2] / 2.0, boxes[:, 1] + boxes[:, 3] / 2.0
        keep = finite & (boxes[:, 2] > 0) & (boxes[:, 3] > 0) & (cx >= 0) & (cx < width) & (cy >= 0) & (cy < height)
    clipped = np.zeros_like(boxes)
    if keep.any():
        b = boxes[keep]
        x0, y0 = np.clip(b[:, 0], 0, width), np.clip(b[:, 1], 0, height)
        x1, y1 = np.clip(b[:, 0] + b[:, 2], 0, width), np.clip(b[:, 1] + b[:, 3], 0, height)
        clipped[keep] = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
    return keep, clipped


def tiles(size: tuple[int, int], limit: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Tiles ``(x0, y0, x1, y1)`` covering a ``size`` (w, h) image, each side <= ``limit`` px, neighbours
    overlapping by at least ``overlap`` px (so anything up to that size lies whole in some tile)."""
    width, height = size
    xs = _spans(width, limit, overlap)
    ys = _spans(height, limit, overlap)
    return [(x0, y0, x1, y1) for y0, y1 in ys for x0, x1 in xs]


def _spans(length: int, limit: int, overlap: int) -> list[tuple[int, int]]:
    """Overlapping ``[start, end)`` spans covering ``length``, each at most ``limit`` long."""
    if length <= limit:
        return [(0, length)]
    count = math.ceil((length - overlap) / (limit - overlap))
    step = (length - overlap) / count
    return [(round(i * step), min(length, round(i * step + step + overlap))) for i in range(count)]
