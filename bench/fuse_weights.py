"""Choose the SFace weight of the ``fused`` backend on LFW View 1 (pairsDevTrain) only.

For every image that ``pairsDevTrain.txt`` names, YuNet finds the face nearest the
image centre; SFace and dlib's ResNet (on the YuNet box mapped to dlib's framing)
make one unit template each. Every pair of those images is then scored: the pairs
of the same person are genuine, all the others impostor (not only the 2,200 listed
pairs). For each weight ``w`` on a grid the fused score is ``w * cos_sface +
(1 - w) * cos_dlib`` and the weight that maximises the criterion is kept. The two
models alone (``w = 1`` and ``w = 0``) are the peers, measured in the same run.

``--box-study`` also runs dlib's HOG detector and compares the dlib descriptors made
from four boxes of the same face: dlib's own HOG box, the raw YuNet box, the YuNet box
mapped by ``YUNET_FRAME``, and a box derived from YuNet's eye landmarks.

Templates are cached (``--cache``, default /tmp/faceledger-fuse-cache) so reruns only
redo the scoring. Reproduce::

    .venv/bin/python bench/fuse_weights.py --box-study            # print the tables
    .venv/bin/python bench/fuse_weights.py --write                # also write fused.params.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from faceledger._cv import cv2
from faceledger.media.image import load_image
from faceledger.models import dlib_backend as db
from faceledger.models import fused
from faceledger.models.base import DetectOptions
from faceledger.recognizer import choose_face
from faceledger.types import Box, Face

REPO = Path(__file__).resolve().parents[1]
PARAMS_PATH = REPO / "src/faceledger/models/thresholds" / fused.PARAMS_FILE
FMRS = (1e-2, 1e-3, 1e-4)
CRITERION = "max mean TAR at FMR 1e-3 and 1e-4 over all same/different-person pairs among the images"
CACHE_VERSION = "v1"

_STATE: dict = {}


def testdata() -> Path:
    return Path(os.environ.get("FACELEDGER_TESTDATA", REPO.parent / "shared" / "testdata"))


def pair_images(pairs: Path) -> list[tuple[str, int]]:
    """Every (name, number) an LFW pairs file names, sorted."""
    seen: set[tuple[str, int]] = set()
    for line in pairs.read_text().splitlines()[1:]:
        p = line.split()
        if len(p) == 3:
            seen |= {(p[0], int(p[1])), (p[0], int(p[2]))}
        elif len(p) == 4:
            seen |= {(p[0], int(p[1])), (p[2], int(p[3]))}
    return sorted(seen)


def _init(study: bool) -> None:
    cv2.setNumThreads(1)
    backend = fused.load(weight_sface=0.5)
    _STATE.update(backend=backend, study=study)
    if study:
        _STATE["hog"] = db.DlibDetector(backend.embedder.dlib.models, "hog", 1)


def eye_boxes(landmarks: np.ndarray, centre: tuple[float, float], width: float) -> np.ndarray:
    """Square boxes placed from the eyes: centre ``mid + centre * iod``, side ``width * iod``."""
    le, re = landmarks[:, 0], landmarks[:, 1]
    iod = np.linalg.norm(re - le, axis=1)
    c = (le + re) / 2 + np.array(centre) * iod[:, None]
    side = width * iod
    return np.stack([c[:, 0] - side / 2, c[:, 1] - side / 2, side, side], axis=1)


def _features(path: str) -> dict | None:
    b = _STATE["backend"]
    rgb = load_image(path).rgb
    h, w = rgb.shape[:2]
    found = b.detector.detect(rgb, DetectOptions())
    if len(found) == 0:
        return None
    faces = [
        Face(Box(*map(float, bx)), tuple(map(tuple, lm)), float(s))  # type: ignore[arg-type]
        for bx, lm, s in zip(*found, strict=True)
    ]
    face = choose_face(faces, "center", w, h)
    box, marks = np.array([face.box.as_tuple()], np.float32), face.landmarks_array()[None]
    t_s, t_d = b.embedder.sface.embed(rgb, box, marks), b.embedder.dlib.embed(rgb, box, marks)
    out = {"sface": t_s[0], "dlib": t_d[0], "box": box[0]}
    if _STATE["study"]:
        out.update(_study_features(rgb, box, marks))
    return out


def _study_features(rgb: np.ndarray, box: np.ndarray, marks: np.ndarray) -> dict:
    models = _STATE["backend"].embedder.dlib.models
    plain = db.DlibEmbedder(models)
    hog = _STATE["hog"].detect(rgb, DetectOptions())
    out = {"raw": plain.embed(rgb, box, marks)[0]}
    # Centre offset and side in inter-ocular distances: medians of HOG boxes on these images.
    out["eyes"] = plain.embed(rgb, eye_boxes(marks, (-0.092, 0.482), 2.441), marks)[0]
    if len(hog):
        h, w = rgb.shape[:2]
        c = hog.boxes[:, :2] + hog.boxes[:, 2:] / 2
        k = int(np.argmin(((c - [w / 2, h / 2]) ** 2).sum(1)))
        out["hog_box"] = hog.boxes[k]
        out["hog"] = plain.embed(rgb, hog.boxes[k : k + 1], marks)[0]
    return out


def compute(images: list[tuple[str, int]], root: Path, args: argparse.Namespace) -> dict:
    """Per-image arrays (templates, boxes), from the cache when it matches."""
    paths = [str(root / "images" / n / f"{n}_{i:04d}.jpg") for n, i in images]
    key = hashlib.sha256(("\n".join(paths) + CACHE_VERSION + str(db.YUNET_FRAME)).encode()).hexdigest()[:16]
    study, plain = (Path(args.cache) / f"{kind}-{key}.npz" for kind in ("study", "fuse"))
    for cache in (study,) if args.box_study else (study, plain):  # a study cache has it all
        if cache.is_file():
            return dict(np.load(cache))
    cache = study if args.box_study else plain
    t0 = time.perf_counter()
    with Pool(args.workers, _init, (args.box_study,)) as pool:
        results = pool.map(_features, paths, chunksize=8)
    print(f"computed {len(paths)} images in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    arrays = _stack(results)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **arrays)
    return arrays


def _stack(results: list[dict | None]) -> dict:
    n = len(results)
    fields = {"sface": 128, "dlib": 128, "box": 4, "raw": 128, "eyes": 128, "hog": 128, "hog_box": 4}
    out = {k: np.full((n, d), np.nan, np.float32) for k, d in fields.items()}
    for i, r in enumerate(results):
        for k, v in (r or {}).items():
            if k in out:
                out[k][i] = v
    return out


def split_pairs(t: np.ndarray, ids: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of all genuine and all impostor pairs among the rows marked ``ok``."""
    t, ids = t[ok], ids[ok]
    iu = np.triu_indices(len(t), k=1)
    s = (t @ t.T)[iu]
    same = ids[iu[0]] == ids[iu[1]]
    return s[same], s[~same]


