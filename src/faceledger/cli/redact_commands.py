"""``faceledger redact``: make every face in a photo, a folder or a video unrecognisable.

Exit codes: 0 every file redacted; 2 bad input (or, in a folder, some file could
not be redacted); 3 detection failed somewhere (those photos or frames were
written fully obscured) or the detector could not be loaded.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from faceledger.cli.render import EXIT_CODES, console, err_console, fail, print_json

__all__ = ["redact", "register"]


class MethodChoice(StrEnum):
    blur = "blur"
    pixelate = "pixelate"
    fill = "fill"


class MaskChoice(StrEnum):
    ellipse = "ellipse"
    box = "box"


class SecondDetector(StrEnum):
    auto = "auto"
    on = "on"
    off = "off"


_UNITS = {"files": "files/s", "faces": "faces/s"}


class _RateColumn(ProgressColumn):
    """Items per second (frames per second on a video bar)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "fps")
        return Text(f"{speed:5.1f} {unit}" if speed else f"  ... {unit}", style="progress.data.speed")


class RichProgress:
    """A :class:`~faceledger.redact.ProgressSink` drawn with rich (hidden when not on a terminal)."""

    def __init__(self) -> None:
        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,
        )
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def begin(self, key: str, label: str, total: int | None) -> None:
        self._tasks[key] = self._bars.add_task(label[:40], total=total, unit=_UNITS.get(key, "fps"))

    def advance(self, key: str, steps: int = 1) -> None:
        if key in self._tasks:
            self._bars.advance(self._tasks[key], steps)

    def end(self, key: str) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            self._bars.remove_task(task)


