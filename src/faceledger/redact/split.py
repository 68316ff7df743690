"""One video redacted by several worker processes: time segments encoded apart, joined by stream copy.

A video long enough (:data:`MIN_SPLIT_SECONDS`) is cut into as many segments as there are
workers (more for very long videos, so none runs much longer than the others). Each worker
(``spawn``, its own detector, loaded by backend name or by a picklable factory) seeks to
:data:`WARM_UP_SECONDS` before its segment and decodes, searches and tracks from there, so the
tracker and the camera motion are warm when its first frame is written, and goes on
``lookahead`` frames past its end (the tracker decides each frame with the near future known);
frames outside its segment are not written. Searched frames keep their place in the whole
video's schedule (the fine pass runs on the same frames as in one process), so the redaction is
the same as one process's wherever the tracker has warmed up (``tests/redact/test_split.py``).

Every segment is its own x264 encode starting with a keyframe, so the cut points are exact: the
driver copies the segments' packets, in order, into the output with the source's timestamps
(each frame's ``pts`` as decoded), and the source's audio packets beside them, unchanged, as a
whole run does. Segments are encoded with x264 ``ultrafast`` only (no B-frames: packets come in
presentation order); other presets and encoders run in one process.

Fail closed as a whole run: a worker that raises or dies, or a segment that does not decode to
the frames planned, leaves no output (segments are hidden temporary files, removed in every
case) and raises a typed error (:class:`~faceledger.redact.archive.WorkerCrashedError` for a
dead worker). A video whose frames cannot be located exactly (missing or repeated timestamps,
a seek that lands elsewhere) is redacted in one process instead.
"""

from __future__ import annotations

import heapq
import math
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from faceledger._cv import DEFAULT_MAX_PIXELS
from faceledger.errors import FaceLedgerError
from faceledger.media.video import CorruptVideoError, add_audio_copies, open_video, output_format
from faceledger.models.base import Detector
from faceledger.redact.archive import WorkerCrashedError, WorkerSetupError
from faceledger.redact.errors import OutputExistsError
from faceledger.redact.local_pool import QueueProgress
from faceledger.redact.options import RedactOptions
from faceledger.redact.summary import FileReport, NullProgress, ProgressSink
from faceledger.redact.video import SegmentMismatchError, Window, redact_video

__all__ = ["DetectorSource", "MIN_SPLIT_SECONDS", "WARM_UP_SECONDS", "join_parts", "merge_reports", "part_paths",
           "plan_split", "plan_windows", "redact_video_split", "remove_parts"]

#: Backend name, or a module-level function returning a detector (picklable, for spawned workers).
DetectorSource = str | Callable[[], Detector]
#: Videos shorter than this run in one process (workers take a few seconds to start).
MIN_SPLIT_SECONDS = 10.0
#: Each worker starts this long before its segment (tracker and camera motion warm-up; discarded).
WARM_UP_SECONDS = 1.0
#: Longest segment, in frames (longer videos get more segments than workers).
_MAX_SEGMENT_FRAMES = 9000
_WORKER: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the driver learnt from the source: every frame's pts, the time base, the first frame's size."""

    pts: list[int]
    time_base: Fraction
    rate: Fraction
    shape: tuple[int, int]


def redact_video_split(
    source: Path,
    output: Path,
    detector: Detector,
    loader: DetectorSource | None,
    options: RedactOptions | None = None,
    progress: ProgressSink | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> FileReport:
    """Redact the video at ``source`` into ``output``, split across workers where that is faster.

    ``detector`` runs the video in this process when it is not split; ``loader`` (backend name
    or factory) loads one in each worker (``None``: never split). Workers:
    ``options.video.workers`` (``None``: one per core).
    """
    options = options or RedactOptions()
    progress = progress or NullProgress()
    workers = _worker_count(options)
    split = plan_split(source, output, options, workers, max_pixels) if loader is not None and workers > 1 else None
    if split is not None:
        plan, windows = split
        try:
            return _run_split(source, output, loader, options, progress, (plan, windows, workers, max_pixels))
        except SegmentMismatchError:
            pass  # the index does not let frames be located exactly: one process
    return redact_video(source, output, detector, options, progress, max_pixels)


def plan_split(source: Path, output: Path, options: RedactOptions, workers: int,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[_Plan, list[Window]] | None:
    """The source's frames and its segments for ``workers`` workers, when it is worth splitting and can be
    split exactly (x264 ``ultrafast``, :data:`MIN_SPLIT_SECONDS` or longer, every frame timestamped); else
    ``None``. Raises :class:`OutputExistsError` if ``output`` exists and ``options.overwrite`` is off."""
    plan = _plan(source, output, options, workers, max_pixels)
    if plan is None:
        return None
    return plan, plan_windows(len(plan.pts), plan.rate, workers, options, plan)


def part_paths(output: Path, count: int) -> list[Path]:
    """The hidden temporary files the segments of ``output`` are written to."""
    return [output.with_name(f".{output.stem}.part{k}{output.suffix}") for k in range(count)]


def remove_parts(output: Path, parts: list[Path]) -> None:
    """Remove the segments and every temporary file beside them (a worker that died or was stopped leaves
    its own temporary file beside its segment)."""
    tmp = output.with_name(f".{output.stem}.part{output.suffix}")
    for path in (*parts, *(p.with_name(f".{p.stem}.part{p.suffix}") for p in parts), tmp):
        path.unlink(missing_ok=True)


def join_parts(source: Path, output: Path, parts: list[Path], split: tuple[_Plan, list[Window]],
               options: RedactOptions) -> None:
    """Join the redacted segments and the source's audio into ``output`` (through a temporary file).

    Raises :class:`SegmentMismatchError` when a segment does not hold the frames planned, or
    :class:`CorruptVideoError` when the join fails; ``output`` is then not written.
    """
    plan, windows = split
    muxer, _ = output_format(output)
    tmp = output.with_name(f".{output.stem}.part{output.suffix}")
    try:
        _join(source, parts, windows, tmp, muxer, options, plan)
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)


def merge_reports(source: Path, output: Path, reports: list[FileReport], seconds: float) -> FileReport:
    """One report for a video from its segments' reports."""
    obscured = sum(r.obscured for r in reports)
    return FileReport(
        source=source, output=output, kind="video", frames=sum(r.frames for r in reports),
        faces=sum(r.faces for r in reports), obscured=obscured,
        error_code="detection_failed" if obscured else None,
        error=next((r.error for r in reports if r.error), None), seconds=seconds,
    )


