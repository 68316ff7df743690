"""How long the service takes to be ready on a PostgreSQL store of a million templates, and what
its first search costs with and without loading the galleries at start-up (``warm_galleries``).

Uses the gallery kept by ``pg_scale.py`` (``--pg-dir``; build it there first). Each run starts
``faceledger serve`` (one model worker) on that database, with a fresh data directory, and
times from the start of the process: its first answer on ``/healthz``, and its first 200 on
``/readyz`` (with ``warm_galleries`` that is after every gallery is read), with the process's
RSS then. The peer, measured in the same run: the same service with ``warm_galleries = false``,
ready sooner, whose searches pay instead. That cost is timed in this process on fresh stores
(the service's request path adds the model's run, tens of ms): a store's first searches
(PostgreSQL's exact scans, until they have cost about a read), the one that reads the gallery
and the next, against the first search after ``store.warm()``.

The first start writes an admin API key (and its ledger entry) into the bench database; later
runs add nothing. Ports come from the operating system::

    .venv/bin/python bench/warm_start.py --pg-dir /work/scale/pg1m
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from _common import free_port, load_average, md_table, reproduce_command
from pg_scale import GALLERY, loaded_size, server_at, stop
from search_scale import rss_mb

ROOT = Path(__file__).resolve().parents[1]


def start_service(url: str, warm: bool, timeout: float) -> list[str]:
    """One start of ``faceledger serve``: seconds to /healthz, to /readyz 200, RSS at ready, the readiness body."""
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "FACELEDGER_STORE": url, "FACELEDGER_WARM_GALLERIES": str(warm).lower(),
               "FACELEDGER_RETENTION_EVERY_HOURS": "0", "PYTHONPATH": str(ROOT / "src")}
        cmd = [sys.executable, "-m", "faceledger.cli.main", "serve", "--data-dir", data, "--port", str(port),
               "--model-workers", "1"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        healthy = ready = None
        body: dict = {}
        try:
            while time.perf_counter() - t0 < timeout and proc.poll() is None:
                try:
                    if healthy is None and httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        healthy = time.perf_counter() - t0
                    if healthy is not None:
                        r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                        if r.status_code == 200:
                            ready, body = time.perf_counter() - t0, r.json()
                            break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            rss = rss_mb(proc.pid) if proc.poll() is None else float("nan")
        finally:
            proc.terminate()
            proc.wait(60)
    if ready is None:
        raise SystemExit(f"the service was not ready within {timeout} s (exit {proc.returncode})")
    g = body.get("galleries", {})
    loaded = f"{g.get('templates', 0):,} templates in {g.get('seconds', 0):.1f} s" if g.get("state") == "done" \
        else g.get("state", "?")
    return [f"warm_galleries = {str(warm).lower()}", f"{healthy:.1f}", f"{ready:.1f}", f"{rss:,.0f}", loaded,
            load_average()]


def first_searches(url: str, probe: np.ndarray) -> list[list[str]]:
    """The first searches of a fresh store, without and after ``warm()`` (each its own store object)."""
    from faceledger.store import open_store
    from faceledger.store.pg_memory import SQL_SCANS_PER_READ

    def timed(store) -> float:  # noqa: ANN001
        t0 = time.perf_counter()
        store.search(GALLERY, probe, k=5)
        return (time.perf_counter() - t0) * 1000

    n = SQL_SCANS_PER_READ
    with open_store(url, sync_seconds=0) as store:
        scans = [timed(store) for _ in range(n)]
        assert store._memory.galleries_held == 0, "the scans read the gallery"
        read, after = timed(store), timed(store)
    rows = [[f"no warm(): searches 1-{n} (PostgreSQL's exact scans of the partition): the 1st; median; "
             "all together", "-", f"{scans[0]:,.1f}; {np.median(scans):,.1f}; {sum(scans):,.0f}"],
            [f"no warm(): search {n + 1} (reads the gallery into memory)", "-", f"{read:,.1f}"],
            [f"no warm(): search {n + 2} (in memory)", "-", f"{after:,.1f}"]]
    with open_store(url, sync_seconds=0) as store:
        t0 = time.perf_counter()
        store.warm(GALLERY)
        warm_s = f"{time.perf_counter() - t0:.1f}"
        rows.append(["after store.warm() (as the service does): 1st search", warm_s, f"{timed(store):,.1f}"])
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pg-dir", type=Path, required=True, help="the data directory pg_scale.py built")
    p.add_argument("--size", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=2, help="starts of each kind, alternated")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--shared-buffers", default="3GB")
    args = p.parse_args()
    from faceledger.store import open_store

    server = server_at(args.pg_dir, args.shared_buffers)
    try:
        url = server.get_uri()
        with open_store(url, search="pgvector") as store:
            if loaded_size(store) < args.size:
                raise SystemExit(f"{args.pg_dir} does not hold the {args.size:,}-template gallery: build it with "
                                 "pg_scale.py --build-only")
            dimension = store.get_gallery(GALLERY).dimension
        rng = np.random.default_rng(7)
        probe = rng.standard_normal(dimension).astype(np.float32)
        probe /= np.linalg.norm(probe)
        starts = [start_service(url, warm, args.timeout) for _ in range(args.runs) for warm in (True, False)]
        searches = first_searches(url, probe)
    finally:
        stop(server)
    print(f"## The service's start on PostgreSQL with {args.size:,} templates in one gallery "
          f"({args.runs} starts of each, alternated; one model worker)\n")
    print(md_table(["start", "/healthz answers (s)", "/readyz 200 (s)", "RSS at ready (MB)", "galleries loaded",
                    "load avg"], starts))
    print("\nWhat the first searches cost in a fresh process (the store alone, no model):\n")
    print(md_table(["search", "warm() (s)", "time (ms)"], searches))
    print(f"\nReproduce: `{reproduce_command()}`")


if __name__ == "__main__":
    main()
