"""Biometric error rates from score arrays (pure numpy, no I/O).

Conventions used throughout:

* A *score* is a similarity: higher means more alike (e.g. cosine in ``[-1, 1]``).
* A comparison is a **match** when ``score >= threshold``.
* ``genuine`` holds the scores of same-person (mated) comparisons, ``impostor``
  those of different-person (non-mated) comparisons.
* FMR (false match rate, also FAR) at ``t`` is the fraction of impostor scores
  ``>= t``; FNMR (false non-match rate, also FRR) the fraction of genuine scores
  ``< t``; TAR (true accept rate) is ``1 - FNMR``. All rates are fractions in
  ``[0, 1]``, never percentages.

Everything sorts once and uses ``searchsorted``, so millions of impostor scores
cost well under a second. The functions take plain arrays, so they serve any
subset of comparisons (e.g. one demographic group) as well as a whole benchmark.
Invalid input (empty arrays, NaN, a target outside ``(0, 1)``) raises ``ValueError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "EER",
    "FoldResult",
    "OperatingPointResult",
    "Roc",
    "accuracy_at",
    "best_accuracy_threshold",
    "det_curve",
    "eer",
    "error_rates",
    "fmr_at",
    "fnmr_at",
    "kfold_accuracy",
    "operating_point",
    "roc_auc",
    "roc_curve",
    "tar_at_far",
    "threshold_at_fmr",
]


def _scores(values: object, name: str) -> np.ndarray:
    """A 1-D float64 array of finite scores, or a ``ValueError`` saying what is wrong."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} scores are empty: at least one score is needed")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} scores contain NaN or infinite values")
    return arr


def _sorted(values: object, name: str) -> np.ndarray:
    return np.sort(_scores(values, name), kind="stable")


def error_rates(genuine: object, impostor: object, thresholds: object) -> tuple[np.ndarray, np.ndarray]:
    """FMR and FNMR at each of ``thresholds`` (any shape; returned as float64 arrays of that shape)."""
    g, i = _sorted(genuine, "genuine"), _sorted(impostor, "impostor")
    t = np.asarray(thresholds, dtype=np.float64)
    fmr = (i.size - np.searchsorted(i, t, side="left")) / i.size
    fnmr = np.searchsorted(g, t, side="left") / g.size
    return fmr, fnmr


def fmr_at(impostor: object, threshold: float) -> float:
    """Fraction of impostor scores ``>= threshold``."""
    i = _scores(impostor, "impostor")
    return float(np.count_nonzero(i >= threshold) / i.size)


def fnmr_at(genuine: object, threshold: float) -> float:
    """Fraction of genuine scores ``< threshold``."""
    g = _scores(genuine, "genuine")
    return float(np.count_nonzero(g < threshold) / g.size)


def _check_target(target_fmr: float) -> None:
    if not (0.0 < float(target_fmr) < 1.0):
        raise ValueError(f"target FMR must be within (0, 1), got {target_fmr!r}")


def _allowed_false_matches(target_fmr: float, n_impostor: int) -> int:
    """``floor(target * n)``, robust to float error such as ``1e-3 * 3000 = 2.9999...``."""
    return int(math.floor(target_fmr * n_impostor * (1.0 + 1e-12)))


def threshold_at_fmr(impostor: object, target_fmr: float) -> float:
    """The smallest threshold whose FMR on ``impostor`` is ``<= target_fmr``.

    With ``n`` impostor scores at most ``k = floor(target_fmr * n)`` of them may be
    accepted. Sorting them from the highest down, ``s(1) >= s(2) >= ...``, every
    threshold ``t > s(k+1)`` qualifies and none ``<= s(k+1)`` does; the result is the
    smallest float64 strictly above ``s(k+1)`` (``numpy.nextafter``). Ties: when
    ``s(k) == s(k+1)`` both are rejected, so the measured FMR can be *below* the
    target, never above it. When ``k == 0`` (fewer than ``1 / target_fmr``
    impostors) the threshold lies just above the highest impostor score: the target
    is then not resolved by the data (see :func:`operating_point`, ``resolved``).
    """
    _check_target(target_fmr)
    i = _sorted(impostor, "impostor")
    k = _allowed_false_matches(target_fmr, i.size)
    # s(k+1), the (k+1)-th highest score, sits at index n-1-k of the ascending array.
    return float(np.nextafter(i[i.size - 1 - k], np.inf))


