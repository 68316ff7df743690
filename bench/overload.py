"""Overload, slow clients and full disks: does the service keep its promises (issue 14)?

Starts ``faceledger serve`` (as ``bench/load_verify.py`` does: 2 model workers, queue 6; the
per-key rate limit off, so capacity is what is measured) and:

1. **Capacity**: 4 closed-loop clients send ``POST /v1/verify`` (two 640x480 JPEGs) for
   ``--seconds``; verifications per second = C.
2. **Overload at 2x and 10x C** (10x twice, to see whether memory settles; ``--rates`` adds
   phases at absolute rates, e.g. 128 req/s, an idle machine's 10x, on a loaded one): an
   open-loop arrival of 2C and 10C requests per second for ``--seconds`` (a request is sent on
   schedule whether or not earlier ones came back), from a lean generator (:class:`RawClient`:
   requests encoded once, written whole on kept-alive sockets; httpx cost 17 ms of CPU per
   request and, at 10x, was itself the queue). Reported: answers by status, p50/p95 latency of
   successes and of refusals from the scheduled send, refusals without ``Retry-After``, requests
   with no answer within 30 s (hung), connection errors (resets), the server's RSS before and
   after (memory flat?), the ledger: verifications answered 200 against ``verify`` entries written
   in the phase; and, to tell the generator's delay from the server's: the generator's send lag
   (scheduled vs actual start), its CPU and event-loop lag, and the server's own view from its
   metrics (time of the refusals made on the headers, time of ``/v1/verify``, its event-loop lag).
   Why each request was refused is counted from the answers' ``detail``.
3. **Half-open connections**: 600 and 1000 sockets that stop in the middle of their headers are
   held; ``/healthz`` and ``GET /v1/me`` are timed while they are held, and the time until the
   server has closed every one of them is measured (header deadline: 10 s).
4. **Disk-full rounds** (``--disk-rounds``, root or user namespaces needed): the accountable
   workload of ``tests/store/disk_full_child.py`` on tmpfs filesystems of 16-32 MiB filled to
   ENOSPC and then given back 0-512 KiB (so some writes fit before the next ENOSPC): refusals,
   acknowledged writes, writes lost, integrity, recovery.

The peer in the same run is the capacity phase (1.) itself: the overload phases are read
against it. Run from the repository root (about 3 minutes)::

    .venv/bin/python bench/overload.py [--seconds 15] [--disk-rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

from _common import REPO_ROOT, load_average, machine_rows, md_table, reproduce_command, testdata_dir
from load_verify import Server, photo_640x480, run_phase

HUNG_S = 30.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def verify_entries(server: Server, auditor: str, after_seq: int) -> tuple[int, int, int]:
    """(ok verify entries after ``after_seq``, all entries after it, the head seq)."""
    r = httpx.get(server.url + "/v1/ledger/export", params={"start_seq": after_seq + 1},
                  headers={"Authorization": f"Bearer {auditor}"}, timeout=120)
    r.raise_for_status()
    rows = [json.loads(line) for line in r.text.splitlines() if line.strip()]
    ok = sum(1 for e in rows if e.get("operation") == "verify" and e.get("outcome") == "ok")
    head = max((e["seq"] for e in rows), default=after_seq)
    return ok, len(rows), head


def scrape(server: Server) -> dict[tuple[str, str], float]:
    """The server's histogram buckets now: (series with labels, le) -> cumulative count."""
    out: dict[tuple[str, str], float] = {}
    for line in httpx.get(server.url + "/metrics", timeout=30).text.splitlines():
        if "_bucket{" not in line:
            continue
        series, value = line.rsplit(" ", 1)
        labels = series[series.index("{") + 1:-1]
        le = labels[labels.index('le="') + 4:].split('"')[0]
        rest = ",".join(p for p in labels.split(",") if not p.startswith("le="))
        out[(series[:series.index("{")].removesuffix("_bucket") + "{" + rest + "}", le)] = float(value)
    return out


def bucket_quantiles(before: dict, after: dict, series: str, qs: tuple[float, ...] = (0.5, 0.95)) -> str:
    """Quantiles of the observations a histogram got between two scrapes, as bucket upper bounds
    ("<= 10 ms"): the server's own view of the phase."""
    rows = sorted(((float("inf") if le == "+Inf" else float(le), after[(s, le)] - before.get((s, le), 0.0))
                   for (s, le) in after if s == series), key=lambda r: r[0])
    total = rows[-1][1] if rows else 0
    if not total:
        return "–"
    cells = []
    for q in qs:
        bound = next(b for b, n in rows if n >= q * total)
        cells.append("> 30 s" if bound == float("inf") else f"≤ {bound * 1000:,.0f}")
    return " / ".join(cells) + f" (n={total:.0f})"


