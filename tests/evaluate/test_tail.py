"""The impostor tail model: a generalized Pareto fit and its person-level bootstrap (synthetic data)."""

from __future__ import annotations

import numpy as np
import pytest

from faceledger.evaluate.tail import TailFit, bootstrap_tail, fit_gpd, fit_tail, tail_pairs


def gpd_sample(xi: float, sigma: float, n: int, seed: int) -> np.ndarray:
    u = np.random.default_rng(seed).random(n)
    return sigma / xi * ((1 - u) ** (-xi) - 1)


@pytest.mark.parametrize("xi", [-0.3, -0.1, 0.1])
def test_the_fit_recovers_a_known_tail(xi: float) -> None:
    got_xi, got_sigma = fit_gpd(gpd_sample(xi, 0.04, 20_000, 1))
    assert got_xi == pytest.approx(xi, abs=0.03) and got_sigma == pytest.approx(0.04, rel=0.05)


def test_threshold_and_fmr_are_inverse_and_monotone() -> None:
    fit = TailFit(u=0.4, p_u=1e-3, xi=-0.2, sigma=0.05)
    for target in (1e-4, 1e-6, 1e-8):
        assert fit.fmr(fit.threshold(target)) == pytest.approx(target, rel=1e-9)
    assert fit.threshold(1e-8) > fit.threshold(1e-6) > fit.threshold(1e-4) > fit.u
    assert fit.fmr(fit.u + fit.sigma / -fit.xi + 0.01) == 0.0  # beyond the end of a bounded tail
    with pytest.raises(ValueError):
        fit.threshold(1e-2)  # not in the modelled tail


def test_fitted_thresholds_match_the_empirical_ones_where_both_exist() -> None:
    # scores whose upper tail is exactly a GPD above 0.3: the model's 1e-4 point must match the data's
    rng = np.random.default_rng(3)
    n = 2_000_000
    body = rng.uniform(-0.2, 0.3, n - 2_000)
    scores = np.concatenate([body, 0.3 + gpd_sample(-0.2, 0.05, 2_000, 4)])
    fit = fit_tail(scores[scores > 0.3], n, 0.3)
    empirical = np.sort(scores)[-200]  # 1e-4 of the pairs above it
    assert fit.p_u == pytest.approx(1e-3) and fit.threshold(1e-4) == pytest.approx(empirical, abs=0.01)


def test_tail_pairs_and_the_person_bootstrap() -> None:
    rng = np.random.default_rng(5)
    people = np.repeat(np.arange(60), 3)  # 60 people, 3 images each
    centres = rng.standard_normal((60, 16))
    v = centres[people] + 0.8 * rng.standard_normal((180, 16))
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    pairs = tail_pairs(v, people, floor=0.2, block=50)
    sims = v @ v.T
    i, j = np.triu_indices(180, 1)
    impostor = people[i] != people[j]
    assert pairs.total == impostor.sum()
    assert sorted(pairs.scores.tolist()) == pytest.approx(sorted(sims[i, j][impostor & (sims[i, j] >= 0.2)]))
    assert np.all(pairs.person_a != pairs.person_b)
    u = float(np.quantile(pairs.scores, 0.5))
    fits, fmrs = bootstrap_tail(pairs, u, [0.3, 0.4], rounds=50, seed=1)
    full = [(pairs.scores >= t).sum() / pairs.total for t in (0.3, 0.4)]
    assert len(fits) == 50 and fmrs.shape == (50, 2)
    assert np.all(fmrs.mean(axis=0) == pytest.approx(full, rel=0.25))  # centred on the full-set FMR
    assert np.all(fmrs.std(axis=0) > 0)  # and the resampled people make it vary
    assert len({round(f.xi, 6) for f in fits}) > 10
