"""Detector factories for archive tests; spawned workers import this module by name.

The tests put this folder on ``sys.path``; worker processes started with ``spawn`` get the
parent's ``sys.path``, so they can unpickle the factories below.
"""

from __future__ import annotations

import os

import numpy as np

from faceledger.models.base import Detections, DetectOptions, Detector

#: A photo of exactly this width makes :func:`crashing_detector`'s worker process die.
CRASH_WIDTH = 333


class CrashOnWidth:
    """The default detector, except that it kills its own process on a photo ``CRASH_WIDTH`` wide."""

    name = "crash-on-width"

    def __init__(self) -> None:
        from faceledger.models.registry import load_backend

        self.inner = load_backend("yunet-sface").detector

    def detect(self, rgb: np.ndarray, options: DetectOptions) -> Detections:
        if rgb.shape[1] == CRASH_WIDTH:
            os._exit(17)  # a hard crash: no exception, no cleanup, like a segfault or the OOM killer
        return self.inner.detect(rgb, options)


def crashing_detector() -> CrashOnWidth:
    return CrashOnWidth()


def unloadable_detector() -> CrashOnWidth:
    """A detector whose model cannot be loaded in the worker (as with a corrupted model file)."""
    from faceledger.errors import ModelFileError

    raise ModelFileError("the detector's model file does not match its SHA-256")


class CrashAfter:
    """The default detector, except that its process dies on its ``CRASH_CALL``-th search."""

    name = "crash-after"

    def __init__(self) -> None:
        from faceledger.models.registry import load_detector

        self.inner, self.calls = load_detector("yunet-sface"), 0

    def detect(self, rgb: np.ndarray, options: DetectOptions) -> Detections:
        self.calls += 1
        if self.calls == CRASH_CALL:
            os._exit(17)
        return self.inner.detect(rgb, options)


#: :class:`CrashAfter` kills its process on this call (a split video's worker, part way through).
CRASH_CALL = 20


def crash_after_detector() -> CrashAfter:
    return CrashAfter()


def default_detector() -> Detector:
    from faceledger.models.registry import load_detector

    return load_detector("yunet-sface")


#: :class:`PidRecorder` marks each process that searched a frame with a file named by its pid in this folder.
PID_DIR_VARIABLE = "FACELEDGER_TEST_PID_DIR"


class PidRecorder:
    """The default detector; the first search in a process leaves a file named by its pid."""

    name = "pid-recorder"

    def __init__(self) -> None:
        from faceledger.models.registry import load_detector

        self.inner, self.marked = load_detector("yunet-sface"), False

    def detect(self, rgb: np.ndarray, options: DetectOptions) -> Detections:
        if not self.marked:
            from pathlib import Path

            (Path(os.environ[PID_DIR_VARIABLE]) / str(os.getpid())).touch()
            self.marked = True
        return self.inner.detect(rgb, options)


def pid_recording_detector() -> PidRecorder:
    return PidRecorder()
