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

Command-line options of ``faceledger serve`` win over both. The values of every source are
merged in that order and validated once by pydantic (conversion of environment text,
types, bounds); a misspelt key or a bad value is a :class:`~faceledger.errors.ConfigError` at
start-up naming the key and where it came from (the file, or the ``FACELEDGER_*`` variable).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from faceledger import config, tomlfile
from faceledger.errors import ConfigError

__all__ = ["ENV_PREFIX", "Settings", "load_settings"]

ENV_PREFIX = "FACELEDGER_"
MIB = 1024 * 1024


def _within(lo: float, hi: float) -> Any:
    return Field(ge=lo, le=hi)


class Settings(BaseModel):
    """How one FaceLedger service runs. Units are in the names: seconds, bytes, per minute.

    ``data_dir`` holds the SQLite store, its key file, the checkpoint key pair and the
    exported checkpoints; ``store`` overrides the store URL (e.g. ``postgresql://...``);
    ``policy`` is the deployment policy file (default ``<data_dir>/policy.toml`` if present).
    ``model_workers`` model runs (detect, verify, enroll, identify) run at once, each on its
    own copy of the models and its own thread, ``model_nice`` steps nicer than the event loop;
    up to ``model_queue`` more wait at most ``queue_timeout_s`` for one; anything beyond, or a
    request whose wait (estimated from the measured run times) would be longer, is answered 503
    with ``Retry-After: retry_after_s`` at once, on its headers.
    ``rate_limit_per_minute`` requests per API key (a token bucket of ``rate_limit_burst``;
    0 turns the limit off). ``max_request_bytes`` caps a request body (413 beyond);
    each photo is also capped by the engine (15 MB, 40 megapixels). ``max_requests`` requests are
    in flight at most (503 beyond; probes excepted); a connection must send its headers within
    ``header_timeout_s``, its body without a pause over ``body_timeout_s`` and at ``body_min_rate``
    bytes/s on average, and read the answer without a pause over ``send_timeout_s``; at most
    ``max_connections`` are open; an idle kept-alive one closes after ``keep_alive_s``.
    ``warm_galleries`` loads every gallery's search index at start-up (/readyz waits for it).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    host: str = "127.0.0.1"
    port: Annotated[int, _within(1, 65535)] = 8000
    data_dir: Path | None = None
    store: str | None = None
    policy: Path | None = None
    backend: str = "yunet-sface"
    model_workers: Annotated[int, _within(1, 64)] = 2
    model_queue: Annotated[int, _within(0, 1024)] = 6
    queue_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    retry_after_s: Annotated[int, _within(1, 3600)] = 1
    opencv_threads: Annotated[int, _within(0, 64)] = 1
    model_nice: Annotated[int, _within(0, 19)] = 5
    rate_limit_per_minute: Annotated[int, _within(0, 10**7)] = 600
    rate_limit_burst: Annotated[int, _within(1, 10**6)] = 60
    max_request_bytes: Annotated[int, _within(1024, 2**31)] = 32 * MIB
    max_enroll_photos: Annotated[int, _within(1, 100)] = 10
    idempotency_ttl_hours: Annotated[int, _within(1, 24 * 365)] = 24
    retention_every_hours: Annotated[float, Field(ge=0)] = 24.0
    admin_actor: Annotated[str, Field(min_length=1)] = "admin"
    metrics_public: bool = True
    warm_galleries: bool = True
    log_level: str = "info"
    # connections and requests (see server/protocol.py and docs/service.md)
    max_requests: Annotated[int, _within(1, 100_000)] = 256
    max_connections: Annotated[int, _within(16, 1_000_000)] = 2048
    header_timeout_s: Annotated[float, _within(0.1, 3600)] = 10.0
    body_timeout_s: Annotated[float, _within(0.1, 3600)] = 15.0
    body_min_rate: Annotated[int, _within(1, 10**10)] = 16 * 1024
    send_timeout_s: Annotated[float, _within(0.1, 3600)] = 30.0
    keep_alive_s: Annotated[int, _within(1, 3600)] = 5

    @field_validator("host", "backend", "log_level", "admin_actor", "store", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                raise ValueError("must not be empty")
        return value

    def __init__(self, _origin: Mapping[str, str] | None = None, **values: Any) -> None:
        """Validate ``values``; a bad one is a :class:`ConfigError` naming it (and, from
        :func:`load_settings`, where it came from: ``_origin`` maps names to sources)."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _config_error(exc, _origin or {}) from None

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
        """A copy with ``changes`` applied (``None`` values are ignored), validated again."""
        return Settings(**{**self.model_dump(), **{k: v for k, v in changes.items() if v is not None}})


_NAMES = tuple(Settings.model_fields)


def _config_error(exc: ValidationError, origin: Mapping[str, str]) -> ConfigError:
    """The first problem of ``exc`` as one line naming the setting and where its value came from."""
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else "?"
    where = origin.get(name, "setting")
    if err["type"] == "extra_forbidden":
        hint = get_close_matches(name, _NAMES, n=1)
        did = f"; did you mean '{hint[0]}'?" if hint else f" (known: {', '.join(sorted(_NAMES))})"
        return ConfigError(f"{where}: unknown setting {name!r}{did}", key=name)
    problem = err["msg"][0].lower() + err["msg"][1:]
    problem = problem.removeprefix("input ").removeprefix("value error, ")
    return ConfigError(f"{where}: {name} {problem}, got {err.get('input')!r}", key=name)


def _from_file(path: Path) -> dict[str, Any]:
    data = tomlfile.load(path, "settings file")
    if isinstance(data.get("server"), Mapping):
        data = {**{k: v for k, v in data.items() if k != "server"}, **data["server"]}
    if isinstance(data.get("data_dir"), str) and not Path(data["data_dir"]).expanduser().is_absolute():
        data["data_dir"] = str((path.parent / data["data_dir"]).resolve())
    return data


def _from_env(env: Mapping[str, str]) -> dict[str, str]:
    """The raw text of every ``FACELEDGER_<NAME>`` set (pydantic converts it)."""
    out = {}
    for name in _NAMES:
        text = env.get(ENV_PREFIX + name.upper())
        if text is not None and text != "":
            out[name] = text
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
    origin: dict[str, str] = {}
    if file is not None:
        found = _from_file(Path(file))
        values.update(found)
        origin.update(dict.fromkeys(found, str(file)))
    found = _from_env(env)
    values.update(found)
    origin.update({name: f"${ENV_PREFIX}{name.upper()}" for name in found})
    given = {k: v for k, v in overrides.items() if v is not None}
    values.update(given)
    origin.update(dict.fromkeys(given, "option"))
    return Settings(_origin=origin, **values)
