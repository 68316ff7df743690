"""Face redaction for photos, folders and videos: every face made unrecognisable.

Redaction uses only a face detector (no gallery, nothing stored)::

    from faceledger.redact import Redactor, RedactOptions
    redactor = Redactor()                                  # the default backend's detector
    summary = redactor.redact("crowd.mp4")                 # writes crowd_redacted.mp4
    summary.frames, summary.faces, summary.obscured

    result = redactor.image(rgb)                           # arrays: RedactedImage(rgb, boxes, ...)

See ``docs/redaction.md`` for the methods, video tracking and the fail-closed rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from faceledger.core.redaction import RedactionStyle
from faceledger.media.image import ImageLimits
from faceledger.models.base import Detector
from faceledger.redact.archive import ArchiveJob, WorkerCrashedError, redact_archive
from faceledger.redact.errors import CorruptVideoError, DetectionFailedError, NoVideoStreamError, OutputExistsError
from faceledger.redact.folder import redact_path
from faceledger.redact.manifest import ManifestError
from faceledger.redact.options import RedactOptions, VideoSettings
from faceledger.redact.paths import check_output, default_output, media_kind
from faceledger.redact.photo import RedactedImage, redact_image
from faceledger.redact.photo_search import PhotoSearch
from faceledger.redact.summary import FileReport, NullProgress, ProgressSink, RedactSummary
from faceledger.redact.tracker import FaceTracker, TrackedBox, TrackerConfig

__all__ = [
    "ArchiveJob",
    "CorruptVideoError",
    "DetectionFailedError",
    "FaceTracker",
    "FileReport",
    "ManifestError",
    "NoVideoStreamError",
    "NullProgress",
    "OutputExistsError",
    "PhotoSearch",
    "ProgressSink",
    "RedactOptions",
    "RedactSummary",
    "RedactedImage",
    "RedactionStyle",
    "Redactor",
    "TrackedBox",
    "TrackerConfig",
    "VideoSettings",
    "WorkerCrashedError",
    "default_output",
    "redact_archive",
    "redact_image",
    "redact_path",
]


class Redactor:
    """A loaded detector plus redaction options; reuse it for many files.

    ``detector`` defaults to the detector of ``backend`` (loaded and checked on
    construction). :meth:`from_engine` reuses an engine's already loaded detector.
    """

    def __init__(
        self,
        detector: Detector | None = None,
        options: RedactOptions | None = None,
        *,
        backend: str = "yunet-sface",
        limits: ImageLimits | None = None,
    ) -> None:
        self._loader: str | None = None  # workers of a split video load the same backend's detector
        if detector is None:
            from faceledger.models.registry import load_detector

            detector, self._loader = load_detector(backend), backend
        if not callable(getattr(detector, "detect", None)):
            hint = " (options go in options=...)" if isinstance(detector, RedactOptions) else ""
            raise TypeError(f"detector must have a detect(rgb, options) method, not {type(detector).__name__}{hint}")
        self.detector = detector
        self.options = options or RedactOptions()
        self.limits = limits

    @classmethod
    def from_engine(cls, engine: Any, options: RedactOptions | None = None) -> Redactor:
        """A redactor using ``engine.backend.detector`` and the engine's input limits."""
        return cls(engine.backend.detector, options, limits=getattr(engine, "limits", None))

    def image(self, rgb: np.ndarray) -> RedactedImage:
        """Redact an upright RGB ``uint8`` array (see :func:`redact_image`)."""
        return redact_image(rgb, self.detector, self.options)

    def redact(
        self, source: str | Path, output: str | Path | None = None, progress: ProgressSink | None = None
    ) -> RedactSummary:
        """Redact a photo, video or folder into ``output`` (default ``<name>_redacted`` beside it)."""
        source = Path(source)
        target = Path(output) if output is not None else default_output(source)
        if self._loader is not None and source.is_file() and media_kind(source) == "video":
            return self._video(source, target, progress)
        return redact_path(source, target, self.detector, self.options, progress, self.limits)

    def _video(self, source: Path, output: Path, progress: ProgressSink | None) -> RedactSummary:
        """One video, split across worker processes where that is faster (:mod:`faceledger.redact.split`)."""
        from faceledger.redact.split import redact_video_split

        check_output(source, output, self.options.overwrite)
        max_pixels = (self.limits or ImageLimits()).max_pixels
        report = redact_video_split(source, output, self.detector, self._loader, self.options, progress, max_pixels)
        return RedactSummary((report,))
