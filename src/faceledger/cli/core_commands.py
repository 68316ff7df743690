"""CLI commands of the core engine: detect, verify, models, tour."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from faceledger.cli.context import engine_of
from faceledger.cli.render import EXIT_CODES, console, escape, fail, print_json
from faceledger.core.draw import draw_faces
from faceledger.errors import FaceLedgerError
from faceledger.media.encode import save_image
from faceledger.media.image import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, ImageLimits
from faceledger.models.base import DetectOptions
from faceledger.models.registry import BACKENDS, load_backend

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
MaxBytes = Annotated[int, typer.Option(help="Refuse files larger than this many bytes.")]
MaxPixels = Annotated[int, typer.Option(help="Refuse images with more pixels than this.")]


def _engine(ctx: typer.Context, role: str, max_bytes: int, max_pixels: int, **detect: float):  # noqa: ANN202
    """The Engine and Actor, with this command's input caps and detection options."""
    engine, actor = engine_of(ctx, role)
    rec = engine.recognizer
    rec.limits = ImageLimits(max_bytes=max_bytes, max_pixels=max_pixels)
    if detect:
        rec.detect_options = DetectOptions(**detect)
    return engine, actor


def _face_choice(value: str | None):  # noqa: ANN202
    if value is None or value in ("largest", "center"):
        return value
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter("use a face index, 'largest' or 'center'") from None


def progress(total: int, label: str) -> Progress:
    """A progress bar for commands over many files (hidden when there are few)."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=total < 4 or not console.is_terminal,
    )


def detect(
    ctx: typer.Context,
    photos: Annotated[list[Path], typer.Argument(help="Photos (JPEG, PNG or WebP).")],
    json_out: JsonOpt = False,
    annotate: Annotated[
        Path | None, typer.Option(help="Draw the faces: an image path for one photo, a folder for several.")
    ] = None,
    min_face_size: Annotated[float, typer.Option(help="Smallest face width in pixels.")] = 20.0,
    score_threshold: Annotated[float, typer.Option(help="Minimum detection score in [0, 1].")] = 0.6,
    purpose: Annotated[Optional[str], typer.Option(help="Declared purpose (recorded in the ledger).")] = None,
    max_bytes: MaxBytes = DEFAULT_MAX_BYTES,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Find every face: box (x, y, w, h), five landmarks, score, quality."""
    try:
        engine, actor = _engine(ctx, "verifier", max_bytes, max_pixels, min_face_size=min_face_size,
                                score_threshold=score_threshold)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    except FaceLedgerError as exc:
        raise fail(exc) from None
    results, failed = [], 0
    with progress(len(photos), "detecting") as bar:
        task = bar.add_task("detect", total=len(photos))
        for photo in photos:
            try:
                img = engine.recognizer.load(photo)
                faces = engine.detect(actor, img, purpose=purpose)
                if annotate is not None:
                    out = annotate if len(photos) == 1 else annotate / f"{photo.stem}_faces.png"
                    save_image(out, draw_faces(img.rgb, faces))
                results.append({"photo": str(photo), "faces": faces})
            except FaceLedgerError as exc:
                failed += 1
                results.append({"photo": str(photo), "error": {"code": exc.code, "message": exc.message}})
                if len(photos) == 1:
                    raise fail(exc) from None
            bar.advance(task)
    if json_out:
        print_json(results)
    else:
        _print_faces(results)
    if failed:
        raise typer.Exit(EXIT_CODES["input"])


def _print_faces(results: list[dict]) -> None:
    table = Table("photo", "#", "box x,y,w,h", "score", "size", "sharpness", "yaw", "roll")
    for r in results:
        if "error" in r:
            table.add_row(r["photo"], "-", f"[red]{escape(r['error']['message'])}[/]", "", "", "", "", "")
            continue
        if not r["faces"]:
            table.add_row(r["photo"], "-", "no face", "", "", "", "", "")
        for i, f in enumerate(r["faces"]):
            q = f.quality
            table.add_row(
                r["photo"] if i == 0 else "",
                str(i),
                ",".join(f"{v:.0f}" for v in f.box.as_tuple()),
                f"{f.score:.3f}",
                f"{q.size:.0f}" if q else "",
                f"{q.sharpness:.0f}" if q else "",
                f"{q.yaw:+.2f}" if q else "",
                f"{q.roll:+.1f}" if q else "",
            )
    console.print(table)


