"""Everything one running service holds: the store, the engines, keys, limits and metrics.

:func:`build_service` opens (on first start: creates) the data directory and the store,
loads one copy of the models per model worker, and makes sure the deployment has a
checkpoint signing key pair and an admin API key — the key's token is returned once in
:attr:`Service.first_admin_token` and never stored.

Data directory layout::

    faceledger.db, faceledger.db.key    the SQLite store and its key-encryption key (0600)
    policy.toml                         the deployment policy (optional; the safe default otherwise)
    keys/checkpoint-ed25519.pem, .pub   the key pair that signs ledger checkpoints
    checkpoints/<seq>-<time>.json       signed checkpoints (ship them elsewhere)
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from faceledger import config
from faceledger.engine import SERVICE_ACTOR, Actor, Engine
from faceledger.errors import ConfigError
from faceledger.recognizer import Recognizer
from faceledger.records import Policy

from .metrics import Metrics
from .pool import ModelPool, RateLimiter, keep_model_heap
from .settings import Settings

__all__ = ["SETUP_ACTOR", "Service", "build_service"]

log = logging.getLogger("faceledger.server")

#: The checkpoint signing key, relative to the data directory (its public half: ``.pub``).
CHECKPOINT_KEY = Path("keys") / "checkpoint-ed25519.pem"

#: The actor of what the service does by itself (first-start set-up, scheduled retention); reserved:
#: the engine refuses to create an API key for it.
SETUP_ACTOR = SERVICE_ACTOR


@dataclass
class Warming:
    """Where loading the galleries' search indexes at start-up stands (see :meth:`Service.warm_galleries`)."""

    state: str = "off"  # "off" (not asked), "loading", "done" or "failed"
    galleries: int = 0  # galleries loaded so far
    total: int | None = None  # galleries to load, once listed
    templates: int = 0
    seconds: float = 0.0
    error: str | None = None  # the exception's kind (public on /readyz; the log has its message)

    def view(self) -> dict[str, Any]:
        out = {"state": self.state, "galleries": self.galleries, "templates": self.templates,
               "seconds": round(self.seconds, 3)}
        if self.total is not None:
            out["total"] = self.total
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class Service:
    """The state of one service process (see the module docstring)."""

    settings: Settings
    data_dir: Path
    gov: Engine
    pool: ModelPool[Engine]
    metrics: Metrics
    limiter: RateLimiter
    first_admin_token: str | None = None
    created: list[str] = field(default_factory=list)
    warming: Warming = field(default_factory=Warming)

    @property
    def policy(self) -> Policy:
        return self.gov.policy

    @property
    def checkpoint_key(self) -> Path:
        return self.data_dir / CHECKPOINT_KEY

    @property
    def checkpoint_public_key(self) -> Path:
        return self.data_dir / "keys" / "checkpoint-ed25519.pub"

    @property
    def checkpoint_dir(self) -> Path:
        return self.data_dir / "checkpoints"

    def checkpoint_files(self) -> list[Path]:
        return sorted(self.checkpoint_dir.glob("*.json")) if self.checkpoint_dir.is_dir() else []

    def system_actor(self) -> Actor:
        return Actor(SETUP_ACTOR, "admin", credential="service")

    def ready(self) -> dict[str, Any]:
        """What /readyz reports; raises if the store cannot be read."""
        status = self.gov.status()
        return {"status": "ready", "model_id": self.gov.recognizer.model_id, "model_workers": self.pool.size,
                "ledger_seq": status["ledger_seq"], "store": status["store"], "galleries": self.warming.view()}

    def warm_galleries(self) -> Warming:
        """Load every gallery's search index (``warm_galleries``): run once, on a thread, at start-up.

        Until it ends, /readyz answers 503 ``warming``, so a load balancer sends no search that would
        wait for a gallery's load (seconds per million templates). Searches that come anyway still
        work: they wait for the gallery or load it. A failure is logged and ends the warming; each
        gallery is then read when searched, as without it."""
        w = self.warming
        w.state, start = "loading", time.perf_counter()

        def step(name: str, done: int, total: int) -> None:
            w.galleries, w.total, w.seconds = done, total, time.perf_counter() - start

        try:
            held = self.gov.warm_galleries(step)
        except Exception as exc:  # noqa: BLE001 - searches load galleries themselves; readiness says why
            w.state, w.error, w.seconds = "failed", type(exc).__name__, time.perf_counter() - start
            log.warning("loading the galleries for search failed (each is read when searched): %s: %s",
                        w.error, exc)
        else:
            w.state, w.templates, w.seconds = "done", sum(held.values()), time.perf_counter() - start
            log.info("galleries loaded for search: %d gallery(ies), %d template(s) in %.1f s", len(held),
                     w.templates, w.seconds)
        return w

    def close(self) -> None:
        self.pool.close()
        self.gov.close()


def _data_dir(settings: Settings, created: list[str]) -> Path:
    path = settings.resolved_data_dir
    if not path.exists():
        path.mkdir(parents=True)
        created.append(f"data directory {path}")
    if not settings.store:
        os.chmod(path, 0o700)
    for stale in path.glob(".ledger-export-*.jsonl"):  # left by an export whose client went away
        stale.unlink(missing_ok=True)
    return path