def metrics(gen: np.ndarray, imp: np.ndarray) -> dict:
    """TAR at each FMR in :data:`FMRS`, EER and AUC (genuine above impostor)."""
    desc = -np.sort(-imp)
    out = {f"tar@{f:g}": float(np.mean(gen > desc[int(f * len(imp))])) for f in FMRS}
    asc, g = desc[::-1], np.sort(gen)
    below = np.searchsorted(asc, g, side="left") + 0.5 * (
        np.searchsorted(asc, g, side="right") - np.searchsorted(asc, g, side="left"))
    out["auc"] = float(below.sum() / (len(g) * len(asc)))
    fmr = 1.0 - np.searchsorted(asc, g, side="left") / len(asc)  # threshold at each genuine score
    fnmr = np.arange(len(g)) / len(g)
    k = int(np.argmin(np.abs(fmr - fnmr)))
    out["eer"] = float((fmr[k] + fnmr[k]) / 2)
    return out


def criterion(m: dict) -> float:
    return (m["tar@0.001"] + m["tar@0.0001"]) / 2


def row(name: str, m: dict, extra: str = "") -> str:
    tars = " | ".join(f"{100 * m[f'tar@{f:g}']:.2f}" for f in FMRS)
    return f"| {name} | {tars} | {100 * m['eer']:.2f} | {m['auc']:.5f} |{extra}"


