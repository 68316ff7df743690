"""Bootstrap confidence intervals that resample **subjects**, not pairs (pure numpy).

Comparisons of the same person are not independent: one hard-to-match subject makes
many genuine pairs fail together, one look-alike pair of people many impostor pairs.
Resampling pairs as if independent gives intervals that are too narrow. Here each
bootstrap replicate draws subjects with replacement (``m[s]`` = how many times subject
``s`` was drawn) and weighs every comparison by the copies it would have in the
resampled data set:

* a genuine pair of subject ``s`` (``a == b == s``) weighs ``m[s]``;
* an impostor pair of subjects ``a != b`` weighs ``m[a] * m[b]``.

Intervals are percentile intervals over ``replicates`` replicates at ``level``
(e.g. 0.95). Rates are fractions in ``[0, 1]``. When no error was observed the
percentile interval collapses to ``[0, 0]``; the upper bound is then raised to the
exact binomial bound ``1 - (1 - level) ** (1 / n)`` over the ``n`` comparisons
("rule of three" at 95%), which treats pairs as independent and so is a floor,
not a ceiling, on the real uncertainty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from faceledger.evaluate.progress import REPLICATE_TICK

__all__ = [
    "Interval",
    "OperatingPointInterval",
    "bootstrap",
    "compact_subjects",
    "operating_point_interval",
    "pair_weights",
    "rate_interval",
]


@dataclass(frozen=True, slots=True)
class Interval:
    """A point estimate with a two-sided interval at ``level``; NaN where undefined."""

    estimate: float
    low: float
    high: float
    level: float
    replicates: int

    def to_dict(self) -> dict[str, float | int]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high,
                "level": self.level, "replicates": self.replicates}


def _check(reps: int, level: float) -> None:
    if reps < 1:
        raise ValueError(f"at least one bootstrap replicate is needed, got {reps}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"the interval level must be within (0, 1), got {level}")


def bootstrap(
    statistic: Callable[[np.ndarray], float],
    n_subjects: int,
    replicates: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile interval of ``statistic(m)`` over replicates of subject multiplicities ``m``.

    ``statistic`` receives a float64 array of length ``n_subjects``: all ones for the
    estimate, then for each replicate the counts of a uniform draw of ``n_subjects``
    subjects with replacement. Replicates where it returns NaN (e.g. no comparison
    left) are left out of the percentiles.
    """
    _check(replicates, level)
    if n_subjects < 1:
        nan = float("nan")
        return Interval(nan, nan, nan, level, 0)
    rng = np.random.default_rng(seed)
    estimate = float(statistic(np.ones(n_subjects)))
    values = np.empty(replicates)
    tick = REPLICATE_TICK.get()
    for r in range(replicates):
        m = np.bincount(rng.integers(0, n_subjects, n_subjects), minlength=n_subjects).astype(np.float64)
        values[r] = statistic(m)
        if tick is not None and r % 10 == 9:
            tick(10)
    if tick is not None and replicates % 10:
        tick(replicates % 10)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return Interval(estimate, float("nan"), float("nan"), level, 0)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return Interval(estimate, float(low), float(high), level, int(values.size))


def compact_subjects(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Renumber the subject ids of pairs ``(a, b)`` as ``0..n-1``; returns ``(a, b, n)``."""
    uniq, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    return inv[: a.size], inv[a.size:], int(uniq.size)


def pair_weights(m: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Copies of each pair in a replicate: ``m[a]`` for a genuine pair (``a == b``), else ``m[a] * m[b]``."""
    return np.where(a == b, m[a], m[a] * m[b])


def rate_interval(
    errors: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    replicates: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Interval of an error rate (FMR or FNMR) over comparisons ``(a[j], b[j])``.

    ``errors[j]`` says whether comparison ``j`` was an error at a fixed threshold;
    ``a``/``b`` are its two subjects' ids (any integers). Only the subjects present
    in these comparisons are resampled.
    """
    errors = np.asarray(errors, dtype=bool)
    if errors.size == 0:
        nan = float("nan")
        return Interval(nan, nan, nan, level, 0)
    a, b, n = compact_subjects(np.asarray(a), np.asarray(b))
    ea, eb = a[errors], b[errors]

    def rate(m: np.ndarray) -> float:
        total = pair_weights(m, a, b).sum()
        return float(pair_weights(m, ea, eb).sum() / total) if total > 0 else float("nan")

    out = bootstrap(rate, n, replicates, level, seed)
    if ea.size == 0:  # no error seen: the percentile interval is [0, 0]; give an honest upper bound
        out = Interval(out.estimate, 0.0, float(1.0 - (1.0 - level) ** (1.0 / errors.size)), level, out.replicates)
    return out


@dataclass(frozen=True, slots=True)
class OperatingPointInterval:
    """FNMR at a target FMR with the threshold re-chosen in every replicate."""

    target_fmr: float
    fnmr: Interval
    threshold: Interval


def _weighted_threshold(desc: np.ndarray, w: np.ndarray, target: float) -> float:
    """Smallest threshold accepting at most ``floor(target * sum(w))`` weight of ``desc`` (scores, descending)."""
    cw = np.cumsum(w)
    allowed = np.floor(target * cw[-1] * (1.0 + 1e-12))
    j = int(np.searchsorted(cw, allowed, side="right"))
    return float(np.nextafter(desc[j], np.inf)) if j < desc.size else float("-inf")


def operating_point_interval(
    genuine: np.ndarray,
    genuine_subject: np.ndarray,
    impostor: np.ndarray,
    impostor_subjects: tuple[np.ndarray, np.ndarray],
    target_fmr: float,
    replicates: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> OperatingPointInterval:
    """FNMR at ``target_fmr`` and its threshold, with subject-bootstrap intervals.

    Subject ids are shared by genuine and impostor comparisons (one subject universe).
    In each replicate the threshold is the weighted analogue of
    :func:`faceledger.core.metrics.threshold_at_fmr` on the resampled impostors, and
    FNMR is measured on the resampled genuine pairs at it.
    """
    ia, ib = impostor_subjects
    g_subj, both, n = compact_subjects(np.asarray(genuine_subject), np.concatenate([ia, ib]))
    i_a, i_b = both[: ia.size], both[ia.size:]
    order = np.argsort(-np.asarray(impostor, np.float64), kind="stable")
    desc, oa, ob = np.asarray(impostor, np.float64)[order], i_a[order], i_b[order]
    g = np.asarray(genuine, np.float64)
    thresholds: list[float] = []

    def fnmr(m: np.ndarray) -> float:
        t = _weighted_threshold(desc, pair_weights(m, oa, ob), target_fmr)
        thresholds.append(t)
        wg = m[g_subj]
        return float(wg[g < t].sum() / wg.sum()) if wg.sum() > 0 else float("nan")

    out = bootstrap(fnmr, n, replicates, level, seed)
    th = np.asarray(thresholds)
    alpha = (1.0 - level) / 2.0
    t_low, t_high = np.quantile(th[1:], [alpha, 1.0 - alpha]) if th.size > 1 else (th[0], th[0])
    return OperatingPointInterval(
        float(target_fmr), out, Interval(float(th[0]), float(t_low), float(t_high), level, th.size - 1)
    )
