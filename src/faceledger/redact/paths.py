"""Where redacted files go, and the rules that protect the input.

* The default output is ``<name>_redacted.<ext>`` beside a file, and a folder
  ``<name>_redacted`` beside a folder (its tree is kept inside).
* An output is never the input itself, nor inside an input folder.
* An existing output is refused unless ``overwrite`` is given.
* What a path holds is decided by content for photos (JPEG, PNG, WebP magic bytes)
  and by extension for videos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from faceledger.errors import InputError, UnsupportedFormatError
from faceledger.media.image import sniff_format
from faceledger.media.video import OUTPUT_FORMATS, VIDEO_SUFFIXES
from faceledger.redact.errors import OutputExistsError

__all__ = ["PHOTO_SUFFIXES", "check_output", "default_output", "media_kind", "output_suffix"]

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
_PHOTO_SUFFIX_OF = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}

MediaKind = Literal["photo", "video"]


def media_kind(path: Path) -> MediaKind:
    """``photo`` if the file starts with JPEG/PNG/WebP magic bytes, ``video`` if its extension says so."""
    if not path.exists():
        raise InputError(f"{path}: no such file or folder", path=str(path))
    if path.is_file():
        with path.open("rb") as fh:
            head = fh.read(16)
        if sniff_format(head) is not None:
            return "photo"
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return "video"
        if path.suffix.lower() in PHOTO_SUFFIXES:
            return "photo"  # load_image will say what is wrong with it
    raise UnsupportedFormatError(
        f"{path}: not a photo (JPEG, PNG, WebP) or a video ({', '.join(sorted(VIDEO_SUFFIXES))})",
        path=str(path),
    )


def output_suffix(source: Path, kind: MediaKind) -> str:
    """The extension an output of ``source`` gets by default."""
    suffix = source.suffix.lower()
    if kind == "video":
        return source.suffix if suffix in OUTPUT_FORMATS else ".mp4"
    if suffix in PHOTO_SUFFIXES:
        return source.suffix
    with source.open("rb") as fh:
        fmt = sniff_format(fh.read(16))
    return _PHOTO_SUFFIX_OF.get(fmt or "", ".png")


def default_output(source: Path) -> Path:
    """``<name>_redacted.<ext>`` beside a file, ``<name>_redacted`` beside a folder."""
    if source.is_dir():
        return source.with_name(f"{source.name}_redacted")
    return source.with_name(f"{source.stem}_redacted{output_suffix(source, media_kind(source))}")


def check_output(source: Path, output: Path, overwrite: bool) -> None:
    """Refuse an output that is the input, lies inside an input folder, or exists (unless ``overwrite``)."""
    src, dst = source.resolve(), output.resolve()
    if src == dst or (dst.exists() and src.exists() and dst.samefile(src)):
        raise OutputExistsError(f"{output}: is the input itself; redaction never overwrites its input")
    if source.is_dir() and src in dst.parents:
        raise OutputExistsError(f"{output}: lies inside the input folder {source}; choose a path outside it")
    if output.exists() and not overwrite:
        raise OutputExistsError(f"{output}: already exists (use --overwrite to replace it)", path=str(output))
    if output.exists() and source.is_dir() != output.is_dir():
        raise OutputExistsError(f"{output}: exists and is a {'folder' if output.is_dir() else 'file'}")
