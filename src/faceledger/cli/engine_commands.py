"""CLI commands of the accountable engine: galleries, consent, enrollment, identification,
review, erasure, retention, authorizations, the ledger and reports. Each one parses its
options, calls the Engine, and renders; every rule lives in the Engine."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from faceledger.cli.context import engine_of
from faceledger.cli.render import EXIT_CODES, console, escape, fail, print_json, to_jsonable
from faceledger.errors import FaceLedgerError
from faceledger.records import AuthorizationRequest, ConsentRequest, parse_time

gallery_app = typer.Typer(help="Create, list, show and delete galleries.", no_args_is_help=True)
subject_app = typer.Typer(help="List, export (data-subject access) and erase subjects.", no_args_is_help=True)
consent_app = typer.Typer(help="Record, list and withdraw consent.", no_args_is_help=True)
auth_app = typer.Typer(help="Record, list and revoke authorizations for 1:N identification.", no_args_is_help=True)
review_app = typer.Typer(help="The review queue of identification leads.", no_args_is_help=True)
ledger_app = typer.Typer(help="Verify, export and checkpoint the tamper-evident ledger.", no_args_is_help=True)
report_app = typer.Typer(help="Reports drawn from the ledger.", no_args_is_help=True)
retention_app = typer.Typer(help="Purge what consent or retention no longer covers.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Purpose = Annotated[str, typer.Option(help="Declared purpose (must be allowed by the policy).")]


def run(ctx: typer.Context, call, default_role: Optional[str] = None):  # noqa: ANN001, ANN201
    """Call ``call(engine, actor)`` and turn FaceLedger errors into one line and an exit code."""
    engine, actor = engine_of(ctx, default_role)
    try:
        return call(engine, actor)
    except FaceLedgerError as exc:
        raise fail(exc) from None


# -- galleries ---------------------------------------------------------------------------
@gallery_app.command("create")
def gallery_create(
    ctx: typer.Context,
    name: str,
    retention_days: Annotated[Optional[int], typer.Option(help="Days a subject is kept (default: policy).")] = None,
    operating_point: Annotated[Optional[str], typer.Option(help="e.g. fmr1e-3 (default) or fmr1e-4.")] = None,
    min_face_size: Annotated[float, typer.Option(help="Quality gate: minimum face width, pixels.")] = 40.0,
    min_sharpness: Annotated[float, typer.Option(help="Quality gate: minimum sharpness.")] = 30.0,
    max_abs_yaw: Annotated[float, typer.Option(help="Quality gate: maximum |yaw| proxy.")] = 0.45,
) -> None:
    """Create a gallery pinned to the current model and its calibrated thresholds."""
    gate = {"min_size": min_face_size, "min_sharpness": min_sharpness, "max_abs_yaw": max_abs_yaw}
    g = run(ctx, lambda e, a: e.create_gallery(a, name, retention_days=retention_days,
                                               operating_point=operating_point, quality_gate=gate), "admin")
    console.print(f"gallery [bold]{g.name}[/] created: model {g.model_id}, operating point {g.operating_point} "
                  f"({g.thresholds[g.operating_point]:.4f}), retention {g.retention_days} days")


@gallery_app.command("list")
def gallery_list(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List galleries with their model and counts."""
    def call(e, a):  # noqa: ANN001, ANN202
        return [(g, e.gallery_stats(a, g.name)) for g in e.list_galleries(a)]
    rows = run(ctx, call, "admin")
    if json_out:
        print_json([{**to_jsonable(g), "subjects": s.subjects, "templates": s.templates} for g, s in rows])
        return
    table = Table("gallery", "model", "operating point", "subjects", "templates", "retention (days)")
    for g, s in rows:
        table.add_row(g.name, g.model_id, g.operating_point or "", str(s.subjects), str(s.templates),
                      str(g.retention_days))
    console.print(table)


@gallery_app.command("show")
def gallery_show(ctx: typer.Context, name: str) -> None:
    """Show one gallery's settings and counts as JSON."""
    def call(e, a):  # noqa: ANN001, ANN202
        return e.gallery(a, name), e.gallery_stats(a, name)
    g, stats = run(ctx, call, "admin")
    print_json({**to_jsonable(g), "subjects": stats.subjects, "templates": stats.templates})


@gallery_app.command("delete")
def gallery_delete(
    ctx: typer.Context, name: str,
    erase_subjects: Annotated[bool, typer.Option(help="Also erase every subject in it.")] = False,
) -> None:
    """Delete a gallery (refused while it holds subjects, unless --erase-subjects)."""
    n = run(ctx, lambda e, a: e.delete_gallery(a, name, erase_subjects=erase_subjects), "admin")
    console.print(f"gallery {name} deleted ({n} subject(s) erased)")


