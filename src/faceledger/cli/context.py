"""Global CLI options (store, policy, role, backend) and who is acting: the Engine decides.

The CLI acts as the operating-system user who runs it, in a role that user holds under
the deployment's policy (``[operators]``; see :mod:`faceledger.engine.identity` for the
bootstrap rule of a fresh data directory) — or, when ``FACELEDGER_API_KEY`` is set, as
that key's actor in the key's role. ``--role`` only chooses among the roles held;
``--actor`` is refused unless it names who is acting anyway.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceledger import config
from faceledger.cli.render import err_console, fail
from faceledger.errors import FaceLedgerError

__all__ = ["Settings", "engine_of", "global_options"]


@dataclass
class Settings:
    store: str | None
    policy: Path | None
    actor: str | None
    role: str | None
    backend: str
    engine: object | None = None  # built once per invocation


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
        envvar="FACELEDGER_ACTOR", hidden=True,
        help="Refused unless it names who is acting: the CLI acts as your OS user (or FACELEDGER_API_KEY's actor).",
    )] = None,
    role: Annotated[Optional[str], typer.Option(
        envvar="FACELEDGER_ROLE",
        help="Which of the roles you hold to act in (admin, enroller, verifier, investigator, reviewer, auditor); "
             "the roles you hold come from the policy's [operators] table or FACELEDGER_API_KEY.")] = None,
    backend: Annotated[str, typer.Option("--backend", "-b", envvar="FACELEDGER_BACKEND",
                                         help="Model backend (see `faceledger models`).")] = "yunet-sface",
) -> None:
    """FaceLedger: face detection, verification and identification, accountable by construction."""
    ctx.obj = Settings(store, policy, actor, role, backend)


def settings_of(ctx: typer.Context) -> Settings:
    return ctx.obj if isinstance(ctx.obj, Settings) else Settings(None, None, None, None, "yunet-sface")


def engine_of(ctx: typer.Context, default_role: str | None = None):  # noqa: ANN201 - Engine, imported lazily
    """The Engine (built once) and the Actor this invocation acts as; errors become exit codes."""
    from faceledger.engine import Engine

    s = settings_of(ctx)
    try:
        directory = config.data_dir()
        if s.engine is None:
            if s.store is None:
                config.ensure_data_dir(directory)
            s.engine = Engine.open(s.store, policy=config.policy_file(s.policy, directory), recognizer=s.backend)
        engine = s.engine
        user = config.current_os_user()
        token = os.environ.get(config.API_KEY_ENV, "").strip()
        if token:
            return engine, engine.key_holder(token, s.role, via=user, claimed=s.actor)
        return engine, engine.operator(user, s.role, default_role=default_role,
                                       owner_uid=config.store_owner_uid(s.store), claimed=s.actor)
    except FaceLedgerError as exc:
        stop = fail(exc)
        if exc.details.get("field") == "role":
            err_console.print("choose one with --role ROLE (or FACELEDGER_ROLE)")
        raise stop from None
