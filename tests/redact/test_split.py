"""One video split in time across worker processes: the same redaction as one process, joined exactly."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from faceledger.redact import RedactOptions, VideoSettings, WorkerCrashedError
from faceledger.redact import split as split_module
from faceledger.redact.archive import WorkerSetupError
from faceledger.redact.split import plan_windows, redact_video_split
from faceledger.redact.video import redact_video

sys.path.insert(0, str(Path(__file__).resolve().parent))
from archive_helpers import crash_after_detector, default_detector, unloadable_detector  # noqa: E402
from redact_helpers import CLIP_FPS, decode_audio, decode_frames, make_clip  # noqa: E402

#: Lossless x264 (crf 0), so a split run's frames can be compared with one process's exactly.
LOSSLESS = RedactOptions(overwrite=True, video=VideoSettings(crf=0, workers=2))


@pytest.fixture(scope="module")
def clip(tmp_path_factory, multiface: Path) -> Path:
    """3 s (72 frames) panning over six faces, with a tone: two segments of 1.5 s, 1 s of warm-up."""
    return make_clip(tmp_path_factory.mktemp("split") / "pan.mp4", multiface, frames=72, audio=True)


@pytest.fixture()
def short_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split clips from 2 s (the driver decides; workers only redact the windows they are given)."""
    monkeypatch.setattr(split_module, "MIN_SPLIT_SECONDS", 2.0)


def test_windows_cover_every_frame_once_with_warm_up_and_look_ahead() -> None:
    plan = split_module._Plan(list(range(0, 1000 * 512, 512)), Fraction(1, 15360), Fraction(30), (720, 1280))
    windows = plan_windows(1000, Fraction(30), 3, RedactOptions(), plan)
    assert [(w.first, w.end) for w in windows] == [(0, 333), (333, 667), (667, 1000)]
    assert [w.warm for w in windows] == [0, 303, 637] and [w.tail for w in windows] == [340, 674, 1000]
    assert all(w.pts == tuple(plan.pts[w.warm : w.tail]) for w in windows)
    assert len(plan_windows(30_000, Fraction(30), 2, RedactOptions(), plan)) == 4  # no segment over 9000 frames


def test_split_run_writes_what_one_process_writes(clip: Path, detector, tmp_path: Path, short_split) -> None:  # noqa: ANN001
    whole = redact_video(clip, tmp_path / "whole.mp4", detector, LOSSLESS)
    split = redact_video_split(clip, tmp_path / "split.mp4", detector, default_detector, LOSSLESS)
    assert (split.frames, split.faces, split.obscured) == (whole.frames, whole.faces, 0) == (72, whole.faces, 0)
    assert whole.faces >= 72 * 4  # the clip's faces were found and redacted
    src_frames, src_pts, _ = decode_frames(clip)
    one, one_pts, _ = decode_frames(tmp_path / "whole.mp4")
    two, two_pts, facts = decode_frames(tmp_path / "split.mp4")
    assert two_pts == one_pts == src_pts and facts["time_base"] == Fraction(1, 12288)
    differ = [i for i, (a, b) in enumerate(zip(one, two, strict=True)) if not np.array_equal(a, b)]
    assert differ == [], f"frames redacted differently when split: {differ}"
    assert all(not np.array_equal(a, b) for a, b in zip(src_frames, two, strict=True))  # every frame redacted
    # Audio is copied from the source unchanged, as in one process.
    assert np.array_equal(decode_audio(tmp_path / "split.mp4")[2], decode_audio(clip)[2])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split.mp4", "whole.mp4"]  # no segment left behind


def test_a_worker_that_dies_leaves_no_output(clip: Path, detector, tmp_path: Path, short_split) -> None:  # noqa: ANN001
    out = tmp_path / "out.mp4"
    with pytest.raises(WorkerCrashedError, match="worker process died"):
        redact_video_split(clip, out, detector, crash_after_detector, LOSSLESS)
    assert list(tmp_path.iterdir()) == []  # no output, no segment


def test_a_worker_without_its_detector_leaves_no_output(clip: Path, detector, tmp_path: Path, short_split) -> None:  # noqa: ANN001
    with pytest.raises(WorkerSetupError, match="could not load its detector"):
        redact_video_split(clip, tmp_path / "out.mp4", detector, unloadable_detector, LOSSLESS)
    assert list(tmp_path.iterdir()) == []


def test_short_videos_and_other_presets_run_in_one_process(clip: Path, detector, tmp_path: Path) -> None:  # noqa: ANN001
    # A 3 s clip is under MIN_SPLIT_SECONDS: the workers (which would die) are never started.
    report = redact_video_split(clip, tmp_path / "a.mp4", detector, crash_after_detector, LOSSLESS)
    assert report.frames == 72 and report.obscured == 0
    assert 72 / CLIP_FPS < split_module.MIN_SPLIT_SECONDS


def test_presets_with_b_frames_run_in_one_process(clip: Path, detector, tmp_path: Path, short_split) -> None:  # noqa: ANN001
    options = RedactOptions(video=VideoSettings(preset="superfast", workers=2))
    report = redact_video_split(clip, tmp_path / "b.mp4", detector, crash_after_detector, options)
    assert report.frames == 72 and report.obscured == 0


def test_redactor_splits_a_long_video_across_workers(clip: Path, tmp_path: Path, short_split) -> None:
    import av

    from faceledger.redact import Redactor

    options = RedactOptions(video=VideoSettings(workers=2))
    summary = Redactor(options=options).redact(clip, tmp_path / "r.mp4")
    assert summary.frames == 72 and summary.obscured == 0
    with av.open(str(tmp_path / "r.mp4")) as container:
        keys = [i for i, f in enumerate(container.decode(video=0)) if f.key_frame]
    assert keys == [0, 36]  # each segment is its own encode, starting with a keyframe
