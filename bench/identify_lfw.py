"""1:N identification on real faces: LFW through a FaceLedger gallery store.

Gallery: the first image of every LFW person with two or more images (in the
9,056 images the protocol files use), plus every person with a single image as a
distractor subject. Mated probes: the other images of the enrolled people. Each
probe is searched through ``Store.search`` (SQLite store, exact cosine, subjects
ranked by their best template) and, as a peer, by plain numpy over the same
matrix (the two must agree).

* rank-1 hit rate: the mate is the top candidate (closed set, no threshold).
* FNIR at FPIR 1e-2: non-mated searches are the same probes with their own mate
  left out (the best score among the other subjects), so every gallery identity
  serves both roles. The threshold is the one at which 1% of non-mated searches
  return a candidate; FNIR is the share of mated searches whose mate is not the
  rank-1 candidate at or above that threshold (NIST FRVT 1:N, R = 1).

Templates (YuNet + SFace, face "center") are cached under
``~/.cache/faceledger/bench`` (computing them takes a few minutes on 2 cores)::

    .venv/bin/python bench/identify_lfw.py
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from _common import md_table, reproduce_command, testdata_dir

CACHE_DIR = Path(os.environ.get("FACELEDGER_BENCH_CACHE", Path.home() / ".cache" / "faceledger" / "bench"))


@dataclass(frozen=True)
class LfwTemplates:
    """Real templates of LFW images: ``vectors[i]`` belongs to ``people[i]`` (photo ``paths[i]``)."""

    model_id: str
    paths: list[str]
    people: list[str]
    vectors: np.ndarray  # (n, d) float32, unit rows
    sha256: list[str]


def lfw_images(root: Path) -> list[Path]:
    """Every LFW image, sorted by person then image number."""
    return sorted((root / "lfw" / "images").glob("*/*.jpg"))


def lfw_templates(root: Path | None = None, *, quiet: bool = False) -> LfwTemplates:
    """SFace templates of every LFW image, computed once and cached (``.npz``)."""
    from faceledger import Recognizer

    root = root or testdata_dir()
    images = lfw_images(root)
    listing = hashlib.sha256("\n".join(str(p.relative_to(root)) for p in images).encode()).hexdigest()[:16]
    engine = Recognizer()
    cache = CACHE_DIR / f"lfw-{engine.model_id}-{listing}.npz"
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        return LfwTemplates(str(z["model_id"]), list(z["paths"]), list(z["people"]),
                            z["vectors"].astype(np.float32), list(z["sha256"]))
    vectors, shas = [], []
    t0 = time.perf_counter()
    for i, path in enumerate(images):
        t = engine.template(path, face="center")
        vectors.append(t.vector)
        shas.append(t.source_sha256 or "")
        if not quiet and (i + 1) % 500 == 0:
            print(f"  {i + 1}/{len(images)} templates, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    out = LfwTemplates(engine.model_id, [str(p.relative_to(root)) for p in images],
                       [p.parent.name for p in images], np.stack(vectors).astype(np.float32), shas)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, model_id=out.model_id, paths=np.array(out.paths), people=np.array(out.people),
             vectors=out.vectors, sha256=np.array(out.sha256))
    os.replace(tmp, cache)
    return out


# -- experiment ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    """Gallery subjects (each a list of template rows) and probes with the index of their mate (-1: none)."""

    names: list[str]
    templates: list[list[int]]
    probes: list[int]
    mates: np.ndarray


def split(t: LfwTemplates, enrol: int, min_images: int, distractors: bool) -> Split:
    """People with ``min_images``+ images enrol their first ``enrol`` images; the rest are probes."""
    by_person: dict[str, list[int]] = {}
    for i, person in enumerate(t.people):
        by_person.setdefault(person, []).append(i)
    names, templates, probes, mates = [], [], [], []
    for person, rows in sorted(by_person.items()):
        if len(rows) >= min_images:
            mates += [len(names)] * (len(rows) - enrol)
            probes += rows[enrol:]
            names.append(person)
            templates.append(rows[:enrol])
        elif distractors and len(rows) == 1:
            names.append(person)
            templates.append(rows)
    return Split(names, templates, probes, np.array(mates))


def subject_scores(t: LfwTemplates, s: Split, rule: str) -> np.ndarray:
    """``(probes, subjects)`` scores under an aggregation rule: best, mean, or centroid."""
    p = t.vectors[s.probes]
    if rule == "centroid":
        c = np.stack([t.vectors[r].mean(axis=0) for r in s.templates])
        return p @ (c / np.linalg.norm(c, axis=1, keepdims=True)).T
    per = p @ t.vectors[[r for rows in s.templates for r in rows]].T
    owner = np.repeat(np.arange(len(s.templates)), [len(r) for r in s.templates])
    out = np.full((len(p), len(s.templates)), -np.inf if rule == "best" else 0.0)
    for j in range(per.shape[1]):
        if rule == "best":
            np.maximum(out[:, owner[j]], per[:, j], out=out[:, owner[j]])
        else:
            out[:, owner[j]] += per[:, j] / len(s.templates[owner[j]])
    return out


def open_set(top: np.ndarray, top_score: np.ndarray, nonmate_score: np.ndarray, mates: np.ndarray,
             fpir: float = 1e-2) -> tuple[float, float, float]:
    """Rank-1 hit rate, the threshold at ``fpir``, and FNIR there (mate at rank 1 and above threshold)."""
    from faceledger.core.metrics import threshold_at_fmr

    hit = top == mates
    thr = threshold_at_fmr(nonmate_score, fpir)
    return float(hit.mean()), float(thr), float(1.0 - np.mean(hit & (top_score >= thr)))


def from_scores(scores: np.ndarray, mates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top subject, its score, and the best score of a subject other than the mate (leave-mate-out)."""
    top = np.argmax(scores, axis=1)
    rows = np.arange(len(scores))
    masked = scores.copy()
    masked[rows, mates] = -np.inf
    return top, scores[rows, top], masked.max(axis=1)