def verify(
    ctx: typer.Context,
    photo_a: Annotated[Path, typer.Argument(help="First photo.")],
    photo_b: Annotated[Path, typer.Argument(help="Second photo.")],
    face_a: Annotated[str | None, typer.Option(help="Face of A: index, 'largest' or 'center'.")] = None,
    face_b: Annotated[str | None, typer.Option(help="Face of B: index, 'largest' or 'center'.")] = None,
    operating_point: Annotated[
        str | None, typer.Option(help="Calibrated operating point, e.g. fmr1e-3 or fmr1e-4.")
    ] = None,
    purpose: Annotated[Optional[str], typer.Option(help="Declared purpose (default: the policy's only one).")] = None,
    json_out: JsonOpt = False,
    max_bytes: MaxBytes = DEFAULT_MAX_BYTES,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Do two photos show the same person? Exit 0 if yes, 1 if no, 2+ on errors."""
    try:
        engine, actor = _engine(ctx, "verifier", max_bytes, max_pixels)
        result = engine.verify(
            actor, photo_a, photo_b, purpose=purpose, face_a=_face_choice(face_a), face_b=_face_choice(face_b),
            operating_point=operating_point,
        )
    except FaceLedgerError as exc:
        raise fail(exc) from None
    if json_out:
        print_json(result)
    else:
        verdict = "[bold green]same person[/]" if result.match else "[bold yellow]different people[/]"
        console.print(
            f"{verdict}  score {result.score:.4f}  threshold {result.threshold:.4f} "
            f"({result.operating_point})  model {result.model_id}"
        )
    raise typer.Exit(EXIT_CODES["ok"] if result.match else EXIT_CODES["no_match"])


def models(json_out: JsonOpt = False) -> None:
    """List the backends: availability, files with SHA-256, calibrated thresholds."""
    rows = []
    for spec in BACKENDS.values():
        try:
            info = load_backend(spec.name).info
            rows.append({"backend": spec.name, "available": True, "summary": spec.summary, "info": info})
        except FaceLedgerError as exc:
            rows.append({"backend": spec.name, "available": False, "summary": spec.summary, "reason": exc.message})
    if json_out:
        print_json(rows)
        return
    table = Table("backend", "model id", "runtime / status", "files (sha256)", "thresholds", show_lines=True)
    for r in rows:
        if not r["available"]:
            table.add_row(r["backend"], "", f"[yellow]unavailable[/]: {escape(r['reason'])}", "", "")
            continue
        info = r["info"]
        files = "\n".join(f"{Path(p).name}\n  {h}" for p, h in info.files)
        points = "\n".join(
            f"{p.name}: {p.threshold:.4f}{' (default)' if p.name == info.default_operating_point else ''}"
            for p in info.operating_points
        ) or "[yellow]not calibrated[/]"
        table.add_row(r["backend"], info.model_id, f"{info.runtime}\n{info.licence}", files, points)
    console.print(table)


def tour(
    ctx: typer.Context,
    photos: Annotated[list[Path] | None, typer.Argument(help="Photos to try (default: a few test photos).")] = None,
) -> None:
    """A short tour: the models, detection on each photo, verification of the first two."""
    photos = photos or _sample_photos()
    if not photos:
        console.print("Give photos: [bold]make tour PHOTOS='a.jpg b.jpg'[/] or `faceledger tour a.jpg b.jpg`.")
        raise typer.Exit(EXIT_CODES["input"])
    models(json_out=False)
    try:
        detect(ctx, photos, json_out=False, annotate=None, min_face_size=20.0, score_threshold=0.6, purpose=None,
               max_bytes=DEFAULT_MAX_BYTES, max_pixels=DEFAULT_MAX_PIXELS)
    except typer.Exit as exc:
        if exc.exit_code:
            raise
    if len(photos) >= 2:
        console.print(f"\nverify {photos[0].name} {photos[1].name}:")
        with contextlib.suppress(typer.Exit):
            verify(ctx, photos[0], photos[1], face_a="center", face_b="center", operating_point=None,
                   purpose=None, json_out=False, max_bytes=DEFAULT_MAX_BYTES, max_pixels=DEFAULT_MAX_PIXELS)


def _sample_photos() -> list[Path]:
    root = Path(os.environ.get("FACELEDGER_TESTDATA", "../shared/testdata"))
    picks = [
        root / "lfw/images/Jean_Charest/Jean_Charest_0001.jpg",
        root / "lfw/images/Jean_Charest/Jean_Charest_0002.jpg",
        root / "groups/facenetpytorch_multiface.jpg",
    ]
    return [p for p in picks if p.is_file()]


def register(app: typer.Typer) -> None:
    for command in (detect, verify, models, tour):
        app.command()(command)
