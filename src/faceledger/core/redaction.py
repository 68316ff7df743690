"""Redaction drawing: make face regions unrecognisable (pure: arrays in, arrays out).

Conventions: images are RGB ``uint8`` arrays of shape ``(height, width, 3)``;
face boxes are ``(x, y, w, h)`` in pixels of that image (floats allowed). A box
is first grown about its centre by ``mask_scale`` (its width and height are
multiplied, so ``1.5`` adds a quarter of the box on every side, covering hair,
ears and chin), then the ellipse inscribed in it, or the whole grown box, is
replaced by a blurred, pixelated or solid version of itself.

The three methods, all scaled to the face so a large face is not left readable:

* ``blur``: Gaussian blur whose sigma is ``blur_sigma`` times the mask width
  (default 0.25: a 100-pixel mask gets sigma 25 px). Computed on a downscaled
  copy of the region, so its cost does not grow with the sigma.
* ``pixelate``: the mask's width is split into ``pixel_blocks`` blocks (default
  5, at least 2 pixels each), each painted with its mean colour.

The defaults are strong on purpose: with a sigma of 0.12 mask widths or 8 blocks
the face is already unrecognisable to SFace, but a face detector still finds the
blurred head (YuNet up to score 0.75-0.9 on a 40-pixel face); at the defaults
it finds none above 0.55.
* ``fill``: a solid colour (``fill_color``, RGB).

Nothing here reads files or knows about detectors; see :mod:`faceledger.redact`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from faceledger._cv import cv2

__all__ = [
    "MaskShape",
    "Method",
    "RedactionStyle",
    "draw_boxes",
    "mask_region",
    "obscure_frame",
    "redact_faces",
]

Method = Literal["blur", "pixelate", "fill"]
MaskShape = Literal["ellipse", "box"]

#: Sigma of the small Gaussian applied after downscaling, in downscaled pixels.
_SMALL_SIGMA = 2.0


@dataclass(frozen=True, slots=True)
class RedactionStyle:
    """How each face region is obscured (see the module docstring for units)."""

    method: Method = "blur"
    mask: MaskShape = "ellipse"
    mask_scale: float = 1.5
    blur_sigma: float = 0.25
    pixel_blocks: int = 5
    fill_color: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        if self.method not in get_args(Method):
            raise ValueError(f"unknown redaction method {self.method!r}: use blur, pixelate or fill")
        if self.mask not in get_args(MaskShape):
            raise ValueError(f"unknown mask shape {self.mask!r}: use ellipse or box")
        if not (1.0 <= self.mask_scale <= 4.0):
            raise ValueError("mask_scale must be within [1, 4]")
        if not (0.02 <= self.blur_sigma <= 1.0):
            raise ValueError("blur_sigma must be within [0.02, 1] (a fraction of the mask width)")
        if not (2 <= self.pixel_blocks <= 64):
            raise ValueError("pixel_blocks must be within [2, 64]")
        if len(self.fill_color) != 3 or not all(0 <= int(c) <= 255 for c in self.fill_color):
            raise ValueError("fill_color must be three values in [0, 255]")


def mask_region(
    box: Sequence[float], scale: float, width: int, height: int
) -> tuple[float, float, float, float, int, int, int, int] | None:
    """The grown box of ``box`` and its integer part inside a ``width`` x ``height`` image.

    Returns ``(cx, cy, half_w, half_h, x0, y0, x1, y1)``: the grown box's centre and
    half sizes (floats, may reach outside the image), and the clipped pixel range
    ``[x0, x1) x [y0, y1)``; ``None`` when nothing of it lies inside the image.
    """
    x, y, w, h = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        return None
    cx, cy = x + w / 2.0, y + h / 2.0
    hw, hh = w * scale / 2.0, h * scale / 2.0
    x0, y0 = max(0, math.floor(cx - hw)), max(0, math.floor(cy - hh))
    x1, y1 = min(width, math.ceil(cx + hw)), min(height, math.ceil(cy + hh))
    if x1 <= x0 or y1 <= y0:
        return None
    return cx, cy, hw, hh, x0, y0, x1, y1


def redact_faces(
    rgb: np.ndarray, boxes: np.ndarray | Sequence[Sequence[float]], style: RedactionStyle | None = None,
    *, inplace: bool = False,
) -> np.ndarray:
    """Obscure every box of ``boxes`` (``(n, 4)``, x, y, w, h) in ``rgb``.

    Returns a new array unless ``inplace`` is true (then ``rgb`` itself is changed
    and returned; it must be writable). Boxes wholly outside the image are ignored.
    """
    style = style or RedactionStyle()
    out = rgb if inplace else np.array(rgb, copy=True)
    if out.ndim != 3 or out.shape[2] != 3 or out.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image of shape (h, w, 3), got {out.dtype} {out.shape}")
    height, width = out.shape[:2]
    for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        region = mask_region(box, style.mask_scale, width, height)
        if region is not None:
            _redact_region(out, region, style)
    return out


def _redact_region(out: np.ndarray, region: tuple, style: RedactionStyle) -> None:
    cx, cy, hw, hh, x0, y0, x1, y1 = region
    roi = out[y0:y1, x0:x1]
    # Ellipse in 1/16-pixel fixed point (pixel centres sit at +0.5), so small faces stay round.
    centre = (round((cx - x0) * 16 - 8), round((cy - y0) * 16 - 8))
    axes = (max(1, round(hw * 16)), max(1, round(hh * 16)))
    if style.method == "fill":
        color = tuple(int(c) for c in style.fill_color)
        if style.mask == "box":
            cv2.rectangle(roi, (0, 0), (x1 - x0 - 1, y1 - y0 - 1), color, -1)
        else:
            cv2.ellipse(roi, centre, axes, 0.0, 0.0, 360.0, color, -1, cv2.LINE_8, 4)
        return
    replacement = _replacement(roi, 2.0 * hw, style)
    if style.mask == "box":
        roi[...] = replacement
        return
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.ellipse(mask, centre, axes, 0.0, 0.0, 360.0, 255, -1, cv2.LINE_8, 4)
    cv2.copyTo(replacement, mask, roi)  # writes into the view of ``out``


def _replacement(roi: np.ndarray, mask_width: float, style: RedactionStyle) -> np.ndarray:
    """The obscured version of ``roi`` (same shape) for ``style.method``."""
    h, w = roi.shape[:2]
    if style.method == "pixelate":
        block = max(2.0, mask_width / style.pixel_blocks)
        small = cv2.resize(roi, (max(1, round(w / block)), max(1, round(h / block))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    sigma = max(1.0, style.blur_sigma * mask_width)
    factor = max(1.0, sigma / _SMALL_SIGMA)
    sw, sh = max(1, round(w / factor)), max(1, round(h / factor))
    small = cv2.resize(roi, (sw, sh), interpolation=cv2.INTER_AREA) if factor > 1.0 else roi
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma / factor, borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR) if factor > 1.0 else small


def obscure_frame(rgb: np.ndarray, color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """A frame of the same shape as ``rgb`` painted in one solid ``color`` (fail-closed output)."""
    out = np.empty_like(rgb)
    out[...] = np.asarray(color, dtype=rgb.dtype)
    return out


def draw_boxes(
    rgb: np.ndarray,
    boxes: np.ndarray | Sequence[Sequence[float]],
    colors: Sequence[tuple[int, int, int]] | None = None,
    *,
    inplace: bool = False,
) -> np.ndarray:
    """Outline each box (x, y, w, h) in ``rgb``, for checking what was found.

    ``colors`` gives one RGB colour per box (default green for all).
    """
    out = rgb if inplace else np.array(rgb, copy=True)
    thick = max(1, round(max(out.shape[:2]) / 500))
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    for i, (x, y, w, h) in enumerate(arr):
        color = colors[i] if colors is not None else (0, 230, 0)
        p0 = (round(x), round(y))
        p1 = (round(x + w), round(y + h))
        cv2.rectangle(out, p0, p1, tuple(int(c) for c in color), thick)
    return out