BOUNDARY = "faceledger-bench-boundary"


def encode_request(path: str, token: str, files: dict, fields: dict[str, str]) -> bytes:
    """A whole ``multipart/form-data`` POST, encoded once and sent as is by :class:`RawClient`."""
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts += [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"; filename="{name}"\r\n'
              f"Content-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n" for k, (name, data, ctype) in files.items()]
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


class RawClient:
    """A lean HTTP/1.1 client over asyncio streams with kept-alive connections: each request is written
    whole (pre-encoded) while its answer is read, so an answer sent before the upload ends is read at
    once; the connection is reused only after the whole request went out. It costs the generator a
    fraction of what httpx does per request, so the open-loop schedule holds on a shared machine."""

    def __init__(self, port: int) -> None:
        self.port, self.idle = port, []

    async def post(self, data: bytes) -> tuple[int, bool]:
        """(status, has Retry-After). A kept-alive connection that the server closed while it was idle
        (its keep-alive timeout) is replaced by a new one, once, as HTTP clients do."""
        if self.idle:
            reader, writer = self.idle.pop()
            try:
                return await self._exchange(reader, writer, data)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                writer.close()
                if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                    raise
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            return await self._exchange(reader, writer, data)
        except BaseException:
            writer.close()
            raise

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        data: bytes) -> tuple[int, bool]:
        writer.write(data)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower().split("\r\n")
        status = int(head[0].split()[1])
        headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if status >= 400:
            detail = json.loads(body).get("detail", "")
            why = re.sub(r"about [0-9.]+ s", "about N s", detail.split(";")[0])
            GENERATOR.setdefault("why", Counter())[f"{status} {why[:100]}"] += 1
        await writer.drain()
        if headers.get("connection") == "close":
            writer.close()
        else:
            self.idle.append((reader, writer))
        return status, "retry-after" in headers

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def open_loop(port: int, tokens: list[str], files: dict, rate: float, seconds: float) -> list[tuple]:
    """Send ``rate`` requests/s for ``seconds`` on schedule; per request (status, latency s from the
    scheduled send, has Retry-After, lag s: how late this generator started it). Status 0: no answer
    within HUNG_S, -1: a connection error (reset or closed without an answer). The lag is this
    process's own queueing (it shares the cores with the server): a latency much larger than the
    lag is the server's."""
    client = RawClient(port)
    requests = [encode_request("/v1/verify", t, files, {"purpose": "access_control"}) for t in tokens]

    async def one(i: int, due: float) -> tuple:
        lag = time.monotonic() - due
        try:
            status, retry = await asyncio.wait_for(client.post(requests[i % len(requests)]), HUNG_S)
        except TimeoutError:
            return 0, time.monotonic() - due, False, lag
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            GENERATOR["errors"][f"{type(exc).__name__}: {exc}"[:80]] += 1
            return -1, time.monotonic() - due, False, lag
        return status, time.monotonic() - due, retry, lag

    tasks, start, n = [], time.monotonic(), int(rate * seconds)
    GENERATOR.update(cpu0=time.process_time(), lags=[])
    GENERATOR.setdefault("errors", Counter())
    watch = asyncio.create_task(_watch_loop(GENERATOR["lags"]))
    for i in range(n):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    out = list(await asyncio.gather(*tasks))
    watch.cancel()
    client.close()
    GENERATOR["cpu"] = time.process_time() - GENERATOR["cpu0"]
    return out


GENERATOR: dict = {}


