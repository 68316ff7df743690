"""Video frames kept as YUV 4:2:0 (I420) from decoder to encoder, with redaction drawn on the planes.

H.264 video is decoded to YUV 4:2:0 and encoded from it; converting every frame to RGB and
back costs about 3 ms per 720p frame here and changes every pixel by up to a few levels. So a
frame of even size stays one ``(height * 3 // 2, width)`` ``uint8`` array (the I420 layout of
FFmpeg and OpenCV: the Y plane, then U and V at half size); the detector gets RGB copies made
from the planes (a small one every searched frame, a full-size one for the fine pass), and
the redaction is drawn on each plane inside the face regions only: the same mask, blurred,
pixelated or filled on Y at full size and on U and V at half size. Blur and pixelation are
linear, so this obscures as much as drawing on RGB; outside the masks the planes are left
exactly as decoded.

Blur (the default) is drawn a few boxes at a time rather than one by one: each box's blur
(:func:`faceledger.core.redaction.redact_faces`: shrink by ``sigma / 2``, a Gaussian of 2 px,
enlarge) is rounded up to the next power-of-two shrink, and boxes of one strength lying near
each other share one shrink-blur-enlarge over the rectangle around them, copied through the
union of their masks. The masks are those of one-by-one drawing, pixel for pixel (each ellipse
drawn in its own box's region), the blur at least as strong (up to twice the sigma), and a
720p crowd frame of about 100 boxes costs a few calls per group instead of a dozen per box.
Strengths are drawn weakest first, so where masks overlap the strongest blur is on top.

:class:`Picture` wraps either representation (odd-sized or rotated frames stay RGB).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from faceledger._cv import cv2
from faceledger.core.redaction import _SMALL_SIGMA, RedactionStyle, mask_region
from faceledger.core.redaction import _replacement as replacement

__all__ = ["Picture", "draw_boxes_i420", "fill_i420", "i420_planes", "redact_i420"]


def i420_planes(yuv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes of an I420 array (even width and height)."""
    height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
    quarter = (height // 2) * (width // 2)
    chroma = yuv[height:].reshape(-1)
    return yuv[:height], chroma[:quarter].reshape(height // 2, width // 2), chroma[quarter:].reshape(
        height // 2, width // 2
    )


def yuv_of(color: Sequence[int]) -> tuple[int, int, int]:
    """The (Y, U, V) of an RGB colour, as the encoder's conversion (BT.601, video range) gives it."""
    yuv = cv2.cvtColor(np.full((2, 2, 3), color, np.uint8), cv2.COLOR_RGB2YUV_I420)
    y, u, v = i420_planes(yuv)
    return int(y[0, 0]), int(u[0, 0]), int(v[0, 0])


class Picture:
    """One decoded frame: an I420 array (``yuv``) or an RGB array (``rgb``), with the copies detection needs."""

    def __init__(self, *, yuv: np.ndarray | None = None, rgb: np.ndarray | None = None) -> None:
        if (yuv is None) == (rgb is None):
            raise ValueError("give exactly one of yuv and rgb")
        self.yuv, self._rgb = yuv, rgb
        if yuv is not None:
            self.height, self.width = yuv.shape[0] * 2 // 3, yuv.shape[1]
        else:
            self.height, self.width = rgb.shape[:2]  # type: ignore[union-attr]

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    def rgb(self) -> np.ndarray:
        """The full-size RGB frame (converted once from the planes if need be)."""
        if self._rgb is None:
            self._rgb = cv2.cvtColor(self.yuv, cv2.COLOR_YUV2RGB_I420)
        return self._rgb

    def scaled_rgb(self, size: tuple[int, int]) -> np.ndarray:
        """An RGB copy of ``size`` (width, height); from the planes when both sizes are even."""
        if size == (self.width, self.height):
            return self.rgb()
        w, h = size
        if self.yuv is None or self._rgb is not None or w % 2 or h % 2:
            return cv2.resize(self.rgb(), size, interpolation=cv2.INTER_AREA)
        y, u, v = i420_planes(self.yuv)
        small = np.empty((h * 3 // 2, w), np.uint8)
        sy, su, sv = i420_planes(small)
        cv2.resize(y, (w, h), dst=sy, interpolation=cv2.INTER_AREA)
        cv2.resize(u, (w // 2, h // 2), dst=su, interpolation=cv2.INTER_AREA)
        cv2.resize(v, (w // 2, h // 2), dst=sv, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_YUV2RGB_I420)

    def grey(self, size: tuple[int, int]) -> np.ndarray:
        """A grey copy of ``size`` (the Y plane, or the RGB frame's luma)."""
        luma = i420_planes(self.yuv)[0] if self.yuv is not None else cv2.cvtColor(self._rgb, cv2.COLOR_RGB2GRAY)
        return cv2.resize(luma, size, interpolation=cv2.INTER_AREA)


def redact_i420(yuv: np.ndarray, boxes: np.ndarray, style: RedactionStyle) -> np.ndarray:
    """Obscure every box (x, y, w, h, full-size pixels) on the planes of ``yuv``, in place."""
    y, u, v = i420_planes(yuv)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if style.method == "blur":
        _blur_planes((y,), boxes, 1.0, style)
        _blur_planes((u, v), boxes, 0.5, style)
        return yuv
    fill = yuv_of(style.fill_color) if style.method == "fill" else (0, 0, 0)
    for box in boxes:
        for plane, factor, value in ((y, 1.0, fill[0]), (u, 0.5, fill[1]), (v, 0.5, fill[2])):
            region = mask_region(box * factor, style.mask_scale, plane.shape[1], plane.shape[0])
            if region is not None:
                _obscure_plane(plane, region, style, value)
    return yuv


#: Two groups of boxes are blurred as one when the rectangle around both has at most this many
#: pixels (of the plane, at full size) more than the two apart: a shrink-blur-enlarge costs about
#: a nanosecond a pixel here, a group's calls about as much as 40,000 pixels.
_GROUP_SLACK = 40_000


def _blur_planes(planes: tuple[np.ndarray, ...], boxes: np.ndarray, factor: float, style: RedactionStyle) -> None:
    """Blur every box's mask on ``planes`` (of one size; boxes scaled by ``factor``), grouped by strength."""
    height, width = planes[0].shape
    levels: dict[int, list[tuple]] = {}
    for box in boxes:
        region = mask_region(box * factor, style.mask_scale, width, height)
        if region is None:
            continue
        shrink = max(1.0, style.blur_sigma * 2.0 * region[2]) / _SMALL_SIGMA
        if shrink <= 1.0:  # a few pixels wide: blurred alone, at full size, as one by one
            for plane in planes:
                _obscure_plane(plane, region, style, 0)
            continue
        levels.setdefault(1 << math.ceil(math.log2(shrink)), []).append(region)
    slack = _GROUP_SLACK * factor * factor
    for level in sorted(levels):
        for rect, regions in _groups(levels[level], slack):
            _blur_group(planes, _aligned(rect, level, width, height), regions, level, style)


def _groups(regions: list[tuple], slack: float) -> list[tuple[tuple[int, int, int, int], list[tuple]]]:
    """Regions gathered greedily into rectangles (x0, y0, x1, y1) that waste at most ``slack`` pixels each time."""
    groups: list[tuple[tuple[int, int, int, int], list[tuple]]] = []
    for region in sorted(regions, key=lambda r: (r[4], r[5])):
        rect = region[4:8]
        for k, (other, members) in enumerate(groups):
            union = (min(rect[0], other[0]), min(rect[1], other[1]), max(rect[2], other[2]), max(rect[3], other[3]))
            if _area(union) - _area(other) - _area(rect) <= slack:
                groups[k] = (union, [*members, region])
                break
        else:
            groups.append((rect, [region]))
    return groups


def _area(rect: tuple[int, ...]) -> int:
    return (rect[2] - rect[0]) * (rect[3] - rect[1])


def _aligned(rect: tuple[int, int, int, int], level: int, width: int, height: int) -> tuple[int, int, int, int]:
    """``rect`` grown to whole multiples of ``level`` inside the plane where it fits (OpenCV's fast
    shrink by an integer factor); as it is otherwise."""
    x0, y0, x1, y1 = rect
    spans = []
    for lo, hi, size in ((x0, x1, width), (y0, y1, height)):
        span = -(-(hi - lo) // level) * level
        if span > size:
            return rect
        lo = min(lo, size - span)
        spans.append((lo, lo + span))
    return spans[0][0], spans[1][0], spans[0][1], spans[1][1]


def _blur_group(planes: tuple[np.ndarray, ...], rect: tuple[int, int, int, int], regions: list[tuple], level: int,
                style: RedactionStyle) -> None:
    """One shrink by ``level``, Gaussian and enlargement of ``rect``, copied through its regions' masks."""
    x0, y0, x1, y1 = rect
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for cx, cy, hw, hh, rx0, ry0, rx1, ry1 in regions:
        roi = mask[ry0 - y0 : ry1 - y0, rx0 - x0 : rx1 - x0]  # the region's own view, so the same pixels
        if style.mask == "box":
            roi[...] = 255
            continue
        centre = (round((cx - rx0) * 16 - 8), round((cy - ry0) * 16 - 8))
        axes = (max(1, round(hw * 16)), max(1, round(hh * 16)))
        cv2.ellipse(roi, centre, axes, 0.0, 0.0, 360.0, 255, -1, cv2.LINE_8, 4)
    small_size = (max(1, round((x1 - x0) / level)), max(1, round((y1 - y0) / level)))
    for plane in planes:
        view = plane[y0:y1, x0:x1]
        small = cv2.resize(view, small_size, interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigmaX=_SMALL_SIGMA, borderType=cv2.BORDER_REPLICATE)
        cv2.copyTo(cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR), mask, view)


def _obscure_plane(plane: np.ndarray, region: tuple, style: RedactionStyle, value: int) -> None:
    """The same drawing as :func:`faceledger.core.redaction.redact_faces`, on one plane."""
    cx, cy, hw, hh, x0, y0, x1, y1 = region
    roi = plane[y0:y1, x0:x1]
    centre = (round((cx - x0) * 16 - 8), round((cy - y0) * 16 - 8))
    axes = (max(1, round(hw * 16)), max(1, round(hh * 16)))
    if style.method == "fill":
        if style.mask == "box":
            roi[...] = value
        else:
            cv2.ellipse(roi, centre, axes, 0.0, 0.0, 360.0, int(value), -1, cv2.LINE_8, 4)
        return
    obscured = replacement(roi, 2.0 * hw, style)
    if style.mask == "box":
        roi[...] = obscured
        return
    mask = np.zeros(roi.shape, np.uint8)
    cv2.ellipse(mask, centre, axes, 0.0, 0.0, 360.0, 255, -1, cv2.LINE_8, 4)
    cv2.copyTo(obscured, mask, roi)


def fill_i420(yuv: np.ndarray, color: Sequence[int]) -> np.ndarray:
    """A frame like ``yuv`` painted in one solid RGB ``color`` (the fail-closed output)."""
    out = np.empty_like(yuv)
    y, u, v = i420_planes(out)
    y[...], u[...], v[...] = yuv_of(color)
    return out


def draw_boxes_i420(yuv: np.ndarray, boxes: np.ndarray, colors: Sequence[tuple[int, int, int]]) -> None:
    """Outline each box in its RGB colour on the planes of ``yuv``, in place (``--boxes``)."""
    y, u, v = i420_planes(yuv)
    thick = max(1, round(max(y.shape) / 500))
    for (bx, by, bw, bh), color in zip(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), colors, strict=True):
        cy_, cu, cv = yuv_of(color)
        cv2.rectangle(y, (round(bx), round(by)), (round(bx + bw), round(by + bh)), cy_, thick)
        for plane, value in ((u, cu), (v, cv)):
            p0, p1 = (round(bx / 2), round(by / 2)), (round((bx + bw) / 2), round((by + bh) / 2))
            cv2.rectangle(plane, p0, p1, value, max(1, thick // 2))


