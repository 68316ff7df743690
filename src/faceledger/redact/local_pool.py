"""Worker processes on this machine for archive redaction, one file at a time each.

Each worker is its own single-process executor (``spawn``), so when one dies the file it
held is known exactly: that file is answered with :class:`WorkerCrashedError` and a fresh
worker replaces the dead one. Workers load their detector once (initializer), with the cores
shared out among them (OpenCV and onnxruntime threads: cores // workers), and send
frame counts back through a queue, which a driver thread turns into progress.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import Any

from faceledger.redact.archive import (
    ArchiveJob,
    FileTask,
    SegmentTask,
    TaskResult,
    WorkerCrashedError,
    WorkerSetupError,
    drop_queued,
    run_task,
)
from faceledger.redact.summary import ProgressSink

__all__ = ["LocalPool", "QueueProgress"]

_WORKER: dict[str, Any] = {}
_FRAME_BATCH = 10


class QueueProgress:
    """A worker's :class:`ProgressSink`: frame counts go to the driver in batches."""

    def __init__(self, channel: Any) -> None:
        self.channel, self.pending = channel, 0

    def begin(self, key: str, label: str, total: int | None) -> None:
        return None

    def advance(self, key: str, steps: int = 1) -> None:
        self.pending += steps
        if self.pending >= _FRAME_BATCH:
            self.flush()

    def end(self, key: str) -> None:
        self.flush()

    def flush(self) -> None:
        if self.pending:
            self.channel.put(self.pending)
            self.pending = 0


def build_redactor(job: ArchiveJob) -> Any:
    """The detector and options a worker uses (outputs in the archive's folder are the run's own)."""
    from faceledger.redact import Redactor

    options = replace(job.options, overwrite=True)
    if job.detector_factory is not None:
        return Redactor(job.detector_factory(), options)
    return Redactor(options=options, backend=job.backend)


def _init_worker(job: ArchiveJob, channel: Any, threads: int) -> None:
    from faceledger._cv import cv2

    cv2.setNumThreads(threads)  # before the detector loads: its onnxruntime session takes as many
    _WORKER["progress"] = QueueProgress(channel)
    try:
        _WORKER["redactor"] = build_redactor(job)
    except Exception as exc:  # noqa: BLE001 - the worker stays up to say why, for every file it is given
        _WORKER["setup_error"] = WorkerSetupError.of(exc)


def _work(task: FileTask | SegmentTask) -> TaskResult:
    if "setup_error" in _WORKER:
        raise _WORKER["setup_error"]
    progress = _WORKER["progress"]
    try:
        return run_task(task, _WORKER["redactor"], progress)
    finally:
        progress.flush()


class LocalPool:
    """``job.worker_count()`` worker processes; see the module docstring."""

    streams_frames = True

    def __init__(self, job: ArchiveJob, progress: ProgressSink) -> None:
        self._job = job
        self._context = multiprocessing.get_context("spawn")
        self._channel = self._context.Queue()
        self._progress = progress
        self._backlog: deque[FileTask | SegmentTask] = deque()
        self.workers = job.worker_count()
        self._threads = max(1, (os.cpu_count() or 1) // self.workers)  # the cores shared out, as a split video's
        self._idle = [self._new_worker() for _ in range(self.workers)]
        self._running: dict[Future, tuple[FileTask | SegmentTask, ProcessPoolExecutor]] = {}
        self._stop = threading.Event()
        self._drainer = threading.Thread(target=self._drain, name="faceledger-archive-progress", daemon=True)
        self._drainer.start()

    def _new_worker(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(1, mp_context=self._context, initializer=_init_worker,
                                   initargs=(self._job, self._channel, self._threads))

    def submit(self, task: FileTask | SegmentTask) -> None:
        self._backlog.append(task)

    def drop(self, source: Path) -> int:
        """Forget the queued tasks of ``source`` (a split video that failed); how many there were."""
        return drop_queued(self._backlog, source)

    def completed(self) -> Iterator[tuple[FileTask | SegmentTask, TaskResult | BaseException]]:
        self._fill()
        while self._running:
            done, _ = wait(list(self._running), return_when=FIRST_COMPLETED)
            for future in done:
                task, worker = self._running.pop(future)
                try:
                    answer: TaskResult | BaseException = future.result()
                    self._idle.append(worker)
                except BrokenProcessPool:
                    answer = WorkerCrashedError(f"{task.source}: the worker process died while redacting it; "
                                                "nothing was written for it (rerun to try again)")
                    worker.shutdown(wait=False, cancel_futures=True)
                    self._idle.append(self._new_worker())
                except Exception as exc:  # noqa: BLE001 - an unexpected error in the worker: that file failed
                    answer = exc
                    self._idle.append(worker)
                yield task, answer
            self._fill()

    def _fill(self) -> None:
        while self._backlog and self._idle:
            worker = self._idle.pop()
            task = self._backlog.popleft()
            self._running[worker.submit(_work, task)] = (task, worker)

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                frames = self._channel.get(timeout=0.2)
            except queue.Empty:
                continue
            except (EOFError, OSError):
                return
            self._progress.advance("frames", frames)

    def close(self) -> None:
        for worker in self._idle:
            worker.shutdown(wait=True, cancel_futures=True)
        for _, worker in self._running.values():  # interrupted: stop the files still in progress
            for process in list(getattr(worker, "_processes", {}).values()):
                process.terminate()
            worker.shutdown(wait=False, cancel_futures=True)
        self._stop.set()
        self._drainer.join(timeout=5)
        self._channel.close()
