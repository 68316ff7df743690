"""Archive redaction on a Ray cluster: one actor per worker, each with its own detector.

Ray (``pip install 'faceledger[ray]'``) schedules the actors and carries tasks and answers;
the driver keeps the manifest and the fail-closed rule exactly as with local processes
(:mod:`faceledger.redact.archive`). Every node must see the archive and output folders at
the same paths (a shared file system): files are read and written by the actors, not
shipped through Ray's object store.

``ray="auto"`` joins the cluster this machine belongs to (``ray start`` was run here, or
``RAY_ADDRESS`` is set) and otherwise starts a local Ray instance for the run; any other
value is a cluster address (``ray://host:10001`` or ``host:6379``). If Ray is already
initialised in this process, that connection is used and left open.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from faceledger.errors import BackendUnavailableError
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
from faceledger.redact.summary import NullProgress, ProgressSink

__all__ = ["RayPool"]


class _RayWorker:
    """The actor body: a redactor loaded once, one file per call."""

    def __init__(self, job: ArchiveJob) -> None:
        from faceledger._cv import cv2
        from faceledger.redact.local_pool import build_redactor

        cv2.setNumThreads(1)  # one CPU per actor (num_cpus=1), before the detector takes as many threads
        self.redactor, self.setup_error = None, None
        try:
            self.redactor = build_redactor(job)
        except Exception as exc:  # noqa: BLE001 - the actor stays up to say why, for every file it is given
            self.setup_error = WorkerSetupError.of(exc)

    def run(self, task: FileTask | SegmentTask) -> TaskResult:
        if self.setup_error is not None:
            raise self.setup_error
        return run_task(task, self.redactor, NullProgress())


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BackendUnavailableError("Ray is not installed: pip install 'faceledger[ray]'") from None
    return ray


class RayPool:
    """Ray actors as archive workers (``job.workers`` of them, default: the cluster's CPUs)."""

    streams_frames = False

    def __init__(self, job: ArchiveJob, progress: ProgressSink) -> None:
        ray = self._ray = _ray()
        self._owns = not ray.is_initialized()
        if self._owns:
            _connect(ray, job.ray or "auto")
        self.workers = job.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._actor_class = ray.remote(num_cpus=1, max_restarts=0)(_RayWorker)
        self._job = job
        self._idle = [self._actor_class.remote(job) for _ in range(self.workers)]
        self._backlog: deque[FileTask | SegmentTask] = deque()
        self._running: dict[Any, tuple[FileTask | SegmentTask, Any]] = {}

    def submit(self, task: FileTask | SegmentTask) -> None:
        self._backlog.append(task)

    def drop(self, source: Path) -> int:
        """Forget the queued tasks of ``source`` (a split video that failed); how many there were."""
        return drop_queued(self._backlog, source)

    def completed(self) -> Iterator[tuple[FileTask | SegmentTask, TaskResult | BaseException]]:
        ray = self._ray
        self._fill()
        while self._running:
            done, _ = ray.wait(list(self._running), num_returns=1)
            for ref in done:
                task, actor = self._running.pop(ref)
                try:
                    answer: TaskResult | BaseException = ray.get(ref)
                    self._idle.append(actor)
                except ray.exceptions.RayActorError:
                    answer = WorkerCrashedError(f"{task.source}: the Ray worker died while redacting it; "
                                                "nothing was written for it (rerun to try again)")
                    ray.kill(actor)
                    self._idle.append(self._actor_class.remote(self._job))
                except ray.exceptions.RayTaskError as exc:
                    answer = exc.as_instanceof_cause()
                    self._idle.append(actor)
                yield task, answer
            self._fill()

    def _fill(self) -> None:
        while self._backlog and self._idle:
            actor = self._idle.pop()
            task = self._backlog.popleft()
            self._running[actor.run.remote(task)] = (task, actor)

    def close(self) -> None:
        for actor in [*self._idle, *(a for _, a in self._running.values())]:
            self._ray.kill(actor)
        self._idle, self._running = [], {}
        if self._owns:
            self._ray.shutdown()


def _connect(ray: Any, address: str) -> None:
    if address != "auto":
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        return
    try:
        ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
    except ConnectionError:
        ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