def through_store(t: LfwTemplates, s: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The same searches through a SQLite gallery store (exact search, subjects by best template)."""
    from faceledger.store import BulkSubject, GallerySettings, NewTemplate
    from faceledger.store.sqlite import SqliteStore

    with tempfile.TemporaryDirectory() as tmp, SqliteStore(Path(tmp) / "lfw.db") as store:
        with store.transaction() as tx:
            tx.create_gallery("lfw", GallerySettings(t.model_id, t.vectors.shape[1]))
            ids = tx.bulk_enroll("lfw", [BulkSubject(name, [NewTemplate(t.vectors[r], t.model_id, t.sha256[r])
                                                            for r in rows])
                                         for name, rows in zip(s.names, s.templates, strict=True)])
        index_of = {sid: i for i, sid in enumerate(ids)}
        top, top_s, non = (np.empty(len(s.probes), dtype) for dtype in (np.int64, np.float64, np.float64))
        t0 = time.perf_counter()
        for i, row in enumerate(s.probes):
            cands = store.search("lfw", t.vectors[row], k=2)[0]
            top[i], top_s[i] = index_of[cands[0].subject_id], cands[0].score
            other = cands[1] if index_of[cands[0].subject_id] == s.mates[i] else cands[0]
            non[i] = other.score
        ms = (time.perf_counter() - t0) / len(s.probes) * 1000
    return top, top_s, non, ms


def default_point(model_id: str) -> tuple[str, float] | None:
    """The model's calibrated default operating point, if it has one."""
    from faceledger.errors import NotCalibratedError
    from faceledger.models.thresholds import load_packaged_thresholds

    try:
        p = load_packaged_thresholds(model_id).get()
    except NotCalibratedError:
        return None
    return p.name, p.threshold


def point_rows(model_id: str, subjects: int, top: np.ndarray, top_s: np.ndarray, non: np.ndarray,
               mates: np.ndarray, max_fpir: float = 0.01) -> list[list[str]]:
    """Each calibrated point at this gallery size: expected FPIR (from its FMR upper bound), measured FPIR
    on the non-mated searches, FNIR on the mated ones, and whether a 1% cap would allow it."""
    from faceledger.governance.fpir import expected_fpir, point_fmr
    from faceledger.models.thresholds import load_packaged_thresholds

    rows = []
    for p in sorted(load_packaged_thresholds(model_id).points.values(), key=lambda p: -point_fmr(p)):
        fpir = expected_fpir(point_fmr(p), subjects)
        rows.append([p.name, f"{p.threshold:.4f}", f"{point_fmr(p):.1e}", f"{fpir:.2%}",
                     f"{np.mean(non >= p.threshold):.2%} ({int(np.sum(non >= p.threshold))})",
                     f"{1 - np.mean((top == mates) & (top_s >= p.threshold)):.2%}",
                     "allowed" if fpir <= max_fpir else "refused"])  # type: ignore[operator]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fpir", type=float, default=1e-2)
    args = parser.parse_args()
    t = lfw_templates()
    s = split(t, enrol=1, min_images=2, distractors=True)
    top, top_s, non, ms = through_store(t, s)
    ref = from_scores(subject_scores(t, s, "best"), s.mates)
    agree = bool(np.array_equal(ref[0], top) and np.allclose(ref[1], top_s, atol=1e-5))
    print(f"## 1:N identification on LFW ({t.model_id})\n")
    print(f"Gallery: {len(s.names):,} subjects ({len(set(s.mates)):,} people with 2+ images enrolled with their "
          f"first image, {len(s.names) - len(set(s.mates)):,} single-image people as distractors); "
          f"{len(s.probes):,} mated probes; non-mated searches: the same probes with their mate left out.\n")
    rows = []
    for name, (a, b, c) in (("FaceLedger SQLite store (exact)", (top, top_s, non)), ("numpy brute force", ref)):
        hit, thr, fnir = open_set(a, b, c, s.mates, args.fpir)
        rows.append([name, f"{hit:.4f}", f"{thr:.3f}", f"{fnir:.4f}"])
    print(md_table(["search", "rank-1 hit rate", f"threshold at FPIR {args.fpir:g}", f"FNIR at FPIR {args.fpir:g}"],
                   rows))
    point = default_point(t.model_id)
    if point is not None:
        name, thr = point
        hit = top == s.mates
        print(f"\nAt the model's default 1:1 operating point ({name}, threshold {thr:.3f}): FPIR "
              f"{np.mean(non >= thr):.4f}, FNIR {1 - np.mean(hit & (top_s >= thr)):.4f} — a 1:1 threshold is "
              "too low for 1:N; galleries take their own thresholds.")
    print(f"\n### Calibrated operating points at {len(s.names):,} subjects\n")
    print(md_table(["point", "threshold", "FMR (95% upper bound)", "expected FPIR", "measured FPIR (non-mated)",
                    "FNIR (mated)", "under max_expected_fpir 1%"],
                   point_rows(t.model_id, len(s.names), top, top_s, non, s.mates)))
    print("\nThe LFW people here include those of View 1 training, where the points were calibrated: the measured "
          "FPIR is a consistency check, not a held-out one.")
    print(f"\nStore and brute force agree on every probe: {agree}. Store search: {ms:.2f} ms per probe "
          f"(k=2, {len(s.names):,} subjects).\n")
    m = split(t, enrol=2, min_images=3, distractors=True)
    one = split(t, enrol=1, min_images=3, distractors=True)
    one = Split(one.names, one.templates, m.probes, m.mates)  # same probes, first image only
    agg_rows = []
    rules = (("one template (first image)", one, "best"), ("best of 2 templates (FaceLedger)", m, "best"),
             ("mean score of 2 templates", m, "mean"), ("score against the mean template", m, "centroid"))
    for label, sp, rule in rules:
        hit, thr, fnir = open_set(*from_scores(subject_scores(t, sp, rule), sp.mates), sp.mates, args.fpir)
        agg_rows.append([label, f"{hit:.4f}", f"{thr:.3f}", f"{fnir:.4f}"])
    print(f"### How a subject's templates are combined ({len(set(m.mates)):,} people with 3+ images, two enrolled, "
          f"{len(m.probes):,} probes, {len(m.names) - len(set(m.mates)):,} distractors)\n")
    print(md_table(["subject score", "rank-1 hit rate", f"threshold at FPIR {args.fpir:g}",
                    f"FNIR at FPIR {args.fpir:g}"], agg_rows))
    print(f"\nReproduce: `{reproduce_command()}`")


if __name__ == "__main__":
    main()