@dataclass(frozen=True, slots=True)
class OperatingPointResult:
    """A threshold chosen for a target FMR and the error rates measured at it.

    ``resolved`` is False when fewer than ``1 / target_fmr`` impostor comparisons
    were available: the threshold then only says "above every impostor seen".
    """

    target_fmr: float
    threshold: float
    fmr: float
    fnmr: float
    n_genuine: int
    n_impostor: int
    resolved: bool

    @property
    def tar(self) -> float:
        return 1.0 - self.fnmr


def operating_point(genuine: object, impostor: object, target_fmr: float) -> OperatingPointResult:
    """Pick the threshold for ``target_fmr`` on ``impostor`` and measure FMR and FNMR at it."""
    g, i = _scores(genuine, "genuine"), _scores(impostor, "impostor")
    t = threshold_at_fmr(i, target_fmr)
    fmr, fnmr = error_rates(g, i, t)
    return OperatingPointResult(
        target_fmr=float(target_fmr),
        threshold=t,
        fmr=float(fmr),
        fnmr=float(fnmr),
        n_genuine=int(g.size),
        n_impostor=int(i.size),
        resolved=_allowed_false_matches(target_fmr, i.size) >= 1,
    )


def tar_at_far(genuine: object, impostor: object, far: float) -> float:
    """True accept rate at the threshold of :func:`threshold_at_fmr` for ``far``."""
    return operating_point(genuine, impostor, far).tar


@dataclass(frozen=True, slots=True)
class Roc:
    """A full ROC: one point per distinct score, from the strictest threshold down.

    ``thresholds[0]`` is ``+inf`` (nothing accepted: FMR = TAR = 0); then every
    distinct score in decreasing order. ``fmr`` and ``tar`` are non-decreasing.
    """

    thresholds: np.ndarray
    fmr: np.ndarray
    tar: np.ndarray

    @property
    def fnmr(self) -> np.ndarray:
        return 1.0 - self.tar


def roc_curve(genuine: object, impostor: object) -> Roc:
    """ROC points at every distinct score (the same points as scikit-learn's
    ``roc_curve(..., drop_intermediate=False)`` with genuine as the positive class)."""
    g, i = _sorted(genuine, "genuine"), _sorted(impostor, "impostor")
    distinct = np.unique(np.concatenate([g, i]))[::-1]
    thresholds = np.concatenate([[np.inf], distinct])
    fmr, fnmr = error_rates(g, i, thresholds)
    return Roc(thresholds=thresholds, fmr=fmr, tar=1.0 - fnmr)


