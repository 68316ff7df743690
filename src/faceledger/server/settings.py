"""Service settings: defaults, then a TOML settings file, then ``FACELEDGER_*`` environment variables.

Every setting has the same name in the file (top-level keys, or under a ``[server]``
table) and in the environment (upper-cased, prefixed with ``FACELEDGER_``)::

    # faceledger.toml
    host = "127.0.0.1"
    port = 8000
    data_dir = "/var/lib/faceledger"
    model_workers = 2
    rate_limit_per_minute = 600

    $ FACELEDGER_PORT=9000 faceledger serve --settings faceledger.toml

Command-line options of ``faceledger serve`` win over both. A misspelt key or a
value of the wrong type is a :class:`~faceledger.errors.ConfigError` at start-up.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from faceledger import config
from faceledger.errors import ConfigError

__all__ = ["ENV_PREFIX", "Settings", "load_settings"]

ENV_PREFIX = "FACELEDGER_"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """How one FaceLedger service runs. Units are in the names: seconds, bytes, per minute.

    ``data_dir`` holds the SQLite store, its key file, the checkpoint key pair and the
    exported checkpoints; ``store`` overrides the store URL (e.g. ``postgresql://...``);
    ``policy`` is the deployment policy file (default ``<data_dir>/policy.toml`` if present).
    ``model_workers`` model runs (detect, verify, enroll, identify) run at once, each on its
    own copy of the models; up to ``model_queue`` more wait at most ``queue_timeout_s`` for
    one; anything beyond is answered 503 with ``Retry-After: retry_after_s`` at once.
    ``rate_limit_per_minute`` requests per API key (a token bucket of ``rate_limit_burst``;
    0 turns the limit off). ``max_request_bytes`` caps a request body (413 beyond);
    each photo is also capped by the engine (15 MB, 40 megapixels). ``max_requests`` requests are
    in flight at most (503 beyond; probes excepted); a connection must send its headers within
    ``header_timeout_s``, its body without a pause over ``body_timeout_s`` and at ``body_min_rate``
    bytes/s on average, and read the answer without a pause over ``send_timeout_s``; at most
    ``max_connections`` are open; an idle kept-alive one closes after ``keep_alive_s``.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path | None = None
    store: str | None = None
    policy: Path | None = None
    backend: str = "yunet-sface"
    model_workers: int = 2
    model_queue: int = 6
    queue_timeout_s: float = 10.0
    retry_after_s: int = 1
    opencv_threads: int = 1
    rate_limit_per_minute: int = 600
    rate_limit_burst: int = 60
    max_request_bytes: int = 32 * MIB
    max_enroll_photos: int = 10
    idempotency_ttl_hours: int = 24
    retention_every_hours: float = 24.0
    admin_actor: str = "admin"
    metrics_public: bool = True
    log_level: str = "info"
    # connections and requests (see server/protocol.py and docs/service.md)
    max_requests: int = 256
    max_connections: int = 2048
    header_timeout_s: float = 10.0
    body_timeout_s: float = 15.0
    body_min_rate: int = 16 * 1024
    send_timeout_s: float = 30.0
    keep_alive_s: int = 5

    def __post_init__(self) -> None:
        checks = {
            "port": (1, 65535), "model_workers": (1, 64), "model_queue": (0, 1024), "retry_after_s": (1, 3600),
            "opencv_threads": (0, 64), "rate_limit_per_minute": (0, 10**7), "rate_limit_burst": (1, 10**6),
            "max_request_bytes": (1024, 2**31), "max_enroll_photos": (1, 100), "idempotency_ttl_hours": (1, 24 * 365),
            "max_requests": (1, 100_000), "max_connections": (16, 1_000_000), "header_timeout_s": (0.1, 3600),
            "body_timeout_s": (0.1, 3600), "body_min_rate": (1, 10**10), "send_timeout_s": (0.1, 3600),
            "keep_alive_s": (1, 3600),
        }
        for name, (lo, hi) in checks.items():
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ConfigError(f"setting {name} must be between {lo} and {hi}, got {value}", key=name)
        if self.queue_timeout_s <= 0 or self.retention_every_hours < 0:
            raise ConfigError("queue_timeout_s must be positive and retention_every_hours not negative")
        if not self.admin_actor.strip():
            raise ConfigError("setting admin_actor must not be empty", key="admin_actor")

    @property
    def resolved_data_dir(self) -> Path:
        """``data_dir``, else FaceLedger's data directory (``$FACELEDGER_DATA_DIR``, XDG, ``~/.local/share``)."""
        if self.data_dir is not None:
            return Path(self.data_dir).expanduser()
        return config.data_dir()

    @property
    def store_url(self) -> str:
        """``store``, else the SQLite file ``faceledger.db`` in the data directory."""
        return self.store or config.default_store_url(self.resolved_data_dir)

    @property
    def policy_file(self) -> Path | None:
        """``policy``, else ``<data dir>/policy.toml`` when it exists, else None (the safe default)."""
        return config.policy_file(self.policy, self.resolved_data_dir)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (``None`` values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


_FIELDS = {f.name: f for f in fields(Settings)}
_PATHS = {"data_dir", "policy"}


def _convert(name: str, value: Any, source: str) -> Any:
    """``value`` (TOML value or environment text) as the type of setting ``name``."""
    default = _FIELDS[name].default
    kind = type(default) if default is not None else (Path if name in _PATHS else str)
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if str(value).strip().lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).strip().lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(value)
        return Path(value) if kind is Path else value.strip()
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {name} must be a {kind.__name__}, got {value!r}", key=name) from None


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from None
    if isinstance(data.get("server"), Mapping):
        data = {**{k: v for k, v in data.items() if k != "server"}, **data["server"]}
    out = {}
    for key, value in data.items():
        if key not in _FIELDS:
            hint = get_close_matches(key, list(_FIELDS), n=1)
            did = f"; did you mean '{hint[0]}'?" if hint else f" (known: {', '.join(sorted(_FIELDS))})"
            raise ConfigError(f"{path}: unknown setting {key!r}{did}", key=key)
        out[key] = _convert(key, value, str(path))
    if "data_dir" in out and not out["data_dir"].is_absolute():
        out["data_dir"] = (path.parent / out["data_dir"]).resolve()
    return out


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out = {}
    for name in _FIELDS:
        text = env.get(ENV_PREFIX + name.upper())
        if text is not None and text != "":
            out[name] = _convert(name, text, f"${ENV_PREFIX}{name.upper()}")
    return out


def load_settings(
    file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Settings from the defaults, ``file`` (or ``$FACELEDGER_SETTINGS``), the environment, then
    ``overrides`` (``None`` values are ignored). Raises :class:`ConfigError` naming the bad key."""
    env = os.environ if env is None else env
    file = file or env.get(ENV_PREFIX + "SETTINGS") or None
    values: dict[str, Any] = {}
    if file is not None:
        values.update(_from_file(Path(file)))
    values.update(_from_env(env))
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - set(_FIELDS)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return Settings(**values)
