"""What a redaction run did, file by file and in total, and how it reports progress."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

__all__ = ["FileReport", "NullProgress", "ProgressSink", "RedactSummary"]

FileKind = Literal["photo", "video", "skipped"]


@dataclass(frozen=True, slots=True)
class FileReport:
    """One input file's outcome.

    ``frames`` is 1 for a photo; ``faces`` counts redacted face boxes summed over
    frames (a face seen in 30 frames counts 30; tracked boxes included);
    ``obscured`` counts frames (or the photo) fully obscured because detection
    failed. ``error_code``/``error`` are set when the file failed (no output) or was
    obscured; ``output`` is ``None`` when nothing was written. ``seconds`` is wall time.
    ``resumed`` marks a file an archive rerun found already done (its manifest line and
    both hashes matched), so it was not redacted again.
    """

    source: Path
    output: Path | None
    kind: FileKind
    frames: int = 0
    faces: int = 0
    obscured: int = 0
    error_code: str | None = None
    error: str | None = None
    seconds: float = 0.0
    resumed: bool = False


@dataclass(frozen=True, slots=True)
class RedactSummary:
    """Totals over every file of a run (see :class:`FileReport` for the units)."""

    reports: tuple[FileReport, ...]

    @property
    def files(self) -> int:
        """Outputs written."""
        return sum(1 for r in self.reports if r.output is not None)

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.reports)

    @property
    def faces(self) -> int:
        return sum(r.faces for r in self.reports)

    @property
    def obscured(self) -> int:
        return sum(r.obscured for r in self.reports)

    @property
    def skipped(self) -> tuple[FileReport, ...]:
        return tuple(r for r in self.reports if r.kind == "skipped")

    @property
    def failed(self) -> tuple[FileReport, ...]:
        """Files that could not be redacted at all (nothing was written for them)."""
        return tuple(r for r in self.reports if r.error_code and r.output is None and r.kind != "skipped")

    @property
    def errors(self) -> tuple[FileReport, ...]:
        """Every report that carries an error (failed, or written with obscured frames)."""
        return tuple(r for r in self.reports if r.error_code and r.kind != "skipped")

    @property
    def resumed(self) -> int:
        """Files an archive rerun skipped because they were already done."""
        return sum(1 for r in self.reports if r.resumed)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.reports)


class ProgressSink(Protocol):
    """Receives progress; the CLI draws it with rich, the library stays silent.

    ``key`` names a bar ("files" for a folder, a file name for a video's frames);
    ``total`` may be ``None`` when unknown.
    """

    def begin(self, key: str, label: str, total: int | None) -> None: ...

    def advance(self, key: str, steps: int = 1) -> None: ...

    def end(self, key: str) -> None: ...


class NullProgress:
    """A :class:`ProgressSink` that shows nothing."""

    def begin(self, key: str, label: str, total: int | None) -> None:
        return None

    def advance(self, key: str, steps: int = 1) -> None:
        return None

    def end(self, key: str) -> None:
        return None
