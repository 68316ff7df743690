"""Redact a whole archive (a folder tree of photos and videos) on every core, resumably.

``redact_archive(ARCHIVE, OUT, ArchiveJob(...))`` walks ``ARCHIVE`` like a folder run
(:mod:`faceledger.redact.folder`: tree kept, non-media files listed and not copied) and
hands one file at a time to each worker:

* **local** (default): one worker process per core (``workers``), each with its own
  detector, started with ``spawn``;
* **Ray** (``ray="auto"`` or a cluster address, ``pip install 'faceledger[ray]'``): one Ray
  actor per worker on the cluster (:mod:`faceledger.redact.ray_pool`). Every node must
  see ``ARCHIVE`` and ``OUT`` at the same paths (a shared file system).

**Resumable.** The driver (this process) writes the manifest
(:mod:`faceledger.redact.manifest`): each input's SHA-256, its output's SHA-256 and the
settings. A rerun with the same settings skips files whose input and output still hash
as recorded and redoes everything else, including files cut short by a crash (outputs
are written under a hidden temporary name and renamed when complete, so a partial file
never carries the final name).

**Long videos split.** A video of :data:`~faceledger.redact.split.MIN_SPLIT_SECONDS` or more in
the tail of the job (fewer files from it to the end than workers) is cut into time segments that
the workers redact as separate tasks, joined by the driver into one output with one manifest line
(:mod:`faceledger.redact.archive_split`); photos go first and videos by size, so the longest
videos make the tail. ``split_videos=False`` keeps every file whole.

**Fail closed.** A worker that dies takes its file with it: no output for that file, no
manifest line, the file is reported failed (``worker_crashed``) and the run's exit code
says so; a fresh worker takes the remaining files. Detection failures inside a worker are
handled as in a folder run (photo or frame fully obscured).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from faceledger.errors import FaceLedgerError
from faceledger.media.image import ImageLimits
from faceledger.media.video import OUTPUT_FORMATS, VIDEO_SUFFIXES
from faceledger.models.base import Detector
from faceledger.models.files import sha256_file
from faceledger.redact.folder import iter_media
from faceledger.redact.manifest import Manifest, ManifestRecord
from faceledger.redact.options import RedactOptions
from faceledger.redact.paths import PHOTO_SUFFIXES, check_output
from faceledger.redact.summary import FileReport, NullProgress, ProgressSink, RedactSummary
from faceledger.redact.video import Window, redact_video

__all__ = ["ArchiveJob", "FileTask", "SegmentTask", "TaskResult", "WorkerCrashedError", "WorkerSetupError",
           "drop_queued", "redact_archive", "run_task"]


class WorkerCrashedError(FaceLedgerError):
    """A worker process or actor died while redacting a file; nothing was written for it."""

    code = "worker_crashed"


class WorkerSetupError(FaceLedgerError):
    """A worker could not load its detector (a model file, a backend): every file it was given failed."""

    code = "worker_setup_failed"

    @classmethod
    def of(cls, exc: BaseException) -> WorkerSetupError:
        """The reason, as text that survives pickling to the driver (the code and message, no traceback)."""
        reason = f"{exc.code}: {exc.message}" if isinstance(exc, FaceLedgerError) else type(exc).__name__
        return cls(f"the worker could not load its detector ({reason}); nothing was written")


@dataclass(frozen=True, slots=True)
class ArchiveJob:
    """How an archive is redacted.

    ``workers``: worker processes (``None``: one per core). ``ray``: ``None`` for local
    processes, else ``"auto"`` (the Ray cluster this machine belongs to, or a local Ray
    instance if there is none) or a cluster address. ``backend`` names the detector every
    worker loads; ``detector_factory`` (a module-level function, so it can be pickled)
    replaces it, for tests and custom detectors. ``split_videos``: long videos in the job's tail
    are split across the workers (see the module docstring).
    """

    options: RedactOptions = field(default_factory=RedactOptions)
    workers: int | None = None
    ray: str | None = None
    backend: str = "yunet-sface"
    detector_factory: Callable[[], Detector] | None = None
    split_videos: bool = True

    def worker_count(self) -> int:
        return max(1, self.workers or os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class FileTask:
    """One input to redact: absolute paths and the input's SHA-256 (hashed by the driver)."""

    source: Path
    output: Path
    kind: str
    source_sha256: str


