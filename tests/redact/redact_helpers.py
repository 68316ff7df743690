"""Helpers for redaction tests: fake detectors, short generated clips, decoding.

Clips are made from the real group photos (a slow pan, a few dozen frames, small
sizes) so the video tests stay fast; nothing is copied into the repository.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from faceledger.models.base import Detections, DetectOptions

CLIP_SIZE = (480, 270)
CLIP_FPS = 24


class RaisingDetector:
    """A detector that always fails, to check that redaction fails closed."""

    name = "raising"

    def detect(self, rgb: np.ndarray, options: DetectOptions) -> Detections:
        raise RuntimeError("simulated detector failure")


class FlakyDetector:
    """Wraps a real detector and raises on the calls whose 0-based numbers are in ``fail_on``."""

    name = "flaky"

    def __init__(self, inner, fail_on: set[int]) -> None:  # noqa: ANN001 - any Detector
        self.inner, self.fail_on, self.calls = inner, fail_on, 0

    def detect(self, rgb: np.ndarray, options: DetectOptions) -> Detections:
        call, self.calls = self.calls, self.calls + 1
        if call in self.fail_on:
            raise RuntimeError(f"simulated failure on call {call}")
        return self.inner.detect(rgb, options)


def make_clip(
    path: Path,
    photo: Path,
    frames: int = 24,
    *,
    size: tuple[int, int] = CLIP_SIZE,
    audio: bool = False,
    container_tags: dict[str, str] | None = None,
    stream_tags: dict[str, str] | None = None,
    rotation: int = 0,
) -> Path:
    """Write a clip panning slowly over ``photo``: H.264, ``CLIP_FPS`` fps, optional 440 Hz AAC tone.

    ``rotation`` stores a display rotation (degrees counterclockwise) in the stream,
    as phones do; the coded frames are then the photo turned the other way.
    """
    import av

    from faceledger._cv import cv2
    from faceledger.media.image import load_image

    rgb = load_image(photo).rgb
    width, height = size
    with av.open(str(path), "w") as out:
        out.metadata.update(container_tags or {})
        video = out.add_stream("libx264", rate=CLIP_FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": "18", "preset": "ultrafast"}
        video.metadata.update(stream_tags or {})
        if rotation:
            video.set_display_rotation(rotation)
            video.width, video.height = (height, width) if rotation % 180 else (width, height)
        tone = out.add_stream("aac", rate=44100) if audio else None
        if tone is not None:
            tone.layout = "mono"
        scale = max(width / rgb.shape[1], height / rgb.shape[0]) * 1.1
        for i in range(frames):
            m = np.array([[scale, 0, -i * 0.5], [0, scale, -2.0]], np.float32)
            frame = cv2.warpAffine(rgb, m, (width, height), borderMode=cv2.BORDER_REFLECT)
            if rotation:
                frame = np.ascontiguousarray(np.rot90(frame, k=-(rotation // 90)))
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if tone is not None:
            _write_tone(out, tone, frames / CLIP_FPS)
    return path


def _write_tone(out, stream, seconds: float) -> None:  # noqa: ANN001 - PyAV objects
    import av

    rate = 44100
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.4 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    for start in range(0, len(samples), 1024):
        chunk = samples[start : start + 1024]
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def decode_audio(path: Path) -> tuple[str, int, np.ndarray]:
    """(codec name, sample rate, all samples of the first audio stream as float32)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [f.to_ndarray().reshape(-1) for f in container.decode(stream)]
        return stream.codec_context.name, stream.codec_context.sample_rate, np.concatenate(chunks)


def decode_frames(path: Path) -> tuple[list[np.ndarray], list[int | None], dict]:
    """RGB frames, their pts, and facts about the first video stream."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        facts = {
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "rate": stream.average_rate,
            "time_base": stream.time_base,
            "tags": dict(container.metadata),
            "stream_tags": dict(stream.metadata),
            "audio": len(container.streams.audio),
        }
        frames, pts = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            pts.append(frame.pts)
    return frames, pts, facts
