"""The long fuzz run of the decode-and-detect target (issue 14): cases, crashes, hangs, peak RSS.

Mutations of the corpus in ``tests/fuzz/corpus`` (see ``tests/fuzz/harness.py`` for the
target and the mutators), grouped by the seed's format (``jpeg``, ``png``, ``webp``,
``other``: everything else, including polyglots and non-images). Each format runs in its
own worker process, one after another (the machine is shared), so a crash of the
interpreter (a signal) is caught, recorded with the case that caused it, and the run goes
on. A case that takes longer than ``--timeout`` seconds is a hang. Peak RSS is each
worker's own high-water mark (models included). Findings are written to ``--findings``.

    .venv/bin/python bench/fuzz.py --cases 250000      # per format: 1M in total
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO_ROOT, load_average, md_table, reproduce_command

sys.path.insert(0, str(REPO_ROOT / "tests" / "fuzz"))
FORMATS = ("jpeg", "png", "webp", "other")
_EXT = {".jpg": "jpeg", ".png": "png", ".webp": "webp"}


def seeds_of(fmt: str) -> list[str]:
    from harness import corpus

    return [n for n in corpus() if _EXT.get(Path(n).suffix, "other") == fmt and not n.startswith("poly_")] + \
        ([n for n in corpus() if n.startswith("poly_")] if fmt == "other" else [])


class Hang(Exception):
    pass


def _alarm(signum, frame):  # noqa: ANN001, ARG001
    raise Hang()


def worker(fmt: str, cases: int, seed: int, timeout: float, progress: Path, findings: Path) -> dict:
    """Run ``cases`` mutated inputs of ``fmt``; return counts (runs in its own process)."""
    from harness import corpus, decode_and_detect, mutate

    from faceledger import Recognizer

    seeds, every = seeds_of(fmt), corpus()
    names = list(every)
    rec = Recognizer(threads=1)
    rng = random.Random(seed)
    outcomes: dict[str, int] = {}
    crashes = hangs = 0
    signal.signal(signal.SIGALRM, _alarm)
    fd = os.open(progress, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    start = time.perf_counter()
    for i in range(cases):
        case_seed = rng.getrandbits(64)
        os.pwrite(fd, f"{i} {case_seed:020d}\n".encode(), 0)
        crng = random.Random(case_seed)
        data = mutate(every[crng.choice(seeds)], crng, every[crng.choice(names)])
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            out = decode_and_detect(rec, data).split(":")[0]
        except Hang:
            hangs += 1
            out = "HANG"
            (findings / f"hang-{fmt}-{case_seed}.bin").write_bytes(data)
        except BaseException as exc:  # noqa: BLE001 - every other exception is a finding
            crashes += 1
            out = "CRASH"
            (findings / f"crash-{fmt}-{case_seed}.bin").write_bytes(data)
            (findings / f"crash-{fmt}-{case_seed}.txt").write_text(f"{type(exc).__name__}: {exc}"[:2000])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        outcomes[out] = outcomes.get(out, 0) + 1
    os.close(fd)
    return {"format": fmt, "cases": cases, "outcomes": outcomes, "crashes": crashes, "hangs": hangs,
            "seconds": time.perf_counter() - start,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_format(fmt: str, cases: int, seed: int, timeout: float, findings: Path) -> dict:
    """Run a worker process for ``fmt``; a worker killed by a signal counts as a crash and is restarted."""
    total = {"format": fmt, "cases": 0, "outcomes": {}, "crashes": 0, "hangs": 0, "seconds": 0.0, "peak_mb": 0.0}
    left, round_seed = cases, seed
    while left > 0:
        with tempfile.TemporaryDirectory() as tmp:
            progress = Path(tmp) / "progress"
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", fmt, "--cases", str(left), "--seed", str(round_seed),
                 "--timeout", str(timeout), "--progress", str(progress), "--findings", str(findings)],
                capture_output=True, text=True, cwd=REPO_ROOT,
            )
            if proc.returncode == 0:
                part = json.loads(proc.stdout.strip().splitlines()[-1])
                done = part["cases"]
            else:  # the interpreter died: a crash; record the case and go on after it
                index, case_seed = (progress.read_text().split() + ["0", "0"])[:2] if progress.exists() else ("0", "0")
                done = int(index) + 1
                (findings / f"died-{fmt}-{case_seed}.txt").write_text(proc.stderr[-4000:])
                part = {"cases": done, "outcomes": {"DIED": 1}, "crashes": 1, "hangs": 0, "seconds": 0.0,
                        "peak_mb": 0.0}
        for k, v in part["outcomes"].items():
            total["outcomes"][k] = total["outcomes"].get(k, 0) + v
        for k in ("cases", "crashes", "hangs", "seconds"):
            total[k] += part[k]
        total["peak_mb"] = max(total["peak_mb"], part["peak_mb"])
        left -= done
        round_seed += 1
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=20000, help="cases per format")
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds before a case is a hang")
    ap.add_argument("--findings", type=Path, default=Path(tempfile.gettempdir()) / "faceledger-fuzz-findings")
    ap.add_argument("--worker", choices=FORMATS, help=argparse.SUPPRESS)
    ap.add_argument("--progress", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.findings.mkdir(parents=True, exist_ok=True)
    if args.worker:
        print(json.dumps(worker(args.worker, args.cases, args.seed, args.timeout, args.progress, args.findings)))
        return
    t0 = time.perf_counter()
    print("## Fuzzing decode-and-detect\n")
    print(f"Reproduce: `{reproduce_command()}`\n\nLoad average at start: {load_average()}. "
          f"Findings (inputs that crashed or hung) go to `{args.findings}`.\n")
    rows, totals = [], {"cases": 0, "crashes": 0, "hangs": 0}
    for fmt in args.formats.split(","):
        print(f"  {fmt}: {args.cases} cases", file=sys.stderr)
        r = run_format(fmt, args.cases, args.seed, args.timeout, args.findings)
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items(), key=lambda kv: -kv[1]))
        rows.append([fmt, len(seeds_of(fmt)), r["cases"], r["crashes"], r["hangs"], f"{r['peak_mb']:.0f}",
                     f"{r['cases'] / max(r['seconds'], 1e-9):.0f}", outcomes])
        for k in totals:
            totals[k] += r[k]
    print(md_table(["format", "seeds", "cases", "crashes", "hangs", "peak RSS MB (worker, models included)",
                    "cases/s", "outcomes"], rows))
    print(f"\nTotal: {totals['cases']:,} cases, {totals['crashes']} crashes, {totals['hangs']} hangs. "
          f"Load average at the end: {load_average()}. Runtime {time.perf_counter() - t0:.0f} s.")


if __name__ == "__main__":
    main()
