"""Rendering helpers shared by CLI commands: JSON views of results and error mapping."""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from faceledger.errors import (
    ConfigError,
    ConflictError,
    FaceLedgerError,
    InputError,
    ModelError,
    NotFoundError,
    RefusedError,
    StoreError,
)

__all__ = ["EXIT_CODES", "console", "err_console", "escape", "exit_for", "to_jsonable"]

#: Width of output that goes to a file or a pipe: wide enough that no table cell or line is clipped
#: (rich would otherwise assume 80 columns); ``COLUMNS`` still wins when set.
PIPE_WIDTH = 1000


def _width(stream: object) -> int | None:
    isatty = getattr(stream, "isatty", None)
    if "COLUMNS" in os.environ or (isatty is not None and isatty()):
        return None
    return PIPE_WIDTH


console = Console(width=_width(sys.stdout))
err_console = Console(stderr=True, width=_width(sys.stderr))

#: Exit codes of every command (documented in docs/cli.md):
#: 0 success (for ``verify``: same person; ``identify``: candidates found; ``ledger verify``: intact),
#: 1 the negative answer (different people, no match, ledger not intact), 2 bad input,
#: 3 model or backend problem, 4 configuration problem, 5 other FaceLedger error,
#: 6 refused by a rule (permission, consent, authorization, prohibited use, rate limit),
#: 7 not found, 8 conflict, 9 storage problem.
EXIT_CODES = {"ok": 0, "no_match": 1, "input": 2, "model": 3, "config": 4, "other": 5, "refused": 6,
              "not_found": 7, "conflict": 8, "store": 9}
_BY_CLASS = ((InputError, "input"), (ModelError, "model"), (ConfigError, "config"), (RefusedError, "refused"),
             (NotFoundError, "not_found"), (ConflictError, "conflict"), (StoreError, "store"))


def exit_for(exc: FaceLedgerError) -> int:
    for cls, name in _BY_CLASS:
        if isinstance(exc, cls):
            return EXIT_CODES[name]
    return EXIT_CODES["other"]


def fail(exc: FaceLedgerError) -> typer.Exit:
    """Print ``exc`` as one clear line on stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error[/] [dim]({exc.code})[/]: {escape(exc.message)}", highlight=False)
    return typer.Exit(exit_for(exc))


def to_jsonable(value: Any) -> Any:
    """Dataclasses, tuples, numpy scalars and datetimes to plain JSON values (NaN becomes null)."""
    if is_dataclass(value) and not isinstance(value, type):
        value = {k: v for k, v in asdict(value).items() if k != "vector"}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(to_jsonable(value), indent=2))
