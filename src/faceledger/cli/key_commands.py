"""``faceledger key``: API keys for the HTTP service (and for ``FACELEDGER_API_KEY``), through the Engine.

Creating, listing and revoking keys are engine operations (``key_create``, ``key_list``,
``key_revoke``; ``admin`` by default), ledgered like any other, refusals included.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from faceledger.cli.engine_commands import JsonOpt, run
from faceledger.cli.render import console, escape, print_json

key_app = typer.Typer(help="Create, list and revoke API keys (admins).", no_args_is_help=True)


@key_app.command("create")
def key_create(
    ctx: typer.Context,
    actor: Annotated[str, typer.Argument(help="Who the key acts as (recorded in the ledger).")],
    role: Annotated[str, typer.Argument(help="The key's one role: admin, enroller, verifier, investigator, "
                                              "reviewer or auditor.")],
    label: Annotated[Optional[str], typer.Option(help="A note, e.g. where the key is used.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a key; its token is printed once, now, and stored only as a salted hash."""
    key, token = run(ctx, lambda e, a: e.create_key(a, actor, role, label=label), "admin")
    if json_out:
        print_json({**key.to_dict(), "token": token})
        return
    console.print(f"key {key.key_id} created for [bold]{escape(key.actor)}[/] as {key.role}. "
                  "Its token (shown only now; keep it somewhere safe):")
    typer.echo(token)


@key_app.command("list")
def key_list(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Every key, active and revoked (never a token)."""
    keys = run(ctx, lambda e, a: e.list_keys(a), "admin")
    if json_out:
        print_json([k.to_dict() for k in keys])
        return
    table = Table("key id", "actor", "role", "label", "created", "revoked")
    for k in keys:
        table.add_row(k.key_id, escape(k.actor), k.role, escape(k.label or ""), k.created_at[:16],
                      (k.revoked_at or "")[:16])
    console.print(table)


@key_app.command("revoke")
def key_revoke(ctx: typer.Context, key_id: str) -> None:
    """Revoke a key at once (the last active admin key cannot be: create another first)."""
    key = run(ctx, lambda e, a: e.revoke_key(a, key_id), "admin")
    console.print(f"key {key.key_id} ({escape(key.actor)}, {key.role}) revoked at {key.revoked_at}")


def register(app: typer.Typer) -> None:
    app.add_typer(key_app, name="key")
