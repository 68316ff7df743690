"""Calibrate a backend's decision thresholds on LFW View 1 (training part) and write them.

Set: every image named in ``pairsDevTrain.txt`` (3,443 images of 2,132 people; LFW's two names
of one man, Joseph and Sepp Blatter, counted as one person: ``ALIASES``). Genuine =
every same-person pair among them, impostor = every different-person pair (about 5.9
million), so FMR 1e-4 rests on hundreds of false matches, not on a handful. One template
per image (the face nearest the centre); an image without a face is kept and its pairs
score -1 (non-match), counted in the output.

For each target FMR down to 1e-5 the threshold is the smallest one whose FMR on those
impostor pairs is at most the target (``faceledger.core.metrics.threshold_at_fmr``); the
measured FMR and FNMR at it are recorded with the dataset's digest. Stricter points (1e-6,
1e-7, 1e-8, for large 1:N galleries) rest on too few or no false matches among 5.9 million
pairs, so they come from a generalized Pareto model of the impostor score tail above the
1e-3 point (:mod:`faceledger.evaluate.tail`), with a person-level bootstrap: each is the
95th percentile of the bootstrap's thresholds for its target, and publishes ``fmr_upper``,
the 95% upper bound of its FMR under the model. Every point publishes an ``fmr_upper``
(the empirical ones from the same bootstrap of the pairs). As a held-out check inside
View 1 the same thresholds are applied to ``pairsDevTest.txt`` (its 500 + 500 pairs and all
pairs among its images; no person is in both parts). View 2 is never touched here.

    .venv/bin/python bench/calibrate.py --backend yunet-sface
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from _common import REPO_ROOT, md_table, package_version, reproduce_command, testdata_dir
from faceledger.core import metrics
from faceledger.evaluate.lfw import dataset_digest, extended_scores, identity_of, pair_scores, read_pairs
from faceledger.evaluate.tail import TailFit, bootstrap_tail, fit_tail, tail_pairs
from faceledger.evaluate.templates import PhotoTemplates, TemplateCache, check_cache, compute_templates
from faceledger.recognizer import Recognizer

TARGETS = {"fmr1e-2": 1e-2, "fmr1e-3": 1e-3, "fmr1e-4": 1e-4, "fmr1e-5": 1e-5}
TAIL_TARGETS = {"fmr1e-6": 1e-6, "fmr1e-7": 1e-7, "fmr1e-8": 1e-8}
TAIL_FROM = "fmr1e-3"  # the tail model is fitted to the impostor scores above this point's threshold
LEVEL = 0.95  # confidence of the published bounds
#: One person under two names in LFW (Joseph S. "Sepp" Blatter): their pairs are genuine, not impostor.
#: Left as impostors, these 7 pairs were the 7 highest "impostor" scores of View 1 training (0.61-0.74).
ALIASES = {"Sepp_Blatter": "Joseph_Blatter"}


def identity_keys(keys: tuple[str, ...] | list[str]) -> list[str]:
    """Image keys with the person folder replaced by the person's one name (``ALIASES``)."""
    out = []
    for k in keys:
        person, rest = k.split("/", 1)
        out.append(f"{ALIASES.get(person, person)}/{rest}")
    return out
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
    p.add_argument("--rounds", type=int, default=200, help="person-level bootstrap rounds (default 200)")
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


@dataclass(frozen=True)
class TailPoints:
    """The bootstrap's results: upper bounds of the empirical points, and the model's points."""

    fit: TailFit
    empirical_upper: dict[str, float]
    points: dict[str, dict]  # name -> the thresholds-file entry
    check: list[list[str]]  # model vs data where both exist


def tail_points(t: PhotoTemplates, genuine: np.ndarray, points: dict, rounds: int) -> TailPoints:
    """Fit the impostor tail above the ``TAIL_FROM`` point; bound every point by a person-level bootstrap."""
    ok = np.asarray(t.ok, bool)
    people = np.unique([identity_of(k) for k in identity_keys(t.keys)], return_inverse=True)[1][ok]
    pairs = tail_pairs(t.vectors[ok], people, floor=min(p.threshold for p in points.values()))
    u = points[TAIL_FROM].threshold
    fit = fit_tail(pairs.scores, pairs.total, u)
    names = list(points)
    fits, fmrs = bootstrap_tail(pairs, u, [points[n].threshold for n in names], rounds=rounds)
    upper = {n: float(np.quantile(fmrs[:, j], LEVEL)) for j, n in enumerate(names)}
    out = {}
    g = np.sort(genuine)
    for name, target in TAIL_TARGETS.items():
        threshold = float(np.quantile([f.threshold(target) for f in fits], LEVEL))
        out[name] = {
            "target_fmr": target, "threshold": threshold, "measured_fmr": fit.fmr(threshold),
            "measured_fnmr": float(metrics.fnmr_at(g, threshold)),
            "fmr_upper": float(np.quantile([f.fmr(threshold) for f in fits], LEVEL)),
            "method": "tail model",
        }
    check = [[n, f"{points[n].threshold:.4f}", f"{fit.threshold(points[n].target_fmr):.4f}",
              f"{np.quantile([f.threshold(points[n].target_fmr) for f in fits], LEVEL):.4f}"]
             for n in names if points[n].target_fmr < points[TAIL_FROM].target_fmr]
    return TailPoints(fit, upper, out, check)