@gallery_app.command("set-model")
def gallery_set_model(
    ctx: typer.Context, name: str,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: every template of the gallery is deleted.")] = False,
) -> None:
    """Move a gallery to the current backend's model (--backend): its templates are deleted; re-enroll."""
    if not yes:
        raise typer.BadParameter("this deletes every template of the gallery (subjects and consents stay); "
                                 "pass --yes, then re-enroll with `faceledger enroll GALLERY --folder DIR`")
    g, n = run(ctx, lambda e, a: e.change_gallery_model(a, name), "admin")
    console.print(f"gallery {g.name} now uses model {g.model_id} (operating point {g.operating_point}); "
                  f"{n} template(s) deleted: re-enroll its subjects with `faceledger enroll {g.name} --folder DIR`")


# -- consent -------------------------------------------------------------------------------
@consent_app.command("record")
def consent_record(
    ctx: typer.Context,
    gallery: str,
    subject: Annotated[str, typer.Argument(help="The subject's external reference.")],
    purpose: Purpose,
    notice_version: Annotated[str, typer.Option(help="Version of the notice text the subject was shown.")],
    method: Annotated[str, typer.Option(help="signed_form, e_signature or recorded_verbal.")],
    valid_days: Annotated[int, typer.Option(help="Days until the consent expires.")] = 365,
    legal_basis: Annotated[str, typer.Option(help="explicit_consent (default) or another basis.")] = "explicit_consent",
    given_at: Annotated[Optional[str], typer.Option(
        help="When it was given (ISO-8601 with a zone, e.g. 2026-05-01T09:00Z; default now).")] = None,
    collected_by: Annotated[Optional[str], typer.Option(help="Who collected it (default: the actor).")] = None,
    consent_id: Annotated[Optional[str], typer.Option(help="Your id for the record (default: generated).")] = None,
    supersedes: Annotated[Optional[str], typer.Option(
        help="Renew: the id of the subject's active consent for this purpose that this one replaces.")] = None,
) -> None:
    """Record a subject's consent (required before enrollment)."""
    request = ConsentRequest(gallery=gallery, subject_ref=subject, purpose=purpose, notice_version=notice_version,
                             method=method, legal_basis=legal_basis, given_at=given_at, valid_days=valid_days,
                             collected_by=collected_by, id=consent_id,
                             supersedes=supersedes)
    record = run(ctx, lambda e, a: e.record_consent(a, request), "enroller")
    console.print(f"consent {record.id} recorded for {subject} in {gallery}, expires {record.expires_at:%Y-%m-%d}")


@consent_app.command("list")
def consent_list(ctx: typer.Context, gallery: str, subject: Optional[str] = None) -> None:
    """List consent records of a gallery (or one subject) as JSON."""
    print_json([r.to_dict() for r in run(ctx, lambda e, a: e.consents(a, gallery, subject), "enroller")])


@consent_app.command("withdraw")
def consent_withdraw(ctx: typer.Context, gallery: str, subject: str) -> None:
    """Withdraw a subject's consent: the subject is erased at once."""
    n = run(ctx, lambda e, a: e.withdraw_consent(a, gallery, subject), "enroller")
    console.print(f"consent withdrawn; {subject} erased ({n} template(s), data key destroyed)")


# -- enrollment and identification -------------------------------------------------------------
def enroll(
    ctx: typer.Context,
    gallery: str,
    subject: Annotated[Optional[str], typer.Argument(help="External reference (omit with --folder).")] = None,
    photos: Annotated[Optional[list[Path]], typer.Argument(help="Photos of the subject.")] = None,
    purpose: Purpose = "access_control",
    folder: Annotated[Optional[Path], typer.Option(help="Bulk: one sub-folder of photos per subject.")] = None,
    display_name: Optional[str] = None,
    face: Annotated[Optional[str], typer.Option(help="Face to use: index, 'largest' or 'center'.")] = None,
) -> None:
    """Enroll consenting people: SUBJECT PHOTO..., or --folder with one sub-folder per subject."""
    from faceledger.cli.core_commands import _face_choice, progress

    if folder is not None:
        jobs = [(d.name, sorted(p for p in d.iterdir() if p.is_file())) for d in sorted(folder.iterdir()) if d.is_dir()]
    elif subject and photos:
        jobs = [(subject, photos)]
    else:
        raise typer.BadParameter("give SUBJECT and PHOTO..., or --folder")
    engine, actor = engine_of(ctx, "enroller")
    failed = 0
    with progress(len(jobs), "enrolling") as bar:
        task = bar.add_task("enroll", total=len(jobs))
        for ref, files in jobs:
            try:
                r = engine.enroll(actor, gallery, ref, files, purpose=purpose, display_name=display_name,
                                  face=_face_choice(face))
                console.print(f"{ref}: {r.templates_added} template(s) added, {r.templates_existing} already stored")
            except FaceLedgerError as exc:
                failed += 1
                if len(jobs) == 1:
                    raise fail(exc) from None
                console.print(f"[red]{escape(ref)}: {exc.code}: {escape(exc.message)}[/]")
            bar.advance(task)
    if failed:
        raise typer.Exit(EXIT_CODES["input"])