async def _watch_loop(lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        t0 = loop.time()
        await asyncio.sleep(0.1)
        lags.append(loop.time() - t0 - 0.1)


def overload_row(server: Server, auditor: str, name: str, rate: float, tokens: list[str], files: dict,
                 seconds: float) -> list[str]:
    head0 = verify_entries(server, auditor, 0)[2]
    rss0 = rss_mb(server.proc.pid)
    before = scrape(server)
    results = asyncio.run(open_loop(server.port, tokens, files, rate, seconds))
    after = scrape(server)
    time.sleep(1.0)
    rss1 = rss_mb(server.proc.pid)
    written, _, _ = verify_entries(server, auditor, head0)
    status = Counter(r[0] for r in results)
    ok = [r[1] for r in results if r[0] == 200]
    refused = [r for r in results if r[0] in (429, 503)]
    p95 = lambda xs: "{:,.0f} / {:,.0f}".format(*np.percentile(np.array(xs) * 1000, [50, 95])) if xs else "–"  # noqa: E731
    lag = [r[3] for r in results]
    other = len(results) - status[200] - status[503] - status[429] - status[0] - status[-1]
    duration = 'faceledger_http_request_duration_seconds{{method="POST",route="{}"}}'
    early = bucket_quantiles(before, after, duration.format("(unmatched)"))
    routed = bucket_quantiles(before, after, duration.format("/v1/verify"))
    loop = bucket_quantiles(before, after, "faceledger_event_loop_lag_seconds{}", (0.5, 0.95, 1.0))
    return [name, f"{rate:.1f}", str(len(results)), str(status[200]), str(status[503]), str(status[429]),
            str(other), str(status[-1]), str(status[0]), p95(ok), p95([r[1] for r in refused]),
            str(sum(1 for r in refused if not r[2])), f"{rss0:.0f} → {rss1:.0f}", f"{status[200]} / {written}",
            "{:,.0f} / {:,.0f} / {:,.0f}".format(*np.percentile(np.array(lag) * 1000, [50, 95, 100])),
            early, routed, loop, "{:.1f} s CPU, loop lag p95 {:,.0f} ms max {:,.0f} ms".format(
                GENERATOR["cpu"], *np.percentile(np.array(GENERATOR["lags"]) * 1000, [95, 100])),
            load_average().split(" on")[0]]


# -- half-open connections --------------------------------------------------------------------------

def half_open_row(server: Server, held_count: int) -> list[str]:
    held = []
    for i in range(held_count):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        if i % 3:
            s.sendall(b"GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        held.append(s)
    t_held = time.monotonic()
    health, api, statuses = [], [], Counter()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for _ in range(20):
            t0 = time.perf_counter()
            statuses[http.get("/healthz").status_code] += 1
            health.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            statuses[http.get("/v1/me", headers={"Authorization": f"Bearer {server.admin}"}).status_code] += 1
            api.append(time.perf_counter() - t0)
    open_left = list(held)
    while open_left and time.monotonic() - t_held < 60:
        still = []
        for s in open_left:
            s.settimeout(0.01)
            try:
                if s.recv(1) == b"":
                    continue
            except (ConnectionResetError, BrokenPipeError):
                continue
            except TimeoutError:
                pass
            still.append(s)
        open_left = still
        time.sleep(0.2)
    closed_after = time.monotonic() - t_held
    for s in held:
        s.close()
    p = lambda xs: "{:.0f} / {:.0f}".format(*np.percentile(np.array(xs) * 1000, [50, 95]))  # noqa: E731
    answered = f"{statuses[200]} of {sum(statuses.values())}"
    return [str(held_count), answered, p(health), p(api), f"{held_count - len(open_left)} of {held_count}",
            f"{closed_after:.1f}", load_average().split(" on")[0]]


# -- disk-full rounds ---------------------------------------------------------------------------------

def disk_rounds(rounds: int, lfw: Path) -> list[list[str]]:
    if rounds <= 0:
        return []
    if shutil.which("unshare") is None:
        return [["–", "unshare not found: skipped", "", "", "", "", ""]]
    child = REPO_ROOT / "tests" / "store" / "disk_full_child.py"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    rows = []
    for i in range(rounds):
        size, leave = 16 + 4 * (i % 5), (0, 64, 128, 256, 512)[i % 5]
        with tempfile.TemporaryDirectory() as tmp:
            script = (f'mount -t tmpfs -o size={size}m faceledger-full "{tmp}" && '
                      f'exec "{sys.executable}" "{child}" "{tmp}" "{lfw}" {leave}')
            done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                  capture_output=True, text=True, env=env, timeout=600)
            if done.returncode != 0:
                done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
                                      capture_output=True, text=True, env=env, timeout=600)
        if done.returncode != 0:
            failed = "failed: " + done.stderr.strip()[-200:]
            rows.append([str(i + 1), f"{size} MiB, {leave} KiB left", failed, "", "", "", ""])
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        acked = sum(seen.count("ok") for seen in r["outcomes"].values())
        refusals = sum(seen.count("storage_full") for seen in r["outcomes"].values())
        lost = len(r["problems_full"]) + len(r["problems_after"])
        attempts = sum(map(len, r["outcomes"].values()))
        rows.append([str(i + 1), f"{size} MiB, {leave} KiB left", f"{refusals} storage_full of {attempts}",
                     str(acked), str(lost), r["integrity"],
                     "yes" if set(r["after_free"].values()) == {"ok"} else str(r["after_free"])])
    return rows


