"""CLI commands for accuracy you can audit: ``evaluate``, ``test-pairs`` and ``report accountability``.

Thin: each command parses, calls :mod:`faceledger.evaluate`, renders. ``register(app)``
adds them to the ``faceledger`` app (``report accountability`` joins the existing
``report`` group when there is one).
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceledger.cli.context import Settings
from faceledger.cli.render import console, fail
from faceledger.errors import ConfigError, FaceLedgerError

__all__ = ["register"]

def _backend(ctx: typer.Context, backend: Optional[str]) -> str:
    if backend:
        return backend
    return ctx.obj.backend if isinstance(ctx.obj, Settings) else "yunet-sface"


def evaluate(
    ctx: typer.Context,
    dataset: Annotated[Path, typer.Argument(
        help="A folder per identity, a pairs file, or a folder with pairs.txt + images/.")],
    labels: Annotated[Optional[Path], typer.Option(
        help="CSV of subgroup labels: first column image or identity.")] = None,
    backend: Annotated[Optional[str], typer.Option(help="Model backend (default: the global --backend).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for evaluation.json and evaluation.html.")] = Path("evaluation"),
    target_fmr: Annotated[float, typer.Option(help="FMR the calibrated threshold must meet.")] = 1e-3,
    write_thresholds: Annotated[Optional[Path], typer.Option(help="Write the calibrated thresholds JSON here.")] = None,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help=(
        "Keep templates in an encrypted, owner-only cache for fast reruns (off by default: templates are "
        "biometric data outside consent and erasure; delete the folder to erase it)."))] = False,
    cache_dir: Annotated[Optional[Path], typer.Option(
        help="Template cache folder (implies --cache; default $FACELEDGER_CACHE or ~/.cache/faceledger).")] = None,
    max_impostors: Annotated[int, typer.Option(help="Sample at most this many impostor pairs.")] = 1_000_000,
    replicates: Annotated[int, typer.Option(help="Bootstrap replicates per interval.")] = 200,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress output.")] = False,
) -> None:
    """Evaluate a backend on your photos: 1:1, per group at one threshold, 1:N, calibration."""
    from faceledger.evaluate import run
    from faceledger.evaluate.dataset import load_dataset, read_labels
    from faceledger.evaluate.report import write_report
    from faceledger.recognizer import Recognizer

    cfg = run.EvaluationConfig(target_fmr=target_fmr, max_impostors=max_impostors, replicates=replicates,
                           cache_dir=cache_dir, use_cache=cache or cache_dir is not None,
                               progress=not quiet)
    try:
        ds = load_dataset(dataset)
        lab = read_labels(labels, ds) if labels else None
        result = run.evaluate(ds, lab, Recognizer(_backend(ctx, backend)), cfg)
        json_path, html_path = write_report(result, out)
        if write_thresholds:
            console.print(f"thresholds written to {run.write_thresholds(write_thresholds, result)}")
    except FaceLedgerError as exc:
        raise fail(exc) from None
    _summary(result)
    console.print(f"report: {html_path}\nnumbers: {json_path}")


def _summary(r: dict) -> None:
    v, op = r["verification"], r["operating_threshold"]
    console.print(f"{r['model']['model_id']} on {r['dataset']['name']}: {v['genuine']} genuine, {v['impostor']} "
                  f"impostor; EER {100 * v['eer']:.3f}%; {r['templates']['failures_to_acquire']} failures to acquire")
    for a in r["groups"]:
        for g in [a["overall"], *a["groups"]]:
            console.print(f"  {a['attribute']}={g['group']}: FMR {100 * g['fmr']['estimate']:.4f}% "
                          f"FNMR {100 * g['fnmr']['estimate']:.3f}% at {op['threshold']:.4f}")
    c = r["calibration"]
    console.print(f"calibrated threshold for FMR {c['target_fmr']:g}: {c['threshold']:.4f} "
                  f"(measured FMR {c['measured_fmr']:.2e}, FNMR {c['measured_fnmr']:.4f})")


def _read_pairs_csv(path: Path) -> list[tuple[Path, Path]]:
    """Rows ``a,b`` (a header row ``a,b`` is skipped); relative paths are relative to the CSV's folder."""
    try:
        with path.open(newline="") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["a", "b"]:
        rows = rows[1:]
    if not rows or any(len(r) < 2 for r in rows):
        raise ConfigError(f"{path}: expected rows 'photo_a,photo_b'")
    return [((path.parent / r[0].strip()), (path.parent / r[1].strip())) for r in rows]


