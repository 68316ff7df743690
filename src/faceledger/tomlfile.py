"""Reading TOML files, one way for every configuration FaceLedger reads (service settings, the
deployment policy, ONNX model specs): :mod:`tomllib`, and the same errors everywhere.

* ``cannot read <what> <path>: <reason>`` — missing, unreadable;
* ``<what> <path> is not UTF-8 text``;
* ``<what> <source> is not valid TOML: <parser's message with line and column>``.

Each raises :class:`~faceledger.errors.ConfigError`. What the values mean is checked by the
reader's own model (``server.settings.Settings``, ``governance.policy``, ``models.onnx_spec``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from faceledger.errors import ConfigError

__all__ = ["load", "parse", "read_text"]


def read_text(path: str | Path, what: str) -> str:
    """The text of ``path`` (UTF-8); ``what`` names the kind of file in errors ("policy file")."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None


def parse(text: str, what: str, source: str | Path) -> dict[str, Any]:
    """``text`` as TOML; ``source`` says where it came from in errors."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {source} is not valid TOML: {exc}") from None


def load(path: str | Path, what: str) -> dict[str, Any]:
    """Read and parse the TOML file ``path``."""
    return parse(read_text(path, what), what, path)
