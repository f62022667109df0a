"""Metrics against scipy references and hand-worked cases; deterministic seeds throughout."""

from __future__ import annotations

import itertools
import math
import time
import warnings

import numpy as np
import pytest
from scipy import stats

from nas_latency.errors import InvalidInputError
from nas_latency.evaluate import (
    SUMMARY_KEYS,
    kendall_tau_b,
    mape,
    pareto_front,
    pareto_recall,
    r2,
    rankdata_average,
    spearman,
    summarize,
    top_k_overlap,
    within_pct,
)


def _scipy_spearman(x: np.ndarray, y: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.spearmanr(x, y).statistic)


def _scipy_kendall(x: np.ndarray, y: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.kendalltau(x, y, variant="b").statistic)


def _r2_reference(x: np.ndarray, y: np.ndarray) -> float:
    return 1.0 - np.sum((x - y) ** 2) / np.sum((x - np.mean(x)) ** 2)


def _datasets() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Random, correlated, heavily tied (whole-ms phone-like), tiny and mixed cases."""
    rng = np.random.default_rng(20240601)
    out = []
    for n in (2, 3, 7, 50, 1000):
        x = rng.lognormal(1.0, 0.6, size=n)
        out.append((f"random-{n}", x, rng.lognormal(1.0, 0.6, size=n)))
        out.append((f"correlated-{n}", x, x * rng.lognormal(0.0, 0.2, size=n)))
    for n in (10, 200, 3000):
        truth = rng.lognormal(3.0, 0.5, size=n)
        whole_ms = np.round(truth)  # phones report whole milliseconds: many ties
        pred = np.round(truth * rng.lognormal(0.0, 0.15, size=n))
        out.append((f"whole-ms-{n}", whole_ms, pred))
        out.append((f"ties-one-side-{n}", whole_ms, truth))
        levels_true = rng.integers(1, 4, size=n).astype(float)
        out.append((f"few-levels-{n}", levels_true, rng.integers(1, 3, size=n).astype(float)))
    return out


DATASETS = _datasets()


@pytest.mark.parametrize(("label", "x", "y"), DATASETS, ids=[d[0] for d in DATASETS])
def test_rank_correlations_match_scipy(label: str, x: np.ndarray, y: np.ndarray) -> None:
    for got, want in ((spearman(x, y), _scipy_spearman(x, y)), (kendall_tau_b(x, y), _scipy_kendall(x, y))):
        if math.isnan(want):
            assert math.isnan(got), label
        else:
            assert got == pytest.approx(want, abs=1e-12), label


@pytest.mark.parametrize(("label", "x", "y"), DATASETS, ids=[d[0] for d in DATASETS])
def test_r2_matches_formula(label: str, x: np.ndarray, y: np.ndarray) -> None:
    assert r2(x, y) == pytest.approx(_r2_reference(x, y), rel=1e-12, abs=1e-12)


def test_rankdata_average_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    cases = (rng.normal(size=100), np.round(rng.normal(size=500) * 3), np.array([2.0, 2.0, 2.0]), np.array([5.0]))
    for values in cases:
        np.testing.assert_allclose(rankdata_average(values), stats.rankdata(values, method="average"))


def test_kendall_exhaustive_small_permutations_with_ties() -> None:
    """Every arrangement of a small multiset against a tied truth, to cover all tie patterns."""
    truth = np.array([1.0, 1.0, 2.0, 3.0, 3.0, 4.0])
    for perm in set(itertools.permutations([1, 2, 2, 3, 5, 5])):
        pred = np.array(perm, dtype=float)
        assert kendall_tau_b(truth, pred) == pytest.approx(_scipy_kendall(truth, pred), abs=1e-12)
        assert spearman(truth, pred) == pytest.approx(_scipy_spearman(truth, pred), abs=1e-12)


@pytest.mark.parametrize("n", [2, 5, 1000])
def test_perfect_and_reversed_orderings(n: int) -> None:
    x = np.arange(1, n + 1, dtype=float)
    monotone = x**2 + 3  # same order, different scale
    assert spearman(x, monotone) == pytest.approx(1.0)
    assert kendall_tau_b(x, monotone) == pytest.approx(1.0)
    assert spearman(x, -monotone) == pytest.approx(-1.0)
    assert kendall_tau_b(x, -monotone) == pytest.approx(-1.0)
    assert r2(x, x) == 1.0
    assert mape(x, x) == 0.0
    assert within_pct(x, x, 0.0) == 1.0


def test_perfect_ordering_with_ties_in_both() -> None:
    x = np.array([1.0, 1.0, 2.0, 3.0, 3.0, 3.0])
    assert kendall_tau_b(x, 10 * x) == pytest.approx(1.0)
    assert spearman(x, 10 * x) == pytest.approx(1.0)
    assert kendall_tau_b(x, -x) == pytest.approx(-1.0)


@pytest.mark.parametrize("metric", [spearman, kendall_tau_b])
def test_constant_input_gives_nan(metric) -> None:  # type: ignore[no-untyped-def]
    assert math.isnan(metric([3.0, 3.0, 3.0], [1.0, 2.0, 3.0]))
    assert math.isnan(metric([1.0, 2.0, 3.0], [7.0, 7.0, 7.0]))


def test_r2_constant_truth_gives_nan_and_constant_prediction_is_not_special() -> None:
    assert math.isnan(r2([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]))
    assert r2([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == pytest.approx(0.0)  # predicting the mean scores 0
    assert r2([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-3.0)  # worse than the mean: negative


def test_kendall_fast_on_nb201_sized_data() -> None:
    rng = np.random.default_rng(3)
    truth = np.round(rng.lognormal(3.0, 0.4, size=15_625))  # whole-ms: heavy ties
    pred = truth * rng.lognormal(0.0, 0.1, size=15_625)
    kendall_tau_b(truth[:100], pred[:100])  # warm-up
    start = time.perf_counter()
    tau = kendall_tau_b(truth, pred)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"kendall_tau_b took {elapsed:.3f} s on 15,625 points"
    assert tau == pytest.approx(_scipy_kendall(truth, pred), abs=1e-12)
    start = time.perf_counter()
    spearman(truth, pred)
    assert time.perf_counter() - start < 1.0


# ---- MAPE and within ------------------------------------------------------------------------------------------
def test_mape_hand_values() -> None:
    assert mape([100.0, 200.0], [110.0, 150.0]) == pytest.approx((10.0 + 25.0) / 2)
    assert mape([1.0, 2.0, 4.0], [0.0, 2.0, 8.0]) == pytest.approx((100.0 + 0.0 + 100.0) / 3)


def test_within_pct_boundaries() -> None:
    truth = [100.0, 100.0, 100.0, 100.0, 1.0]
    pred = [110.0, 90.0, 110.5, 89.0, 1.1]  # exactly 10 % counts as within (also for 1.1 vs 1.0 in floats)
    assert within_pct(truth, pred) == pytest.approx(3 / 5)
    assert within_pct(truth, pred, pct=20.0) == 1.0
    assert within_pct(truth, pred, pct=0.0) == 0.0
    assert within_pct([1.0, 2.0], [1.0, 2.0], pct=0) == 1.0


@pytest.mark.parametrize("pct", [-1.0, float("nan"), float("inf"), "10", True])
def test_within_pct_rejects_bad_pct(pct: object) -> None:
    with pytest.raises(InvalidInputError, match="pct"):
        within_pct([1.0, 2.0], [1.0, 2.0], pct=pct)  # type: ignore[arg-type]


@pytest.mark.parametrize("metric", [mape, within_pct, summarize])
def test_relative_errors_need_positive_truth(metric) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match=r"positive.*index 1"):
        metric([1.0, 0.0, 2.0], [1.0, 1.0, 2.0])
    with pytest.raises(InvalidInputError, match="positive"):
        metric([1.0, -3.0], [1.0, 1.0])
    metric([1.0, 2.0], [-1.0, 0.0])  # predictions may be anything finite


# ---- validation shared by every metric -------------------------------------------------------------------------
ALL_PAIR_METRICS = [spearman, kendall_tau_b, mape, within_pct, r2, summarize]


@pytest.mark.parametrize("metric", ALL_PAIR_METRICS, ids=lambda m: m.__name__)
def test_validation_errors(metric) -> None:  # type: ignore[no-untyped-def]
    name = metric.__name__
    with pytest.raises(InvalidInputError, match=rf"{name}: y_true has 3 points but y_pred has 2"):
        metric([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(InvalidInputError, match="at least 2 points"):
        metric([1.0], [1.0])
    with pytest.raises(InvalidInputError, match="at least 2 points"):
        metric([], [])
    with pytest.raises(InvalidInputError, match=r"y_pred has 1 non-finite .* index 1"):
        metric([1.0, 2.0, 3.0], [1.0, float("nan"), 3.0])
    with pytest.raises(InvalidInputError, match=r"y_true has 2 non-finite .* index 0"):
        metric([float("inf"), 2.0, -float("inf")], [1.0, 2.0, 3.0])
    with pytest.raises(InvalidInputError, match="1-D"):
        metric([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(InvalidInputError, match="array of numbers"):
        metric(["a", "b"], [1.0, 2.0])


def test_errors_are_value_errors_with_reason() -> None:
    with pytest.raises(ValueError) as info:
        spearman([1.0], [1.0])
    assert info.value.reason == "INVALID_INPUT"  # type: ignore[attr-defined]


def test_accepts_lists_tuples_and_integer_arrays() -> None:
    assert spearman((1, 2, 3), np.array([1, 2, 3], dtype=np.int32)) == pytest.approx(1.0)
    assert kendall_tau_b([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


# ---- top-k --------------------------------------------------------------------------------------------------------
def test_top_k_overlap_without_ties() -> None:
    truth = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert top_k_overlap(truth, truth, 3) == 1.0
    assert top_k_overlap(truth, [6.0, 5.0, 4.0, 3.0, 2.0, 1.0], 3) == 0.0
    assert top_k_overlap(truth, [1.0, 5.0, 2.0, 6.0, 3.0, 4.0], 3) == pytest.approx(2 / 3)  # predicted {0, 2, 4}
    assert top_k_overlap(truth, [9.0, 8.0, 7.0, 6.0, 5.0, 4.0], 6) == 1.0


def test_top_k_overlap_ties_are_broken_at_random_in_expectation() -> None:
    truth = [1.0, 2.0, 2.0, 3.0]  # top-2: item 0, plus one of items 1 and 2 (probability 1/2 each)
    pred = [1.0, 2.0, 5.0, 6.0]  # predicted top-2: items 0 and 1
    assert top_k_overlap(truth, pred, 2) == pytest.approx((1 + 0.5) / 2)
    # a constant prediction scores chance (k / n), never a perfect score
    n, k = 10, 3
    assert top_k_overlap(np.arange(1.0, n + 1), np.ones(n), k) == pytest.approx(k / n)
    # order independent
    rng = np.random.default_rng(11)
    t = np.round(rng.lognormal(2.0, 0.3, size=200))
    p = np.round(t * rng.lognormal(0.0, 0.2, size=200))
    perm = rng.permutation(200)
    assert top_k_overlap(t, p, 20) == pytest.approx(top_k_overlap(t[perm], p[perm], 20), abs=1e-12)


def test_top_k_overlap_matches_monte_carlo_tie_breaking() -> None:
    rng = np.random.default_rng(5)
    t = rng.integers(1, 6, size=12).astype(float)
    p = rng.integers(1, 6, size=12).astype(float)
    k = 4
    trials = 20_000
    jitter_t = rng.random((trials, 12))
    jitter_p = rng.random((trials, 12))
    top_t = np.argsort(t + 1e-3 * jitter_t, axis=1)[:, :k]  # values are whole numbers: jitter only breaks ties
    top_p = np.argsort(p + 1e-3 * jitter_p, axis=1)[:, :k]
    overlap = np.mean([np.intersect1d(a, b).size for a, b in zip(top_t, top_p)]) / k
    assert top_k_overlap(t, p, k) == pytest.approx(overlap, abs=0.01)


@pytest.mark.parametrize("k", [0, 7, -1, 2.0, True])
def test_top_k_overlap_rejects_bad_k(k: object) -> None:
    with pytest.raises(InvalidInputError, match="k must be"):
        top_k_overlap([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], k)  # type: ignore[arg-type]


# ---- Pareto --------------------------------------------------------------------------------------------------------
def _pareto_reference(latency: np.ndarray, accuracy: np.ndarray) -> set[int]:
    front = set()
    for i in range(latency.size):
        dominated = np.any(
            (latency <= latency[i]) & (accuracy >= accuracy[i]) & ((latency < latency[i]) | (accuracy > accuracy[i]))
        )
        if not dominated:
            front.add(i)
    return front


def test_pareto_front_hand_case() -> None:
    latency = [10.0, 5.0, 20.0, 5.0, 7.0, 30.0, 7.0]
    accuracy = [0.80, 0.70, 0.90, 0.60, 0.70, 0.85, 0.75]
    # 1 (5 ms, .70) beats 3; 4 (7 ms, .70) is dominated by 1 (faster, as accurate); 6 (7 ms, .75) survives;
    # 5 is dominated by 2.
    assert pareto_front(latency, accuracy).tolist() == [1, 6, 0, 2]


def test_pareto_front_keeps_identical_points() -> None:
    assert pareto_front([1.0, 1.0, 2.0], [0.5, 0.5, 0.6]).tolist() == [0, 1, 2]


@pytest.mark.parametrize("seed", range(5))
def test_pareto_front_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    latency = np.round(rng.lognormal(2.0, 0.5, size=n))  # ties in latency
    accuracy = np.round(rng.uniform(0.5, 0.95, size=n), 2)  # ties in accuracy
    front = pareto_front(latency, accuracy)
    assert set(front.tolist()) == _pareto_reference(latency, accuracy)
    assert np.all(np.diff(latency[front]) >= 0)
    assert np.all(np.diff(accuracy[front]) >= 0)


def test_pareto_recall() -> None:
    rng = np.random.default_rng(9)
    latency = rng.lognormal(2.0, 0.5, size=500)
    accuracy = rng.uniform(0.5, 0.95, size=500)
    assert pareto_recall(latency, latency, accuracy) == 1.0
    assert pareto_recall(latency, 3.0 * latency + 1.0, accuracy) == 1.0  # any monotone map keeps the front
    true_front = set(pareto_front(latency, accuracy).tolist())
    noisy = latency * rng.lognormal(0.0, 0.3, size=500)
    pred_front = set(pareto_front(noisy, accuracy).tolist())
    expected = len(true_front & pred_front) / len(true_front)
    assert pareto_recall(latency, noisy, accuracy) == pytest.approx(expected)
    assert 0.0 <= expected < 1.0


def test_pareto_validation() -> None:
    with pytest.raises(InvalidInputError, match="pareto_front: latency has 3 points but accuracy has 2"):
        pareto_front([1.0, 2.0, 3.0], [0.1, 0.2])
    with pytest.raises(InvalidInputError, match="pareto_recall: true_latency has 2 points but accuracy has 3"):
        pareto_recall([1.0, 2.0], [1.0, 2.0], [0.1, 0.2, 0.3])
    with pytest.raises(InvalidInputError, match="accuracy has 1 non-finite"):
        pareto_recall([1.0, 2.0], [1.0, 2.0], [0.1, float("nan")])
    with pytest.raises(InvalidInputError, match="pred_latency has 1 points but|at least 2 points"):
        pareto_recall([1.0, 2.0], [1.0], [0.1, 0.2])


# ---- summary -------------------------------------------------------------------------------------------------------
def test_summarize_keys_and_values() -> None:
    rng = np.random.default_rng(2)
    truth = rng.lognormal(2.0, 0.5, size=300)
    pred = truth * rng.lognormal(0.0, 0.1, size=300)
    summary = summarize(truth, pred)
    assert tuple(summary) == SUMMARY_KEYS
    assert all(isinstance(v, float) for v in summary.values())
    assert summary["spearman"] == pytest.approx(_scipy_spearman(truth, pred), abs=1e-12)
    assert summary["kendall"] == pytest.approx(_scipy_kendall(truth, pred), abs=1e-12)
    assert summary["mape_pct"] == pytest.approx(100 * np.mean(np.abs(pred - truth) / truth))
    assert summary["within_10pct"] == pytest.approx(np.mean(np.abs(pred - truth) <= 0.1 * truth))
    assert summary["r2"] == pytest.approx(_r2_reference(truth, pred))