def det_curve(genuine: object, impostor: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DET points ``(thresholds, fmr, fnmr)`` at every distinct score, thresholds ascending."""
    roc = roc_curve(genuine, impostor)
    return roc.thresholds[:0:-1], roc.fmr[:0:-1], roc.fnmr[:0:-1]


def roc_auc(genuine: object, impostor: object) -> float:
    """Area under the ROC (trapezoids), i.e. P(genuine > impostor) + P(tie) / 2."""
    roc = roc_curve(genuine, impostor)
    return float(np.sum(np.diff(roc.fmr) * (roc.tar[1:] + roc.tar[:-1]) / 2.0))


@dataclass(frozen=True, slots=True)
class EER:
    """Equal error rate and the threshold where FMR and FNMR cross."""

    rate: float
    threshold: float


def eer(genuine: object, impostor: object) -> EER:
    """The equal error rate, interpolated linearly where FNMR - FMR changes sign on the ROC.

    The returned threshold is the score at the ROC point on the FMR >= FNMR side of
    the crossing (the one nearer to it when the crossing falls exactly on a point).
    """
    roc = roc_curve(genuine, impostor)
    diff = roc.fnmr - roc.fmr  # starts at 1 (t = +inf), ends at -1 (lowest score): decreasing
    j = int(np.argmax(diff <= 0.0))  # first point where FMR >= FNMR
    if diff[j] == 0.0 or j == 0:
        return EER(rate=float(roc.fmr[j]), threshold=float(roc.thresholds[j]))
    d0, d1 = diff[j - 1], diff[j]
    w = d0 / (d0 - d1)  # position of the zero crossing between points j-1 and j
    rate = roc.fmr[j - 1] + w * (roc.fmr[j] - roc.fmr[j - 1])
    return EER(rate=float(rate), threshold=float(roc.thresholds[j]))


def accuracy_at(genuine: object, impostor: object, threshold: float) -> float:
    """Fraction of all comparisons decided correctly at ``threshold``."""
    g, i = _scores(genuine, "genuine"), _scores(impostor, "impostor")
    correct = np.count_nonzero(g >= threshold) + np.count_nonzero(i < threshold)
    return float(correct / (g.size + i.size))


def best_accuracy_threshold(genuine: object, impostor: object) -> tuple[float, float]:
    """The threshold maximising accuracy on these scores, and that accuracy.

    Candidates are the midpoints between consecutive distinct scores plus one
    point below the lowest and one above the highest score: accuracy is constant
    between distinct scores, so these cover every achievable split. Ties between
    candidates go to the median one (the lower median for an even count), which
    keeps the choice away from either edge of a flat optimum.
    """
    g, i = _sorted(genuine, "genuine"), _sorted(impostor, "impostor")
    distinct = np.unique(np.concatenate([g, i]))
    mids = (distinct[1:] + distinct[:-1]) / 2.0
    cands = np.concatenate([[distinct[0] - 1.0], mids, [distinct[-1] + 1.0]])
    correct = (g.size - np.searchsorted(g, cands, "left")) + np.searchsorted(i, cands, "left")
    acc = correct / (g.size + i.size)
    best = np.flatnonzero(acc == acc.max())
    k = int(best[(best.size - 1) // 2])
    return float(cands[k]), float(acc[k])


@dataclass(frozen=True, slots=True)
class FoldResult:
    """The k-fold protocol's outcome: per-fold accuracy and threshold (chosen on the other folds).

    ``std`` is the sample standard deviation over folds (``ddof=1``), ``sem`` the
    standard error of the mean (``std / sqrt(k)``), as LFW's results page reports it.
    """

    accuracies: np.ndarray
    thresholds: np.ndarray

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.accuracies, ddof=1)) if self.accuracies.size > 1 else 0.0

    @property
    def sem(self) -> float:
        return self.std / math.sqrt(self.accuracies.size)


def kfold_accuracy(scores: object, same: object, folds: object) -> FoldResult:
    """LFW's k-fold protocol (10 folds for View 2).

    ``scores[j]`` is pair ``j``'s similarity, ``same[j]`` whether it is a genuine pair
    and ``folds[j]`` its fold number. For each fold the accuracy-maximising threshold
    (:func:`best_accuracy_threshold`) is chosen on the pairs of all *other* folds and
    the accuracy is measured on this fold's pairs.
    """
    s = _scores(scores, "pair")
    y = np.asarray(same, dtype=bool).ravel()
    f = np.asarray(folds).ravel()
    if not (s.size == y.size == f.size):
        raise ValueError(f"scores, labels and folds differ in length: {s.size}, {y.size}, {f.size}")
    ids = np.unique(f)
    if ids.size < 2:
        raise ValueError("the k-fold protocol needs at least two folds")
    accs, ths = [], []
    for fold in ids:
        train, test = f != fold, f == fold
        if not (y[train].any() and (~y[train]).any()):
            raise ValueError(f"the folds other than {fold!r} lack genuine or impostor pairs")
        t, _ = best_accuracy_threshold(s[train & y], s[train & ~y])
        accs.append(np.count_nonzero((s[test] >= t) == y[test]) / np.count_nonzero(test))
        ths.append(t)
    return FoldResult(accuracies=np.asarray(accs), thresholds=np.asarray(ths))
