"""The whole evaluation of a backend on a dataset: 1:1, per group, 1:N and calibration.

:func:`evaluate` turns photos into templates (cached by photo SHA-256 + model id;
detection failures kept and counted), scores comparisons, and returns one plain
``dict`` with every number (the JSON the report and the accountability report read).

Comparisons: every same-person pair of photos (genuine) and every different-person
pair (impostor), or a seeded uniform sample of ``max_impostors`` of them. A pair with
a photo that yielded no template scores -1 (a non-match) and stays in the counts.
For a pairs dataset (LFW) the protocol's own pairs give the k-fold accuracy too.

Operating threshold: the backend's calibrated default (or ``operating_point``); if
the backend has none, the threshold calibrated here at ``target_fmr`` (said so in
the output). Per-group rates always use that one threshold. FNMR at a target FMR is
reported only where the impostor count supports it: at least 10 false matches
allowed (``impostors * target >= 10``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceledger.core import metrics
from faceledger.errors import ConfigError, NotCalibratedError
from faceledger.evaluate.bootstrap import operating_point_interval
from faceledger.evaluate.dataset import Dataset, Labels
from faceledger.evaluate.groups import Comparisons, group_rates
from faceledger.evaluate.identification import evaluate_identification
from faceledger.evaluate.lfw import FAILED_SCORE, pair_scores
from faceledger.evaluate.progress import Stages
from faceledger.evaluate.templates import PhotoTemplates, TemplateCache, check_cache, compute_templates
from faceledger.recognizer import Recognizer

__all__ = ["EvaluationConfig", "build_comparisons", "evaluate", "thresholds_json", "write_thresholds"]

REPORTED_FMRS = (1e-2, 1e-3, 1e-4)


@dataclass(frozen=True)
class EvaluationConfig:
    """Options of one evaluation run.

    ``use_cache=True`` keeps templates in an encrypted, owner-only cache (``cache_dir``, default
    :func:`~faceledger.evaluate.templates.default_cache_dir`); off by default.
    ``replicates`` bootstrap replicates per interval at ``level``; ``det_points`` the
    number of points kept per DET curve in the output.
    """

    target_fmr: float = 1e-3
    operating_point: str | None = None
    max_impostors: int = 1_000_000
    replicates: int = 200
    level: float = 0.95
    seed: int = 0
    cache_dir: Path | None = None
    use_cache: bool = False
    progress: bool = True
    det_points: int = 200
    reported_fmrs: tuple[float, ...] = field(default=REPORTED_FMRS)


def _templates(rec: Recognizer, ds: Dataset, cfg: EvaluationConfig) -> PhotoTemplates:
    if not cfg.use_cache:
        return compute_templates(rec, ds.root, ds.keys, None, progress=cfg.progress)
    with TemplateCache(cfg.cache_dir) as cache:
        t = compute_templates(rec, ds.root, ds.keys, cache, progress=cfg.progress)
    if t.cache_hits:
        check_cache(rec, ds.root, t)  # a few photos recomputed: refuses a cache filled by other code
    return t


def _genuine_pairs(subject: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = [], []
    for s in np.unique(subject):
        rows = np.flatnonzero(subject == s)
        if rows.size >= 2:
            i, j = np.triu_indices(rows.size, 1)
            a.append(rows[i])
            b.append(rows[j])
    empty = np.empty(0, np.int64)
    return (np.concatenate(a), np.concatenate(b)) if a else (empty, empty)


def _impostor_pairs(subject: np.ndarray, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """All different-subject pairs ``i < j``, or a seeded uniform sample of ``limit``; plus the total."""
    n = subject.size
    counts = np.bincount(subject)
    total = int((n * (n - 1) - np.sum(counts * (counts - 1))) // 2)
    if total <= limit:
        i, j = np.triu_indices(n, 1)
        keep = subject[i] != subject[j]
        return i[keep], j[keep], total
    rng, codes = np.random.default_rng(seed), np.empty(0, np.int64)
    while codes.size < limit:
        x, y = rng.integers(0, n, 2 * limit), rng.integers(0, n, 2 * limit)
        lo, hi = np.minimum(x, y), np.maximum(x, y)
        ok = subject[lo] != subject[hi]
        codes = np.unique(np.concatenate([codes, lo[ok] * n + hi[ok]]))
    codes = np.sort(rng.choice(codes, size=limit, replace=False))
    return codes // n, codes % n, total


def build_comparisons(t: PhotoTemplates, subject: np.ndarray, max_impostors: int, seed: int,
                      advance: Callable[[int], None] | None = None) -> tuple[Comparisons, int]:
    """Genuine and (sampled) impostor comparisons of the photos; returns them and the impostor total.
    ``advance(n)`` is told of every ``n`` comparisons scored."""
    ga, gb = _genuine_pairs(subject)
    ia, ib, total = _impostor_pairs(subject, max_impostors, seed)
    a, b = np.concatenate([ga, ia]), np.concatenate([gb, ib])
    scores = np.empty(a.size)
    for s in range(0, a.size, 200_000):
        va, vb = t.vectors[a[s:s + 200_000]], t.vectors[b[s:s + 200_000]]
        scores[s:s + 200_000] = np.einsum("ij,ij->i", va.astype(np.float64), vb.astype(np.float64))
        if advance is not None:
            advance(va.shape[0])
    scores = np.clip(scores, -1.0, 1.0)
    scores[~(t.ok[a] & t.ok[b])] = FAILED_SCORE
    genuine = np.concatenate([np.ones(ga.size, bool), np.zeros(ia.size, bool)])
    return Comparisons(scores, genuine, a, b, subject), total


def _det(g: np.ndarray, i: np.ndarray, points: int) -> dict[str, list[float]]:
    """A DET curve thinned to about ``points`` points, log-spaced in FMR."""
    if g.size == 0 or i.size == 0:
        return {"fmr": [], "fnmr": [], "threshold": []}
    th, fmr, fnmr = metrics.det_curve(g, i)
    grid = np.logspace(np.log10(max(1.0 / i.size, 1e-6)), 0, points)
    idx = np.unique(np.clip(np.searchsorted(-fmr, -grid), 0, fmr.size - 1))
    return {"fmr": fmr[idx].tolist(), "fnmr": fnmr[idx].tolist(), "threshold": th[idx].tolist()}


def _operating_threshold(rec: Recognizer, cfg: EvaluationConfig, calibrated: float) -> dict[str, object]:
    try:
        p = rec.backend.thresholds.get(cfg.operating_point)
        return {"name": p.name, "threshold": p.threshold, "source": f"packaged calibration ({p.dataset})"}
    except NotCalibratedError:
        if cfg.operating_point is not None:
            raise
        return {"name": f"fmr{cfg.target_fmr:g}", "threshold": calibrated,
                "source": "calibrated on this dataset (the backend ships no thresholds)"}


def _verification(comp: Comparisons, total: int, cfg: EvaluationConfig) -> dict[str, object]:
    g, i = comp.scores[comp.genuine], comp.scores[~comp.genuine]
    sa, sb = comp.subject[comp.a], comp.subject[comp.b]
    e = metrics.eer(g, i)
    points = {}
    for target in cfg.reported_fmrs:
        name = f"fmr{target:g}"
        if i.size * target < 10:
            points[name] = {"target_fmr": target, "supported": False}
            continue
        op = metrics.operating_point(g, i, target)
        iv = operating_point_interval(g, sa[comp.genuine], i, (sa[~comp.genuine], sb[~comp.genuine]), target,
                                      cfg.replicates, cfg.level, cfg.seed)
        points[name] = {"target_fmr": target, "supported": True, "threshold": op.threshold, "fmr": op.fmr,
                        "fnmr": op.fnmr, "fnmr_interval": iv.fnmr.to_dict(),
                        "threshold_interval": iv.threshold.to_dict()}
    failed = comp.scores == FAILED_SCORE
    return {"genuine": int(g.size), "impostor": int(i.size), "impostor_total": total,
            "impostor_sampled": bool(i.size < total), "genuine_failed": int(np.count_nonzero(failed & comp.genuine)),
            "impostor_failed": int(np.count_nonzero(failed & ~comp.genuine)), "eer": e.rate,
            "eer_threshold": e.threshold, "roc_auc": metrics.roc_auc(g, i), "fnmr_at_fmr": points,
            "det": _det(g, i, cfg.det_points)}


def _protocol(ds: Dataset, t: PhotoTemplates) -> dict[str, object] | None:
    if not ds.pairs:
        return None
    s = pair_scores(ds.pairs, t.index(), t.vectors, t.ok)
    folds = np.array([p.fold for p in ds.pairs])
    same = np.array([p.same for p in ds.pairs])
    out: dict[str, object] = {"pairs": len(ds.pairs), "folds": int(np.unique(folds).size)}
    if out["folds"] >= 2:
        r = metrics.kfold_accuracy(s, same, folds)
        out.update(accuracy_mean=r.mean, accuracy_std=r.std, fold_accuracies=r.accuracies.tolist())
    return out


def _groups(comp: Comparisons, labels: Labels | None, threshold: float, cfg: EvaluationConfig) -> list[dict]:
    out = []
    for attr in labels.attributes if labels else ():
        r = group_rates(comp, labels.of(attr), threshold, attr, cfg.replicates, cfg.level, cfg.seed).to_dict()
        lab = np.array([x or "" for x in labels.of(attr)], dtype=object)
        la, lb = lab[comp.a], lab[comp.b]
        r["det"] = {}
        for grp in r["groups"]:
            m = (la == grp["group"]) & (lb == grp["group"])
            r["det"][grp["group"]] = _det(comp.scores[m & comp.genuine], comp.scores[m & ~comp.genuine], cfg.det_points)
        r["labels_source"] = labels.source
        r["unlabelled_photos"] = sum(x is None for x in labels.of(attr))
        r["conflicting_label_photos"] = len(labels.conflicts)
        out.append(r)
    return out


def evaluate(ds: Dataset, labels: Labels | None, rec: Recognizer, cfg: EvaluationConfig | None = None) -> dict:
    """Run the whole evaluation and return every number as a JSON-ready ``dict``."""
    from rich.console import Console

    cfg = cfg or EvaluationConfig()
    if labels is not None and labels.keys != ds.keys:
        raise ConfigError("the labels were read for a different dataset")
    start = time.perf_counter()
    t = _templates(rec, ds, cfg)
    if not t.computed and cfg.progress:
        Console(stderr=True).print(f"templates: all {len(ds.keys)} from the cache")
    subject = np.unique(np.asarray(ds.identities), return_inverse=True)[1].astype(np.int64)
    with Stages(cfg.progress) as stages:
        with stages.stage("scoring comparisons", _n_comparisons(subject, cfg.max_impostors), "pairs") as advance:
            comp, total = build_comparisons(t, subject, cfg.max_impostors, cfg.seed, advance)
        if comp.n_genuine == 0 or comp.n_impostor == 0:
            raise ConfigError("the dataset needs at least one identity with two photos and two identities")
        calib = metrics.operating_point(comp.scores[comp.genuine], comp.scores[~comp.genuine], cfg.target_fmr)
        op = _operating_threshold(rec, cfg, calib.threshold)
        result = _header(ds, rec, t)
        supported = sum(comp.n_impostor * f >= 10 for f in cfg.reported_fmrs)
        with stages.stage("1:1 rates, bootstrap intervals", supported * cfg.replicates, "replicates"):
            result["verification"] = _verification(comp, total, cfg)
            result["protocol"] = _protocol(ds, t)
        result["operating_threshold"] = op
        with stages.stage("per-group rates", _n_group_replicates(labels, cfg.replicates), "replicates"):
            result["groups"] = _groups(comp, labels, float(op["threshold"]), cfg)
        with stages.stage("1:N identification", 1, "step"):
            result["identification"] = evaluate_identification(t.vectors, t.ok, subject, float(op["threshold"]),
                                                               seed=cfg.seed).to_dict()
    result["calibration"] = {"target_fmr": cfg.target_fmr, "threshold": calib.threshold, "measured_fmr": calib.fmr,
                             "measured_fnmr": calib.fnmr, "false_matches": round(calib.fmr * calib.n_impostor),
                             "resolved": calib.resolved, "impostor": calib.n_impostor, "genuine": calib.n_genuine}
    result["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.__dict__.items()}
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def _n_comparisons(subject: np.ndarray, max_impostors: int) -> int:
    """How many comparisons :func:`build_comparisons` will score (for its progress bar)."""
    counts = np.bincount(subject)
    genuine = int(np.sum(counts * (counts - 1)) // 2)
    impostor = int((subject.size * (subject.size - 1) - np.sum(counts * (counts - 1))) // 2)
    return genuine + min(impostor, max_impostors)


def _n_group_replicates(labels: Labels | None, replicates: int) -> int:
    """Bootstrap replicates the per-group stage draws at most: FMR and FNMR for each group,
    the overall rate and the cross-group pairs of every attribute."""
    groups = sum(len({x for x in labels.of(a) if x}) + 2 for a in labels.attributes) if labels else 0
    return 2 * groups * replicates


def _header(ds: Dataset, rec: Recognizer, t: PhotoTemplates) -> dict:
    from faceledger import __version__

    i = rec.info
    return {
        "format": "faceledger-evaluation/1",
        "faceledger": __version__,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dataset": {"name": ds.name, "sha256": ds.digest(t.sha256), "photos": len(ds.keys),
                    "identities": ds.n_identities, "pairs_file": ds.pairs_path.name if ds.pairs_path else None},
        "model": {"backend": i.backend, "model_id": i.model_id, "detector": i.detector, "embedder": i.embedder,
                  "runtime": i.runtime, "licence": i.licence},
        "templates": {"computed": t.computed, "cache_hits": t.cache_hits, "seconds": round(t.seconds, 2),
                      "failures_to_acquire": len(t.failures), "failure_codes": dict(Counter(t.failures.values()))},
    }


def thresholds_json(result: dict, name: str | None = None) -> dict:
    """The calibration of ``result`` in the layout :mod:`faceledger.models.thresholds` reads."""
    c = result["calibration"]
    name = name or f"fmr{c['target_fmr']:g}"
    return {
        "model_id": result["model"]["model_id"],
        "operating_points": {name: {k: c[k] for k in ("target_fmr", "threshold", "measured_fmr", "measured_fnmr",
                                                       "false_matches")}},
        "default": name,
        "calibration": {"dataset": result["dataset"]["name"], "dataset_sha256": result["dataset"]["sha256"],
                        "genuine": c["genuine"], "impostor": c["impostor"], "resolved": c["resolved"],
                        "score": "cosine similarity of unit templates; match when score >= threshold",
                        "date": result["date"], "faceledger": result["faceledger"],
                        "command": "faceledger evaluate"},
    }


def write_thresholds(path: str | os.PathLike, result: dict) -> Path:
    """Write :func:`thresholds_json` to ``path`` (a file the user named; never the package's own)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(thresholds_json(result), indent=2) + "\n")
    return path
