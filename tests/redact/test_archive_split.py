"""Archive runs split a long video across their workers: one process's frames, one manifest line, fail closed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from faceledger.redact import ArchiveJob, RedactOptions, VideoSettings, redact_archive
from faceledger.redact import split as split_module
from faceledger.redact.manifest import MANIFEST_NAME
from faceledger.redact.video import redact_video

sys.path.insert(0, str(Path(__file__).resolve().parent))
from archive_helpers import (  # noqa: E402
    PAUSE_DIR_VARIABLE,
    PID_DIR_VARIABLE,
    crash_after_detector,
    pausing_detector,
    pid_recording_detector,
)
from redact_helpers import decode_frames, make_clip  # noqa: E402

#: Lossless x264 (crf 0), so the archive's frames can be compared with one process's exactly.
LOSSLESS = RedactOptions(video=VideoSettings(crf=0))


@pytest.fixture(scope="module")
def long_archive(tmp_path_factory, multiface: Path) -> Path:
    """An archive of one 3 s clip (72 frames) panning over six faces, with a tone."""
    root = tmp_path_factory.mktemp("long-archive") / "in"
    (root / "clips").mkdir(parents=True)
    make_clip(root / "clips" / "pan.mp4", multiface, frames=72, audio=True)
    return root


@pytest.fixture()
def short_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split clips from 2 s (the archive's driver decides)."""
    monkeypatch.setattr(split_module, "MIN_SPLIT_SECONDS", 2.0)


def _records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / MANIFEST_NAME).read_text().splitlines()[1:]]


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def _keyframes(path: Path) -> list[int]:
    import av

    with av.open(str(path)) as container:
        return [i for i, f in enumerate(container.decode(video=0)) if f.key_frame]


def test_one_long_video_uses_every_worker_and_writes_one_process_frames(
    long_archive: Path, detector, tmp_path: Path, short_split, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    import hashlib

    monkeypatch.setenv(PID_DIR_VARIABLE, str(tmp_path / "pids"))
    (tmp_path / "pids").mkdir()
    out = tmp_path / "out"
    job = ArchiveJob(options=LOSSLESS, workers=2, detector_factory=pid_recording_detector)
    summary = redact_archive(long_archive, out, job)
    assert summary.files == 1 and not summary.failed and summary.frames == 72
    assert len(list((tmp_path / "pids").iterdir())) == 2  # both workers searched frames of the one video
    assert _keyframes(out / "clips" / "pan.mp4") == [0, 36]  # two segments, each its own encode
    whole = redact_video(long_archive / "clips" / "pan.mp4", tmp_path / "whole.mp4", detector, LOSSLESS)
    one, one_pts, _ = decode_frames(tmp_path / "whole.mp4")
    two, two_pts, _ = decode_frames(out / "clips" / "pan.mp4")
    assert two_pts == one_pts
    differ = [i for i, (a, b) in enumerate(zip(one, two, strict=True)) if not np.array_equal(a, b)]
    assert differ == [], f"frames redacted differently when split: {differ}"
    assert summary.reports[0].faces == whole.faces >= 72 * 4
    [record] = _records(out)  # one input, one output, both hashes
    assert record["source"] == record["output"] == "clips/pan.mp4" and record["frames"] == 72
    assert record["output_sha256"] == hashlib.sha256((out / "clips" / "pan.mp4").read_bytes()).hexdigest()
    assert record["source_sha256"] == hashlib.sha256((long_archive / "clips" / "pan.mp4").read_bytes()).hexdigest()
    assert not list(out.rglob(".*.part*"))


def test_a_video_in_the_tail_is_split_and_one_before_it_is_not(
    long_archive: Path, multiface: Path, tmp_path: Path, short_split  # noqa: ANN001
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "b.mp4").write_bytes((long_archive / "clips" / "pan.mp4").read_bytes())
    make_clip(src / "a.mp4", multiface, frames=60)  # smaller: handed out first, whole
    summary = redact_archive(src, tmp_path / "out", ArchiveJob(workers=2))
    assert not summary.failed and summary.frames == 132
    assert _keyframes(tmp_path / "out" / "a.mp4") == [0]
    assert _keyframes(tmp_path / "out" / "b.mp4") == [0, 36]
    unsplit = redact_archive(src, tmp_path / "whole", ArchiveJob(workers=2, split_videos=False))
    assert unsplit.frames == 132 and _keyframes(tmp_path / "whole" / "b.mp4") == [0]


def test_an_interrupted_split_resumes_to_identical_outputs(long_archive: Path, tmp_path: Path, short_split) -> None:
    reference = tmp_path / "reference"
    redact_archive(long_archive, reference, ArchiveJob(workers=2))
    out, paused = tmp_path / "out", tmp_path / "paused"
    paused.mkdir()
    # Both workers stop part way through their segments (archive_helpers.PauseAfter) and stay there until
    # killed: the kill lands mid-segment however fast the machine is.
    script = ("import sys\nfrom pathlib import Path\nfrom faceledger.redact import split\n"
              "split.MIN_SPLIT_SECONDS = 2.0\nfrom faceledger.redact import ArchiveJob, redact_archive\n"
              "from archive_helpers import pausing_detector\n"
              "redact_archive(Path(sys.argv[1]), Path(sys.argv[2]), "
              "ArchiveJob(workers=2, detector_factory=pausing_detector))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), PAUSE_DIR_VARIABLE: str(paused)}
    log = tmp_path / "run.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-c", script, str(long_archive), str(out)], env=env,
                                start_new_session=True, stdout=sink, stderr=sink)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and len(list(paused.iterdir())) < 2:
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.fail(f"the run ended (exit {proc.returncode}) before both workers paused: "
                    f"{log.read_text(errors='replace')[-2000:]}")
    assert len(list(paused.iterdir())) == 2, "the workers did not reach their pause within 240 s"
    assert list(out.rglob("..pan.part[0-9].part.mp4"))  # a segment is half written (the other may be warming up)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, mid-segment
    proc.wait()
    assert not (out / "clips" / "pan.mp4").exists() and _records(out) == []
    resume = ArchiveJob(workers=2, detector_factory=pausing_detector)  # the same settings; no pause here
    summary = redact_archive(long_archive, out, resume)
    assert summary.resumed == 0 and summary.files == 1 and not summary.failed
    assert _outputs(out) == _outputs(reference)
    assert not list(out.rglob(".*.part*"))
    again = redact_archive(long_archive, out, resume)  # done: skipped
    assert again.resumed == 1


