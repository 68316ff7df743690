"""Video input and output with PyAV (FFmpeg bundled in the ``av`` wheel).

Opening refuses clearly (typed errors) what cannot be used: a missing or empty
file, data FFmpeg cannot read, a file without a video stream, frames over the
pixel cap. Output streams are H.264 (VP9 for ``.webm``) in a container chosen by
the output's extension, at the input's resolution, frame rate and time base, so
the input's timestamps can be kept frame by frame. Audio streams are copied
packet by packet (no re-encoding). No container or stream metadata is written
unless asked (FFmpeg's own ``encoder`` tag aside).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from faceledger._cv import DEFAULT_MAX_PIXELS
from faceledger.errors import (
    CorruptImageError,
    EmptyInputError,
    ImageTooLargeError,
    InputError,
    UnsupportedFormatError,
)

__all__ = [
    "OUTPUT_FORMATS",
    "CorruptVideoError",
    "NoVideoStreamError",
    "VIDEO_SUFFIXES",
    "VideoInfo",
    "add_audio_copies",
    "add_video_output",
    "open_video",
    "output_format",
]
if TYPE_CHECKING:  # av is imported where it is used, so importing this module stays cheap
    import av

#: File name endings treated as video when walking a folder.
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mts", ".m2ts", ".ts", ".3gp", ".mpg", ".mpeg", ".wmv", ".flv"}
)

#: Output extension -> (FFmpeg muxer, video encoder).
OUTPUT_FORMATS: dict[str, tuple[str, str]] = {
    ".mp4": ("mp4", "libx264"),
    ".m4v": ("mp4", "libx264"),
    ".mov": ("mov", "libx264"),
    ".mkv": ("matroska", "libx264"),
    ".webm": ("webm", "libvpx-vp9"),
    ".avi": ("avi", "libx264"),
}


class CorruptVideoError(CorruptImageError):
    """A video FFmpeg cannot read: corrupt, truncated, or not a video at all."""

    code = "corrupt_video"


class NoVideoStreamError(UnsupportedFormatError):
    """A media file without a video stream (audio only, subtitles, ...)."""

    code = "no_video_stream"


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What the first video stream says about itself.

    ``width`` x ``height`` are the coded frame size in pixels (before any display
    rotation); ``rate`` frames per second (``None`` if unknown); ``frames`` the
    frame count from the header or estimated from the duration (``None`` if
    neither is known); ``duration`` in seconds.
    """

    width: int
    height: int
    rate: Fraction | None
    frames: int | None
    duration: float | None
    codec: str
    audio_streams: int


def open_video(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[av.container.InputContainer, VideoInfo]:
    """Open ``path`` for decoding; raise a typed :class:`InputError` if it is not a usable video."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"{path}: no such file", path=str(path)) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})", path=str(path)) from None
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a video", path=str(path))
    if size == 0:
        raise EmptyInputError(f"{path}: empty file (0 bytes)", path=str(path))
    import av
    import av.error

    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise CorruptVideoError(f"{path}: not a video FFmpeg can read, or corrupt", path=str(path)) from None
    except av.error.FFmpegError as exc:
        raise CorruptVideoError(f"{path}: cannot open video ({exc.strerror})", path=str(path)) from None
    try:
        info = _describe(container, path, max_pixels)
    except BaseException:
        container.close()
        raise
    return container, info


def _describe(container: av.container.InputContainer, path: Path, max_pixels: int) -> VideoInfo:
    if not container.streams.video:
        raise NoVideoStreamError(f"{path}: has no video stream", path=str(path))
    stream = container.streams.video[0]
    ctx = stream.codec_context
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    if width <= 0 or height <= 0:
        raise CorruptVideoError(f"{path}: video stream has no frame size", path=str(path))
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{path}: frames are {width}x{height}, over the {max_pixels:,}-pixel limit",
            width=width,
            height=height,
            limit=max_pixels,
        )
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000
    frames = int(stream.frames) if stream.frames else None
    if frames is None and duration and rate:
        frames = max(1, round(duration * float(rate)))
    return VideoInfo(
        width=width,
        height=height,
        rate=Fraction(rate) if rate else None,
        frames=frames,
        duration=duration,
        codec=ctx.name,
        audio_streams=len(container.streams.audio),
    )


def output_format(path: Path) -> tuple[str, str]:
    """The (muxer, video encoder) for an output path, from its extension."""
    try:
        return OUTPUT_FORMATS[path.suffix.lower()]
    except KeyError:
        known = ", ".join(sorted(OUTPUT_FORMATS))
        raise UnsupportedFormatError(f"{path}: video output must end in one of {known}") from None


def add_video_output(
    out: av.container.OutputContainer,
    source: av.video.stream.VideoStream,
    size: tuple[int, int],
    encoder: str,
    crf: int,
    preset: str,
) -> av.video.stream.VideoStream:
    """Add the encoded video stream: ``size`` (width, height), the source's rate and time base."""
    width, height = size
    rate = source.average_rate or source.guessed_rate or Fraction(30, 1)
    stream = out.add_stream(encoder, rate=rate)
    stream.width, stream.height = width, height
    # 4:2:0 needs even sizes; odd-sized video keeps full chroma instead.
    stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    if source.time_base is not None:
        # Same time base as the input, so every frame keeps its exact pts.
        stream.time_base = source.time_base
        stream.codec_context.time_base = source.time_base
    if encoder == "libx264":
        stream.options = {"crf": str(crf), "preset": preset}
    elif encoder == "libvpx-vp9":
        stream.options = {"crf": str(crf + 12), "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
    stream.codec_context.thread_type = "AUTO"
    return stream


def add_audio_copies(
    out: av.container.OutputContainer, source: av.container.InputContainer, keep_metadata: bool
) -> dict[int, av.stream.Stream]:
    """One output stream per input audio stream, copying codec parameters (not re-encoding).

    Returns a map from input stream index to output stream. Raises
    :class:`UnsupportedFormatError` when the container cannot carry the codec.
    """
    import av.error

    copies: dict[int, av.stream.Stream] = {}
    for stream in source.streams.audio:
        try:
            copy = out.add_stream_from_template(stream)
        except (ValueError, av.error.FFmpegError) as exc:
            raise UnsupportedFormatError(
                f"audio codec '{stream.codec_context.name}' cannot be copied into this container "
                f"({exc}); choose another output extension or drop the audio (--no-audio)"
            ) from None
        copy.metadata.clear()
        if keep_metadata:
            copy.metadata.update(stream.metadata)
        copies[stream.index] = copy
    return copies