def redact(
    source: Annotated[Path, typer.Argument(help="A photo, a video, or a folder (walked recursively).")],
    output: Annotated[
        Path | None, typer.Argument(help="Where to write (default: <name>_redacted beside the input).")
    ] = None,
    method: Annotated[MethodChoice, typer.Option("--method", "-m", help="How faces are obscured.")] = MethodChoice.blur,
    mask: Annotated[MaskChoice, typer.Option(help="Shape obscured around each face.")] = MaskChoice.ellipse,
    mask_scale: Annotated[float, typer.Option(help="Mask size relative to the face box (1-4).")] = 1.5,
    threshold: Annotated[float, typer.Option(help="Detection score that counts as a face (lower: more recall).")] = 0.4,
    min_face_size: Annotated[float, typer.Option(help="Smallest face width in pixels (photos, video).")] = 12.0,
    detect_size: Annotated[
        Optional[int],
        typer.Option(help="Video: long side of the frame copy searched (default: 640)."),
    ] = None,
    fine_every: Annotated[
        Optional[int],
        typer.Option(help="Video: search full resolution for small faces every N frames, tracked between "
                     "(default: 4 up to 720p, 3 above)."),
    ] = None,
    detect_every: Annotated[
        Optional[int],
        typer.Option(help="Video: search every Nth frame (1-3), the camera motion and tracker carry faces "
                     "between (default: 1, every frame)."),
    ] = None,
    boxes: Annotated[bool, typer.Option("--boxes", help="Also outline what was redacted, for checking.")] = False,
    no_audio: Annotated[bool, typer.Option("--no-audio", help="Video: drop audio (default: copied as is).")] = False,
    keep_metadata: Annotated[
        bool, typer.Option("--keep-metadata", help="Keep video tags and photo EXIF (default: all dropped).")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")] = False,
    crf: Annotated[int, typer.Option(help="Video quality (x264 CRF: lower is better, 18-23 typical).")] = 20,
    preset: Annotated[
        str, typer.Option(help="Video: x264 speed preset (ultrafast ... veryslow; slower gives smaller files).")
    ] = "ultrafast",
    fast: Annotated[
        bool, typer.Option("--fast", help="Photos: one detector pass instead of the thorough multi-scale search.")
    ] = False,
    centerface: Annotated[
        SecondDetector,
        typer.Option(help="Photos: also search with CenterFace (auto: when its model package is installed)."),
    ] = SecondDetector.auto,
    workers: Annotated[
        Optional[int],
        typer.Option(min=1, help="Folders, and a video of 10 s or more split in time: worker processes "
                     "(default: one per core)."),
    ] = None,
    ray: Annotated[
        Optional[str],
        typer.Option(help="Folders: run on a Ray cluster: 'auto' or its address (pip install 'faceledger[ray]')."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    backend: Annotated[str, typer.Option("--backend", "-b", help="Backend whose detector is used.")] = "yunet-sface",
) -> None:
    """Redact every face: blur, pixelate or fill, with video tracking. Never overwrites the input.

    A folder is redacted on every core (or a Ray cluster with --ray) and is resumable: a rerun
    with the same settings skips the files already done and redoes the rest.
    """
    from faceledger.core.redaction import RedactionStyle
    from faceledger.errors import FaceLedgerError
    from faceledger.redact import PhotoSearch, RedactOptions, VideoSettings

    try:
        options = RedactOptions(
            style=RedactionStyle(method=method.value, mask=mask.value, mask_scale=mask_scale),
            score_threshold=threshold,
            min_face_size=min_face_size,
            draw_boxes=boxes,
            overwrite=overwrite,
            keep_metadata=keep_metadata,
            keep_audio=not no_audio,
            video=VideoSettings(detect_long_side=detect_size, fine_min_face=min_face_size, fine_every=fine_every,
                                detect_every=detect_every, crf=crf, preset=preset, workers=workers),
            photo=PhotoSearch(fast=fast, centerface=centerface.value),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        with RichProgress() as bars:
            summary = _run(source, output, options, backend, (workers, ray), bars)
    except FaceLedgerError as exc:
        raise fail(exc) from None
    if json_out:
        print_json(_summary_json(summary))
    else:
        _print_summary(summary)
    raise typer.Exit(_exit_code(summary))


def _run(source: Path, output: Path | None, options, backend: str, scale: tuple, bars: RichProgress):  # noqa: ANN001, ANN202
    """A folder goes to the parallel, resumable archive runner; a single file is redacted here."""
    from faceledger.redact import ArchiveJob, Redactor, default_output, redact_archive

    if source.is_dir():
        workers, ray = scale
        job = ArchiveJob(options=options, workers=workers, ray=ray, backend=backend)
        return redact_archive(source, output or default_output(source), job, progress=bars)
    return Redactor(options=options, backend=backend).redact(source, output, progress=bars)


def _exit_code(summary) -> int:  # noqa: ANN001 - a RedactSummary
    if summary.failed:
        return EXIT_CODES["input"]
    if summary.obscured:
        return EXIT_CODES["model"]
    return EXIT_CODES["ok"]


def _summary_json(summary) -> dict:  # noqa: ANN001 - a RedactSummary
    totals = {k: getattr(summary, k) for k in ("files", "frames", "faces", "obscured", "resumed", "seconds")}
    reports = [
        {
            "source": str(r.source),
            "output": None if r.output is None else str(r.output),
            "kind": r.kind,
            "frames": r.frames,
            "faces": r.faces,
            "obscured": r.obscured,
            "error_code": r.error_code,
            "error": r.error,
            "seconds": r.seconds,
            "resumed": r.resumed,
        }
        for r in summary.reports
    ]
    return {**totals, "failed": len(summary.failed), "skipped": len(summary.skipped), "reports": reports}


def _print_summary(summary) -> None:  # noqa: ANN001 - a RedactSummary
    console.print(
        f"[bold]redacted[/] {summary.files} file(s): {summary.frames} frame(s), "
        f"{summary.faces} face box(es) obscured, {summary.obscured} fully obscured, "
        f"{len(summary.failed)} failed, {len(summary.skipped)} skipped"
        + (f", {summary.resumed} already done" if summary.resumed else "")
        + f", in {summary.seconds:.1f} s",
        highlight=False,
    )
    for r in summary.reports:
        if r.output is not None and not r.error:
            console.print(f"  {r.source} -> {r.output}", highlight=False)
    for r in summary.errors:
        style = "yellow" if r.output is not None else "red"
        err_console.print(f"  [{style}]{r.error_code}[/] {r.source}: {r.error}", highlight=False)
    if summary.skipped:
        err_console.print(f"  [dim]skipped (not copied): {', '.join(str(r.source) for r in summary.skipped)}[/]")


def register(app: typer.Typer) -> None:
    """Add the ``redact`` command to ``app``."""
    app.command()(redact)
