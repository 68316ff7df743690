"""Turn a path, bytes or an array into an upright RGB image, or refuse clearly.

Only JPEG, PNG and WebP are accepted, recognised by their magic bytes. The pixel
cap is checked on the header, *before* any pixel is decoded, so a decompression
bomb never allocates memory; Pillow's own bomb guard and OpenCV's decoder limit
(``OPENCV_IO_MAX_IMAGE_PIXELS``, set by :mod:`faceledger.models._cv`) back it up.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceledger._cv import DEFAULT_MAX_PIXELS
from faceledger.errors import (
    CorruptImageError,
    EmptyInputError,
    FileTooLargeError,
    ImageTooLargeError,
    InputError,
    UnsupportedFormatError,
)

__all__ = ["DecodedImage", "ImageLimits", "ImageSource", "load_image", "sniff_format"]

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, "DecodedImage"]

DEFAULT_MAX_BYTES = 15 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Caps applied to every input. ``max_bytes`` applies to encoded files."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_pixels <= 0:
            raise ValueError("image limits must be positive")


@dataclass(frozen=True, eq=False, slots=True)
class DecodedImage:
    """An upright RGB ``uint8`` image of shape ``(h, w, 3)`` and the digest of its source.

    ``sha256`` is the SHA-256 of the encoded bytes (or, for an array, of its
    pixels); ``format`` is ``"jpeg"``, ``"png"``, ``"webp"`` or ``"array"``.
    """

    rgb: np.ndarray
    sha256: str
    format: str

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def sniff_format(data: bytes) -> str | None:
    """Name the image format from its first bytes: ``jpeg``, ``png``, ``webp`` or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def load_image(source: ImageSource, limits: ImageLimits | None = None) -> DecodedImage:
    """Decode ``source`` into an upright RGB image, enforcing ``limits``.

    ``source`` may be a path, encoded bytes, an RGB(A) or grey ``uint8`` array, or
    an already decoded image (returned as is). Raises a subclass of
    :class:`~faceledger.errors.InputError` for anything it cannot use.
    """
    limits = limits or ImageLimits()
    if isinstance(source, DecodedImage):
        _check_pixels(source.width, source.height, limits)
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source, limits)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(bytes(source), limits, name="<bytes>")
    if isinstance(source, (str, os.PathLike)):
        return _decode(_read_file(Path(source), limits), limits, name=str(source))
    raise InputError(
        f"cannot read an image from a {type(source).__name__}; give a path, bytes or a numpy array"
    )


def _read_file(path: Path, limits: ImageLimits) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"{path}: no such file", path=str(path)) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})", path=str(path)) from None
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image", path=str(path))
    if size > limits.max_bytes:
        raise FileTooLargeError(
            f"{path}: {size:,} bytes is over the {limits.max_bytes:,}-byte limit",
            size=size,
            limit=limits.max_bytes,
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})", path=str(path)) from None


def _check_pixels(width: int, height: int, limits: ImageLimits) -> None:
    if width <= 0 or height <= 0:
        raise CorruptImageError(f"image has no pixels ({width}x{height})")
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height:,} pixels, over the "
            f"{limits.max_pixels:,}-pixel limit",
            width=width,
            height=height,
            limit=limits.max_pixels,
        )


def _decode(data: bytes, limits: ImageLimits, name: str) -> DecodedImage:
    if not data:
        raise EmptyInputError(f"{name}: empty input (0 bytes)")
    if len(data) > limits.max_bytes:
        raise FileTooLargeError(
            f"{name}: {len(data):,} bytes is over the {limits.max_bytes:,}-byte limit",
            size=len(data),
            limit=limits.max_bytes,
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedFormatError(
            f"{name}: not a JPEG, PNG or WebP image (recognised by content, not by name)"
        )
    digest = hashlib.sha256(data).hexdigest()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt.upper()]) as im:
                _check_pixels(im.width, im.height, limits)
                im.load()  # raises OSError on truncated data
                im = ImageOps.exif_transpose(im)
                rgb = np.asarray(im.convert("RGB"))
    except (ImageTooLargeError, CorruptImageError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError(f"{name}: image exceeds the decoder's pixel limit") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptImageError(f"{name}: corrupt or truncated {fmt.upper()} ({exc})") from None
    _check_pixels(rgb.shape[1], rgb.shape[0], limits)
    return DecodedImage(rgb=_readonly(rgb), sha256=digest, format=fmt)


def _from_array(arr: np.ndarray, limits: ImageLimits) -> DecodedImage:
    if arr.dtype != np.uint8:
        raise InputError(f"image array must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    elif arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(f"image array must be HxW, HxWx3 (RGB) or HxWx4 (RGBA), got {arr.shape}")
    _check_pixels(arr.shape[1], arr.shape[0], limits)
    arr = np.ascontiguousarray(arr)
    digest = hashlib.sha256(arr.tobytes()).hexdigest()
    return DecodedImage(rgb=_readonly(arr.copy()), sha256=digest, format="array")


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr
