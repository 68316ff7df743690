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

:class:`Picture` wraps either representation (odd-sized or rotated frames stay RGB).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceledger._cv import cv2
from faceledger.core.redaction import RedactionStyle, mask_region
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
    height, width = y.shape
    fill = yuv_of(style.fill_color) if style.method == "fill" else (0, 0, 0)
    for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        for plane, factor, value in ((y, 1.0, fill[0]), (u, 0.5, fill[1]), (v, 0.5, fill[2])):
            region = mask_region(box * factor, style.mask_scale, plane.shape[1], plane.shape[0])
            if region is not None:
                _obscure_plane(plane, region, style, value)
    return yuv


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


