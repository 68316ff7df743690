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


#: :class:`PauseAfter` leaves a file named by its pid in this folder when it stops.
PAUSE_DIR_VARIABLE = "FACELEDGER_TEST_PAUSE_DIR"

#: :class:`PauseAfter` stops on this call: a split video's worker, part way through its segment.
PAUSE_CALL = 20


class PauseAfter:
    """The default detector, except that on its ``PAUSE_CALL``-th search it marks its pid and never returns.

    It pauses only where ``PAUSE_DIR_VARIABLE`` is set; elsewhere it is the default detector under another
    name, so a run can be resumed with the same settings (the manifest records the factory's name).

    A run whose workers use it stops mid-segment for as long as a test needs, so the test can kill it there
    whatever the machine's speed (a run on a fast, idle machine no longer finishes before it is caught).
    """

    name = "pause-after"

    def __init__(self) -> None:
        from faceledger.models.registry import load_detector

        self.inner, self.calls = load_detector("yunet-sface"), 0

    def detect(self, rgb: np.ndarray, options: DetectOptions) -> Detections:
        self.calls += 1
        if self.calls == PAUSE_CALL and os.environ.get(PAUSE_DIR_VARIABLE):
            import time
            from pathlib import Path

            (Path(os.environ[PAUSE_DIR_VARIABLE]) / str(os.getpid())).touch()
            while True:
                time.sleep(60)
        return self.inner.detect(rgb, options)


def pausing_detector() -> PauseAfter:
    return PauseAfter()