def header(first: str, extra: str = "") -> str:
    cols = " | ".join(f"TAR@FMR {f:g} (%)" for f in FMRS)
    return f"| {first} | {cols} | EER (%) | AUC |{extra}\n|" + "---|" * (3 + len(FMRS) + bool(extra))


def choose_weight(data: dict, ids: np.ndarray, grid: float) -> tuple[float, list[tuple[float, dict]]]:
    ok = np.isfinite(data["sface"][:, 0]) & np.isfinite(data["dlib"][:, 0])
    gs, is_ = split_pairs(data["sface"], ids, ok)
    gd, id_ = split_pairs(data["dlib"], ids, ok)
    for name, g, i in (("SFace", gs, is_), ("dlib", gd, id_)):
        print(f"{name} cosines: genuine {g.mean():.3f} +- {g.std():.3f}, impostor {i.mean():.3f} +- {i.std():.3f} "
              f"({len(g)} genuine, {len(i)} impostor pairs)")
    curve = []
    for w in np.round(np.arange(0.0, 1.0 + 1e-9, grid), 4):
        curve.append((float(w), metrics(w * gs + (1 - w) * gd, w * is_ + (1 - w) * id_)))
    best = max(curve, key=lambda c: (criterion(c[1]), c[1]["auc"]))[0]
    eff = best * is_.std() / (best * is_.std() + (1 - best) * id_.std())
    print(f"w = {best:.2f} weighs SFace {eff:.2f} and dlib {1 - eff:.2f} once each score is divided by the "
          "standard deviation of its impostor scores (dlib's unit descriptors share a large common part).\n")
    return best, curve


def box_study(data: dict, ids: np.ndarray) -> None:
    ok = np.isfinite(data["hog"][:, 0]) & np.isfinite(data["dlib"][:, 0])
    hb, yb = data["hog_box"][ok], data["box"][ok]
    fitted = np.median(
        np.stack([(hb[:, 0] - yb[:, 0]) / yb[:, 2], (hb[:, 1] - yb[:, 1]) / yb[:, 3], hb[:, 2] / yb[:, 2],
                  hb[:, 3] / yb[:, 3]], 1), axis=0)
    print(f"\nBox study on the {ok.sum()} faces both YuNet and HOG found. HOG box from the YuNet box "
          f"(median): dx={fitted[0]:.3f} dy={fitted[1]:.3f} sx={fitted[2]:.3f} sy={fitted[3]:.3f}; "
          f"packaged YUNET_FRAME: {db.YUNET_FRAME}\n")
    print(header("dlib descriptor from", " cos to HOG-box descriptor: median / 1st pct |"))
    for key, name in (("hog", "dlib HOG box (reference)"), ("raw", "YuNet box, as is"),
                      ("dlib", "YuNet box + YUNET_FRAME"), ("eyes", "box from YuNet's eyes")):
        agree = np.sum(data[key][ok] * data["hog"][ok], axis=1)
        m = metrics(*split_pairs(data[key], ids, ok))
        print(row(name, m, f" {np.median(agree):.4f} / {np.percentile(agree, 1):.4f} |"))