@dataclass(frozen=True, slots=True)
class SegmentTask:
    """One time segment of a split video (``window``), redacted into the hidden file ``part``."""

    source: Path
    part: Path
    window: Window
    index: int


@dataclass(frozen=True, slots=True)
class TaskResult:
    """A worker's answer: the file's report and its output's SHA-256."""

    report: FileReport
    output_sha256: str | None


class _Pool(Protocol):
    streams_frames: bool  # frame progress is sent while a file runs (else: when it is done)
    workers: int

    def submit(self, task: FileTask | SegmentTask) -> None: ...

    def drop(self, source: Path) -> int: ...  # forget the queued tasks of ``source``; how many there were

    def completed(self) -> Iterator[tuple[FileTask | SegmentTask, TaskResult | BaseException]]: ...

    def close(self) -> None: ...


def redact_archive(
    source: Path, output: Path, job: ArchiveJob | None = None, progress: ProgressSink | None = None
) -> RedactSummary:
    """Redact every photo and video under ``source`` into ``output`` (see the module docstring)."""
    job = job or ArchiveJob()
    progress = progress or NullProgress()
    source, output = Path(source), Path(output)
    if not source.is_dir():
        raise FaceLedgerError(f"{source}: an archive run needs a folder")
    manifest = _open_manifest(source, output, job)
    reports, todo = _plan(source, output, manifest)
    progress.begin("files", f"{source.name}/", len(reports) + len(todo))
    progress.begin("frames", "frames", None)
    progress.begin("faces", "faces", None)
    progress.advance("files", len(reports))
    try:
        if todo:
            reports += _run(todo, source, output, manifest, job, progress)
    finally:
        for key in ("faces", "frames", "files"):
            progress.end(key)
        _sweep_parts(output)
    order = {p: i for i, p in enumerate(iter_media(source))}
    return RedactSummary(tuple(sorted(reports, key=lambda r: order.get(r.source, len(order)))))


def settings_of(job: ArchiveJob) -> dict[str, Any]:
    """Everything that changes an output: redaction options and the detector. Not overwrite, nor the
    workers: how many there are moves the cuts of a split video (its bytes), not what it covers."""
    options = asdict(job.options)
    options.pop("overwrite", None)
    options["video"].pop("workers", None)
    factory = job.detector_factory
    detector = f"{factory.__module__}.{factory.__qualname__}" if factory else job.backend
    return {"options": options, "detector": detector, "format": 1}


def _open_manifest(source: Path, output: Path, job: ArchiveJob) -> Manifest:
    from faceledger.redact.manifest import MANIFEST_NAME

    resuming = (output / MANIFEST_NAME).is_file()
    if not resuming:
        check_output(source, output, job.options.overwrite)
    elif source.resolve() in output.resolve().parents or source.resolve() == output.resolve():
        check_output(source, output, True)
    return Manifest.open(output, settings_of(job))


def _plan(source: Path, output: Path, manifest: Manifest) -> tuple[list[FileReport], list[FileTask]]:
    """Reports for what needs no work (skipped, already done) and tasks for the rest."""
    reports: list[FileReport] = []
    todo: list[FileTask] = []
    for path in iter_media(source):
        suffix = path.suffix.lower()
        if suffix not in PHOTO_SUFFIXES and suffix not in VIDEO_SUFFIXES:
            reports.append(FileReport(path, None, "skipped", error_code="skipped",
                                      error="not a photo or a video; not copied"))
            continue
        rel = path.relative_to(source)
        target = output / rel
        if suffix in VIDEO_SUFFIXES and suffix not in OUTPUT_FORMATS:
            target = target.with_suffix(".mp4")
        digest = sha256_file(path)
        record = manifest.done(rel.as_posix(), digest)
        kind = "video" if suffix in VIDEO_SUFFIXES else "photo"
        if record is not None:
            reports.append(FileReport(path, output / record.output, kind, record.frames, record.faces,  # type: ignore[operator]
                                      resumed=True))
        else:
            todo.append(FileTask(path, target, kind, digest))
    return reports, todo


