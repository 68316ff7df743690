"""faceledger.core.metrics against scikit-learn, brute force and hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import det_curve as sk_det_curve
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from faceledger.core import metrics


def _labelled(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.concatenate([np.ones(genuine.size, int), np.zeros(impostor.size, int)])
    return y, np.concatenate([genuine, impostor])


def random_scores(seed: int, n_gen: int = 400, n_imp: int = 3000, decimals: int | None = 2):
    """Overlapping score distributions; rounding makes many ties."""
    rng = np.random.default_rng(seed)
    g, i = rng.normal(0.6, 0.15, n_gen), rng.normal(0.1, 0.15, n_imp)
    return (np.round(g, decimals), np.round(i, decimals)) if decimals is not None else (g, i)


@pytest.mark.parametrize(("seed", "decimals"), [(0, 2), (1, None), (2, 1)])
def test_roc_matches_sklearn(seed: int, decimals: int | None) -> None:
    g, i = random_scores(seed, decimals=decimals)
    y, s = _labelled(g, i)
    fpr, tpr, thr = sk_roc_curve(y, s, drop_intermediate=False)
    roc = metrics.roc_curve(g, i)
    np.testing.assert_allclose(roc.fmr, fpr)
    np.testing.assert_allclose(roc.tar, tpr)
    np.testing.assert_array_equal(roc.thresholds[1:], thr[1:])
    assert roc.thresholds[0] == np.inf
    assert metrics.roc_auc(g, i) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_det_matches_sklearn() -> None:
    g, i = random_scores(3)
    y, s = _labelled(g, i)
    fpr, fnr, thr = sk_det_curve(y, s)
    fmr, fnmr = metrics.error_rates(g, i, thr)
    np.testing.assert_allclose(fmr, fpr)
    np.testing.assert_allclose(fnmr, fnr)
    t, dfmr, dfnmr = metrics.det_curve(g, i)
    assert np.all(np.diff(t) > 0) and np.all(np.diff(dfmr) <= 0) and np.all(np.diff(dfnmr) >= 0)


def test_error_rates_match_brute_force() -> None:
    g, i = random_scores(4)
    thresholds = np.linspace(-0.5, 1.2, 57)
    fmr, fnmr = metrics.error_rates(g, i, thresholds)
    for t, a, b in zip(thresholds, fmr, fnmr, strict=True):
        assert a == np.mean(i >= t) == metrics.fmr_at(i, t)
        assert b == np.mean(g < t) == metrics.fnmr_at(g, t)


def test_threshold_at_fmr_with_ties() -> None:
    imp = np.array([0.1, 0.5, 0.5, 0.5, 0.9])
    # target 0.2 of 5: one false match allowed -> just above the 2nd highest (0.5)
    t = metrics.threshold_at_fmr(imp, 0.2)
    assert t == np.nextafter(0.5, 1.0) and metrics.fmr_at(imp, t) == 0.2
    # target 0.4: two allowed, but 0.5 is tied three times: all three are rejected
    t = metrics.threshold_at_fmr(imp, 0.4)
    assert t > 0.5 and metrics.fmr_at(imp, t) == 0.2
    # target 0.8: four allowed -> 0.1 is the 5th highest, threshold just above it
    assert metrics.threshold_at_fmr(imp, 0.8) == np.nextafter(0.1, 1.0)
    # fewer impostors than 1 / target: above every impostor, and flagged as unresolved
    op = metrics.operating_point([0.95, 0.3], imp, 1e-3)
    assert op.threshold > 0.9 and op.fmr == 0.0 and op.fnmr == 0.5 and not op.resolved
    assert metrics.operating_point([0.95], np.linspace(0, 1, 1000), 1e-3).resolved


def test_target_fmr_float_rounding() -> None:
    imp = np.arange(3000) / 3000.0  # 1e-3 * 3000 is not exactly 3 in floating point
    t = metrics.threshold_at_fmr(imp, 1e-3)
    assert metrics.fmr_at(imp, t) == 3 / 3000


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=60),
    st.floats(1e-3, 0.999),
)
def test_threshold_at_fmr_is_the_smallest_meeting_the_target(imp: list[float], target: float) -> None:
    t = metrics.threshold_at_fmr(imp, target)
    assert metrics.fmr_at(imp, t) <= target
    assert metrics.fmr_at(imp, np.nextafter(t, -np.inf)) > target


@pytest.mark.parametrize(
    "call",
    [
        lambda: metrics.threshold_at_fmr([], 1e-3),
        lambda: metrics.tar_at_far([], [0.1], 1e-3),
        lambda: metrics.tar_at_far([0.9], [], 1e-3),
        lambda: metrics.error_rates([0.9], [], 0.5),
        lambda: metrics.roc_curve([], [0.1]),
        lambda: metrics.eer([0.9], []),
        lambda: metrics.fmr_at([], 0.5),
        lambda: metrics.kfold_accuracy([], [], []),
        lambda: metrics.threshold_at_fmr([0.1, float("nan")], 1e-3),
        lambda: metrics.threshold_at_fmr([0.1], 0.0),
        lambda: metrics.threshold_at_fmr([0.1], 1.0),
        lambda: metrics.kfold_accuracy([0.1, 0.2], [True, False], [0, 0]),
        lambda: metrics.kfold_accuracy([0.1, 0.2], [True, False], [0, 1, 2]),
    ],
)
def test_invalid_input_raises_value_error(call) -> None:
    with pytest.raises(ValueError):
        call()


def test_tar_at_far_matches_roc() -> None:
    g, i = random_scores(5, n_imp=20000, decimals=None)
    roc = metrics.roc_curve(g, i)
    for far in (1e-3, 1e-2, 0.1):
        # the best TAR among ROC points whose FMR is within the target
        expected = roc.tar[roc.fmr <= far].max()
        assert metrics.tar_at_far(g, i, far) == pytest.approx(expected)


def test_eer_hand_worked() -> None:
    e = metrics.eer([0.6, 0.7, 0.8, 0.9], [0.1, 0.2, 0.3, 0.65])
    assert e.rate == pytest.approx(0.25) and e.threshold == 0.65
    assert metrics.eer([0.9, 0.8], [0.1, 0.2]).rate == 0.0


def test_eer_between_the_rates_around_it() -> None:
    g, i = random_scores(6, decimals=None)
    e = metrics.eer(g, i)
    fmr, fnmr = metrics.error_rates(g, i, e.threshold)
    assert min(fmr, fnmr) - 1e-3 <= e.rate <= max(fmr, fnmr) + 1e-3
    assert 0.02 < e.rate < 0.08  # two normals 0.5 apart, sd 0.15: Phi(-5/3) = 0.048


def test_best_accuracy_threshold_ties_go_to_the_median_candidate() -> None:
    assert metrics.best_accuracy_threshold([0.8, 0.9], [0.1, 0.2]) == (0.5, 1.0)
    # candidates -0.9, 0.45, 0.85, 1.9 score 1/3, 2/3, 1/3, 2/3: the lower median of {0.45, 1.9}
    t, acc = metrics.best_accuracy_threshold([0.8], [0.1, 0.9])
    assert t == pytest.approx(0.45) and acc == pytest.approx(2 / 3)
    assert metrics.accuracy_at([0.8], [0.1, 0.9], t) == pytest.approx(2 / 3)


def test_kfold_known_answer() -> None:
    folds = np.repeat(np.arange(10), 6)
    same = np.tile([True, True, True, False, False, False], 10)
    scores = np.where(same, 0.9, 0.1)
    scores[0 * 6 + 1], scores[0 * 6 + 2] = 0.55, 0.45  # fold 0: two weak genuine pairs
    scores[3 * 6 + 0] = 0.05  # fold 3: one genuine pair below every impostor
    r = metrics.kfold_accuracy(scores, same, folds)
    # fold 0 trains on {0.05, 0.1, 0.9}: threshold 0.5 rejects its 0.45 pair;
    # the others see 0.45 and 0.55 and choose 0.275, which still rejects fold 3's 0.05.
    np.testing.assert_allclose(r.thresholds, [0.5] + [0.275] * 9)
    expected = np.array([5 / 6, 1, 1, 5 / 6, 1, 1, 1, 1, 1, 1])
    np.testing.assert_allclose(r.accuracies, expected)
    assert r.mean == pytest.approx(expected.mean())
    assert r.std == pytest.approx(np.std(expected, ddof=1))
    assert r.sem == pytest.approx(np.std(expected, ddof=1) / math.sqrt(10))


def test_millions_of_impostors() -> None:
    rng = np.random.default_rng(7)
    g, i = rng.normal(0.6, 0.1, 20_000), rng.normal(0.0, 0.1, 2_000_000)
    op = metrics.operating_point(g, i, 1e-4)
    assert op.resolved and op.fmr <= 1e-4 and round(op.fmr * i.size) == 200
    assert op.threshold == pytest.approx(0.1 * 3.719, abs=0.01)  # the 1 - 1e-4 normal quantile
