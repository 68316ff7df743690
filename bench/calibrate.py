"""Calibrate a backend's decision thresholds on LFW View 1 (training part) and write them.

Set: every image named in ``pairsDevTrain.txt`` (3,443 images of 2,132 people). Genuine =
every same-person pair among them, impostor = every different-person pair (about 5.9
million), so FMR 1e-4 rests on hundreds of false matches, not on a handful. One template
per image (the face nearest the centre); an image without a face is kept and its pairs
score -1 (non-match), counted in the output.

For each target FMR the threshold is the smallest one whose FMR on those impostor pairs
is at most the target (``faceledger.core.metrics.threshold_at_fmr``); the measured FMR
and FNMR at it are recorded with the dataset's digest. As a held-out check inside View 1
the same thresholds are applied to ``pairsDevTest.txt`` (its 500 + 500 pairs and all pairs
among its images; no person is in both parts). View 2 is never touched here.

    .venv/bin/python bench/calibrate.py --backend yunet-sface
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np

from _common import REPO_ROOT, md_table, package_version, reproduce_command, testdata_dir
from faceledger.core import metrics
from faceledger.evaluate.lfw import dataset_digest, extended_scores, pair_scores, read_pairs
from faceledger.evaluate.templates import PhotoTemplates, TemplateCache, check_cache, compute_templates
from faceledger.recognizer import Recognizer

TARGETS = {"fmr1e-2": 1e-2, "fmr1e-3": 1e-3, "fmr1e-4": 1e-4, "fmr1e-5": 1e-5}
DEFAULT_POINT = "fmr1e-3"
THRESHOLDS_DIR = REPO_ROOT / "src" / "faceledger" / "models" / "thresholds"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", required=True, help="backend name, e.g. yunet-sface, dlib, fused")
    p.add_argument(
        "--cache", type=Path, default=None, help="template cache folder (default: ~/.cache/faceledger)"
    )
    p.add_argument("--no-cache", action="store_true", help="compute every template, read and write no cache")
    p.add_argument("--out", type=Path, default=None, help="thresholds JSON (default: the packaged file)")
    p.add_argument("--threads", type=int, default=2, help="OpenCV threads (default 2)")
    p.add_argument("--no-check", action="store_true", help="skip the held-out check on pairsDevTest.txt")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args()


def templates_for(rec: Recognizer, root: Path, keys: list[str], args: argparse.Namespace) -> PhotoTemplates:
    if args.no_cache:
        return compute_templates(rec, root / "images", keys, None, progress=not args.quiet)
    with TemplateCache(args.cache) as cache:
        t = compute_templates(rec, root / "images", keys, cache, progress=not args.quiet)
    check_cache(rec, root / "images", t)  # refuses templates cached by other code
    return t


def calibrate(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, metrics.OperatingPointResult]:
    g, i = np.sort(genuine), np.sort(impostor)  # sort once; later (stable) sorts are then linear
    return {name: metrics.operating_point(g, i, target) for name, target in TARGETS.items()}


def thresholds_json(rec: Recognizer, points: dict, calib: dict) -> dict:
    """The layout :mod:`faceledger.models.thresholds` reads."""
    return {
        "model_id": rec.model_id,
        "operating_points": {
            name: {
                "target_fmr": p.target_fmr,
                "threshold": p.threshold,
                "measured_fmr": p.fmr,
                "measured_fnmr": p.fnmr,
                "false_matches": round(p.fmr * p.n_impostor),
            }
            for name, p in points.items()
        },
        "default": DEFAULT_POINT,
        "calibration": calib,
    }


def calibration_record(rec: Recognizer, root: Path, t: PhotoTemplates, ext, seconds: float) -> dict:
    pairs_file = root / "pairsDevTrain.txt"
    roc_eer = metrics.eer(ext.genuine, ext.impostor)
    return {
        "dataset": "LFW View 1 training images (pairsDevTrain.txt, deep-funneled): all pairs among them",
        "dataset_sha256": dataset_digest(pairs_file, t.sha256),
        "dataset_sha256_method": "sha256 over hex(sha256(pairs file)), then each image's sha256 hex "
        "in sorted order, each followed by a newline",
        "images": len(t.keys),
        "people_with_2_plus_images": ext.n_people_with_pairs,
        "genuine": int(ext.genuine.size),
        "impostor": int(ext.impostor.size),
        "failures_to_detect": len(t.failures),
        # digests, not file names: the package ships no names of the people photographed
        "failed_image_sha256": sorted(sha for key, sha in zip(t.keys, t.sha256, strict=True) if key in t.failures),
        "genuine_pairs_failed": ext.genuine_failed,
        "impostor_pairs_failed": ext.impostor_failed,
        "score": "cosine similarity of unit templates; match when score >= threshold",
        "threshold_rule": "smallest threshold with FMR <= target (nextafter of the (k+1)-th highest "
        "impostor score, k = floor(target * impostors)); ties are rejected",
        "eer": roc_eer.rate,
        "roc_auc": metrics.roc_auc(ext.genuine, ext.impostor),
        "face_choice": "center",
        "detector": rec.info.detector,
        "embedder": rec.info.embedder,
        "runtime": rec.info.runtime,
        "faceledger": package_version("faceledger"),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": round(seconds, 1),
        "command": f"bench/calibrate.py --backend {rec.info.backend}",
    }


def devtest_check(rec: Recognizer, root: Path, points: dict, args: argparse.Namespace) -> list[list[str]]:
    """FMR / FNMR at the new thresholds on View 1's test part (official pairs and all pairs)."""
    ps = read_pairs(root / "pairsDevTest.txt")
    t = templates_for(rec, root, ps.images(), args)
    s = pair_scores(ps.pairs, t.index(), t.vectors, t.ok)
    y = np.array([p.same for p in ps.pairs])
    ext = extended_scores(list(t.keys), t.vectors, t.ok)
    rows = []
    for name, p in points.items():
        for label, g, i in (("500 + 500 pairs", s[y], s[~y]), ("all pairs", ext.genuine, ext.impostor)):
            fmr, fnmr = metrics.error_rates(g, i, p.threshold)
            rows.append([name, label, f"{g.size:,} / {i.size:,}", f"{float(fmr):.2e}", f"{float(fnmr):.2%}"])
    return rows


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    root = testdata_dir() / "lfw"
    rec = Recognizer(args.backend, threads=args.threads)
    keys = read_pairs(root / "pairsDevTrain.txt").images()
    t = templates_for(rec, root, keys, args)
    ext = extended_scores(list(t.keys), t.vectors, t.ok)
    points = calibrate(ext.genuine, ext.impostor)
    calib = calibration_record(rec, root, t, ext, time.perf_counter() - start)
    out = args.out or THRESHOLDS_DIR / f"{rec.model_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(thresholds_json(rec, points, calib), indent=2) + "\n")

    print(f"## Calibration of `{args.backend}` ({rec.model_id}) on LFW View 1 training\n")
    print(f"{calib['images']:,} images, {len(t.failures)} without a face; {calib['genuine']:,} genuine and "
          f"{calib['impostor']:,} impostor pairs; EER {calib['eer']:.3%}; "
          f"templates {t.seconds:.0f} s ({t.cache_hits} from cache).\n")
    rows = [[n, f"{p.target_fmr:g}", f"{p.threshold:.6f}", f"{p.fmr:.2e}", f"{p.fnmr:.2%}",
             f"{round(p.fmr * p.n_impostor):,}"] for n, p in points.items()]
    print(md_table(["point", "target FMR", "threshold", "measured FMR", "FNMR", "false matches"], rows))
    if not args.no_check:
        print("\nHeld-out check on View 1 test (pairsDevTest.txt, people disjoint from training):\n")
        rows = devtest_check(rec, root, points, args)
        print(md_table(["point", "set", "genuine / impostor", "FMR", "FNMR"], rows))
    print(f"\nWrote {out} in {time.perf_counter() - start:.0f} s.\n\nReproduce: `{reproduce_command()}`")


if __name__ == "__main__":
    main()
