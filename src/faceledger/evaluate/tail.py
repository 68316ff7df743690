"""A fitted model of the impostor score tail, for operating points stricter than the pairs can show.

A calibration set with ``N`` impostor pairs can show FMRs down to about ``10 / N``
(LFW View 1 training: 5.9 million pairs, so about 1e-6 with 6 false matches, which is
too few to trust). Below that, the tail of the impostor scores is modelled: above a
high score ``u`` (here the score with a share ``p_u`` of the pairs above it, e.g.
1e-3), the excesses ``x - u`` follow a generalized Pareto distribution (the
peaks-over-threshold model of extreme-value theory), so::

    FMR(t) = p_u * (1 + xi * (t - u) / sigma) ** (-1 / xi)        for t >= u

``xi`` and ``sigma`` are fitted by probability-weighted moments (Hosking & Wallis,
1987), which need no optimiser and behave well for bounded tails (``xi < 0``, as
cosine scores are). Pairs are not independent (every image is in thousands of pairs,
every person in many), so the uncertainty comes from a **person-level bootstrap**:
people are resampled with replacement and every pair is weighted by how often both
its people were drawn. A published threshold is the bootstrap's upper quantile
(``level``) of the thresholds that would meet the target, and its ``fmr_upper`` is
the same quantile of the FMRs the resampled fits give at it: "FMR <= fmr_upper with
95% confidence", under the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TailFit", "TailPairs", "bootstrap_tail", "fit_gpd", "fit_tail", "tail_pairs"]


@dataclass(frozen=True)
class TailFit:
    """A generalized Pareto tail above ``u``, holding a share ``p_u`` of the impostor pairs."""

    u: float
    p_u: float
    xi: float
    sigma: float

    def fmr(self, t: float) -> float:
        """Modelled FMR at threshold ``t`` (``t >= u``)."""
        y = max(t - self.u, 0.0)
        if abs(self.xi) < 1e-9:
            return float(self.p_u * np.exp(-y / self.sigma))
        base = 1.0 + self.xi * y / self.sigma
        return 0.0 if base <= 0 else float(self.p_u * base ** (-1.0 / self.xi))

    def threshold(self, target_fmr: float) -> float:
        """The threshold whose modelled FMR is ``target_fmr`` (at most ``p_u``)."""
        if not 0 < target_fmr <= self.p_u:
            raise ValueError(f"target FMR {target_fmr} is outside (0, {self.p_u}]")
        if abs(self.xi) < 1e-9:
            return float(self.u - self.sigma * np.log(target_fmr / self.p_u))
        return float(self.u + self.sigma / self.xi * ((target_fmr / self.p_u) ** (-self.xi) - 1.0))


def fit_gpd(excess: np.ndarray) -> tuple[float, float]:
    """``(xi, sigma)`` of a generalized Pareto fitted to positive excesses by probability-weighted moments."""
    y = np.sort(np.asarray(excess, np.float64))
    n = len(y)
    if n < 10:
        raise ValueError(f"{n} excesses are too few to fit a tail")
    a0 = float(y.mean())
    a1 = float(np.mean((1.0 - (np.arange(1, n + 1) - 0.35) / n) * y))
    k = a0 / (a0 - 2.0 * a1) - 2.0
    return -k, 2.0 * a0 * a1 / (a0 - 2.0 * a1)


def fit_tail(scores: np.ndarray, total: int, u: float) -> TailFit:
    """Fit the tail above ``u`` of impostor ``scores`` (all of those >= ``u``, out of ``total`` pairs)."""
    above = np.asarray(scores, np.float64)
    above = above[above > u]
    xi, sigma = fit_gpd(above - u)
    return TailFit(u, len(above) / total, xi, sigma)


@dataclass(frozen=True)
class TailPairs:
    """The impostor pairs scoring at least ``floor``, with the people they join (for the bootstrap)."""

    scores: np.ndarray  # float32
    person_a: np.ndarray  # person index of each pair's images
    person_b: np.ndarray
    images_per_person: np.ndarray  # images (with a face) of each person
    total: int  # impostor pairs in the set, all scores
    floor: float


def tail_pairs(vectors: np.ndarray, people: np.ndarray, floor: float, block: int = 1024) -> TailPairs:
    """Impostor pairs (different ``people`` indices) of unit ``vectors`` scoring at least ``floor``."""
    v = np.asarray(vectors, np.float32)
    people = np.asarray(people, np.int64)
    n = len(v)
    scores, pa, pb = [], [], []
    for start in range(0, n, block):
        sims = v[start:start + block] @ v.T
        rows = np.arange(start, min(start + block, n))[:, None]
        keep = (np.arange(n)[None, :] > rows) & (people[rows] != people[None, :]) & (sims >= floor)
        r, c = np.nonzero(keep)
        scores.append(sims[r, c])
        pa.append(people[r + start])
        pb.append(people[c])
    counts = np.bincount(people)
    total = (int(counts.sum()) ** 2 - int((counts.astype(np.int64) ** 2).sum())) // 2
    return TailPairs(np.concatenate(scores), np.concatenate(pa), np.concatenate(pb), counts, total, floor)


def bootstrap_tail(pairs: TailPairs, u: float, thresholds: list[float], rounds: int = 200, seed: int = 0
                   ) -> tuple[list[TailFit], np.ndarray]:
    """Person-level bootstrap: a tail fit per round, and the empirical FMR at each of ``thresholds``.

    Returns the fits and an array ``(rounds, len(thresholds))`` of weighted FMRs.
    """
    rng = np.random.default_rng(seed)
    people = len(pairs.images_per_person)
    n_img = pairs.images_per_person.astype(np.float64)
    fits, fmrs = [], np.zeros((rounds, len(thresholds)))
    above_u = pairs.scores > u
    for b in range(rounds):
        drawn = rng.multinomial(people, np.full(people, 1.0 / people)).astype(np.float64)
        w = drawn[pairs.person_a] * drawn[pairs.person_b]
        total = ((drawn * n_img).sum() ** 2 - ((drawn * n_img) ** 2).sum()) / 2
        wu = w[above_u].astype(np.int64)
        xi, sigma = fit_gpd(np.repeat(pairs.scores[above_u] - u, wu))
        fits.append(TailFit(u, float(wu.sum() / total), xi, sigma))
        for j, t in enumerate(thresholds):
            fmrs[b, j] = w[pairs.scores >= t].sum() / total
    return fits, fmrs
