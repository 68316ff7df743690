"""Writing images: upright, without metadata, never over an existing file unless asked."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from faceledger.errors import InputError

__all__ = ["encode_image", "save_image"]

_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}
_BY_NAME = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


def encode_image(rgb: np.ndarray, fmt: str, *, quality: int = 92) -> bytes:
    """Encode an RGB ``uint8`` array as ``fmt`` (``jpeg``, ``png`` or ``webp``); no metadata at all."""
    pil_format = _BY_NAME.get(fmt)
    if pil_format is None:
        raise InputError(f"cannot encode as {fmt!r}: choose jpeg, png or webp", field="format")
    out = io.BytesIO()
    options = {"quality": quality} if pil_format in ("JPEG", "WEBP") else {}
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(out, pil_format, **options)
    return out.getvalue()


def save_image(path: str | Path, rgb: np.ndarray, *, overwrite: bool = False, quality: int = 92) -> Path:
    """Write an RGB array to ``path`` (format from the extension); no EXIF or other metadata."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: output must end in .jpg, .jpeg, .png or .webp")
    if path.exists() and not overwrite:
        raise InputError(f"{path}: already exists (refusing to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    Image.fromarray(np.asarray(rgb, dtype=np.uint8), "RGB").save(tmp, fmt, **options)
    tmp.replace(path)
    return path