def measure_speed(paths: list[str]) -> None:
    """Time each stage on ``paths`` in this process, one thread: wall and thread CPU time."""
    cv2.setNumThreads(1)
    _init(study=True)
    b, hog = _STATE["backend"], _STATE["hog"]
    plain = db.DlibEmbedder(b.embedder.dlib.models)
    stages: dict[str, list[tuple[float, float]]] = {}

    def timed(name: str, fn, *args):
        t, c = time.perf_counter(), time.thread_time()
        out = fn(*args)
        stages.setdefault(name, []).append(((time.perf_counter() - t) * 1e3, (time.thread_time() - c) * 1e3))
        return out

    for path in paths:
        rgb = load_image(path).rgb
        y = timed("YuNet detection (per photo)", b.detector.detect, rgb, DetectOptions())
        h = timed("dlib HOG detection + 5 points, upsample 1 (per photo)", hog.detect, rgb, DetectOptions())
        if len(y):
            timed("SFace embedding (align + net)", b.embedder.sface.embed, rgb, y.boxes[:1], y.landmarks[:1])
            timed("dlib embedding, YuNet box (5 points + ResNet)", b.embedder.dlib.embed, rgb, y.boxes[:1],
                  y.landmarks[:1])
            timed("fused embedding (SFace + dlib)", b.embedder.embed, rgb, y.boxes[:1], y.landmarks[:1])
        if len(h):
            timed("dlib embedding, HOG box", plain.embed, rgb, h.boxes[:1], h.landmarks[:1])
    print(f"\nSpeed on {len(paths)} LFW photos (250x250, one face embedded each), one thread; median ms. "
          "Thread CPU time is what the stage costs on an idle core; wall time includes waiting for "
          f"other processes (load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores).\n")
    print("| stage | wall ms | CPU ms |\n|---|---|---|")
    for name, v in stages.items():
        wall, cpu = np.median(np.array(v), axis=0)
        print(f"| {name} | {wall:.1f} | {cpu:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, default=testdata() / "lfw")
    ap.add_argument("--cache", default="/tmp/faceledger-fuse-cache")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--grid", type=float, default=0.01)
    ap.add_argument("--limit", type=int, default=0, help="only the first N images (a quick check)")
    ap.add_argument("--speed-images", type=int, default=100, help="photos to time each stage on (0: skip)")
    ap.add_argument("--box-study", action="store_true")
    ap.add_argument("--write", action="store_true", help=f"write {PARAMS_PATH.name}")
    args = ap.parse_args()
    if args.write and args.limit:
        ap.error("--write needs every image: drop --limit")
    pairs = args.lfw / "pairsDevTrain.txt"
    images = pair_images(pairs)[: args.limit or None]
    data = compute(images, args.lfw, args)
    ids = np.unique([n for n, _ in images], return_inverse=True)[1]
    found = np.isfinite(data["sface"][:, 0]).sum()
    print(f"LFW View 1 (pairsDevTrain.txt): {len(images)} images, face found in {found}; "
          f"all pairs among them. Criterion: {CRITERION}.\n")
    w, curve = choose_weight(data, ids, args.grid)
    print(header("model"))
    for name, ww in (("yunet + SFace alone (w = 1)", 1.0), ("yunet + dlib ResNet alone (w = 0)", 0.0)):
        print(row(name, dict(curve)[ww]))
    print(row(f"**fused, w = {w:.2f}**", dict(curve)[w]))
    print("\n" + header("w"))
    for ww, m in curve[:: max(1, round(0.05 / args.grid))]:
        print(row(f"{ww:.2f}", m))
    if args.speed_images:
        measure_speed([str(args.lfw / "images" / n / f"{n}_{i:04d}.jpg") for n, i in images[: args.speed_images]])
    if args.box_study:
        box_study(data, ids)
    print(f"\nReproduce: .venv/bin/python bench/fuse_weights.py{' --box-study' if args.box_study else ''}")
    if args.write:
        write_params(w, pairs, len(images), int(found), dict(curve))


def write_params(w: float, pairs: Path, n_images: int, n_found: int, curve: dict) -> None:
    measured = {name: curve[ww] for name, ww in (("sface", 1.0), ("dlib", 0.0), ("fused", w))}
    params = {
        "weight_sface": round(w, 2),
        "dataset": f"LFW deep-funneled View 1, {pairs.name}: all same/different-person pairs "
        f"among its {n_images} images ({n_found} with a face found by YuNet)",
        "dataset_sha256": hashlib.sha256(pairs.read_bytes()).hexdigest(),
        "dataset_sha256_of": f"the file {pairs.name}",
        "criterion": CRITERION,
        "dlib_box_frame": {k: getattr(db.YUNET_FRAME, k) for k in ("dx", "dy", "sx", "sy")},
        "measured": {k: {m: round(v, 5) for m, v in d.items()} for k, d in measured.items()},
        "written_by": "bench/fuse_weights.py --write",
    }
    PARAMS_PATH.write_text(json.dumps(params, indent=2) + "\n")
    print(f"wrote {PARAMS_PATH}", file=sys.stderr)


if __name__ == "__main__":
    main()
