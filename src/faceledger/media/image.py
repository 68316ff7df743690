"""Turn a path, bytes or an array into an upright RGB image, or refuse clearly.

Only JPEG, PNG and WebP are accepted, recognised by their magic bytes. Files are
read only when they are regular files, and never more than the byte cap + 1 bytes
(``/dev/zero``, a FIFO or a growing file cannot make a read unbounded). The pixel
cap and the side cap are checked on the header, *before* any pixel is decoded, so
a decompression bomb never allocates memory; the decoders' own limits back it up
(see :mod:`faceledger.media.decode`).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from faceledger._cv import DEFAULT_MAX_PIXELS
from faceledger.errors import (
    CorruptImageError,
    EmptyInputError,
    FileTooLargeError,
    ImageTooLargeError,
    InputError,
    UnsupportedFormatError,
)
from faceledger.media.decode import decode_pixels, orient, read_header, reduction_for

__all__ = ["MAX_SIDE", "DecodedImage", "ImageLimits", "ImageSource", "load_image", "sniff_format"]

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, "DecodedImage"]

DEFAULT_MAX_BYTES = 15 * 1024 * 1024
#: The longest side accepted, in pixels. OpenCV's geometric functions (alignment's
#: ``warpAffine``, ``resize``) refuse a side of 32,767 px (``SHRT_MAX``) or more.
MAX_SIDE = 32_766


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
    ``original_size`` is the upright photo's own ``(width, height)``: the decoded size
    unless a reduced decode was asked for (``load_image(..., max_side=...)``).
    """

    rgb: np.ndarray
    sha256: str
    format: str
    original_size: tuple[int, int] | None = None

    @property
    def full_size(self) -> tuple[int, int]:
        """The photo's own ``(width, height)``, whatever size it was decoded at."""
        return self.original_size or (self.width, self.height)

    @property
    def scale(self) -> float:
        """Decoded width over the photo's own width (1.0 for a full decode)."""
        return self.width / self.full_size[0]

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


def load_image(source: ImageSource, limits: ImageLimits | None = None, *, max_side: int | None = None) -> DecodedImage:
    """Decode ``source`` into an upright RGB image, enforcing ``limits``.

    ``source`` may be a path, encoded bytes, an RGB(A) or grey ``uint8`` array, or
    an already decoded image (returned as is). ``max_side`` allows a reduced decode
    where the format makes it cheap (JPEG's DCT scaling: 1/2, 1/4 or 1/8; PNG: 1/2), never
    below ``max_side`` pixels on the long side; the result's ``scale`` says what was
    done. Raises a subclass of :class:`~faceledger.errors.InputError` for anything it
    cannot use.
    """
    limits = limits or ImageLimits()
    if isinstance(source, DecodedImage):
        _check_pixels(*source.full_size, limits)
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source, limits)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(bytes(source), limits, "image", max_side)
    if isinstance(source, (str, os.PathLike)):
        return _decode(_read_file(Path(source), limits), limits, _display_name(source), max_side)
    raise InputError(
        f"cannot read an image from a {type(source).__name__}; give a path, bytes or a numpy array"
    )


def _display_name(source: str | os.PathLike) -> str:
    return Path(source).name or str(source)


def _read_file(path: Path, limits: ImageLimits) -> bytes:
    """The file's bytes: regular files only, at most ``max_bytes + 1`` read (never blocks on a FIFO)."""
    name = path.name or str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError(f"{name}: no such file", path=str(path)) from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a folder, not an image", path=str(path)) from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror})", path=str(path)) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise InputError(f"{name}: is a folder, not an image", path=str(path))
        if not stat.S_ISREG(mode):
            raise InputError(f"{name}: not a regular file (devices, pipes and sockets are not read)", path=str(path))
        data = _read_capped(fd, limits.max_bytes)
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror})", path=str(path)) from None
    finally:
        os.close(fd)
    if len(data) > limits.max_bytes:
        raise FileTooLargeError(
            f"{name}: over the {limits.max_bytes:,}-byte limit", size=len(data), limit=limits.max_bytes
        )
    return data


def _read_capped(fd: int, max_bytes: int) -> bytes:
    """Read until end of file or ``max_bytes + 1`` bytes, whichever comes first."""
    chunks, left = [], max_bytes + 1
    while left > 0:
        block = os.read(fd, min(left, 1 << 20))
        if not block:
            break
        chunks.append(block)
        left -= len(block)
    return b"".join(chunks)


def _check_pixels(width: int, height: int, limits: ImageLimits) -> None:
    if width <= 0 or height <= 0:
        raise CorruptImageError(f"image has no pixels ({width}x{height})")
    if max(width, height) > MAX_SIDE:
        raise ImageTooLargeError(
            f"image is {width}x{height}: a side over {MAX_SIDE:,} pixels is not accepted",
            width=width,
            height=height,
            limit=MAX_SIDE,
        )
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height:,} pixels, over the "
            f"{limits.max_pixels:,}-pixel limit",
            width=width,
            height=height,
            limit=limits.max_pixels,
        )


def _decode(data: bytes, limits: ImageLimits, name: str, max_side: int | None = None) -> DecodedImage:
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
    header = read_header(data, fmt, name)
    _check_pixels(header.width, header.height, limits)
    reduce = reduction_for(header, fmt, max_side)
    rgb = decode_pixels(data, fmt, header, name, reduce)
    expected = (-(-header.height // reduce), -(-header.width // reduce))
    if rgb.shape[:2] != expected:
        raise CorruptImageError(f"{name}: the decoded size does not match the header")
    rgb = orient(rgb, header.orientation)
    original = None if reduce == 1 else header.upright_size
    digest = hashlib.sha256(data).hexdigest()
    return DecodedImage(rgb=_readonly(rgb), sha256=digest, format=fmt, original_size=original)


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
