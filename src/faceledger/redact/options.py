"""What a redaction run does: drawing style, detection, video settings, output rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from faceledger.core.redaction import RedactionStyle
from faceledger.redact.photo_search import PhotoSearch
from faceledger.redact.tracker import TrackerConfig

__all__ = ["RedactOptions", "VideoSettings"]

_X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


@dataclass(frozen=True, slots=True)
class VideoSettings:
    """How video frames are searched for faces and written.

    Every frame, a *coarse* pass runs on a copy scaled so its long side is at most
    ``detect_long_side`` pixels (it finds faces from 16 pixels of that copy up:
    from 32 px in 720p, 48 px in 1080p at the default 640). Every ``fine_every``
    frames a *fine* pass looks for smaller faces, down to ``fine_min_face`` pixels
    of the full frame (the detector finds 12 px faces at native resolution, so
    12 needs no upsampling), on a copy whose long side is capped at
    ``fine_long_side``; 0 turns it off. The tracker carries faces across the
    frames between (see :mod:`faceledger.redact.tracker`). Redaction is always
    drawn at full resolution. ``crf`` and ``preset`` are the x264 quality (lower is
    better; 18-23 is visually lossless to good) and speed ("superfast" costs about
    14 ms of CPU per 720p frame here against 24 ms for "veryfast", for files about
    a third larger). ``workers``: processes one video is split across, in time segments
    (:mod:`faceledger.redact.split`; ``None``: one per core, for videos of 10 s and more
    written with x264 ``ultrafast``; 1: always one process).

    The defaults were chosen on bench/redact_leaks.py's group videos: a coarse
    pass at 480 px left small faces uncovered during fast pans (too few faces per
    frame to fit the camera motion). ``fine_every`` (None: automatic) is 4 for
    frames up to 1280 px on the long side, where every 4th frame instead of every
    3rd saved a few ms per frame for about one more uncovered face-frame per 1000,
    and 3 above, where 1080p crowds left 3.2 instead of 1.9 per 1000 uncovered at 4.
    """

    detect_long_side: int | None = None  # None: 640
    fine_min_face: float = 12.0
    fine_every: int | None = None  # None: 4 up to 1280 px on the long side, 3 above
    fine_long_side: int = 1920
    detect_every: int | None = None  # None: 1 (every frame)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    crf: int = 20
    preset: str = "ultrafast"
    workers: int | None = None  # None: one per core (long videos); 1: one process

    def __post_init__(self) -> None:
        if self.detect_long_side is not None and self.detect_long_side < 160:
            raise ValueError("detect_long_side must be at least 160 pixels")
        if self.fine_min_face != 0 and not (4.0 <= self.fine_min_face <= 200.0):
            raise ValueError("fine_min_face must be 0 (off) or within [4, 200] pixels")
        if (self.fine_every is not None and self.fine_every < 1) or self.fine_long_side < 160:
            raise ValueError("fine_every must be at least 1 and fine_long_side at least 160 pixels")
        if self.detect_every is not None and not (1 <= self.detect_every <= 3):
            raise ValueError("detect_every must be within [1, 3] frames")
        if self.workers is not None and self.workers < 1:
            raise ValueError("workers must be at least 1")
        if not (0 <= self.crf <= 51):
            raise ValueError("crf must be within [0, 51]")
        if self.preset not in _X264_PRESETS:
            raise ValueError(f"preset must be one of {', '.join(_X264_PRESETS)}")


@dataclass(frozen=True, slots=True)
class RedactOptions:
    """Options of a redaction run.

    ``score_threshold`` is the detector score above which a face is redacted (low on
    purpose: an extra blur is better than a missed face). ``min_face_size`` is the
    smallest face width in pixels searched for in photos. ``draw_boxes`` outlines
    what was redacted (green: detected, yellow: covered by tracking), for checking.
    ``keep_metadata`` keeps video container and stream tags and photo EXIF/ICC
    (orientation reset, since pixels are written upright); by default all are dropped.
    ``photo`` says how hard photos are searched (scales, second detector, ``fast``); see
    :mod:`faceledger.redact.photo_search`.
    """

    style: RedactionStyle = field(default_factory=RedactionStyle)
    score_threshold: float = 0.4
    min_face_size: float = 12.0
    draw_boxes: bool = False
    overwrite: bool = False
    keep_metadata: bool = False
    keep_audio: bool = True
    video: VideoSettings = field(default_factory=VideoSettings)
    photo: PhotoSearch = field(default_factory=PhotoSearch)

    def __post_init__(self) -> None:
        if not (0.05 <= self.score_threshold <= 1.0):
            raise ValueError("score_threshold must be within [0.05, 1]")
        if not (4.0 <= self.min_face_size <= 500.0):
            raise ValueError("min_face_size must be within [4, 500] pixels")