def _worker_count(options: RedactOptions) -> int:
    return max(1, options.video.workers or os.cpu_count() or 1)


def _plan(source: Path, output: Path, options: RedactOptions, workers: int, max_pixels: int) -> _Plan | None:
    """The source's frames, when it is worth splitting and can be split exactly; else ``None``."""
    import av.error

    muxer, encoder = output_format(output)
    if encoder != "libx264" or options.video.preset != "ultrafast":
        return None
    if output.exists() and not options.overwrite:
        raise OutputExistsError(f"{output}: already exists (use --overwrite to replace it)", path=str(output))
    container, _ = open_video(source, max_pixels)
    try:
        with container:
            video = container.streams.video[0]
            rate, time_base = video.average_rate or video.guessed_rate, video.time_base
            if rate is None or time_base is None:
                return None
            pts = [p.pts for p in container.demux(video) if p.size]
            container.seek(0)
            first = next(container.decode(video), None)
    except av.error.FFmpegError:
        return None  # the whole run reports what is wrong with it
    if first is None or None in pts or len(set(pts)) != len(pts) or len(pts) < rate * MIN_SPLIT_SECONDS:
        return None
    from faceledger.redact.pipeline import _picture

    shape = _picture(first).shape
    return _Plan(sorted(pts), Fraction(time_base), Fraction(rate), shape)


def plan_windows(frames: int, rate: Fraction, workers: int, options: RedactOptions, plan: _Plan) -> list[Window]:
    """Segments of about equal length, each with its warm-up and the tracker's look-ahead."""
    count = max(workers, math.ceil(frames / _MAX_SEGMENT_FRAMES))
    cuts = [round(i * frames / count) for i in range(count + 1)]
    warm_up = math.ceil(float(rate) * WARM_UP_SECONDS)
    ahead = options.video.tracker.lookahead + 1
    windows = []
    for first, end in zip(cuts, cuts[1:], strict=False):
        warm, tail = max(0, first - warm_up), min(frames, end + ahead)
        windows.append(Window(warm, first, end, tail, tuple(plan.pts[warm:tail]), plan.shape))
    return windows


def _run_split(source: Path, output: Path, loader: DetectorSource, options: RedactOptions, progress: ProgressSink,
               job: tuple[_Plan, list[Window], int, int]) -> FileReport:
    plan, windows, workers, max_pixels = job
    start = time.perf_counter()
    output.parent.mkdir(parents=True, exist_ok=True)
    parts = part_paths(output, len(windows))
    progress.begin(source.name, source.name, len(plan.pts))
    try:
        reports = _redact_parts(source, parts, windows, loader, options, progress, min(workers, len(windows)),
                                max_pixels)
        join_parts(source, output, parts, (plan, windows), options)
    finally:
        progress.end(source.name)
        remove_parts(output, parts)
    return merge_reports(source, output, reports, time.perf_counter() - start)


# -- workers ------------------------------------------------------------------------------------------------
def _init_worker(loader: DetectorSource, channel: Any, threads: int) -> None:
    from faceledger._cv import cv2

    cv2.setNumThreads(threads)
    _WORKER["progress"] = QueueProgress(channel)
    try:
        if isinstance(loader, str):
            from faceledger.models.registry import load_detector

            _WORKER["detector"] = load_detector(loader)
        else:
            _WORKER["detector"] = loader()
    except Exception as exc:  # noqa: BLE001 - reported for the segment it is given
        _WORKER["setup_error"] = WorkerSetupError.of(exc)


