"""Helpers shared by the benchmark programs in ``bench/``.

Finding the test photos, timing with medians and percentiles, machine facts,
and Markdown tables. Times are in milliseconds unless a name says otherwise.
Nothing here imports a model: each program imports what it measures.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import socket
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "REPO_ROOT",
    "Stats",
    "cpu_model",
    "load_average",
    "machine_rows",
    "md_table",
    "package_version",
    "reproduce_command",
    "stats_of",
    "testdata_dir",
    "time_call",
    "time_call_cpu",
]

REPO_ROOT = Path(__file__).resolve().parents[1]


def testdata_dir() -> Path:
    """``$FACELEDGER_TESTDATA`` or ``<repo>/../shared/testdata``; exit with a clear message if absent."""
    root = Path(os.environ.get("FACELEDGER_TESTDATA") or REPO_ROOT.parent / "shared" / "testdata")
    if not (root / "lfw").is_dir() or not (root / "groups").is_dir():
        sys.exit(
            f"test photos not found at {root} (need lfw/ and groups/): "
            "set FACELEDGER_TESTDATA to the shared testdata folder"
        )
    return root


@dataclass(frozen=True, slots=True)
class Stats:
    """Summary of repeated timings, in milliseconds."""

    median: float
    p90: float
    runs: int

    def cell(self) -> str:
        """``median (p90)`` with a precision suited to the magnitude."""
        return f"{fmt_ms(self.median)} ({fmt_ms(self.p90)})"


def fmt_ms(ms: float) -> str:
    """Milliseconds with 3 significant-ish digits: ``4.21``, ``42.1``, ``421``."""
    if ms < 10:
        return f"{ms:.2f}"
    if ms < 100:
        return f"{ms:.1f}"
    return f"{ms:.0f}"


def stats_of(samples_s: Sequence[float]) -> Stats:
    """Median and 90th percentile (linear interpolation) of timings given in seconds."""
    if not samples_s:
        raise ValueError("no timing samples")
    ms = np.asarray(samples_s, dtype=np.float64) * 1000.0
    return Stats(median=float(statistics.median(ms)), p90=float(np.percentile(ms, 90)), runs=len(ms))


def time_call(fn: Callable[[], object], runs: int, warmup: int = 1) -> Stats:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times timed with ``perf_counter``."""
    return time_call_cpu(fn, runs, warmup)[0]


def time_call_cpu(fn: Callable[[], object], runs: int, warmup: int = 1) -> tuple[Stats, Stats]:
    """Like :func:`time_call`, returning (wall-clock, process CPU time) statistics.

    CPU time sums every thread of this process; with one thread it is the time the
    work needs even when other processes compete for the cores.
    """
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return stats_of(wall), stats_of(cpu)


def load_average() -> str:
    """The 1-minute load average against the core count, e.g. ``"0.12 on 2 cores"``."""
    try:
        return f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    except OSError:
        return "unknown"


def md_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table; cells are converted with ``str``."""
    def line(cells: Sequence[object]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    out = [line(headers), "|" + "|".join("---" for _ in headers) + "|"]
    out.extend(line(r) for r in rows)
    return "\n".join(out)


def package_version(dist: str) -> str:
    """Installed version of a distribution, or ``"not installed"``."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (falls back to ``platform.processor()``)."""
    try:
        for raw in Path("/proc/cpuinfo").read_text().splitlines():
            if raw.startswith("model name"):
                return raw.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gb() -> str:
    try:
        for raw in Path("/proc/meminfo").read_text().splitlines():
            if raw.startswith("MemTotal:"):
                return f"{int(raw.split()[1]) / 1024 / 1024:.1f} GB"
    except OSError:
        pass
    return "unknown"


def machine_rows() -> list[tuple[str, str]]:
    """(what, value) rows describing the machine and the versions of the measured stacks."""
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    opencv = next(
        (v for v in (package_version(d) for d in ("opencv-python-headless", "opencv-python",
                                                   "opencv-contrib-python")) if v != "not installed"),
        "not installed",
    )
    return [
        ("CPU", cpu_model()),
        ("cores (usable)", f"{cores} ({usable})"),
        ("memory", _mem_total_gb()),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("faceledger", package_version("faceledger")),
        ("opencv", opencv),
        ("dlib", package_version("dlib-bin") if package_version("dlib-bin") != "not installed"
         else package_version("dlib")),
        ("face_recognition", package_version("face_recognition")),
        ("numpy", package_version("numpy")),
        ("Pillow", package_version("pillow")),
    ]


def reproduce_command(argv: Sequence[str] | None = None) -> str:
    """The shell command that reruns this program from the repository root."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve()
    try:
        script_arg = str(script.relative_to(REPO_ROOT))
    except ValueError:
        script_arg = str(script)
    env = ""
    if os.environ.get("FACELEDGER_TESTDATA"):
        env = f"FACELEDGER_TESTDATA={shlex.quote(os.environ['FACELEDGER_TESTDATA'])} "
    return f"cd {shlex.quote(str(REPO_ROOT))} && {env}.venv/bin/python {shlex.join([script_arg, *argv[1:]])}"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server a benchmark starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