def phase_names(text: str) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for k in (float(x) for x in text.split(",")):
        out.append((f"{k:g}x capacity" + (", again" if any(k == seen for _, seen in out) else ""), k))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="Duration of each load phase (default 15).")
    parser.add_argument("--disk-rounds", type=int, default=5, help="Full-filesystem rounds (default 5; 0: none).")
    parser.add_argument("--overload", default="2,10,10", help="Overload phases, x capacity (default 2,10,10).")
    parser.add_argument("--rates", default="", help="Extra overload phases at these absolute rates, req/s "
                        "(e.g. 128: the idle machine's 10x on a loaded one).")
    parser.add_argument("--no-half-open", action="store_true", help="Skip the half-open connection rounds.")
    parser.add_argument("--disk-only", action="store_true", help="Only the disk-full rounds.")
    args = parser.parse_args()
    root = testdata_dir()
    if args.disk_only:
        print(md_table(["disk-full round", "tmpfs", "refusals", "writes acknowledged", "writes lost",
                        "integrity_check", "writes work after freeing space"], disk_rounds(args.disk_rounds,
                                                                                         root / "lfw" / "images")))
        print(f"\nLoad average: {load_average()}. Reproduce: `{reproduce_command()}`")
        return
    lfw = root / "lfw" / "images"
    a = photo_640x480(lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg")
    b = photo_640x480(lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg")
    files = {"photo_a": ("a.jpg", a, "image/jpeg"), "photo_b": ("b.jpg", b, "image/jpeg")}
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data", 2, 6, rate_per_minute=0)
        try:
            tokens = [server.new_key(f"client-{i}") for i in range(16)]
            auditor = server.new_key("auditor", "auditor")
            run_phase(server, "warm-up", tokens[:2], 2, files, 3)
            capacity = run_phase(server, "capacity", tokens[:4], 4, files, args.seconds)
            cap = capacity.statuses.get(200, 0) / capacity.seconds
            over = [overload_row(server, auditor, name, k * cap, tokens, files, args.seconds)
                    for name, k in phase_names(args.overload)]
            over += [overload_row(server, auditor, f"{r:g} req/s ({r / cap:.0f}x capacity)", r, tokens, files,
                                  args.seconds) for r in (float(x) for x in args.rates.split(",") if x)]
            half = [] if args.no_half_open else [half_open_row(server, n) for n in (600, 1000)]
            intact = httpx.post(server.url + "/v1/ledger/verify", headers={"Authorization": f"Bearer {auditor}"},
                                timeout=300).json()["ok"]
            peak = server.peak_rss_mb()
        finally:
            server.stop()
    disk = disk_rounds(args.disk_rounds, lfw)

    print("## Overload, slow clients and full disks (bench/overload.py)\n")
    print(f"Capacity (peer, same run): 4 closed-loop clients, {cap:.1f} verifications/s "
          f"(p95 {np.percentile(np.array(capacity.latencies) * 1000, 95):.0f} ms), "
          f"load {capacity.load}.\n")
    print(md_table(["phase", "offered req/s", "requests", "200", "503", "429", "other", "conn. errors",
                    "hung (>30 s)", "200 p50 / p95 ms", "503/429 p50 / p95 ms", "refusals without Retry-After",
                    "server RSS MB before → after", "verified 200 / ledger entries",
                    "generator send lag p50 / p95 / max ms", "server: refused before the body p50 / p95 ms",
                    "server: /v1/verify p50 / p95 ms", "server event-loop lag p50 / p95 / max ms", "generator",
                    "load avg (1 min)"], over))
    if GENERATOR.get("errors"):
        kinds = "; ".join(f"{n} x {e}" for e, n in GENERATOR["errors"].items())
        print(f"\nConnection errors seen by the generator: {kinds}.")
    print("\nWhy refused (all phases): " + "; ".join(f"{n} x {w}" for w, n in GENERATOR.get("why", {}).items()))
    print(f"\nLedger intact after the run: {intact}. Server peak RSS (VmHWM): {peak:.0f} MB.\n")
    if half:
        print(md_table(["half-open connections held", "/healthz and /v1/me answered 200", "/healthz p50 / p95 ms",
                        "/v1/me p50 / p95 ms", "closed by the server", "all closed after s", "load avg (1 min)"],
                       half))
    if disk:
        print()
        print(md_table(["disk-full round", "tmpfs", "refusals", "writes acknowledged", "writes lost",
                        "integrity_check", "writes work after freeing space"], disk))
    print(f"\nLoad average before the run: {load_before}.\n")
    print(md_table(["what", "value"], machine_rows()))
    print(f"\nReproduce: `{reproduce_command()}`")


if __name__ == "__main__":
    main()