def _run(
    todo: list[FileTask], source: Path, output: Path, manifest: Manifest, job: ArchiveJob, progress: ProgressSink
) -> list[FileReport]:
    from faceledger.redact.archive_split import Splitter

    pool = _make_pool(job, progress)
    splitter = Splitter(job, pool)
    reports: list[FileReport] = []
    try:
        for unit in splitter.units(todo):
            pool.submit(unit)
        for unit, answer in pool.completed():
            settled = splitter.settle(unit, answer)
            if settled is None:  # a segment of a video not finished yet, or a video to redo whole
                continue
            task, answer = settled
            report = _record(task, answer, source, output, manifest)
            reports.append(report)
            if not pool.streams_frames:
                progress.advance("frames", report.frames)
            progress.advance("faces", report.faces)
            progress.advance("files")
    finally:
        pool.close()
    return reports


def drop_queued(backlog: deque[FileTask | SegmentTask], source: Path) -> int:
    """Remove the tasks of ``source`` from a pool's ``backlog`` (a split video that failed); how many."""
    before = len(backlog)
    kept = [t for t in backlog if t.source != source]
    backlog.clear()
    backlog.extend(kept)
    return before - len(kept)


def _record(task: FileTask, answer: TaskResult | BaseException, source: Path, output: Path,
            manifest: Manifest) -> FileReport:
    """The file's report; a manifest line for every file that has an output."""
    if isinstance(answer, BaseException):
        code = getattr(answer, "code", "worker_crashed")
        task.output.unlink(missing_ok=True)  # whatever the dead worker left is not vouched for
        return FileReport(task.source, None, task.kind, error_code=code, error=str(answer))  # type: ignore[arg-type]
    report = answer.report
    if report.output is not None:
        manifest.add(ManifestRecord(
            source=task.source.relative_to(source).as_posix(), source_sha256=task.source_sha256,
            output=report.output.relative_to(output).as_posix(), output_sha256=answer.output_sha256,
            kind=report.kind, frames=report.frames, faces=report.faces, obscured=report.obscured,
            error_code=report.error_code,
        ))
    return report


def _make_pool(job: ArchiveJob, progress: ProgressSink) -> _Pool:
    if job.ray is not None:
        from faceledger.redact.ray_pool import RayPool

        return RayPool(job, progress)
    from faceledger.redact.local_pool import LocalPool

    return LocalPool(job, progress)


def _sweep_parts(output: Path) -> None:
    """Remove temporary files a killed worker may have left (``.name.part...``)."""
    if output.is_dir():
        for part in output.rglob(".*.part*"):
            if part.is_file():
                part.unlink(missing_ok=True)


def run_task(task: FileTask | SegmentTask, redactor: Any, progress: ProgressSink) -> TaskResult:
    """Redact one file in a worker; typed input errors become a failed report, not an exception.

    A segment of a split video raises its errors instead (the driver fails the whole video).
    """
    from faceledger.redact.folder import redact_file

    if isinstance(task, SegmentTask):
        max_pixels = (redactor.limits or ImageLimits()).max_pixels
        report = redact_video(task.source, task.part, redactor.detector, redactor.options, progress, max_pixels,
                              task.window)
        return TaskResult(report, None)
    start = time.perf_counter()
    try:
        report = redact_file(task.source, task.output, redactor.detector, redactor.options, progress,
                             redactor.limits)
    except FaceLedgerError as exc:
        report = FileReport(task.source, None, task.kind, error_code=exc.code, error=exc.message,  # type: ignore[arg-type]
                            seconds=time.perf_counter() - start)
    digest = sha256_file(report.output) if report.output is not None else None
    return TaskResult(report, digest)
