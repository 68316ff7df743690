"""CLI commands for the deployment's own governance (the policy, training records) and a lead's
evidence. Each one parses, calls the Engine, and renders; every rule lives in the Engine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceledger.cli.engine_commands import review_app, run
from faceledger.cli.render import console, fail, print_json
from faceledger.errors import InputError

policy_app = typer.Typer(help="Show or change the deployment policy (ledgered).", no_args_is_help=True)
training_app = typer.Typer(help="Training records the policy may require before searching or reviewing.",
                           no_args_is_help=True)


@policy_app.command("show")
def policy_show(ctx: typer.Context) -> None:
    """The policy in force (digest, source, content) as JSON."""
    print_json(run(ctx, lambda e, a: e.policy_view(a), "admin"))


@policy_app.command("set")
def policy_set(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="The new policy (TOML).")]) -> None:
    """Replace the policy with FILE: validated, ledgered as policy_change with what changed; written back to the
    policy file the engine runs from, if any."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(InputError(f"cannot read {file}: {getattr(exc, 'strerror', None) or 'not UTF-8 text'}")) from None
    policy = run(ctx, lambda e, a: e.change_policy(a, text), "admin")
    console.print(f"policy changed: now {policy.digest[:16]} (ledgered)")


@review_app.command("show")
def review_show(
    ctx: typer.Context,
    lead_id: str,
    out: Annotated[Optional[Path], typer.Option(
        help="Where to write the probe and candidate faces side by side (JPEG, owner-only; default "
             "lead-<id>.jpg here).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the lead and reviews as JSON.")] = False,
) -> None:
    """A lead's evidence: the probe's face beside each candidate's enrolled face, with scores (ledgered)."""
    ev = run(ctx, lambda e, a: e.lead_evidence(a, lead_id), "reviewer")
    path = out or Path(f"lead-{ev.lead.id[:12]}.jpg")
    _write_private(path, ev.side_by_side())
    if json_out:
        print_json({"lead": ev.lead.to_dict(), "reviews": [r.to_dict() for r in ev.reviews], "image": str(path)})
        return
    console.print(f"[bold]{ev.label}[/] — lead {ev.lead.id}, {ev.lead.status.value}; gallery {ev.lead.gallery}, "
                  f"threshold {ev.lead.threshold:.4f}")
    console.print(f"faces side by side in {path}: the probe ({'kept' if ev.probe_crop else 'no longer kept'}), then")
    for c in ev.candidates:
        console.print(f"  #{c.rank} {c.subject_ref}  score {c.score:.4f}{'' if c.crop else '  (face not kept)'}")
    for r in ev.reviews:
        console.print(f"review by {r.reviewer}: {r.decision.value}{f' ({r.subject_ref})' if r.subject_ref else ''}"
                      f" — {r.rationale}")
    if ev.lead.disagreement:
        console.print("[yellow]the two reviewers disagreed[/]: closed as inconclusive")


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read (it shows faces); never over an existing one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise fail(InputError(f"{path} exists: choose another --out")) from None
    except OSError as exc:
        raise fail(InputError(f"cannot write {path}: {exc.strerror}")) from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@training_app.command("record")
def training_record(
    ctx: typer.Context,
    person: Annotated[str, typer.Argument(help="The actor id of who was trained.")],
    course: Annotated[str, typer.Option(help="The course completed.")],
    completed_at: Annotated[Optional[str], typer.Option(help="When (ISO-8601; default now).")] = None,
    valid_days: Annotated[int, typer.Option(help="Days the training counts.")] = 365,
) -> None:
    """Record completed training (admin)."""
    record = run(ctx, lambda e, a: e.record_training(a, person, course, completed_at=completed_at,
                                                     valid_days=valid_days), "admin")
    console.print(f"training {record.id} recorded for {person}, counts until {record.expires_at:%Y-%m-%d}")


@training_app.command("list")
def training_list(ctx: typer.Context, person: Annotated[Optional[str], typer.Option()] = None) -> None:
    """Training records, as JSON."""
    print_json([t.to_dict() for t in run(ctx, lambda e, a: e.trainings(a, person), "admin")])


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
    app.add_typer(training_app, name="training")


__all__ = ["policy_app", "register", "review_app", "training_app"]