def test_pairs_command(
    ctx: typer.Context,
    pairs_csv: Annotated[Path, typer.Argument(help="CSV of photo pairs: a,b (paths relative to the CSV).")],
    backend: Annotated[Optional[str], typer.Option(help="Model backend (default: the global --backend).")] = None,
    operating_point: Annotated[Optional[str], typer.Option(help="e.g. fmr1e-3 (default) or fmr1e-4.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Independent testing (auditors): raw score and decision for every pair, with the model id.
    Nothing about the photos is kept; the ledger records the test and its number of comparisons."""
    from faceledger.cli.context import engine_of

    engine, actor = engine_of(ctx, "auditor")
    if backend is not None:
        engine = engine.sharing_store(backend)  # a backend name, loaded on first use
    from faceledger.cli.core_commands import progress

    try:
        pairs = _read_pairs_csv(pairs_csv)
        with progress(len(pairs), "testing pairs") as bar:
            task = bar.add_task("pairs", total=len(pairs))
            result = engine.independent_test(actor, pairs, operating_point=operating_point,
                                             on_pair=lambda done: bar.update(task, completed=done))
    except FaceLedgerError as exc:
        raise fail(exc) from None
    if json_out:  # full float precision: testers compare raw scores with the threshold themselves
        from dataclasses import asdict

        from faceledger.evaluate.report import jsonable

        typer.echo(json.dumps(jsonable(asdict(result)), indent=2))
        return
    console.print(f"model {result.model_id}, {result.operating_point} threshold {result.threshold:.4f}")
    for (a, b), r in zip(pairs, result.results, strict=True):
        verdict = r.error or ("match" if r.match else "no match")
        score = "" if r.score is None else f"{r.score:.4f}"
        console.print(f"{a.name}\t{b.name}\t{score}\t{verdict}", highlight=False)


def report_accountability(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Output file: .md for Markdown, .html for HTML.")],
    evaluation: Annotated[Optional[Path], typer.Option(help="The latest evaluation.json.")] = None,
    days: Annotated[int, typer.Option(help="Usage statistics over this many days up to now.")] = 365,
) -> None:
    """The SB 6280 accountability report: models, limits, data, policy, evaluation, usage, complaints."""
    from faceledger.cli.context import engine_of
    from faceledger.evaluate.accountability import build_accountability_report

    engine, actor = engine_of(ctx, "auditor")
    try:
        ev = json.loads(evaluation.read_text()) if evaluation else None
        end = engine.now() if hasattr(engine, "now") else datetime.now(UTC)
        usage = engine.usage_report(actor, end - timedelta(days=days), end).to_dict()
        report = build_accountability_report([engine.recognizer.info], engine.policy.to_dict(), ev, usage)
    except (OSError, json.JSONDecodeError) as exc:
        raise fail(ConfigError(f"{evaluation}: cannot read the evaluation ({exc})")) from None
    except FaceLedgerError as exc:
        raise fail(exc) from None
    text = report.to_html() if out.suffix.lower() in (".html", ".htm") else report.to_markdown()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    console.print(f"accountability report written to {out}")


def register(app: typer.Typer) -> None:
    """Add ``evaluate``, ``test-pairs`` and ``report accountability`` to ``app``."""
    app.command("evaluate")(evaluate)
    app.command("test-pairs")(test_pairs_command)
    existing = next((g.typer_instance for g in app.registered_groups if g.name == "report"), None)
    target = existing or typer.Typer(help="Reports drawn from the ledger.", no_args_is_help=True)
    target.command("accountability")(report_accountability)
    if existing is None:
        app.add_typer(target, name="report")
