"""Video redaction on short clips made from a real group photo."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from faceledger.errors import EmptyInputError
from faceledger.redact import (
    CorruptVideoError,
    NoVideoStreamError,
    OutputExistsError,
    RedactOptions,
    Redactor,
    VideoSettings,
)

# pytest runs with --import-mode=importlib, which does not put this folder on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from redact_helpers import FlakyDetector, RaisingDetector, decode_audio, decode_frames, make_clip  # noqa: E402


@pytest.fixture(scope="module")
def clip(tmp_path_factory, multiface: Path) -> Path:
    """24 frames, 480x270, with a 440 Hz AAC tone and tags a phone might write."""
    return make_clip(
        tmp_path_factory.mktemp("clip") / "walk.mp4",
        multiface,
        audio=True,
        container_tags={"title": "family", "location": "+48.8582+002.2945/", "comment": "secret"},
        stream_tags={"handler_name": "CameraHandler"},
    )


@pytest.fixture(scope="module")
def redacted(clip: Path, detector, tmp_path_factory) -> tuple[Path, object]:  # noqa: ANN001
    out = tmp_path_factory.mktemp("out") / "walk_redacted.mp4"
    return out, Redactor(detector).redact(clip, out).reports[0]


def test_frames_timestamps_rate_and_size_are_kept(clip: Path, redacted):
    out, report = redacted
    frames_in, pts_in, facts_in = decode_frames(clip)
    frames_out, pts_out, facts_out = decode_frames(out)
    assert report.frames == len(frames_in) == len(frames_out) == 24
    assert pts_out == pts_in
    for key in ("width", "height", "rate", "time_base"):
        assert facts_out[key] == facts_in[key], key
    assert report.obscured == 0 and report.error is None


def test_faces_are_obscured_in_every_frame_and_the_rest_is_kept(clip: Path, redacted, engine):
    out, _ = redacted
    frames_in, _, _ = decode_frames(clip)
    frames_out, _, _ = decode_frames(out)
    for i in (0, 7, 23):  # a frame with a detection pass, others covered by the tracker
        faces = engine.detect(frames_in[i], quality=False)
        assert len(faces) >= 5
        inside = np.zeros(frames_in[i].shape[:2], bool)
        for f in faces:
            x, y, w, h = (int(round(v)) for v in f.box.as_tuple())
            inside[y + h // 4 : y + 3 * h // 4, x + w // 4 : x + 3 * w // 4] = True
        diff = np.abs(frames_out[i].astype(int) - frames_in[i].astype(int)).mean(axis=2)
        # Far from every face the picture is the same, up to encoding noise; the faces changed.
        far = np.ones_like(inside)
        for f in faces:
            x, y, w, h = (int(round(v)) for v in f.box.as_tuple())
            far[max(0, y - h) : y + 2 * h, max(0, x - w) : x + 2 * w] = False
        assert diff[far].mean() < 6
        assert diff[inside].mean() > 3 * diff[far].mean()
        # Strong enough that the detector itself no longer sees a face there.
        assert engine.detect(frames_out[i], quality=False, score_threshold=0.7) == []


def test_audio_is_copied_unchanged(clip: Path, redacted):
    out, _ = redacted
    codec_in, rate_in, samples_in = decode_audio(clip)
    codec_out, rate_out, samples_out = decode_audio(out)
    assert (codec_out, rate_out) == (codec_in, rate_in) == ("aac", 44100)
    assert samples_out.shape == samples_in.shape
    assert np.allclose(samples_out, samples_in, atol=1e-5)
    # The tone is really there (not silence copied to silence).
    assert np.abs(samples_in).max() > 0.3


def test_metadata_is_dropped_by_default_and_kept_on_request(clip: Path, redacted, detector, tmp_path: Path):
    _, _, facts_in = decode_frames(clip)
    assert facts_in["tags"]["location"] == "+48.8582+002.2945/"
    out, _ = redacted
    _, _, facts = decode_frames(out)
    assert not {"title", "location", "comment"} & set(facts["tags"])
    assert facts["stream_tags"].get("handler_name") != "CameraHandler"
    kept = tmp_path / "kept.mp4"
    Redactor(detector, RedactOptions(keep_metadata=True)).redact(clip, kept)
    _, _, facts = decode_frames(kept)
    assert facts["tags"]["location"] == "+48.8582+002.2945/"
    assert facts["tags"]["title"] == "family"


def test_no_audio_drops_the_audio_stream(clip: Path, detector, tmp_path: Path):
    out = tmp_path / "silent.mkv"
    Redactor(detector, RedactOptions(keep_audio=False)).redact(clip, out)
    frames, _, facts = decode_frames(out)
    assert facts["audio"] == 0 and len(frames) == 24


def test_input_is_never_overwritten(clip: Path, redacted, detector):
    digest = hashlib.sha256(clip.read_bytes()).hexdigest()
    out, _ = redacted
    with pytest.raises(OutputExistsError):
        Redactor(detector).redact(clip, out)
    with pytest.raises(OutputExistsError):
        Redactor(detector, RedactOptions(overwrite=True)).redact(clip, clip)
    assert hashlib.sha256(clip.read_bytes()).hexdigest() == digest


def test_a_raising_detector_obscures_every_frame(multiface: Path, tmp_path: Path):
    src = make_clip(tmp_path / "in.mp4", multiface, frames=8)
    report = Redactor(RaisingDetector()).redact(src).reports[0]
    assert report.obscured == report.frames == 8
    assert report.error_code == "detection_failed" and "simulated" in report.error
    frames, _, _ = decode_frames(report.output)
    assert all(f.std() < 2 for f in frames)  # one flat colour, up to encoding noise


def test_only_the_frames_whose_detection_failed_are_obscured(multiface: Path, detector, tmp_path: Path):
    src = make_clip(tmp_path / "in.mp4", multiface, frames=12)
    flaky = FlakyDetector(detector, fail_on={5, 6})
    options = RedactOptions(video=VideoSettings(fine_min_face=0))  # one detector call per frame
    report = Redactor(flaky, options).redact(src).reports[0]
    assert report.obscured == 2
    frames, _, _ = decode_frames(report.output)
    flat = [i for i, f in enumerate(frames) if f.std() < 2]
    assert flat == [5, 6]


def test_display_rotation_is_applied(multiface: Path, detector, tmp_path: Path):
    upright = make_clip(tmp_path / "upright.mp4", multiface, frames=6)
    turned = make_clip(tmp_path / "turned.mp4", multiface, frames=6, rotation=90)
    _, _, facts = decode_frames(turned)
    assert (facts["width"], facts["height"]) == (270, 480)  # stored sideways
    a = Redactor(detector).redact(upright).reports[0]
    b = Redactor(detector).redact(turned).reports[0]
    frames_a, _, _ = decode_frames(a.output)
    frames_b, _, facts_b = decode_frames(b.output)
    assert (facts_b["width"], facts_b["height"]) == (480, 270)
    diff = np.abs(frames_a[3].astype(int) - frames_b[3].astype(int)).mean()
    assert diff < 6
    assert b.faces > 0


def test_zero_length_corrupt_and_audio_only_files_are_refused(clip: Path, detector, tmp_path: Path):
    redactor = Redactor(detector)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(EmptyInputError):
        redactor.redact(empty)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(CorruptVideoError):
        redactor.redact(garbage)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[:3000])
    with pytest.raises(CorruptVideoError):
        redactor.redact(truncated)
    audio_only = tmp_path / "tone.mp4"
    _audio_only(clip, audio_only)
    with pytest.raises(NoVideoStreamError):
        redactor.redact(audio_only)
    leftovers = {p.name for p in tmp_path.iterdir()} - {"empty.mp4", "garbage.mp4", "truncated.mp4", "tone.mp4"}
    assert leftovers == set()


def _audio_only(src: Path, dst: Path) -> None:
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream_from_template(inp.streams.audio[0])
        for packet in inp.demux(inp.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)


def _obscured(src: np.ndarray, out: np.ndarray, box: tuple[float, float, float, float]) -> bool:
    """Whether the centre half of ``box`` was changed well beyond encoding noise."""
    x, y, w, h = (int(round(v)) for v in box)
    a = src[y + h // 4 : y + 3 * h // 4, x + w // 4 : x + 3 * w // 4].astype(int)
    b = out[y + h // 4 : y + 3 * h // 4, x + w // 4 : x + 3 * w // 4].astype(int)
    return a.size > 0 and float(np.abs(a - b).mean()) > 6.0


def test_searching_every_second_frame_covers_every_face_searching_every_frame_covered(
    groups: Path, detector, engine, tmp_path: Path
):
    """A pan over a real group photo (19 faces): the tracker and the camera motion carry the faces
    through the frames that are not searched, so no face obscured before is left visible now."""
    src = make_clip(tmp_path / "in.mp4", groups / "ultralight_10.jpg", frames=20, size=(640, 360))
    outs = {}
    for every in (1, 2):
        options = RedactOptions(video=VideoSettings(detect_every=every))
        outs[every] = Redactor(detector, options).redact(src, tmp_path / f"every{every}.mp4").reports[0].output
    frames_in, _, _ = decode_frames(src)
    every1, _, _ = decode_frames(outs[1])
    every2, _, _ = decode_frames(outs[2])
    covered = {1: 0, 2: 0}
    for i, frame in enumerate(frames_in):
        for face in engine.detect(frame, quality=False):
            box = face.box.as_tuple()
            before, now = _obscured(frame, every1[i], box), _obscured(frame, every2[i], box)
            covered[1] += before
            covered[2] += now
            assert now or not before, f"frame {i}: face at {box} obscured when every frame was searched, not now"
    assert covered[1] >= 15 * len(frames_in)  # the clip has faces to lose


def test_an_encoder_error_leaves_no_output(multiface: Path, detector, tmp_path: Path, monkeypatch):
    """Frames stay YUV to the encoder; if encoding fails mid-video the run stops with the error and
    nothing is written (no output, no partial file)."""
    import av

    from faceledger.redact import pipeline

    src = make_clip(tmp_path / "in.mp4", multiface, frames=12)
    calls = {"n": 0}
    real = pipeline.Writer._frame

    def failing(self, av_module, pixels):  # noqa: ANN001, ANN202
        calls["n"] += 1
        assert pixels.ndim == 2, "even-sized H.264 frames reach the encoder as I420 planes"
        if calls["n"] == 5:
            raise av.error.ExternalError(-542398533, "simulated encoder failure")
        return real(self, av_module, pixels)

    monkeypatch.setattr(pipeline.Writer, "_frame", failing)
    out = tmp_path / "out" / "in_redacted.mp4"
    with pytest.raises(CorruptVideoError, match="cannot decode or encode"):
        Redactor(detector).redact(src, out)
    assert calls["n"] == 5
    assert list(out.parent.iterdir()) == []
