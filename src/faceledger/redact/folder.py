"""Redact one path: a photo, a video, or a folder walked recursively (its tree kept).

A single file that cannot be redacted raises its typed error. In a folder, each
file's failure is recorded in its :class:`FileReport` and the walk goes on; files
that are neither photos nor videos are reported as skipped and **not copied**
(they might hold faces this tool cannot see). Symbolic links to folders are not
followed; hidden files and folders (names starting with ``.``) are skipped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from faceledger.errors import FaceLedgerError
from faceledger.media.image import ImageLimits
from faceledger.media.video import OUTPUT_FORMATS, VIDEO_SUFFIXES
from faceledger.models.base import Detector
from faceledger.redact.options import RedactOptions
from faceledger.redact.paths import PHOTO_SUFFIXES, check_output, default_output, media_kind
from faceledger.redact.photo import redact_photo
from faceledger.redact.summary import FileReport, NullProgress, ProgressSink, RedactSummary
from faceledger.redact.video import redact_video

__all__ = ["iter_media", "redact_file", "redact_path"]


def redact_path(
    source: Path,
    output: Path | None,
    detector: Detector,
    options: RedactOptions | None = None,
    progress: ProgressSink | None = None,
    limits: ImageLimits | None = None,
) -> RedactSummary:
    """Redact ``source`` (photo, video or folder) into ``output`` (default: beside it)."""
    options = options or RedactOptions()
    progress = progress or NullProgress()
    source = Path(source)
    output = Path(output) if output is not None else default_output(source)
    check_output(source, output, options.overwrite)
    if source.is_dir():
        return _redact_folder(source, output, detector, options, progress, limits)
    return RedactSummary((redact_file(source, output, detector, options, progress, limits),))


def iter_media(folder: Path) -> Iterator[Path]:
    """Every non-hidden file under ``folder``, in a stable (sorted) order, links to folders not followed."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def redact_file(
    source: Path,
    output: Path,
    detector: Detector,
    options: RedactOptions,
    progress: ProgressSink,
    limits: ImageLimits | None,
) -> FileReport:
    """Redact one photo or video file into ``output`` (raises the file's typed error)."""
    if media_kind(source) == "photo":
        return redact_photo(source, output, detector, options, limits)
    max_pixels = limits.max_pixels if limits is not None else ImageLimits().max_pixels
    return redact_video(source, output, detector, options, progress, max_pixels)


def _redact_folder(
    source: Path,
    output: Path,
    detector: Detector,
    options: RedactOptions,
    progress: ProgressSink,
    limits: ImageLimits | None,
) -> RedactSummary:
    files = list(iter_media(source))
    reports: list[FileReport] = []
    progress.begin("files", f"{source.name}/", len(files))
    try:
        for path in files:
            reports.append(_folder_item(path, source, output, detector, options, progress, limits))
            progress.advance("files")
    finally:
        progress.end("files")
    return RedactSummary(tuple(reports))


def _folder_item(
    path: Path,
    source: Path,
    output: Path,
    detector: Detector,
    options: RedactOptions,
    progress: ProgressSink,
    limits: ImageLimits | None,
) -> FileReport:
    suffix = path.suffix.lower()
    target = output / path.relative_to(source)
    if suffix in VIDEO_SUFFIXES and suffix not in OUTPUT_FORMATS:
        target = target.with_suffix(".mp4")
    if suffix not in PHOTO_SUFFIXES and suffix not in VIDEO_SUFFIXES:
        return FileReport(path, None, "skipped", error_code="skipped", error="not a photo or a video; not copied")
    start = time.perf_counter()
    try:
        return redact_file(path, target, detector, options, progress, limits)
    except FaceLedgerError as exc:
        kind = "video" if suffix in VIDEO_SUFFIXES else "photo"
        return FileReport(path, None, kind, error_code=exc.code, error=exc.message, seconds=time.perf_counter() - start)
