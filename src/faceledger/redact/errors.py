"""Errors of redaction, placed under the existing branches of the error tree.

::

    InputError
    ├── OutputExistsError         (output_exists: refused without --overwrite)
    ├── CorruptImageError
    │   └── CorruptVideoError     (corrupt_video: unreadable or truncated video)
    └── UnsupportedFormatError
        └── NoVideoStreamError    (no_video_stream: a media file without video)
    ModelError
    └── DetectionFailedError      (detection_failed: the detector raised; output obscured)

The two video errors live in :mod:`faceledger.media.video` (the layer that raises
them) and are re-exported here.
"""

from __future__ import annotations

from faceledger.errors import InputError, ModelError
from faceledger.media.video import CorruptVideoError, NoVideoStreamError

__all__ = ["CorruptVideoError", "DetectionFailedError", "NoVideoStreamError", "OutputExistsError"]


class OutputExistsError(InputError):
    """The output path exists and overwriting was not asked for (or it is the input)."""

    code = "output_exists"


class DetectionFailedError(ModelError):
    """Detection failed on a photo or on frames; the affected output was fully obscured."""

    code = "detection_failed"
