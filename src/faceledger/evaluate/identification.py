"""1:N identification metrics on a gallery/probe split built from a dataset (pure numpy).

The split (:func:`split_gallery`), seeded and reproducible:

* every subject with 2+ photos is **enrolled**: its first photo (in key order) goes to
  the gallery, its other photos are **mated probes**;
* subjects with one photo alternate (in a seeded order) between **gallery
  distractors** (enrolled, never searched for) and **non-mated probes** (searched
  for, never enrolled).

Metrics (NIST FRVT 1:N vocabulary; scores are similarities, higher = more alike):

* rank-k hit rate: fraction of mated probes whose mate is among the top ``k``
  gallery entries (ties counted against the probe);
* FPIR(T): fraction of non-mated probes whose best score is ``>= T``;
* FNIR(T) at rank 1: fraction of mated probes whose mate is not first or scores ``< T``.
  T is chosen on the non-mated probes for a target FPIR (the rule of
  :func:`faceledger.core.metrics.threshold_at_fmr`).

A photo without a template (failure to detect) scores -1 against everything: an
enrolled subject whose gallery photo failed cannot be found (failure to enrol), a
mated probe that failed is a miss; both are counted, never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faceledger.core import metrics
from faceledger.evaluate.lfw import FAILED_SCORE

__all__ = ["GallerySplit", "IdentificationResult", "evaluate_identification", "split_gallery"]


@dataclass(frozen=True)
class GallerySplit:
    """Photo indices: ``gallery`` (one per enrolled subject, plus distractors), mated and non-mated probes."""

    gallery: np.ndarray
    mated: np.ndarray
    nonmated: np.ndarray


def split_gallery(subjects: Sequence[int] | np.ndarray, seed: int = 0) -> GallerySplit:
    """Build the split above from each photo's subject number (photos in key order)."""
    subj = np.asarray(subjects)
    gallery, mated, singles = [], [], []
    for s in np.unique(subj):
        rows = np.flatnonzero(subj == s)
        if rows.size >= 2:
            gallery.append(rows[0])
            mated.extend(rows[1:])
        else:
            singles.append(rows[0])
    singles_arr = np.random.default_rng(seed).permutation(np.asarray(singles, dtype=np.int64))
    gallery.extend(singles_arr[0::2])
    return GallerySplit(np.sort(np.asarray(gallery, np.int64)), np.asarray(mated, np.int64),
                        np.sort(singles_arr[1::2]))


@dataclass(frozen=True)
class IdentificationResult:
    """Everything :func:`evaluate_identification` measured; rates are fractions."""

    gallery_size: int
    mated_probes: int
    nonmated_probes: int
    failed_gallery: int
    failed_probes: int
    rank_hit_rates: dict[int, float]
    fnir_at_fpir: dict[str, dict[str, float | bool]]
    at_threshold: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        out = dict(self.__dict__)
        out["rank_hit_rates"] = {f"rank{k}": v for k, v in self.rank_hit_rates.items()}
        return out


def _scores(vectors: np.ndarray, ok: np.ndarray, probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    s = np.clip(vectors[probes].astype(np.float64) @ vectors[gallery].astype(np.float64).T, -1.0, 1.0)
    s[~ok[probes], :] = FAILED_SCORE
    s[:, ~ok[gallery]] = FAILED_SCORE
    return s


def _mate_rank(scores: np.ndarray, mate_col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based rank of each probe's mate (ties count against it) and the mate's score."""
    mate_score = scores[np.arange(scores.shape[0]), mate_col]
    rank = np.count_nonzero(scores >= mate_score[:, None], axis=1)
    return rank, mate_score


def evaluate_identification(
    vectors: np.ndarray,
    ok: np.ndarray,
    subjects: Sequence[int] | np.ndarray,
    threshold: float,
    ranks: Sequence[int] = (1, 5, 10),
    fpir_targets: Sequence[float] = (0.1, 0.01),
    seed: int = 0,
) -> IdentificationResult:
    """Rank-k hit rates, FNIR at each supported target FPIR, and FPIR/FNIR at ``threshold``.

    A target FPIR is *supported* when the non-mated probes allow at least 10 false
    positives at it (``n * target >= 10``); otherwise it is reported with
    ``supported: False`` and no numbers.
    """
    subj, ok = np.asarray(subjects), np.asarray(ok, bool)
    split = split_gallery(subj, seed)
    if split.mated.size == 0:
        raise ValueError("identification needs at least one subject with two or more photos")
    col_of = {int(subj[g]): j for j, g in enumerate(split.gallery)}
    mated_scores = _scores(vectors, ok, split.mated, split.gallery)
    mate_col = np.array([col_of[int(subj[p])] for p in split.mated])
    rank, mate_score = _mate_rank(mated_scores, mate_col)
    hits = {int(k): float(np.mean(rank <= k)) for k in ranks}
    top_non = (_scores(vectors, ok, split.nonmated, split.gallery).max(axis=1)
               if split.nonmated.size else np.empty(0))
    first = rank == 1
    fnir: dict[str, dict[str, float | bool]] = {}
    for target in fpir_targets:
        name = f"fpir{target:g}"
        if top_non.size * target < 10:
            fnir[name] = {"target_fpir": float(target), "supported": False}
            continue
        t = metrics.threshold_at_fmr(top_non, target)
        fnir[name] = {"target_fpir": float(target), "supported": True, "threshold": t,
                      "fpir": float(np.mean(top_non >= t)), "fnir": float(np.mean(~(first & (mate_score >= t))))}
    at = {"threshold": float(threshold), "fnir": float(np.mean(~(first & (mate_score >= threshold))))}
    if top_non.size:
        at["fpir"] = float(np.mean(top_non >= threshold))
    return IdentificationResult(
        gallery_size=int(split.gallery.size),
        mated_probes=int(split.mated.size),
        nonmated_probes=int(split.nonmated.size),
        failed_gallery=int(np.count_nonzero(~ok[split.gallery])),
        failed_probes=int(np.count_nonzero(~ok[np.concatenate([split.mated, split.nonmated])])),
        rank_hit_rates=hits,
        fnir_at_fpir=fnir,
        at_threshold=at,
    )
