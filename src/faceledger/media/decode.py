"""Format decoders behind :func:`faceledger.media.load_image`: header first, then pixels.

Every decoder reads the header (size, orientation) before any pixel, so the caps of
:class:`~faceledger.media.image.ImageLimits` apply before memory is committed, and
every decoder refuses a stream that ends early instead of filling the rest with grey:

* **JPEG** (YCbCr or grey): libjpeg-turbo through ``simplejpeg`` in strict mode (a
  missing or corrupt entropy segment is an error, not a warning), optionally at a
  reduced DCT scale (1/2, 1/4, 1/8: the decoder skips the work, the memory is never
  allocated). CMYK/YCCK JPEGs, which libjpeg-turbo cannot turn into RGB, go through Pillow.
* **PNG**: OpenCV (libpng) straight into a 3-byte-per-pixel buffer (Pillow would hold four
  bytes per pixel and a second copy); 16-bit samples are scaled to 8 bits, alpha dropped.
* **WebP**: Pillow (the format caps a side at 16,383 px).

Messages are fixed texts: no exception reprs, addresses or paths from the libraries.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from faceledger._cv import DEFAULT_MAX_PIXELS, cv2
from faceledger.errors import CorruptImageError, ImageTooLargeError

__all__ = ["Header", "decode_pixels", "orient", "png_chunks_fit", "read_header", "reduction_for"]

#: EXIF orientation tag.
_ORIENTATION = 0x0112
#: Errors the imaging libraries raise on malformed input (anything else is a bug of ours).
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError,
                  TypeError, ZeroDivisionError, OverflowError, cv2.error)


@dataclass(frozen=True, slots=True)
class Header:
    """What the header says: stored size (before orientation), EXIF orientation 1-8, colour space."""

    width: int
    height: int
    orientation: int
    mode: str

    @property
    def upright_size(self) -> tuple[int, int]:
        """``(width, height)`` once the orientation is applied."""
        return (self.height, self.width) if self.orientation in (5, 6, 7, 8) else (self.width, self.height)


def read_header(data: bytes, fmt: str, name: str) -> Header:
    """Size, orientation and colour mode from the header alone (no pixel is decoded)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the pixel cap is ours to apply, on this header
            with Image.open(io.BytesIO(data), formats=[fmt.upper()]) as im:
                width, height, mode = int(im.width), int(im.height), str(im.mode)
                orientation = _orientation(im)
    except Image.DecompressionBombError:
        raise ImageTooLargeError(f"{name}: image exceeds the decoder's pixel limit") from None
    except _DECODE_ERRORS:
        raise CorruptImageError(f"{name}: corrupt {fmt.upper()} header") from None
    return Header(width, height, orientation, mode)


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1 when absent or unreadable: broken metadata never blocks the pixels).

    Only metadata met before the pixels is read: Pillow's PNG ``getexif`` would otherwise
    decode the whole image to look for an ``eXIf`` chunk after the image data.
    """
    if im.format == "PNG" and "exif" not in im.info:
        return 1
    try:
        value = im.getexif().get(_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - any malformed EXIF block: ignore the metadata, keep the photo
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def reduction_for(header: Header, fmt: str, max_side: int | None) -> int:
    """The reduction to decode at, keeping the long side at least ``max_side``: JPEG 1, 2, 4 or 8
    (DCT scaling: the work is skipped); PNG 1 or 2 (OpenCV decodes, then halves with a 2x2 mean,
    needing less memory than a full decode, which holds two copies); others 1."""
    if not max_side or fmt not in ("jpeg", "png") or (fmt == "jpeg" and header.mode not in ("RGB", "L")):
        return 1
    long_side = max(header.width, header.height)
    for factor in (8, 4, 2) if fmt == "jpeg" else (2,):
        if long_side / factor >= max_side:
            return factor
    return 1


def decode_pixels(data: bytes, fmt: str, header: Header, name: str, reduce: int = 1) -> np.ndarray:
    """Decode to an RGB ``uint8`` array of the stored orientation; ``reduce`` applies to YCbCr/grey JPEG only."""
    try:
        if fmt == "jpeg" and header.mode in ("RGB", "L"):
            rgb = _jpeg(data, header, reduce)
        elif fmt == "png" and header.width * header.height <= _opencv_pixel_cap():
            rgb = _png(data, reduce)
        else:
            rgb = _pillow(data, fmt)
    except (CorruptImageError, ImageTooLargeError):
        raise
    except Image.DecompressionBombError:
        raise ImageTooLargeError(f"{name}: image exceeds the decoder's pixel limit") from None
    except _DECODE_ERRORS:
        raise CorruptImageError(f"{name}: corrupt or truncated {fmt.upper()}") from None
    if rgb is None or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise CorruptImageError(f"{name}: corrupt or truncated {fmt.upper()}")
    return rgb


def _jpeg(data: bytes, header: Header, reduce: int) -> np.ndarray:
    import simplejpeg

    min_h = -(-header.height // reduce) if reduce > 1 else 0
    min_w = -(-header.width // reduce) if reduce > 1 else 0
    # strict: libjpeg's "premature end of data" warnings become errors (no grey fill).
    return simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=min_h, min_width=min_w, strict=True)


def _opencv_pixel_cap() -> int:
    try:
        return int(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", DEFAULT_MAX_PIXELS))
    except ValueError:
        return DEFAULT_MAX_PIXELS


def png_chunks_fit(data: bytes) -> bool:
    """Whether every PNG chunk's declared length fits in the bytes that follow it, up to IEND.

    OpenCV's PNG reader allocates a chunk's declared length before reading it: a 56-byte
    file declaring a 2 GB IDAT made it allocate 2 GB (found by ``bench/fuzz.py``).
    """
    at = 8
    while at + 12 <= len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        if length > len(data) - at - 12:
            return False
        if data[at + 4 : at + 8] == b"IEND":
            return True
        at += 12 + length
    return False


def _png(data: bytes, reduce: int = 1) -> np.ndarray | None:
    # 3 channels, 8 bits (16-bit samples scaled by 1/257, grey and palette expanded, alpha dropped).
    if not png_chunks_fit(data):
        return None
    colour = cv2.IMREAD_REDUCED_COLOR_2 if reduce == 2 else cv2.IMREAD_COLOR
    rgb_flag = getattr(cv2, "IMREAD_COLOR_RGB", None)
    if rgb_flag is not None and reduce == 1:
        colour = rgb_flag
    out = cv2.imdecode(np.frombuffer(data, np.uint8), colour | cv2.IMREAD_IGNORE_ORIENTATION)
    if out is None or colour == rgb_flag:
        return out
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB, dst=out)  # in place: one buffer


def _pillow(data: bytes, fmt: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data), formats=[fmt.upper()]) as im:
            im.load()  # raises OSError on truncated data
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                grey = np.asarray(im, dtype=np.uint32)
                grey8 = (grey >> 8).astype(np.uint8) if grey.max(initial=0) > 255 else grey.astype(np.uint8)
                return np.repeat(grey8[:, :, None], 3, axis=2)
            return np.asarray(im.convert("RGB"))


def orient(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) so the image is upright (as Pillow's ``exif_transpose``)."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return rgb if op is None else np.ascontiguousarray(op(rgb))