#: What a first start writes as ``policy.toml``: nothing but comments, which is the safe default.
DEFAULT_POLICY_TEXT = """\
# FaceLedger deployment policy. No settings: the safe default (purpose access_control only,
# 1:N identification off). Change it from the web page's Setup tab or with PUT /v1/policy
# (validated and ledgered), or edit this file. Every key: docs/accountability.md.
"""


def _default_policy_file(data_dir: Path, created: list[str]) -> Path:
    """``<data dir>/policy.toml`` with the safe default, written on a first start without a policy, so
    that a policy changed later through the Engine has one file that every model worker reads."""
    path = data_dir / config.POLICY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(DEFAULT_POLICY_TEXT)
    created.append(f"policy {path} (the safe default: identification off)")
    return path


def _recognizers(settings: Settings, given: Sequence[Recognizer] | None) -> list[Recognizer]:
    config.set_opencv_threads(settings.opencv_threads)
    if given:
        return list(given)[: settings.model_workers]
    return [Recognizer(settings.backend) for _ in range(settings.model_workers)]


def build_service(
    settings: Settings,
    *,
    recognizers: Sequence[Recognizer] | None = None,
    clock: Callable[[], datetime] | None = None,
    new_admin_key: bool = False,
) -> Service:
    """Open or create everything the service needs (see the module docstring).

    ``recognizers`` reuses loaded models (one per model worker); ``clock`` replaces the
    engines' clock (tests); ``new_admin_key`` creates a fresh admin key even if one exists.
    """
    keep_model_heap()  # before the model threads make their malloc arenas (see its docstring)
    created: list[str] = []
    data_dir = _data_dir(settings, created)
    policy_file = settings.policy_file or _default_policy_file(data_dir, created)
    is_new = settings.store is None and not (data_dir / config.STORE_FILE).exists()
    opened = Engine.open(settings.store_url, policy=policy_file, recognizer=settings.backend)
    if is_new:
        created.append(f"store {settings.store_url}")
    try:
        _check_checkpoint_key(opened, data_dir)
        recs = _recognizers(settings, recognizers)
        workers = [opened.sharing_store(r, clock=clock) for r in recs]
        gov = opened.sharing_store(recs[0], clock=clock)
        metrics = Metrics()
        pool = ModelPool(workers, queue_size=settings.model_queue, wait_s=settings.queue_timeout_s,
                         retry_after_s=settings.retry_after_s, metrics=metrics, nice=settings.model_nice)
        service = Service(settings, data_dir, gov, pool, metrics,
                          RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst), created=created)
        _bootstrap(service, new_admin_key)
    except BaseException:
        opened.close()
        raise
    log.info("FaceLedger service: store %s, policy %s, %d model worker(s)", settings.store_url,
             policy_file or "(safe default)", service.pool.size)
    return service


def _check_checkpoint_key(engine: Engine, data_dir: Path) -> None:
    """Refuse to start with a checkpoint signing key that cannot sign or that others can read:
    a leaked key could forge checkpoints, and every ``POST /v1/ledger/checkpoints`` would fail."""
    key = data_dir / CHECKPOINT_KEY
    if not key.exists():
        return  # created by _bootstrap
    try:
        engine.check_checkpoint_key(key)
    except ConfigError as exc:
        raise ConfigError(f"the ledger checkpoint signing key cannot be used: {exc.message}. The service does "
                          "not start with it; if others may have read it, move it away and start again to "
                          "make a new key pair (keep the old public key to verify older checkpoints).",
                          key="checkpoint_key") from None


def _bootstrap(service: Service, new_admin_key: bool) -> None:
    """Create the checkpoint key pair and an admin API key if the deployment has none."""
    system = service.system_actor()
    if not service.checkpoint_key.exists():
        service.checkpoint_key.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(service.checkpoint_key.parent, 0o700)
        kid = service.gov.create_checkpoint_key(system, service.checkpoint_key, service.checkpoint_public_key)
        service.created.append(f"checkpoint signing key {kid} ({service.checkpoint_key})")
    if new_admin_key or not service.gov.has_admin_key():
        key, token = service.gov.create_key(system, service.settings.admin_actor, "admin", label="created at start-up")
        service.first_admin_token = token
        service.created.append(f"admin API key {key.key_id} for actor '{key.actor}'")


def sign_in_banner(service: Service, url: str) -> str:
    """The text printed at start-up: what was created and, once, how to sign in."""
    lines = [f"FaceLedger service: {url}  (data directory {service.data_dir})"]
    lines += [f"  created {what}" for what in service.created]
    if service.first_admin_token:
        lines += ["", "  Admin API key (shown only now; keep it somewhere safe):", "",
                  f"      {service.first_admin_token}", "",
                  f"  Sign in at {url}/#setup with it, or send it as 'Authorization: Bearer <key>'.",
                  "  The page's Setup tab walks you through a key for each person and role, the policy and",
                  "  identification (or POST /v1/keys). API reference: " + f"{url}/docs"]
    else:
        lines.append("  Sign in with an API key created earlier (start with --new-admin-key if the admin key is lost).")
    if not service.policy.identification.enabled:
        lines.append("  1:N identification is off in this policy (set [identification] enabled = true in policy.toml).")
    return "\n".join(lines)
