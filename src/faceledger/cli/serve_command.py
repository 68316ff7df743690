"""``faceledger serve``: run the HTTP service and its web page (uvicorn, one process).

On the first start on an empty data directory it creates the directory, the store, the
checkpoint key pair and an admin API key, and prints the key once with how to sign in.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from faceledger.cli.render import fail
from faceledger.errors import FaceLedgerError

__all__ = ["register", "serve"]


def serve(
    ctx: typer.Context,
    host: Annotated[Optional[str], typer.Option(help="Address to listen on (default 127.0.0.1: this machine only).")]
    = None,
    port: Annotated[Optional[int], typer.Option(help="TCP port (default 8000).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(
        help="Data directory: store, keys, checkpoints, policy.toml (default: FACELEDGER_DATA_DIR or "
             "~/.local/share/faceledger).")] = None,
    settings: Annotated[Optional[Path], typer.Option(
        "--settings", help="Settings file (TOML); FACELEDGER_* environment variables override it.")] = None,
    model_workers: Annotated[Optional[int], typer.Option(help="Model runs at once (default 2).")] = None,
    new_admin_key: Annotated[bool, typer.Option(help="Create and print a new admin API key.")] = False,
) -> None:
    """Serve the HTTP API (/v1, OpenAPI at /openapi.json) and the web page on http://HOST:PORT/."""
    import uvicorn

    from faceledger.server import create_app, load_settings
    from faceledger.server.service import sign_in_banner

    glob = ctx.obj
    try:
        conf = load_settings(settings, host=host, port=port, data_dir=data_dir, model_workers=model_workers,
                             store=getattr(glob, "store", None), policy=getattr(glob, "policy", None))
        backend = getattr(glob, "backend", None)
        if backend and backend != conf.backend and backend != "yunet-sface":
            conf = conf.replace(backend=backend)
        logging.basicConfig(level=conf.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        app = create_app(conf, new_admin_key=new_admin_key)
    except FaceLedgerError as exc:
        raise fail(exc) from None
    url = f"http://{'[' + conf.host + ']' if ':' in conf.host else conf.host}:{conf.port}"
    typer.echo(sign_in_banner(app.state.service, url), err=False)
    options = uvicorn_options(conf)
    count_cut_connections(app.state.service.metrics, options["http"])
    try:
        uvicorn.run(app, **options)
    finally:
        app.state.service.close()


def uvicorn_options(conf: Any) -> dict[str, Any]:
    """How uvicorn runs the app: the h11 protocol with read and send deadlines (server/protocol.py), no
    connection-counting ``limit_concurrency`` (the app limits requests in flight), file descriptors
    enough for ``max_connections``."""
    from faceledger.server.protocol import ConnectionLimits, guarded_protocol

    _raise_fd_limit(conf.max_connections + 256)
    limits = ConnectionLimits(header_timeout_s=conf.header_timeout_s, body_timeout_s=conf.body_timeout_s,
                              body_min_rate=conf.body_min_rate, send_timeout_s=conf.send_timeout_s,
                              max_connections=conf.max_connections, max_discard_bytes=conf.max_request_bytes)
    return {"host": conf.host, "port": conf.port, "log_level": conf.log_level, "proxy_headers": False,
            "server_header": False, "timeout_graceful_shutdown": 10, "http": guarded_protocol(limits),
            "timeout_keep_alive": conf.keep_alive_s, "limit_concurrency": None}


def count_cut_connections(metrics: Any, protocol: Any) -> None:
    """``faceledger_connections_cut_<why>`` in /metrics: connections the server cut (header, body or send
    deadline; ``refused``: over max_connections; ``discard``: an unread body over the discard cap), read
    from the protocol class at scrape time."""
    from faceledger.server.protocol import CUT_REASONS

    for why in CUT_REASONS:
        metrics.gauge(f"connections_cut_{why}", f"Connections cut since start: {why}.",
                      lambda why=why: protocol.cut.get(why, 0))


def _raise_fd_limit(wanted: int) -> None:
    """Raise the soft limit of open files towards ``wanted`` (never above the hard limit)."""
    try:
        import resource
    except ImportError:  # not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the ``faceledger`` command line."""
    app.command()(serve)
