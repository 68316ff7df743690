"""LFW View 2 accuracy, end to end from the photos, for one or more backends in the same run.

For each backend, one template per image (the face nearest the centre, ``face="center"``);
an image without a face is kept and its pairs score -1 (a non-match), counted as
"failures to detect". Reported:

* **View 2, 10-fold**: for each fold, the accuracy-maximising threshold is chosen on the
  other nine and accuracy measured on this one; mean +- sample standard deviation.
* **View 2, TAR at FAR 1e-3** over its 3,000 genuine and 3,000 impostor pairs. With 3,000
  impostors that threshold sits between the 3rd and 4th highest impostor score: coarse.
* **Extended**: every genuine pair among the people with 2+ images in the test data (all
  9,056 images of the three protocol files) and every impostor pair among them (about 41
  million; ``--max-impostors`` samples fewer): TAR at FAR 1e-3 and 1e-4, EER.
* **Calibrated thresholds, out of sample**: the backend's packaged thresholds (calibrated on
  View 1 training images only, ``bench/calibrate.py``) applied to the View 2 pairs and to all
  pairs among the images *not* used for calibration: measured FMR and FNMR.

Templates are cached (``--cache``, default ``~/.cache/faceledger``), so reruns take seconds.

    .venv/bin/python bench/lfw_accuracy.py --backend yunet-sface --backend dlib
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from _common import load_average, md_table, reproduce_command, testdata_dir
from faceledger.core import metrics
from faceledger.errors import NotCalibratedError
from faceledger.evaluate.lfw import FAILED_SCORE, extended_scores, pair_scores, read_pairs
from faceledger.evaluate.templates import TemplateCache, check_cache, compute_templates, default_cache_dir
from faceledger.recognizer import Recognizer

PROTOCOL_FILES = ("pairs.txt", "pairsDevTrain.txt", "pairsDevTest.txt")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", action="append", required=True, help="backend name; repeat for peers")
    p.add_argument("--cache", type=Path, default=None, help="template cache folder")
    p.add_argument("--no-cache", action="store_true", help="compute every template, use no cache")
    p.add_argument("--max-impostors", type=int, default=None, help="sample the extended impostor pairs")
    p.add_argument("--json", type=Path, default=None, help="where to write all numbers as JSON")
    p.add_argument("--threads", type=int, default=2, help="OpenCV threads (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args()


def _rates(g: np.ndarray, i: np.ndarray, threshold: float) -> dict:
    fmr, fnmr = metrics.error_rates(g, i, threshold)
    return {"fmr": float(fmr), "fnmr": float(fnmr), "false_matches": int(round(float(fmr) * i.size)),
            "genuine": int(g.size), "impostor": int(i.size)}


def view2(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
    kf = metrics.kfold_accuracy(scores, same, folds)
    op = metrics.operating_point(scores[same], scores[~same], 1e-3)
    return {
        "accuracy_mean": kf.mean, "accuracy_std": kf.std, "accuracy_sem": kf.sem,
        "fold_accuracies": kf.accuracies.tolist(), "fold_thresholds": kf.thresholds.tolist(),
        "tar_at_far_1e-3": op.tar, "threshold_at_far_1e-3": op.threshold, "far_measured": op.fmr,
        "eer": metrics.eer(scores[same], scores[~same]).rate,
        "pairs_failed": int(np.count_nonzero(scores == FAILED_SCORE)),
    }


def extended(keys: list[str], vectors: np.ndarray, ok: np.ndarray, max_imp: int | None) -> tuple[dict, tuple]:
    ext = extended_scores(keys, vectors, ok, max_impostors=max_imp)
    g, i = np.sort(ext.genuine), np.sort(ext.impostor)
    ops = {k: metrics.operating_point(g, i, t) for k, t in (("1e-3", 1e-3), ("1e-4", 1e-4))}
    out = {
        "images": ext.n_images, "people_with_2_plus_images": ext.n_people_with_pairs,
        "genuine": int(g.size), "impostor": int(i.size), "impostor_total": ext.impostor_total,
        "genuine_failed": ext.genuine_failed, "impostor_failed": ext.impostor_failed,
        "eer": metrics.eer(g, i).rate,
        **{f"tar_at_far_{k}": op.tar for k, op in ops.items()},
        **{f"threshold_at_far_{k}": op.threshold for k, op in ops.items()},
    }
    return out, (g, i)


def calibrated(rec: Recognizer, v2_scores: tuple, heldout: tuple) -> dict:
    """FMR / FNMR at the packaged (View 1) thresholds on View 2 pairs and on held-out all-pairs."""
    th = rec.backend.thresholds
    try:
        th.get()
    except NotCalibratedError as exc:
        return {"error": str(exc)}
    out = {"calibration": {k: th.calibration.get(k) for k in ("dataset", "dataset_sha256", "date")}}
    for name, point in sorted(th.points.items()):
        out[name] = {
            "target_fmr": point.target_fmr, "threshold": point.threshold,
            "view2_pairs": _rates(*v2_scores, point.threshold),
            "heldout_all_pairs": _rates(*heldout, point.threshold),
        }
    return out


def run_backend(name: str, root: Path, args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    rec = Recognizer(name, threads=args.threads)
    keys = sorted({k for f in PROTOCOL_FILES for k in read_pairs(root / f).images()})
    if args.no_cache:
        t = compute_templates(rec, root / "images", keys, None, progress=not args.quiet)
    else:
        with TemplateCache(args.cache) as cache:
            t = compute_templates(rec, root / "images", keys, cache, progress=not args.quiet)
        check_cache(rec, root / "images", t)  # refuses templates cached by other code
    index = t.index()
    ps = read_pairs(root / "pairs.txt")
    s = pair_scores(ps.pairs, index, t.vectors, t.ok)
    y = np.array([p.same for p in ps.pairs])
    folds = np.array([p.fold for p in ps.pairs])
    ext, _ = extended(list(t.keys), t.vectors, t.ok, args.max_impostors)
    train = set(read_pairs(root / "pairsDevTrain.txt").images())
    rest = np.array([k not in train for k in t.keys])
    held_meta, held = extended([k for k in t.keys if k not in train], t.vectors[rest], t.ok[rest], None)
    return {
        "backend": name, "model_id": rec.model_id, "detector": rec.info.detector,
        "embedder": rec.info.embedder, "runtime": rec.info.runtime,
        "images": len(keys), "failures_to_detect": len(t.failures), "failed_images": t.failures,
        "template_seconds": round(t.seconds, 1), "templates_from_cache": t.cache_hits,
        "view2": view2(s, y, folds), "extended": ext,
        "heldout": {k: held_meta[k] for k in ("images", "genuine", "impostor")},
        "calibrated": calibrated(rec, (s[y], s[~y]), held),
        "seconds": round(time.perf_counter() - start, 1),
    }


def accuracy_table(results: list[dict]) -> str:
    rows = []
    for r in results:
        v, e = r["view2"], r["extended"]
        rows.append([
            f"`{r['backend']}`", f"{v['accuracy_mean']:.2%} +- {v['accuracy_std']:.2%}",
            f"{v['tar_at_far_1e-3']:.2%}", f"{e['tar_at_far_1e-3']:.2%}", f"{e['tar_at_far_1e-4']:.2%}",
            f"{e['eer']:.2%}", f"{r['failures_to_detect']} / {r['images']:,}", f"{r['seconds']:.0f} s",
        ])
    head = ["backend", "View 2 accuracy (10-fold)", "View 2 TAR @ FAR 1e-3 (coarse)",
            "extended TAR @ FAR 1e-3", "extended TAR @ FAR 1e-4", "extended EER",
            "failures to detect", "time"]
    return md_table(head, rows)


def calibrated_table(results: list[dict]) -> str:
    rows = []
    for r in results:
        c = r["calibrated"]
        if "error" in c:
            rows.append([f"`{r['backend']}`", "not calibrated", "", "", "", "", ""])
            continue
        for name in ("fmr1e-3", "fmr1e-4"):
            if name not in c:
                continue
            v2, ho = c[name]["view2_pairs"], c[name]["heldout_all_pairs"]
            rows.append([f"`{r['backend']}`", name, f"{c[name]['threshold']:.4f}",
                         f"{v2['fmr']:.2e} ({v2['false_matches']})", f"{v2['fnmr']:.2%}",
                         f"{ho['fmr']:.2e} ({ho['false_matches']:,})", f"{ho['fnmr']:.2%}"])
    head = ["backend", "point", "threshold (View 1)", "View 2 FMR (false matches)", "View 2 FNMR",
            "held-out all-pairs FMR (false matches)", "held-out FNMR"]
    return md_table(head, rows)


def main() -> None:
    args = parse_args()
    root = testdata_dir() / "lfw"
    results = [run_backend(name, root, args) for name in args.backend]
    r0 = results[0]
    print("## LFW (deep-funneled), end to end from the photos\n")
    print(accuracy_table(results))
    print(f"\nExtended: {r0['extended']['genuine']:,} genuine pairs among "
          f"{r0['extended']['people_with_2_plus_images']:,} people, {r0['extended']['impostor']:,} impostor "
          f"pairs, {r0['images']:,} images. View 2: 3,000 + 3,000 pairs in 10 folds; its TAR at "
          "FAR 1e-3 rests on 3 impostor pairs.\n")
    print("### At the thresholds calibrated on View 1 (out of sample)\n")
    print(calibrated_table(results))
    print(f"\nHeld-out set: the {r0['heldout']['images']:,} images not used for calibration "
          f"({r0['heldout']['genuine']:,} genuine, {r0['heldout']['impostor']:,} impostor pairs). "
          f"Load average at the end: {load_average()}.")
    out = args.json or default_cache_dir() / "results" / "lfw_accuracy.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": reproduce_command(), "results": results}, indent=2) + "\n")
    print(f"\nAll numbers: {out}\n\nReproduce: `{reproduce_command()}`")


if __name__ == "__main__":
    main()
