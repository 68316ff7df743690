"""Where an installation keeps its things, and who is running: the one place for paths and
process-wide settings (the CLI, the service and the store all ask here).

The data directory is ``$FACELEDGER_DATA_DIR``, else ``$XDG_DATA_HOME/faceledger``, else
``~/.local/share/faceledger``::

    faceledger.db, faceledger.db.key    the SQLite store and its key-encryption key (0600)
    policy.toml                         the deployment policy (optional: the safe default otherwise)
    keys/, checkpoints/                 the service's checkpoint key pair and signed checkpoints

Environment variables read by the adapters: ``FACELEDGER_DATA_DIR``, ``FACELEDGER_STORE``,
``FACELEDGER_POLICY``, ``FACELEDGER_API_KEY`` (the CLI acts as that key's actor),
``FACELEDGER_ROLE``, ``FACELEDGER_BACKEND``, and the service's ``FACELEDGER_*`` settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote

__all__ = [
    "API_KEY_ENV",
    "DATA_DIR_ENV",
    "POLICY_FILE",
    "STORE_FILE",
    "OsUser",
    "current_os_user",
    "data_dir",
    "default_store_url",
    "ensure_data_dir",
    "owner_uid",
    "policy_file",
    "set_opencv_threads",
    "sqlite_path",
    "store_owner_uid",
]

DATA_DIR_ENV = "FACELEDGER_DATA_DIR"
API_KEY_ENV = "FACELEDGER_API_KEY"
STORE_FILE = "faceledger.db"
POLICY_FILE = "policy.toml"


def data_dir() -> Path:
    """The data directory (see the module docstring); not created here."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "faceledger"


def default_store_url(directory: Path | None = None) -> str:
    """``sqlite:///<data dir>/faceledger.db`` (an absolute path)."""
    return f"sqlite://{((directory or data_dir()) / STORE_FILE).resolve()}"


def policy_file(explicit: str | Path | None = None, directory: Path | None = None) -> Path | None:
    """``explicit``, else ``<data dir>/policy.toml`` when it exists, else None (the safe default policy)."""
    if explicit is not None:
        return Path(explicit).expanduser()
    candidate = (directory or data_dir()) / POLICY_FILE
    return candidate if candidate.is_file() else None


def sqlite_path(url: str) -> tuple[Path, dict[str, str]]:
    """The file path and query options of a ``sqlite:`` URL (``sqlite://``: the default file)."""
    from faceledger.errors import InputError

    rest = url[len("sqlite:"):]
    rest, _, query = rest.partition("?")
    if rest in ("", "//", "///"):
        path = data_dir() / STORE_FILE
    elif rest.startswith("//"):
        if not rest.startswith("///"):
            raise InputError(f"invalid SQLite URL {url!r}: use sqlite:///absolute/path.db or sqlite:relative.db")
        path = Path("/" + unquote(rest[2:]).lstrip("/"))
    else:
        path = Path(unquote(rest))
    return path, dict(parse_qsl(query))


def store_owner_uid(url: str | None) -> int | None:
    """Who set this installation up, for the CLI's bootstrap rule: the user id owning the directory
    of the SQLite database (the data directory by default); ``None`` for other stores (PostgreSQL:
    name the operators in the policy) or when that directory does not exist."""
    if url is None:
        return owner_uid(data_dir())
    if not url.lower().startswith("sqlite:"):
        return None
    return owner_uid(sqlite_path(url)[0].expanduser().absolute().parent)


def ensure_data_dir(directory: Path | None = None) -> Path:
    """Create the data directory if needed, readable by its owner only (0700); returns it."""
    path = directory or data_dir()
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def owner_uid(path: Path | None = None) -> int | None:
    """The numeric user id owning ``path`` (default: the data directory), or None if it does not exist."""
    try:
        return (path or data_dir()).stat().st_uid
    except FileNotFoundError:
        return None


@dataclass(frozen=True, slots=True)
class OsUser:
    """An operating-system account: its login name and numeric user id."""

    name: str
    uid: int

    @property
    def credential(self) -> str:
        """How the ledger names this account: ``os:<name>``."""
        return f"os:{self.name}"


def current_os_user() -> OsUser:
    """The account this process runs as (effective user id; the name from the password database)."""
    uid = os.geteuid()
    try:
        import pwd

        name = pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):  # no password database entry (e.g. a container's arbitrary uid)
        name = f"uid-{uid}"
    return OsUser(name, uid)


def set_opencv_threads(n: int) -> None:
    """Let OpenCV use ``n`` threads in this process (``0``: its default)."""
    if n > 0:
        from faceledger._cv import cv2

        cv2.setNumThreads(n)
