"""The full FaceLedger evaluation on LFW View 2 with the per-image gender labels, timed, per backend.

Dataset: every image named by ``pairs.txt`` (View 2; 7,701 images of 4,281 people).
Labels: Afifi & Abdelhamed's ``female_names.txt`` / ``male_names.txt`` (annotation files,
never inferred from faces; a photo in both lists is left unlabelled). For each backend
it runs :func:`faceledger.evaluate.run.evaluate` (templates from the photos with the
template cache, all genuine pairs, 1,000,000 sampled impostor pairs, subject-bootstrap
intervals, per-gender FMR/FNMR at the backend's packaged default threshold, 1:N) and
writes ``evaluation.json`` + ``evaluation.html`` under ``--out/<backend>/``. Give
``--cache`` a fresh folder to time a cold run.

    .venv/bin/python bench/evaluate_lfw.py --backend yunet-sface --backend dlib
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import load_average, machine_rows, md_table, reproduce_command, testdata_dir
from faceledger.evaluate.dataset import labels_from_name_lists, load_dataset
from faceledger.evaluate.report import write_report
from faceledger.evaluate.run import EvaluationConfig, evaluate
from faceledger.recognizer import Recognizer


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", action="append", required=True, help="backend name; repeat for peers")
    p.add_argument("--cache", type=Path, default=None, help="template cache folder (default ~/.cache/faceledger)")
    p.add_argument("--no-cache", action="store_true", help="compute every template, use no cache")
    p.add_argument("--out", type=Path, default=Path("/tmp/faceledger-lfw-evaluation"), help="report folder")
    p.add_argument("--replicates", type=int, default=200, help="bootstrap replicates per interval")
    p.add_argument("--max-impostors", type=int, default=1_000_000, help="impostor pairs sampled")
    p.add_argument("--threads", type=int, default=2, help="OpenCV threads")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args()


def pct(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def ci(iv: dict) -> str:
    return f"{pct(iv['estimate'])} [{pct(iv['low'])}, {pct(iv['high'])}]"


def ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def main() -> None:
    args = parse_args()
    lfw = testdata_dir() / "lfw"
    ds = load_dataset(lfw)
    labels = labels_from_name_lists(ds, "gender", {"female": lfw / "female_names.txt", "male": lfw / "male_names.txt"})
    cfg = EvaluationConfig(max_impostors=args.max_impostors, replicates=args.replicates, cache_dir=args.cache,
                           use_cache=not args.no_cache, progress=not args.quiet)
    summary, groups = [], []
    for name in args.backend:
        start, cpu = time.perf_counter(), time.process_time()
        rec = Recognizer(name, threads=args.threads)
        r = evaluate(ds, labels, rec, cfg)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        write_report(r, args.out / name)
        v, t, op = r["verification"], r["templates"], r["operating_threshold"]
        p3 = v["fnmr_at_fmr"]["fmr0.001"]
        summary.append([name, f"{t['computed']} / {t['cache_hits']}", f"{t['seconds']:.0f}", f"{seconds:.0f}",
                        f"{cpu:.0f}",
                        f"{pct(r['protocol']['accuracy_mean'], 2)} ± {pct(r['protocol']['accuracy_std'], 2)}",
                        pct(v["eer"]), ci(p3["fnmr_interval"]), t["failures_to_acquire"]])
        g = r["groups"][0]
        for row in [g["overall"], *g["groups"]]:
            groups.append([name, f"{op['threshold']:.4f} ({op['name']})", row["group"], row["n_genuine"],
                           ci(row["fnmr"]), row["n_impostor"], ci(row["fmr"]),
                           ratio(row["fmr_ratio"])])
        groups.append([name, "", "max/min", "", ratio(g["fnmr_max_min_ratio"]), "", ratio(g["fmr_max_min_ratio"]), ""])
    print(f"## LFW View 2 evaluation ({len(ds.keys)} images, {ds.n_identities} people)\n")
    print(md_table(["backend", "templates computed / cached", "template s", "total s", "CPU s", "10-fold accuracy",
                    "EER", "FNMR at FMR 1e-3 [95% CI]", "failures to acquire"], summary))
    print("\n### Per gender at the backend's default operating threshold (one threshold for all groups)\n")
    print(md_table(["backend", "threshold", "group", "genuine", "FNMR [95% CI]", "impostor (same group)",
                    "FMR [95% CI]", "FMR / overall"], groups))
    print("\n" + md_table(["machine", ""], machine_rows() + [("load average", load_average())]))
    print(f"\nReports: {args.out}/<backend>/evaluation.html\n\nReproduce: `{reproduce_command()}`")


if __name__ == "__main__":
    main()
