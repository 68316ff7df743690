"""``faceledger`` command line (Typer). Each command parses, calls the engine, renders."""

from __future__ import annotations

import typer

from faceledger.cli import (
    core_commands,
    engine_commands,
    evaluate_commands,
    key_commands,
    oversight_commands,
    redact_commands,
    serve_command,
)
from faceledger.cli.context import global_options

app = typer.Typer(
    name="faceledger",
    help="FaceLedger: face detection, verification and identification, accountable by construction.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    callback=global_options,
)
core_commands.register(app)
engine_commands.register(app)
key_commands.register(app)
oversight_commands.register(app)
evaluate_commands.register(app)
serve_command.register(app)
redact_commands.register(app)


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