def _redact_part(source: Path, part: Path, window: Window, options: RedactOptions, max_pixels: int) -> FileReport:
    if "setup_error" in _WORKER:
        raise _WORKER["setup_error"]
    return redact_video(source, part, _WORKER["detector"], options, _WORKER["progress"], max_pixels, window)


def _redact_parts(source: Path, parts: list[Path], windows: list[Window], loader: DetectorSource,
                  options: RedactOptions, progress: ProgressSink, workers: int, max_pixels: int) -> list[FileReport]:
    """Every segment redacted by the workers; the first failure stops them all and is raised."""
    context = multiprocessing.get_context("spawn")
    channel = context.Queue()
    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                               initargs=(loader, channel, threads))
    stop = threading.Event()
    drainer = threading.Thread(target=_drain, args=(channel, progress, source.name, stop), daemon=True)
    drainer.start()
    part_options = replace(options, overwrite=True)
    futures: list[Future] = []
    try:
        futures = [pool.submit(_redact_part, source, p, w, part_options, max_pixels)
                   for p, w in zip(parts, windows, strict=True)]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:  # a failure is raised at once, without waiting for the other segments
            if future in done and future.exception() is not None:
                _answer(future, source)
        return [_answer(f, source) for f in futures]
    finally:
        _shutdown(pool, futures)
        stop.set()
        drainer.join(timeout=5)
        channel.close()


def _answer(future: Future, source: Path) -> FileReport:
    try:
        return future.result()
    except BrokenProcessPool:
        raise WorkerCrashedError(f"{source}: a worker process died while redacting part of it; nothing was "
                                 "written (rerun to try again)") from None
    except FaceLedgerError:
        raise
    except Exception as exc:  # noqa: BLE001 - an unexpected error in a worker: the whole video failed
        raise WorkerCrashedError(f"{source}: a worker failed ({type(exc).__name__}: {exc}); nothing was "
                                 "written") from None


def _shutdown(pool: ProcessPoolExecutor, futures: list[Future]) -> None:
    """Stop at once: cancel what has not started and end the workers still running."""
    if any(not f.done() for f in futures):
        for future in futures:
            future.cancel()
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _drain(channel: Any, progress: ProgressSink, key: str, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            progress.advance(key, channel.get(timeout=0.2))
        except queue.Empty:
            continue
        except (EOFError, OSError, ValueError):
            return


# -- joining ------------------------------------------------------------------------------------------------
def _join(source: Path, parts: list[Path], windows: list[Window], tmp: Path, muxer: str, options: RedactOptions,
          plan: _Plan) -> None:
    """Copy the segments' packets and the source's audio into ``tmp``, with the source's timestamps."""
    import av
    import av.error

    keep = options.keep_metadata
    out_options = {"movflags": "use_metadata_tags"} if keep and muxer in ("mp4", "mov") else {}
    try:
        with av.open(str(source), metadata_errors="ignore") as src, av.open(str(parts[0])) as first, \
                av.open(str(tmp), mode="w", format=muxer, options=out_options) as out:
            video_in = src.streams.video[0]
            video_out = out.add_stream_from_template(first.streams.video[0])
            video_out.time_base = plan.time_base
            audio = add_audio_copies(out, src, keep) if options.keep_audio else {}
            if keep:
                out.metadata.update(src.metadata)
                video_out.metadata.update({k: v for k, v in video_in.metadata.items() if k != "rotate"})
            audio_in = [s for s in src.streams.audio if s.index in audio]
            packets = heapq.merge(_video_packets(parts, windows, video_out, plan.time_base),
                                  _audio_packets(src, audio_in, audio), key=lambda item: item[0])
            for _, packet in packets:
                out.mux(packet)
    except av.error.FFmpegError as exc:
        raise CorruptVideoError(f"{source}: cannot join the redacted segments ({exc})", path=str(source)) from None


def _video_packets(parts: list[Path], windows: list[Window], stream: Any, time_base: Fraction) -> Iterator[tuple]:
    """Each segment's packets, in order, given the pts of the frames they hold (no reordering: checked)."""
    import av

    for part, window in zip(parts, windows, strict=True):
        pts = window.pts[window.first - window.warm : window.end - window.warm]
        count, last = 0, None
        with av.open(str(part)) as container:
            for packet in container.demux(container.streams.video[0]):
                if not packet.size:
                    continue
                if count >= len(pts) or (last is not None and packet.pts is not None and packet.pts <= last):
                    raise SegmentMismatchError(f"{part.name}: packets out of order or more than its frames")
                last = packet.pts
                packet.stream = stream
                packet.time_base = time_base
                packet.pts = packet.dts = pts[count]
                count += 1
                yield float(pts[count - 1] * time_base), packet
        if count != len(pts):
            raise SegmentMismatchError(f"{part.name}: {count} frames written, {len(pts)} planned")


def _audio_packets(src: Any, streams: list[Any], copies: dict[int, Any]) -> Iterator[tuple]:
    if not streams:
        return
    for packet in src.demux(*streams):
        if packet.dts is None:
            continue
        key = float(packet.dts * packet.time_base)
        packet.stream = copies[packet.stream.index]
        yield key, packet
