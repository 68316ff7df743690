"""Import OpenCV with FaceLedger's decoder limit in place.

OpenCV reads ``OPENCV_IO_MAX_IMAGE_PIXELS`` once, the first time it decodes an
image, so the limit is put in the environment before :mod:`cv2` is imported
(an operator's own setting wins). Every FaceLedger module imports OpenCV from here.
"""

from __future__ import annotations

import os

#: The default pixel cap of every image input (40 megapixels).
DEFAULT_MAX_PIXELS = 40_000_000

os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(DEFAULT_MAX_PIXELS))

import cv2  # noqa: E402

if "OPENCV_LOG_LEVEL" not in os.environ:  # decoder warnings about refused input are ours to report
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

__all__ = ["DEFAULT_MAX_PIXELS", "cv2"]
