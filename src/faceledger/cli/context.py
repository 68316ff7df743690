"""Global CLI options (store, policy, actor, role) and building the Engine from them."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceledger.cli.render import fail
from faceledger.errors import FaceLedgerError

__all__ = ["Settings", "engine_of", "global_options"]


@dataclass
class Settings:
    store: str | None
    policy: Path | None
    actor: str
    role: str | None
    backend: str
    _engine: object | None = None


def global_options(
    ctx: typer.Context,
    store: Annotated[Optional[str], typer.Option(
        envvar="FACELEDGER_STORE",
        help="Store URL: sqlite:///path/file.db (default: faceledger.db in the data directory) or postgresql://...",
    )] = None,
    policy: Annotated[Optional[Path], typer.Option(
        envvar="FACELEDGER_POLICY",
        help="Deployment policy (TOML). Default: policy.toml in the data directory if present, else the safe default.",
    )] = None,
    actor: Annotated[Optional[str], typer.Option(
        envvar="FACELEDGER_ACTOR", help="Who is acting (recorded in the ledger). Default: your user name.")] = None,
    role: Annotated[Optional[str], typer.Option(
        envvar="FACELEDGER_ROLE",
        help="Role to act in: admin, enroller, verifier, investigator, reviewer or auditor.")] = None,
    backend: Annotated[str, typer.Option("--backend", "-b", envvar="FACELEDGER_BACKEND",
                                         help="Model backend (see `faceledger models`).")] = "yunet-sface",
) -> None:
    """FaceLedger: face detection, verification and identification, accountable by construction."""
    ctx.obj = Settings(store, policy, actor or getpass.getuser(), role, backend)


def engine_of(ctx: typer.Context, default_role: str | None = None):  # noqa: ANN201 - Engine, imported lazily
    """The Engine and Actor for this invocation (built once; errors become exit codes)."""
    from faceledger.engine import Actor, Engine
    from faceledger.store import data_dir

    s: Settings = ctx.obj if isinstance(ctx.obj, Settings) else Settings(None, None, getpass.getuser(), None,
                                                                          "yunet-sface")
    role = s.role or default_role
    try:
        if role is None:
            raise typer.BadParameter("say which role you act in: --role (or FACELEDGER_ROLE)")
        actor = Actor(s.actor, role, credential=f"os:{getpass.getuser()}")
        if s._engine is None:
            policy = s.policy
            if policy is None and (data_dir() / "policy.toml").is_file():
                policy = data_dir() / "policy.toml"
            if s.store is None:
                data_dir().mkdir(parents=True, exist_ok=True)
                os.chmod(data_dir(), 0o700)
            s._engine = Engine.open(s.store, policy=policy, recognizer=s.backend)
        return s._engine, actor
    except FaceLedgerError as exc:
        raise fail(exc) from None
