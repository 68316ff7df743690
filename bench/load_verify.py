"""Load on the HTTP service: ``POST /v1/verify`` from a second process over loopback.

Starts ``faceledger serve`` as a child process on a fresh data directory (2 model workers,
a queue of 6, the default per-key rate limit of 600 requests a minute), then drives it from
this process with 1, 4 and 16 concurrent clients (one API key each, keep-alive connections),
each sending two 640x480 JPEGs built from LFW portraits (``Aaron_Peirsol_0001`` and ``_0002``
scaled to 480x480 and padded to 640x480 with replicated edges). Clients honour
``Retry-After`` on 503/429, like a well-behaved client. A last phase shares one key among 16
clients to show the per-key limit (429), and how fast refusals come back. Reported per phase:
successful verifications per second, p50/p95 latency of successful requests, the share of 503 and 429 answers, requests
that timed out (limit 30 s), and the server's CPU time per verification (a load-independent
cost; 2 cores / that cost is the capacity of an idle machine). Peer in the same run: the
same verification through ``Engine.verify`` in this process, without HTTP. The per-key limit
runs on a second server whose keys may send 60 requests a minute (bursts of 5). A second peer
runs the pipeline as it was before issue 12's last round (SFace on OpenCV, the subject searched
at 640 px only), for CPU per verification before/after in one run. Also: the server's peak RSS
(VmHWM) and the load average. Goals: at least 10 verifications/s with p95 under 300 ms at 4
clients, RSS under 1.5 GB, no timeouts (issue 4); p95 at most 250 ms at 4 clients (issue 12).

Run from the repository root (about 2 minutes)::

    .venv/bin/python bench/load_verify.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from _common import free_port, load_average, machine_rows, md_table, reproduce_command, testdata_dir

CLI = ("import typer\nfrom faceledger.cli.serve_command import register\n"
       "app = typer.Typer(add_completion=False)\napp.callback()(lambda: None)\nregister(app)\napp()\n")
TOKEN = re.compile(r"^\s+(flk_[0-9a-f]{12}_[A-Za-z0-9_-]{43})\s*$", re.M)
TIMEOUT_S = 30.0


def photo_640x480(path: Path) -> bytes:
    """A 640x480 JPEG (quality 90) of an LFW portrait: scaled to 480x480, edges replicated to 640."""
    from PIL import Image

    with Image.open(path) as im:
        square = np.asarray(im.convert("RGB").resize((480, 480), Image.BICUBIC))
    wide = np.pad(square, ((0, 0), (80, 80), (0, 0)), mode="edge")
    out = io.BytesIO()
    Image.fromarray(wide).save(out, "JPEG", quality=90)
    return out.getvalue()


class Server:
    """``faceledger serve`` in a child process; its admin token, CPU time and peak RSS."""

    def __init__(self, data_dir: Path, workers: int, queue: int, rate_per_minute: int = 600, burst: int = 60) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
        env.update({"FACELEDGER_MODEL_WORKERS": str(workers), "FACELEDGER_MODEL_QUEUE": str(queue),
                    "FACELEDGER_RETENTION_EVERY_HOURS": "0", "FACELEDGER_LOG_LEVEL": "warning",
                    "FACELEDGER_RATE_LIMIT_PER_MINUTE": str(rate_per_minute),
                    "FACELEDGER_RATE_LIMIT_BURST": str(burst)})
        self.proc = subprocess.Popen([sys.executable, "-c", CLI, "serve", "--data-dir", str(data_dir), "--port",
                                      str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=env)
        self.output: list[str] = []
        threading.Thread(target=lambda: self.output.extend(self.proc.stdout), daemon=True).start()  # type: ignore[arg-type]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit("faceledger serve exited:\n" + "".join(self.output))
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        match = TOKEN.search("".join(self.output))
        if match is None:
            sys.exit("no admin token in the server's output:\n" + "".join(self.output))
        self.admin = match.group(1)

    def new_key(self, actor: str, role: str = "verifier") -> str:
        r = httpx.post(self.url + "/v1/keys", json={"actor": actor, "role": role},
                       headers={"Authorization": f"Bearer {self.admin}"})
        r.raise_for_status()
        return r.json()["token"]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


@dataclass
class Phase:
    """What the clients of one phase saw."""

    name: str
    clients: int
    keys: int
    latencies: list[float] = field(default_factory=list)
    refusals: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    timeouts: int = 0
    errors: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    load: str = ""

    def add(self, status: int, latency: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 200:
            self.latencies.append(latency)
        elif status in (429, 503):
            self.refusals.append(latency)

    def row(self) -> list[str]:
        total = sum(self.statuses.values()) + self.timeouts + self.errors
        ok = self.statuses.get(200, 0)
        share = lambda s: f"{100 * self.statuses.get(s, 0) / total:.0f}%" if total else "–"  # noqa: E731
        p50, p95 = (np.percentile(np.array(self.latencies) * 1000, [50, 95]) if self.latencies else (np.nan, np.nan))
        other = total - ok - self.statuses.get(503, 0) - self.statuses.get(429, 0) - self.timeouts
        refused = f"{np.percentile(np.array(self.refusals) * 1000, 95):.0f}" if self.refusals else "–"
        return [self.name, str(self.clients), str(self.keys), str(total), f"{ok / self.seconds:.1f}", f"{p50:.0f}",
                f"{p95:.0f}", share(503), share(429), refused, str(self.timeouts), str(other),
                f"{1000 * self.cpu / ok:.0f}" if ok else "–", self.load]


def client(url: str, token: str, files: dict, phase: Phase, stop_at: float, lock: threading.Lock) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, timeout=TIMEOUT_S, headers=headers) as http:
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            try:
                r = http.post("/v1/verify", files=files, data={"purpose": "access_control"})
            except httpx.TimeoutException:
                with lock:
                    phase.timeouts += 1
                continue
            except httpx.HTTPError:
                with lock:
                    phase.errors += 1
                continue
            latency = time.perf_counter() - t0
            with lock:
                phase.add(r.status_code, latency)
            if r.status_code in (429, 503):
                time.sleep(min(float(r.headers.get("retry-after", "1")), 5.0))


def run_phase(server: Server, name: str, tokens: list[str], clients: int, files: dict, seconds: float) -> Phase:
    phase, lock = Phase(name, clients, len(set(tokens))), threading.Lock()
    cpu0, t0 = server.cpu_seconds(), time.monotonic()
    stop_at = t0 + seconds
    threads = [threading.Thread(target=client, args=(server.url, tokens[i % len(tokens)], files, phase, stop_at, lock))
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    phase.seconds, phase.cpu = time.monotonic() - t0, server.cpu_seconds() - cpu0
    phase.load = load_average().split(" on")[0]
    return phase


def peer(a: bytes, b: bytes, seconds: float, before: bool = False) -> list[str]:
    """The same verification through Engine.verify in this process (no HTTP), one at a time, with
    OpenCV at 1 thread as the server has it. ``before``: SFace on OpenCV and the subject searched at
    640 px only (the pipeline before issue 12's last round), for comparison in the same run."""
    from faceledger._cv import cv2
    from faceledger.engine import Actor, Engine
    from faceledger.governance.policy import Policy
    from faceledger.models.registry import load_backend
    from faceledger.recognizer import Recognizer

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    before_runtimes = {"sface_runtime": "opencv", "yunet_runtime": "opencv"} if before else {}
    recognizer = Recognizer(load_backend("yunet-sface", **before_runtimes))
    if before:
        recognizer.subject_first_side = None
    with tempfile.TemporaryDirectory() as tmp:
        from faceledger.store import open_store

        engine = Engine(open_store(f"sqlite:///{tmp}/peer.db"), recognizer=recognizer, policy=Policy.default())
        actor = Actor("bench", "verifier")
        engine.verify(actor, a, b)
        times, cpu0, t0 = [], time.process_time(), time.monotonic()
        while time.monotonic() - t0 < seconds:
            s = time.perf_counter()
            engine.verify(actor, a, b)
            times.append(time.perf_counter() - s)
        cpu = time.process_time() - cpu0
        engine.close()
    cv2.setNumThreads(threads)
    p50, p95 = np.percentile(np.array(times) * 1000, [50, 95])
    name = ("peer: before (SFace on OpenCV, subject searched at 640 px)" if before
            else "peer: Engine.verify in-process, no HTTP")
    return [name, "1", "–", str(len(times)),
            f"{len(times) / (time.monotonic() - t0):.1f}", f"{p50:.0f}", f"{p95:.0f}", "–", "–", "–", "–", "–",
            f"{1000 * cpu / len(times):.0f}", load_average().split(" on")[0]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="Duration of each phase (default 20).")
    parser.add_argument("--workers", type=int, default=2, help="Model workers of the server (default 2).")
    parser.add_argument("--queue", type=int, default=6, help="Queue of the server (default 6).")
    args = parser.parse_args()
    lfw = testdata_dir() / "lfw" / "images" / "Aaron_Peirsol"
    a, b = photo_640x480(lfw / "Aaron_Peirsol_0001.jpg"), photo_640x480(lfw / "Aaron_Peirsol_0002.jpg")
    files = {"photo_a": ("a.jpg", a, "image/jpeg"), "photo_b": ("b.jpg", b, "image/jpeg")}
    load_before = load_average()
    rows, rss = [], float("nan")
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data", args.workers, args.queue)
        try:
            tokens = [server.new_key(f"client-{i}") for i in range(16)]
            run_phase(server, "warm-up", tokens[:2], 2, files, 3)
            for clients in (1, 4, 16):
                rows.append(run_phase(server, f"{clients} client(s)", tokens[:clients], clients, files,
                                      args.seconds).row())
            rss = server.peak_rss_mb()
        finally:
            server.stop()
        limited = Server(Path(tmp) / "limited", args.workers, args.queue, rate_per_minute=60, burst=5)
        try:
            shared = [limited.new_key("shared-client")]
            rows.append(run_phase(limited, "16 clients, one key limited to 60/min", shared, 16, files,
                                  args.seconds / 2).row())
        finally:
            limited.stop()
    rows.append(peer(a, b, args.seconds / 2))
    rows.append(peer(a, b, args.seconds / 2, before=True))
    print("## HTTP service load: POST /v1/verify, two 640x480 JPEGs\n")
    print(md_table(["phase", "clients", "keys", "requests", "verifications/s", "p50 ms", "p95 ms", "503", "429",
                    "503/429 p95 ms", "timeouts", "other", "server CPU ms/verify", "load avg (1 min)"], rows))
    print(f"\nServer: {args.workers} model workers, queue {args.queue}, OpenCV 1 thread per worker; "
          f"peak RSS (VmHWM) {rss:.0f} MB. Load average before the run: {load_before}.")
    print("Goals: >= 10 verifications/s with p95 < 300 ms at 4 clients, RSS < 1.5 GB, no timeouts (issue 4); "
          "p95 <= 250 ms at 4 clients (issue 12). "
          "For scale: Azure Face's standard tier allows 10 transactions/s, AWS Rekognition 5.\n")
    print(md_table(["what", "value"], machine_rows()))
    print(f"\nReproduce: `{reproduce_command()}`")


if __name__ == "__main__":
    main()
