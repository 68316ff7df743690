"""``faceledger`` command line (Typer). Each command parses, calls the engine, renders."""

from __future__ import annotations

import typer

from faceledger.cli import core_commands

app = typer.Typer(
    name="faceledger",
    help="FaceLedger: face detection and verification, accountable by construction.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
core_commands.register(app)


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
