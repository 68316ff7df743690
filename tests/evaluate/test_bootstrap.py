"""Subject-resampling bootstrap: weights, coverage on a known clustered case, operating points."""

from __future__ import annotations

import numpy as np
import pytest

from faceledger.core import metrics
from faceledger.evaluate.bootstrap import (
    _weighted_threshold,
    bootstrap,
    operating_point_interval,
    pair_weights,
    rate_interval,
)


def test_weights_equal_an_explicitly_resampled_data_set() -> None:
    """A replicate's weighted rate is the rate of the data set rebuilt from the drawn subjects."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 6, 40)
    b = np.where(rng.random(40) < 0.5, a, rng.integers(0, 6, 40))  # genuine (a == b) and impostor pairs
    err = rng.random(40) < 0.3
    draw = rng.integers(0, 6, 6)
    m = np.bincount(draw, minlength=6).astype(float)
    rebuilt = []  # every pair whose subjects were drawn, once per combination of drawn copies
    for j in range(40):
        copies = m[a[j]] if a[j] == b[j] else m[a[j]] * m[b[j]]
        rebuilt += [err[j]] * int(copies)
    w = pair_weights(m, a, b)
    assert w.sum() == len(rebuilt)
    assert (w * err).sum() / w.sum() == pytest.approx(np.mean(rebuilt))


def _clustered(rng: np.random.Generator, n_subjects: int, per_subject: int) -> tuple[np.ndarray, np.ndarray]:
    """Genuine pairs of subjects who are either easy (p=0) or hard (p=0.5); true FNMR = 0.2 * 0.5 = 0.1."""
    p = np.where(rng.random(n_subjects) < 0.2, 0.5, 0.0)
    subj = np.repeat(np.arange(n_subjects), per_subject)
    return rng.random(subj.size) < p[subj], subj


def test_subject_bootstrap_covers_the_true_rate_and_pair_bootstrap_does_not() -> None:
    rng = np.random.default_rng(11)
    hits_subject = hits_pairs = 0
    trials = 100
    for t in range(trials):
        err, subj = _clustered(rng, 150, 10)
        iv = rate_interval(err, subj, subj, replicates=150, level=0.95, seed=t)
        hits_subject += iv.low <= 0.1 <= iv.high
        ids = np.arange(err.size)  # every pair its own "subject": the naive pair bootstrap
        naive = rate_interval(err, ids, ids, replicates=150, level=0.95, seed=t)
        hits_pairs += naive.low <= 0.1 <= naive.high
    assert hits_subject / trials >= 0.88  # nominal 0.95; binomial noise over 100 trials is about 0.02
    assert hits_pairs / trials <= 0.80  # clustering makes the pair bootstrap far too narrow (about 0.6)


def test_no_error_gives_an_exact_binomial_upper_bound() -> None:
    subj = np.repeat(np.arange(30), 4)
    iv = rate_interval(np.zeros(120, bool), subj, subj, replicates=50)
    assert iv.estimate == 0.0 and iv.low == 0.0
    assert iv.high == pytest.approx(1 - 0.05 ** (1 / 120))


def test_bootstrap_drops_undefined_replicates_and_checks_input() -> None:
    iv = bootstrap(lambda m: float("nan") if m[0] == 0 else 1.0, 3, replicates=100, seed=1)
    assert 0 < iv.replicates < 100 and iv.low == iv.high == 1.0
    with pytest.raises(ValueError):
        bootstrap(lambda m: 0.0, 3, replicates=0)
    with pytest.raises(ValueError):
        bootstrap(lambda m: 0.0, 3, level=1.5)


@pytest.mark.parametrize("target", [0.1, 0.01, 0.003])
def test_weighted_threshold_with_unit_weights_is_threshold_at_fmr(target: float) -> None:
    rng = np.random.default_rng(5)
    imp = np.round(rng.normal(0, 0.1, 2000), 3)  # rounding makes ties
    desc = np.sort(imp)[::-1]
    assert _weighted_threshold(desc, np.ones(desc.size), target) == metrics.threshold_at_fmr(imp, target)


def test_operating_point_interval_estimate_matches_metrics() -> None:
    rng = np.random.default_rng(7)
    n = 80
    gs = np.repeat(np.arange(n), 3)
    gen = rng.normal(0.6, 0.15, gs.size)
    ia, ib = rng.integers(0, n, 5000), rng.integers(0, n, 5000)
    keep = ia != ib
    ia, ib = ia[keep], ib[keep]
    imp = rng.normal(0.0, 0.12, ia.size)
    iv = operating_point_interval(gen, gs, imp, (ia, ib), 0.01, replicates=100, seed=2)
    op = metrics.operating_point(gen, imp, 0.01)
    assert iv.fnmr.estimate == pytest.approx(op.fnmr)
    assert iv.threshold.estimate == op.threshold
    assert iv.fnmr.low <= op.fnmr <= iv.fnmr.high and iv.fnmr.high > iv.fnmr.low
    assert iv.threshold.low <= op.threshold <= iv.threshold.high
