"""Redact a photo: decode upright, find faces, obscure them, write without metadata.

Fail closed: if detection (or drawing) raises, the photo is written fully obscured
(one solid colour) and the report carries the error; a photo that cannot be
decoded raises a typed :class:`~faceledger.errors.InputError` and nothing is written.

Metadata: the output is written from pixels only, so EXIF (GPS, device, dates),
XMP, IPTC, ICC profiles and comments are all absent. ``keep_metadata`` copies the
EXIF block (orientation reset to 1, the pixels being upright) and the ICC
profile; XMP and IPTC are never copied.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from faceledger.core.redaction import draw_boxes, obscure_frame, redact_faces
from faceledger.errors import UnsupportedFormatError
from faceledger.media.image import ImageLimits, load_image
from faceledger.models.base import Detector
from faceledger.redact.detection import find_faces
from faceledger.redact.errors import OutputExistsError
from faceledger.redact.options import RedactOptions
from faceledger.redact.photo_search import head_boxes, search_photo, second_detector
from faceledger.redact.summary import FileReport

__all__ = ["RedactedImage", "redact_image", "redact_photo", "write_photo"]

_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}
_EXIF_ORIENTATION = 0x0112
_DETECTED = (0, 230, 0)


@dataclass(frozen=True, eq=False, slots=True)
class RedactedImage:
    """A redacted RGB image, the face boxes obscured in it (x, y, w, h), and any failure.

    ``obscured`` is true when detection failed and the whole image was painted over;
    ``error`` then says why. ``detectors`` names the detectors that searched the image.
    """

    rgb: np.ndarray
    boxes: np.ndarray
    obscured: bool = False
    error: str | None = None
    detectors: tuple[str, ...] = ()


def redact_image(rgb: np.ndarray, detector: Detector, options: RedactOptions | None = None) -> RedactedImage:
    """Redact every face of an upright RGB ``uint8`` image; never returns faces untouched.

    ``detector`` is the main detector; the thorough search (the default) adds CenterFace
    when ``options.photo`` asks for it (see :mod:`faceledger.redact.photo_search`).
    """
    options = options or RedactOptions()
    names = (getattr(detector, "name", type(detector).__name__),)
    try:
        if options.photo.fast:
            boxes = find_faces(detector, rgb, options)
        else:
            second = second_detector(options.photo)
            names += (second.name,) if second is not None else ()
            boxes = head_boxes(search_photo(rgb, detector, second, options.score_threshold, options.photo))
        out = redact_faces(rgb, boxes, options.style)
        if options.draw_boxes:
            draw_boxes(out, boxes, [_DETECTED] * len(boxes), inplace=True)
        return RedactedImage(out, boxes, detectors=names)
    except Exception as exc:  # noqa: BLE001 - fail closed on anything the detector raises
        message = f"face detection failed ({type(exc).__name__}: {exc}); the photo was fully obscured"
        return RedactedImage(obscure_frame(rgb), np.zeros((0, 4)), obscured=True, error=message, detectors=names)


def redact_photo(
    source: Path,
    output: Path,
    detector: Detector,
    options: RedactOptions | None = None,
    limits: ImageLimits | None = None,
) -> FileReport:
    """Redact the photo at ``source`` into ``output`` (format from its extension)."""
    options = options or RedactOptions()
    start = time.perf_counter()
    fmt = _format_of(output)
    if output.exists() and not options.overwrite:
        raise OutputExistsError(f"{output}: already exists (use --overwrite to replace it)", path=str(output))
    image = load_image(source, limits)
    result = redact_image(image.rgb, detector, options)
    exif, icc = _kept_metadata(source) if options.keep_metadata else (None, None)
    write_photo(output, result.rgb, fmt, overwrite=options.overwrite, exif=exif, icc=icc)
    return FileReport(
        source=source,
        output=output,
        kind="photo",
        frames=1,
        faces=len(result.boxes),
        obscured=int(result.obscured),
        error_code="detection_failed" if result.obscured else None,
        error=result.error,
        seconds=time.perf_counter() - start,
    )


def write_photo(
    path: Path,
    rgb: np.ndarray,
    fmt: str | None = None,
    *,
    overwrite: bool = False,
    exif: bytes | None = None,
    icc: bytes | None = None,
) -> Path:
    """Write RGB pixels to ``path`` atomically, with no metadata unless ``exif``/``icc`` are given."""
    fmt = fmt or _format_of(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: already exists (use --overwrite to replace it)", path=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    params: dict[str, object] = {}
    if fmt in ("JPEG", "WEBP"):
        params["quality"] = 92
    if exif:
        params["exif"] = exif
    if icc:
        params["icc_profile"] = icc
    tmp = path.with_name(f".{path.name}.part")
    try:
        Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(tmp, fmt, **params)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _format_of(path: Path) -> str:
    try:
        return _FORMATS[path.suffix.lower()]
    except KeyError:
        raise UnsupportedFormatError(f"{path}: a redacted photo must end in .jpg, .jpeg, .png or .webp") from None


def _kept_metadata(source: Path) -> tuple[bytes | None, bytes | None]:
    """The source's EXIF (orientation reset to 1) and ICC profile, for ``keep_metadata``."""
    with Image.open(io.BytesIO(source.read_bytes())) as im:
        exif = im.getexif()
        icc = im.info.get("icc_profile")
        if _EXIF_ORIENTATION in exif:
            exif[_EXIF_ORIENTATION] = 1
        return (exif.tobytes() if len(exif) else None), icc