def identify(
    ctx: typer.Context,
    gallery: str,
    photo: Path,
    purpose: Purpose = "investigation",
    flag: Annotated[
        Optional[list[str]], typer.Option(help="Declared target, e.g. protest (prohibited ones refuse).")
    ] = None,
    top_k: Annotated[Optional[int], typer.Option(help="Most candidates per face (capped by policy).")] = None,
    face: Annotated[str, typer.Option(help="'all' faces (default), or index, 'largest', 'center'.")] = "all",
    operating_point: Annotated[
        Optional[str], typer.Option(help="A calibrated point of the gallery, e.g. fmr1e-4 (default: the gallery's).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """1:N search under an authorization. Results are leads for human review, never decisions."""
    from faceledger.cli.core_commands import _face_choice

    choice = "all" if face == "all" else _face_choice(face)
    result = run(ctx, lambda e, a: e.identify(a, gallery, photo, purpose=purpose, flags=flag or (),
                                              top_k=top_k, face=choice, operating_point=operating_point),
                 "investigator")
    if json_out:
        print_json(result)
    else:
        console.print(f"[bold]{result.label}[/] — threshold {result.threshold:.4f} ({result.operating_point}), "
                      f"model {result.model_id}, ledger entry {result.ledger_seq}")
        console.print(_fpir_line(result), highlight=False)
        if result.expected_fpir is not None and result.expected_fpir > 0.05:
            console.print(f"[yellow]warning:[/] in a gallery of {result.gallery_subjects:,} subjects about "
                          f"{result.expected_fpir:.0%} of searches for someone not enrolled return a candidate at "
                          "this operating point; a stricter one (--operating-point fmr1e-4, or fmr1e-5 where the "
                          "model has it) gives fewer false leads")
        for i, f in enumerate(result.faces):
            if f.no_match:
                console.print(f"face {i}: [yellow]no match[/] (nobody at or above the threshold)")
            for c in f.candidates:
                console.print(f"face {i}: #{c.rank} {c.subject_ref}  score {c.score:.4f}  lead {f.lead_id}")
    raise typer.Exit(EXIT_CODES["no_match"] if result.no_match else EXIT_CODES["ok"])


def _fpir_line(result) -> str:  # noqa: ANN001 - an IdentifyResult
    """The gallery's size and the expected false-positive identification rate at the threshold used."""
    size = f"gallery of {result.gallery_subjects:,} subject(s)"
    if result.expected_fpir is None:
        return f"{size}: expected FPIR unknown (the threshold is not a calibrated operating point)"
    share = f"{result.expected_fpir:.2%}" if result.expected_fpir < 0.01 else f"{result.expected_fpir:.0%}"
    return f"{size}: expected FPIR {share} (searches for someone not enrolled that return a candidate)"


# -- subjects ---------------------------------------------------------------------------------
@subject_app.command("list")
def subject_list(ctx: typer.Context, gallery: str, json_out: JsonOpt = False) -> None:
    """List the subjects of a gallery."""
    subjects = run(ctx, lambda e, a: e.list_subjects(a, gallery), "enroller")
    if json_out:
        print_json(subjects)
        return
    table = Table("subject", "display name", "templates", "enrolled")
    for s in subjects:
        table.add_row(s.external_ref, s.display_name or "", str(s.template_count), f"{s.created_at:%Y-%m-%d %H:%M}")
    console.print(table)


@subject_app.command("remove")
def subject_remove(
    ctx: typer.Context, gallery: str, subject: str,
    reason: Annotated[str, typer.Option(help="Why (recorded in the ledger).")] = "erasure_request",
) -> None:
    """Erase a subject: templates, photos, index entries and data key."""
    n = run(ctx, lambda e, a: e.erase_subject(a, gallery, subject, reason=reason), "admin")
    console.print(f"{subject} erased from {gallery}: {n} template(s), data key destroyed")


subject_app.command("erase", help="Same as `subject remove`.")(subject_remove)


@subject_app.command("export")
def subject_export(
    ctx: typer.Context, gallery: str, subject: str,
    out: Annotated[Optional[Path], typer.Option(help="Write the JSON here instead of printing it.")] = None,
) -> None:
    """Data-subject access: everything held about a subject, as JSON (never template vectors)."""
    data = run(ctx, lambda e, a: e.export_subject(a, gallery, subject), "admin")
    text = json.dumps(data, indent=2, default=str)
    if out:
        out.write_text(text)
        console.print(f"written to {out}")
    else:
        typer.echo(text)


# -- authorizations ----------------------------------------------------------------------------
@auth_app.command("record")
def auth_record(
    ctx: typer.Context,
    kind: Annotated[str, typer.Option(help="consented_access_control, court_order, warrant, missing_person, other.")],
    reference: Annotated[str, typer.Option(help="The order's or case's reference.")],
    issuer: Annotated[str, typer.Option(help="Who issued it.")],
    gallery: Annotated[list[str], typer.Option(help="Gallery in scope (repeat).")],
    purpose: Annotated[list[str], typer.Option(help="Purpose in scope (repeat).")],
    valid_days: Annotated[int, typer.Option(help="Days of validity from --valid-from.")] = 30,
    valid_from: Annotated[Optional[str], typer.Option(help="Start (ISO-8601 with a zone; default now).")] = None,
    live_allowed: Annotated[bool, typer.Option(help="Allow searches on live streams.")] = False,
) -> None:
    """Record an authorization that allows 1:N identification."""
    request = AuthorizationRequest(kind=kind, reference=reference, issuer=issuer, galleries=gallery, purposes=purpose,
                                   valid_from=valid_from, valid_days=valid_days, live_allowed=live_allowed)
    auth = run(ctx, lambda e, a: e.record_authorization(a, request), "admin")
    console.print(f"authorization {auth.id} recorded ({auth.kind.value} {auth.reference}), "
                  f"valid until {auth.valid_until:%Y-%m-%d %H:%M} UTC")


@auth_app.command("list")
def auth_list(ctx: typer.Context) -> None:
    """List authorizations as JSON."""
    print_json([x.to_dict() for x in run(ctx, lambda e, a: e.authorizations(a), "admin")])


@auth_app.command("revoke")
def auth_revoke(ctx: typer.Context, authorization_id: str) -> None:
    """Revoke an authorization from now on."""
    run(ctx, lambda e, a: e.revoke_authorization(a, authorization_id), "admin")
    console.print(f"authorization {authorization_id} revoked")


# -- review -----------------------------------------------------------------------------------
@review_app.command("list")
def review_list(ctx: typer.Context, status: Annotated[Optional[str], typer.Option()] = "pending") -> None:
    """Leads waiting for review (or --status confirmed/rejected/inconclusive), as JSON."""
    print_json([x.to_dict() for x in run(ctx, lambda e, a: e.leads(a, status=status), "reviewer")])


@review_app.command("decide")
def review_decide(
    ctx: typer.Context,
    lead_id: str,
    decision: Annotated[str, typer.Argument(help="confirmed, rejected or inconclusive.")],
    rationale: Annotated[str, typer.Option(help="Why: required.")],
    subject: Annotated[Optional[str], typer.Option(help="With confirmed: the candidate confirmed.")] = None,
) -> None:
    """Review a lead. The person who ran the search cannot review it."""
    lead = run(ctx, lambda e, a: e.review(a, lead_id, decision, rationale, subject_ref=subject), "reviewer")
    console.print(f"lead {lead.id}: {lead.status.value}")


# -- ledger and reports ---------------------------------------------------------------------------
@ledger_app.command("verify")
def ledger_verify(
    ctx: typer.Context,
    checkpoint: Annotated[Optional[list[Path]], typer.Option(help="Exported checkpoint file (repeat).")] = None,
    public_key: Annotated[Optional[list[Path]], typer.Option(help="Checkpoint public key file (repeat).")] = None,
) -> None:
    """Check the hash chain (and exported checkpoints); exit 1 and say where if anything was altered."""
    report = run(ctx, lambda e, a: e.verify_ledger(a, checkpoints=checkpoint or (), public_keys=public_key or ()),
                 "auditor")
    told = _say_checkpoints(report, checkpoint or ())
    if report.ok:
        console.print(f"[bold green]ledger intact[/]: {report.checked} entries checked")
        return
    rest = [p for p in report.problems if p not in told]
    if rest:
        p = rest[0]
        where = f" at entry {p.seq}" if p.seq is not None else ""
        console.print(f"[bold red]ledger NOT intact[/]: {p.kind.value}{where}: {escape(p.message)}")
    else:
        console.print("[bold red]ledger NOT intact[/]: see the checkpoint above")
    raise typer.Exit(EXIT_CODES["no_match"])


def _checkpoint_seq(path: Path) -> Optional[int]:
    try:  # the engine has read and parsed the file already; this only names the entry it signs
        return int(json.loads(path.read_text())["seq"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _say_checkpoints(report, paths: list[Path]) -> list:  # noqa: ANN001 - a ChainReport
    """One line per checkpoint file: matched, not matched (and why, once), or not reached. Returns the
    problems said here, so the summary line does not repeat them. (Two files signing the same entry
    cannot be told apart here: give one per entry.)"""
    told = []
    for path in paths:
        seq = _checkpoint_seq(path)
        mine = next((p for p in report.problems if p.seq == seq and p.kind.value in
                     ("bad_checkpoint", "diverged", "truncated")), None)
        if mine is not None:
            told.append(mine)
            why = mine.message.removeprefix(f"checkpoint at seq {seq}: ")
            console.print(f"checkpoint {escape(str(path))} (entry {seq}): [bold red]NOT matched[/]: {escape(why)}")
        elif report.ok or (report.head is not None and seq is not None and seq <= report.head.seq):
            console.print(f"checkpoint {escape(str(path))} (entry {seq}): [green]matched[/]")
        else:
            console.print(f"checkpoint {escape(str(path))} (entry {seq}): not checked (the chain breaks before it)")
    return told


@ledger_app.command("export")
def ledger_export(ctx: typer.Context, out: Path, start_seq: int = 1) -> None:
    """Export the ledger as JSON lines."""
    n = run(ctx, lambda e, a: e.export_ledger(a, out, start_seq=start_seq), "auditor")
    console.print(f"{n} entries written to {out}")


@ledger_app.command("keygen")
def ledger_keygen(ctx: typer.Context, key: Path, public_key: Path) -> None:
    """Create an Ed25519 key pair for checkpoints (private key written with mode 0600)."""
    kid = run(ctx, lambda e, a: e.create_checkpoint_key(a, key, public_key), "admin")
    console.print(f"key {kid} written: {key} (keep private), {public_key} (give to auditors)")


@ledger_app.command("checkpoint")
def ledger_checkpoint(
    ctx: typer.Context,
    key: Annotated[Path, typer.Option(help="The Ed25519 private key file.")],
    out: Annotated[Path, typer.Option(help="Where to write the signed checkpoint (a new file).")],
) -> None:
    """Sign the ledger's head; ship the file somewhere the database's operators cannot change it."""
    path = run(ctx, lambda e, a: e.checkpoint(a, key, out), "admin")
    console.print(f"checkpoint written to {path}")


@report_app.command("usage")
def report_usage(
    ctx: typer.Context,
    start: Annotated[Optional[str], typer.Option(
        "--from", help="Start (ISO-8601 with a zone; default a year ago).")] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="End (ISO-8601 with a zone; default now).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Operations by purpose, actor, authorization and outcome; refusals, erasures, reviews."""
    def call(e, a):  # noqa: ANN001, ANN202
        stop = parse_time(end, "--to", e.now())
        return e.usage_report(a, parse_time(start, "--from", stop - timedelta(days=365)), stop)
    report = run(ctx, call, "auditor")
    typer.echo(report.to_json() if json_out else report.to_markdown())


@retention_app.command("run")
def retention_run(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option(help="List what would be erased; erase nothing.")] = False,
) -> None:
    """Erase subjects whose consent was withdrawn or expired, or whose retention period elapsed."""
    plan = run(ctx, lambda e, a: e.run_retention(a, dry_run=dry_run), "admin")
    verb = "would erase" if dry_run else "erased"
    console.print(f"{verb} {len(plan.items)} subject(s); {plan.kept} kept")
    for item in plan.items:
        console.print(f"  {item.gallery}/{item.subject_ref}: {', '.join(r.value for r in item.reasons)}")


def register(app: typer.Typer) -> None:
    app.command()(enroll)
    app.command()(identify)
    for name, sub in (("gallery", gallery_app), ("subject", subject_app), ("consent", consent_app),
                      ("authorization", auth_app), ("review", review_app), ("ledger", ledger_app),
                      ("report", report_app), ("retention", retention_app)):
        app.add_typer(sub, name=name)


