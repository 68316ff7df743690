"""Long videos of an archive split across the archive's workers (the driver's side).

A video in the tail of an archive job (fewer files from it to the end than workers: an archive of
one long video, or the last video of many files) that :func:`~faceledger.redact.split.plan_split`
finds worth splitting is cut into time segments, one :class:`SegmentTask` each. The archive's
workers (local processes or Ray actors, their detectors already loaded) redact segments like any
other task; the driver joins a video's segments when its last one is done, exactly as a split
single-video run does (:mod:`faceledger.redact.split`), and the archive records one manifest line
for it: input, output, both SHA-256. Photos are handed out first and videos by size, so the
longest videos make the tail.

Fail closed as a whole: a segment that fails (a dead worker, an error) fails its video: its
queued segments are dropped, its running ones finish and are thrown away, nothing is written for
it (the parts are hidden files, removed). A video whose frames cannot be located exactly
(:class:`~faceledger.redact.video.SegmentMismatchError`) is redone whole by one worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from faceledger._cv import DEFAULT_MAX_PIXELS
from faceledger.errors import FaceLedgerError
from faceledger.models.files import sha256_file
from faceledger.redact.archive import ArchiveJob, FileTask, SegmentTask, TaskResult
from faceledger.redact.split import join_parts, merge_reports, part_paths, plan_split, remove_parts
from faceledger.redact.summary import FileReport
from faceledger.redact.video import SegmentMismatchError, Window

__all__ = ["Splitter"]

Settled = tuple[FileTask, TaskResult | BaseException]


@dataclass(slots=True)
class _Split:
    """A split video in progress: its segments' reports as they come, the first failure."""

    task: FileTask
    plan: tuple[Any, list[Window]]
    parts: list[Path]
    waiting: int
    start: float = field(default_factory=time.perf_counter)
    reports: dict[int, FileReport] = field(default_factory=dict)
    failure: BaseException | None = None


class Splitter:
    """Turns an archive's tasks into units of work for ``pool`` and its answers back into files'."""

    def __init__(self, job: ArchiveJob, pool: Any) -> None:
        self._pool = pool
        self._options = replace(job.options, overwrite=True)
        self._workers = pool.workers if job.split_videos else 1
        self._splits: dict[Path, _Split] = {}

    def units(self, todo: list[FileTask]) -> list[FileTask | SegmentTask]:
        """``todo`` in the order to hand out (photos, then videos by size), tail videos as segments."""
        ordered = sorted(todo, key=lambda t: (t.kind == "video", t.source.stat().st_size if t.kind == "video" else 0))
        units: list[FileTask | SegmentTask] = []
        for i, task in enumerate(ordered):
            in_tail = len(ordered) - i < self._workers or i == len(ordered) - 1
            split = self._plan(task) if in_tail and self._workers > 1 and task.kind == "video" else None
            if split is None:
                units.append(task)
                continue
            parts = part_paths(task.output, len(split[1]))
            self._splits[task.source] = _Split(task, split, parts, waiting=len(parts))
            units += [SegmentTask(task.source, part, window, k) for k, (part, window) in
                      enumerate(zip(parts, split[1], strict=True))]
        return units

    def _plan(self, task: FileTask) -> tuple[Any, list[Window]] | None:
        try:
            return plan_split(task.source, task.output, self._options, self._workers, DEFAULT_MAX_PIXELS)
        except FaceLedgerError:
            return None  # the worker that redacts it whole reports what is wrong with it

    def settle(self, unit: FileTask | SegmentTask, answer: TaskResult | BaseException) -> Settled | None:
        """A file's answer once it is known; ``None`` while a split video still has segments out."""
        if isinstance(unit, FileTask):
            return unit, answer
        split = self._splits[unit.source]
        split.waiting -= 1
        if isinstance(answer, BaseException):
            if split.failure is None:
                split.failure = answer
                split.waiting -= self._pool.drop(unit.source)
        else:
            split.reports[unit.index] = answer.report
        if split.waiting > 0:
            return None
        del self._splits[unit.source]
        return self._finish(split)

    def _finish(self, split: _Split) -> Settled | None:
        task = split.task
        try:
            if split.failure is None:
                join_parts(task.source, task.output, split.parts, split.plan, self._options)
                reports = [split.reports[k] for k in range(len(split.parts))]
                report = merge_reports(task.source, task.output, reports, time.perf_counter() - split.start)
                return task, TaskResult(report, sha256_file(task.output))
            failure: BaseException = split.failure
        except FaceLedgerError as exc:
            failure = exc
        finally:
            remove_parts(task.output, split.parts)
        if isinstance(failure, SegmentMismatchError):
            self._pool.submit(task)  # the index does not let frames be located exactly: one worker, whole
            return None
        return task, failure