def test_a_dead_worker_fails_the_whole_video_closed(long_archive: Path, tmp_path: Path, short_split) -> None:
    out = tmp_path / "out"
    summary = redact_archive(long_archive, out, ArchiveJob(workers=2, detector_factory=crash_after_detector))
    assert [(r.source.name, r.error_code) for r in summary.failed] == [("pan.mp4", "worker_crashed")]
    assert "died" in summary.failed[0].error
    assert not (out / "clips" / "pan.mp4").exists()  # no partial output under the final name
    assert not [p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST_NAME]  # nor any segment
    assert _records(out) == []


class _Pool:
    """A pool that runs nothing: the splitter's bookkeeping in isolation."""

    def __init__(self) -> None:
        self.workers, self.submitted, self.queued = 2, [], []

    def submit(self, task) -> None:  # noqa: ANN001
        self.submitted.append(task)

    def drop(self, source: Path) -> int:
        dropped = [t for t in self.queued if t.source == source]
        self.queued = [t for t in self.queued if t.source != source]
        return len(dropped)


def _task(long_archive: Path, tmp_path: Path):  # noqa: ANN202
    from faceledger.models.files import sha256_file
    from faceledger.redact.archive import FileTask

    source = long_archive / "clips" / "pan.mp4"
    return FileTask(source, tmp_path / "out" / "pan.mp4", "video", sha256_file(source))


def test_a_segment_that_cannot_be_located_redoes_the_video_whole(long_archive: Path, tmp_path: Path,
                                                                  short_split) -> None:
    from faceledger.redact.archive import SegmentTask, TaskResult
    from faceledger.redact.archive_split import Splitter
    from faceledger.redact.summary import FileReport
    from faceledger.redact.video import SegmentMismatchError

    pool, task = _Pool(), _task(long_archive, tmp_path)
    splitter = Splitter(ArchiveJob(workers=2), pool)
    units = splitter.units([task])
    assert [type(u) for u in units] == [SegmentTask, SegmentTask] and [u.window.first for u in units] == [0, 36]
    done = TaskResult(FileReport(task.source, units[0].part, "video", frames=36), None)
    assert splitter.settle(units[0], done) is None  # the other segment is still out
    assert splitter.settle(units[1], SegmentMismatchError("bad index")) is None
    assert pool.submitted == [task]  # redone whole by one worker, nothing reported failed
    assert splitter.settle(task, done) == (task, done)


def test_a_failed_segment_drops_the_queued_ones_and_fails_the_video(long_archive: Path, tmp_path: Path,
                                                                     short_split, monkeypatch) -> None:
    from faceledger.redact import archive_split
    from faceledger.redact.archive import WorkerCrashedError
    from faceledger.redact.archive_split import Splitter

    monkeypatch.setattr(archive_split, "plan_split", lambda *a: _three_segments(*a))
    pool, task = _Pool(), _task(long_archive, tmp_path)
    splitter = Splitter(ArchiveJob(workers=2), pool)
    units = splitter.units([task])
    assert len(units) == 3
    pool.queued = units[2:]  # the third segment waits for a free worker
    crash = WorkerCrashedError("a worker process died")
    assert splitter.settle(units[0], crash) is None  # the second segment is still running
    assert pool.queued == []
    settled = splitter.settle(units[1], crash)
    assert settled == (task, crash) and not task.output.exists()


def _three_segments(source, output, options, workers, max_pixels):  # noqa: ANN001, ANN202
    from faceledger.redact.split import _plan, plan_windows

    plan = _plan(source, output, options, workers, max_pixels)
    return plan, plan_windows(len(plan.pts), plan.rate, 3, options, plan)