def thresholds_json(rec: Recognizer, points: dict, tail: TailPoints, calib: dict) -> dict:
    """The layout :mod:`faceledger.models.thresholds` reads."""
    empirical = {
        name: {
            "target_fmr": p.target_fmr,
            "threshold": p.threshold,
            "measured_fmr": p.fmr,
            "measured_fnmr": p.fnmr,
            "false_matches": round(p.fmr * p.n_impostor),
            "fmr_upper": tail.empirical_upper[name],
            "method": "empirical",
        }
        for name, p in points.items()
    }
    return {
        "model_id": rec.model_id,
        "operating_points": {**empirical, **tail.points},
        "default": DEFAULT_POINT,
        "calibration": calib,
    }


def tail_record(tail: TailPoints, rounds: int) -> dict:
    f = tail.fit
    return {
        "model": "generalized Pareto above the fmr1e-3 threshold, fitted by probability-weighted moments",
        "u": f.u, "p_u": f.p_u, "xi": f.xi, "sigma": f.sigma,
        "bounds": f"fmr_upper: {LEVEL:.0%} upper quantile over {rounds} person-level bootstrap rounds (people "
        "resampled with replacement, each pair weighted by how often both its people were drawn); tail-model "
        f"thresholds are the {LEVEL:.0%} upper quantile of the rounds' thresholds for the target",
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
        "identity_aliases": ALIASES,
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
    ext = extended_scores(identity_keys(t.keys), t.vectors, t.ok)
    rows = []
    for name, p in points.items():
        for label, g, i in (("500 + 500 pairs", s[y], s[~y]), ("all pairs", ext.genuine, ext.impostor)):
            fmr, fnmr = metrics.error_rates(g, i, p["threshold"])
            false = int(round(float(fmr) * i.size))
            rows.append([name, label, f"{g.size:,} / {i.size:,}", f"{float(fmr):.2e} ({false:,})",
                         f"{float(fnmr):.2%}"])
    return rows


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    root = testdata_dir() / "lfw"
    rec = Recognizer(args.backend, threads=args.threads)
    keys = read_pairs(root / "pairsDevTrain.txt").images()
    t = templates_for(rec, root, keys, args)
    ext = extended_scores(identity_keys(t.keys), t.vectors, t.ok)
    points = calibrate(ext.genuine, ext.impostor)
    tail = tail_points(t, ext.genuine, points, args.rounds)
    calib = calibration_record(rec, root, t, ext, time.perf_counter() - start)
    calib["tail"] = tail_record(tail, args.rounds)
    out = args.out or THRESHOLDS_DIR / f"{rec.model_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    written = thresholds_json(rec, points, tail, calib)
    out.write_text(json.dumps(written, indent=2) + "\n")

    print(f"## Calibration of `{args.backend}` ({rec.model_id}) on LFW View 1 training\n")
    print(f"{calib['images']:,} images, {len(t.failures)} without a face; {calib['genuine']:,} genuine and "
          f"{calib['impostor']:,} impostor pairs; EER {calib['eer']:.3%}; "
          f"templates {t.seconds:.0f} s ({t.cache_hits} from cache).\n")
    rows = [[n, p["method"], f"{p['target_fmr']:g}", f"{p['threshold']:.6f}", f"{p['measured_fmr']:.2e}",
             f"{p['fmr_upper']:.2e}", f"{p['measured_fnmr']:.2%}", f"{p.get('false_matches', '—')}"]
            for n, p in written["operating_points"].items()]
    print(md_table(["point", "method", "target FMR", "threshold", "FMR (measured or modelled)",
                    f"FMR {LEVEL:.0%} upper bound", "FNMR", "false matches"], rows))
    f = tail.fit
    print(f"\nTail model: generalized Pareto above u = {f.u:.4f} (p_u = {f.p_u:.2e}), xi = {f.xi:.3f}, "
          f"sigma = {f.sigma:.4f}; {args.rounds} person-level bootstrap rounds. Where the data can show it:\n")
    print(md_table(["point", "empirical threshold", "model threshold", f"model threshold, {LEVEL:.0%} upper"],
                   tail.check))
    if not args.no_check:
        print("\nHeld-out check on View 1 test (pairsDevTest.txt, people disjoint from training):\n")
        rows = devtest_check(rec, root, written["operating_points"], args)
        print(md_table(["point", "set", "genuine / impostor", "FMR", "FNMR"], rows))
    print(f"\nWrote {out} in {time.perf_counter() - start:.0f} s.\n\nReproduce: `{reproduce_command()}`")


if __name__ == "__main__":
    main()
