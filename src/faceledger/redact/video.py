"""Redact a video: decode, find and track faces, obscure them at full resolution, encode.

Three threads overlap the work: a reader decodes frames (FFmpeg), the caller's
thread detects and tracks, a writer draws the redaction and encodes and muxes (drawing
there takes it off the detection thread, the busiest; OpenCV releases the GIL). Frames keep their
timestamps (``pts``) and the output its input's resolution, frame rate and time
base; display rotation is applied, so the output is upright. Audio packets are
copied unchanged unless ``keep_audio`` is off; other streams (subtitles, data
tracks such as GPS) are dropped; container and stream tags are dropped unless
``keep_metadata``.

Fail closed: a frame on which detection (or drawing) raises is written fully
obscured and counted in the report; a video that cannot be decoded or encoded
raises a typed error and leaves no output (it is written to a hidden temporary
file that is renamed only at the end).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from faceledger._cv import DEFAULT_MAX_PIXELS, cv2
from faceledger.core.redaction import draw_boxes, obscure_frame, redact_faces
from faceledger.media.video import (
    CorruptVideoError,
    VideoInfo,
    add_audio_copies,
    add_video_output,
    open_video,
    output_format,
)
from faceledger.models.base import Detector
from faceledger.redact.detection import FrameFinder
from faceledger.redact.errors import OutputExistsError
from faceledger.redact.motion import CameraMotion
from faceledger.redact.options import RedactOptions
from faceledger.redact.pipeline import DecodedFrame, Reader, Writer
from faceledger.redact.planes import Picture, draw_boxes_i420, fill_i420, redact_i420
from faceledger.redact.summary import FileReport, NullProgress, ProgressSink
from faceledger.redact.tracker import FaceTracker, TrackedBox

if TYPE_CHECKING:
    import av

__all__ = ["SegmentMismatchError", "Window", "redact_video"]

_MAX_EARLY_PACKETS = 20_000
#: A YUV frame is redacted on its planes (nothing else changes). Blur (the default) is drawn there
#: a group of boxes at a time (:mod:`faceledger.redact.planes`): 5 ms per 720p crowd frame of about
#: 100 boxes here, against 12 through one RGB copy (loaded machine). Pixelation is drawn box by box,
#: so above this many boxes it goes through one RGB copy (pixels outside the masks then within 4 levels).
_PLANES_UP_TO = 12
_COLORS = {"detected": (0, 230, 0), "interpolated": (255, 200, 0), "held": (255, 140, 0), "lead": (255, 140, 0)}


@dataclass(frozen=True, slots=True)
class Window:
    """The frames one worker of a split run handles (0-based frame numbers of the whole video).

    Frames ``warm`` to ``tail`` are decoded, searched and tracked (the first ones warm up the
    tracker and the camera motion, the last ones are the tracker's look-ahead); only frames
    ``first`` to ``end`` are written. ``pts`` holds the presentation timestamps of frames
    ``warm`` to ``tail`` (the decoder must give exactly these), ``shape`` the (height, width)
    of the video's first frame, to which every frame is brought as in a whole run.
    """

    warm: int
    first: int
    end: int
    tail: int
    pts: tuple[int, ...]
    shape: tuple[int, int]


class SegmentMismatchError(CorruptVideoError):
    """The frames decoded after seeking are not the ones the split planned (a bad index)."""


@dataclass(slots=True)
class _Frame:
    """A decoded frame waiting for the tracker's decision."""

    index: int
    pts: int | None
    picture: Picture
    error: str | None = None


def redact_video(
    source: Path,
    output: Path,
    detector: Detector,
    options: RedactOptions | None = None,
    progress: ProgressSink | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    window: Window | None = None,
) -> FileReport:
    """Redact the video at ``source`` into ``output`` (container and codec from its extension).

    ``window``: only that part of the video, without audio (a worker of
    :mod:`faceledger.redact.split`; ``output`` is then one segment).
    """
    import av.error

    options = options or RedactOptions()
    start = time.perf_counter()
    muxer, encoder = output_format(output)
    if output.exists() and not options.overwrite:
        raise OutputExistsError(f"{output}: already exists (use --overwrite to replace it)", path=str(output))
    container, info = open_video(source, max_pixels)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.part{output.suffix}")
    try:
        with container:
            run = _VideoRun(container, info, detector, options, progress or NullProgress(), source.name)
            run.window = window
            run.execute(tmp, muxer, encoder)
        if run.frames == 0:
            raise CorruptVideoError(f"{source}: no frame could be decoded", path=str(source))
        tmp.replace(output)
    except av.error.FFmpegError as exc:
        raise CorruptVideoError(f"{source}: cannot decode or encode the video ({exc})", path=str(source)) from None
    finally:
        tmp.unlink(missing_ok=True)
    return FileReport(
        source=source,
        output=output,
        kind="video",
        frames=run.frames,
        faces=run.faces,
        obscured=run.obscured,
        error_code="detection_failed" if run.obscured else None,
        error=run.first_error,
        seconds=time.perf_counter() - start,
    )


class _VideoRun:
    """One video's redaction: owns the tracker, the frame buffer and the counts."""

    def __init__(
        self,
        container: av.container.InputContainer,
        info: VideoInfo,
        detector: Detector,
        options: RedactOptions,
        progress: ProgressSink,
        label: str,
    ) -> None:
        self.container = container
        self.info = info
        self.detector = detector
        self.options = options
        self.progress = progress
        self.label = label
        self.tracker = FaceTracker(options.video.tracker)
        self.finder: FrameFinder | None = None
        self.camera: CameraMotion | None = None
        self.shape: tuple[int, ...] = ()
        self.pending: deque[_Frame] = deque()
        self.frames = self.faces = self.obscured = 0
        self.taken = 0  # frames decoded and handed to the tracker
        self.first_error: str | None = None
        self.window: Window | None = None

    def execute(self, tmp: Path, muxer: str, encoder: str) -> None:
        import av

        video_in = self.container.streams.video[0]
        audio_in = list(self.container.streams.audio) if self.options.keep_audio and not self.window else []
        if self.window is not None:
            self.shape = self.window.shape
            if self.window.warm > 0:
                self.container.seek(self.window.pts[0], stream=video_in, backward=True, any_frame=False)
        keep_tags = self.options.keep_metadata and muxer in ("mp4", "mov")
        out_options = {"movflags": "use_metadata_tags"} if keep_tags else {}
        self.progress.begin(self.label, self.label, self.info.frames)
        try:
            with av.open(str(tmp), mode="w", format=muxer, options=out_options) as out:
                reader = Reader(self.container, video_in, audio_in)
                writer: Writer | None = None
                early: list[object] = []  # audio packets before the first frame
                try:
                    for item in self._items(reader):
                        if writer is None:
                            if not isinstance(item, DecodedFrame):
                                self._hold(early, item)
                                continue
                            writer = self._open_output(out, video_in, item.picture.shape, encoder)
                            writer.start()
                            for packet in early:
                                writer.put(packet)
                            early.clear()
                        self._take(item, writer)
                    if writer is not None:
                        self._drain(self.tracker.flush(), writer)
                        writer.finish()
                finally:
                    reader.stop()
                    if writer is not None:
                        writer.stop()
        finally:
            self.progress.end(self.label)

    def _items(self, reader: Reader) -> Iterator[object]:
        """The reader's items; in a window, only its frames (checked against the planned pts)."""
        window = self.window
        if window is None:
            yield from reader
            return
        wanted = len(window.pts)
        for item in reader:
            if not isinstance(item, DecodedFrame) or (item.pts is not None and item.pts < window.pts[0]):
                continue  # frames between the keyframe sought and the window
            if item.pts != window.pts[self.taken]:
                raise SegmentMismatchError(f"{self.label}: frame {window.warm + self.taken} decoded with pts "
                                           f"{item.pts}, {window.pts[self.taken]} planned")
            yield item
            if self.taken == wanted:
                return
        if self.taken < wanted:
            raise SegmentMismatchError(f"{self.label}: {self.taken} of {wanted} planned frames decoded")

    def _hold(self, early: list[object], packet: object) -> None:
        """Keep an audio packet that arrived before any video frame (the output is not open yet)."""
        if len(early) >= _MAX_EARLY_PACKETS:
            raise CorruptVideoError(f"{self.label}: no video frame decoded after {len(early)} audio packets")
        early.append(packet)

    def _open_output(
        self, out: av.container.OutputContainer, video_in: av.video.stream.VideoStream, shape: tuple, encoder: str
    ) -> Writer:
        height, width = (self.shape or shape)[:2]
        self.shape = (height, width)
        settings = self.options.video
        video_out = add_video_output(out, video_in, (width, height), encoder, settings.crf, settings.preset)
        keep = self.options.keep_metadata
        audio_map = add_audio_copies(out, self.container, keep) if self.options.keep_audio else {}
        if keep:
            out.metadata.update(self.container.metadata)
            video_out.metadata.update({k: v for k, v in video_in.metadata.items() if k != "rotate"})
        self.finder = FrameFinder(self.detector, self.options, width, height)
        self.camera = CameraMotion(width, height)
        return Writer(out, video_out, audio_map)

    def _take(self, item: object, writer: Writer) -> None:
        """Handle one item from the reader: an audio packet or a decoded frame."""
        if not isinstance(item, DecodedFrame):
            writer.put(item)  # an audio packet, muxed unchanged by the writer
            return
        picture = item.picture
        if picture.shape != self.shape:  # a stream whose frame size changes: keep the first size
            picture = _resized(picture, self.shape)
        frame = _Frame((self.window.warm if self.window else 0) + self.taken, item.pts, picture)
        self.taken += 1
        boxes: np.ndarray | None = np.zeros((0, 4))
        motion = None
        try:
            motion = self.camera.step(self.camera.grey(picture))  # type: ignore[union-attr]
            boxes = self.finder.find(picture, frame.index)  # type: ignore[union-attr]
        except Exception as exc:  # noqa: BLE001 - fail closed: this frame will be fully obscured
            frame.error = f"frame {frame.index}: face detection failed ({type(exc).__name__}: {exc})"
        self.pending.append(frame)
        self._drain(self.tracker.push(boxes, motion), writer)

    def _drain(self, ready: list[tuple[int, list[TrackedBox]]], writer: Writer) -> None:
        base = self.window.warm if self.window else 0
        for index, tracked in ready:
            frame = self.pending.popleft()
            if frame.index != base + index:  # the tracker and the buffer move in lockstep
                raise RuntimeError(f"internal error: frame {frame.index} pending, tracker gave {base + index}")
            if self.window is not None and not (self.window.first <= frame.index < self.window.end):
                continue  # warm-up or look-ahead: another segment writes it
            writer.put(partial(self._finish, frame, tracked))  # drawn on the writer's thread
            self.frames += 1
            self.progress.advance(self.label)

    def _finish(self, frame: _Frame, tracked: list[TrackedBox]) -> tuple[np.ndarray, int | None]:
        """The frame's redacted pixels (I420 or RGB; or a fully obscured frame) and its pts."""
        yuv = frame.picture.yuv
        if frame.error is None:
            try:
                boxes = np.array([t.box for t in tracked], dtype=np.float64).reshape(-1, 4)
                colors = [_COLORS[t.kind] for t in tracked]
                crowd = self.options.style.method == "pixelate" and len(boxes) > _PLANES_UP_TO
                if yuv is not None and crowd:  # one RGB round trip is cheaper
                    rgb = redact_faces(frame.picture.rgb(), boxes, self.options.style, inplace=True)
                    pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
                    if self.options.draw_boxes:
                        draw_boxes_i420(pixels, boxes, colors)
                elif yuv is not None:
                    pixels = redact_i420(yuv, boxes, self.options.style)
                    if self.options.draw_boxes:
                        draw_boxes_i420(pixels, boxes, colors)
                else:
                    pixels = redact_faces(frame.picture.rgb(), boxes, self.options.style, inplace=True)
                    if self.options.draw_boxes:
                        draw_boxes(pixels, boxes, colors, inplace=True)
                self.faces += len(tracked)
                return pixels, frame.pts
            except Exception as exc:  # noqa: BLE001 - fail closed
                frame.error = f"frame {frame.index}: redaction failed ({type(exc).__name__}: {exc})"
        self.obscured += 1
        self.first_error = self.first_error or frame.error
        color = self.options.style.fill_color
        if yuv is not None:
            return fill_i420(yuv, color), frame.pts
        return obscure_frame(frame.picture.rgb(), color), frame.pts


def _resized(picture: Picture, shape: tuple[int, ...]) -> Picture:
    """``picture`` scaled to ``shape`` (height, width), in the same representation."""
    height, width = shape[:2]
    rgb = cv2.resize(picture.rgb(), (width, height), interpolation=cv2.INTER_AREA)
    if picture.yuv is None:
        return Picture(rgb=rgb)
    return Picture(yuv=cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420))
