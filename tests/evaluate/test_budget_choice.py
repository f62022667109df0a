"""The probability that a choice meets a search's target, and the choice most likely to meet it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from nas_latency.errors import InvalidInputError
from nas_latency.evaluate.budget_choice import (
    best_under_budget,
    budget_choices_met,
    log_target_probabilities,
    meets_target,
    most_likely_to_meet,
)


def within(predicted_ms: float, sd: float, budget_ms: float) -> float:
    """P(ln measured <= ln budget) for ln measured ~ N(ln predicted, sd²)."""
    return float(norm.cdf((math.log(budget_ms) - math.log(predicted_ms)) / sd))


def test_the_probability_is_within_budget_times_every_far_better_arch_over_it() -> None:
    accuracy = [90.0, 90.4, 91.0, 92.0]
    predicted = [8.0, 9.0, 10.5, 12.0]
    sd = [0.1, 0.05, 0.1, 0.2]
    budget = 10.0
    p = [within(m, s, budget) for m, s in zip(predicted, sd)]
    expected = [
        p[0] * (1 - p[2]) * (1 - p[3]),  # 90.4 is within 0.5 points of 90.0: it does not count
        p[1] * (1 - p[2]) * (1 - p[3]),
        p[2] * (1 - p[3]),
        p[3],  # nothing is more accurate
    ]
    got = np.exp(log_target_probabilities(accuracy, predicted, sd, budget, gap_points=0.5))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # the order of the archs does not matter
    order = [2, 0, 3, 1]
    shuffled = log_target_probabilities([accuracy[i] for i in order], [predicted[i] for i in order],
                                        [sd[i] for i in order], budget, gap_points=0.5)
    np.testing.assert_allclose(np.exp(shuffled), [expected[i] for i in order], rtol=1e-12)


def test_an_arch_exactly_gap_points_better_does_not_count_against_a_choice() -> None:
    # meets_target accepts accuracy >= best - gap: an arch exactly gap_points better leaves the choice in target
    got = np.exp(log_target_probabilities([90.0, 90.5], [9.0, 9.0], [0.1, 0.1], 10.0, gap_points=0.5))
    assert got[0] == pytest.approx(within(9.0, 0.1, 10.0))


def test_a_zero_standard_deviation_is_the_prediction_taken_as_the_measurement() -> None:
    got = np.exp(log_target_probabilities([90.0, 95.0, 96.0], [9.0, 10.0, 11.0], [0.0, 0.0, 0.0], 10.0))
    np.testing.assert_array_equal(got, [0.0, 1.0, 0.0])  # 95 at the budget is within it and beats 90 by 5 points
    assert most_likely_to_meet([90.0, 95.0, 96.0], [9.0, 10.0, 11.0], [0.0, 0.0, 0.0], 10.0) == 1


def test_the_most_likely_choice_trades_accuracy_for_margin_only_within_the_gap() -> None:
    # the most accurate arch predicted within the budget sits at it: a coin toss
    accuracy = [93.0, 93.3, 93.6]
    predicted = [8.0, 9.0, 9.95]
    sd = [0.07, 0.07, 0.07]
    chosen = most_likely_to_meet(accuracy, predicted, sd, 10.0)
    assert chosen == 1  # 0.3 points less, 10 % of margin: within budget with probability 0.93
    assert best_under_budget(["a", "b", "c"], predicted, dict(zip("abc", accuracy)), 10.0)[0] == "c"
    # more than gap_points below a likely-feasible arch, the safe arch is not worth it
    assert most_likely_to_meet([91.0, 93.6], [8.0, 9.0], [0.07, 0.07], 10.0) == 1


def test_ties_go_to_the_more_accurate_then_the_faster_then_the_first() -> None:
    assert most_likely_to_meet([90.0, 91.0], [1.0, 1.0], [0.0, 0.0], 10.0) == 1
    assert most_likely_to_meet([91.0, 91.0], [2.0, 1.0], [0.0, 0.0], 10.0) == 1
    assert most_likely_to_meet([91.0, 91.0], [1.0, 1.0], [0.0, 0.0], 10.0) == 0
    # both surely within the budget: their probabilities differ by rounding only, and the more accurate wins
    accuracy, predicted, sd = [74.97, 74.99], [11.59, 10.41], [0.043, 0.052]
    log_p = log_target_probabilities(accuracy, predicted, sd, 20.0)
    assert log_p[0] != log_p[1] and abs(log_p[0] - log_p[1]) < 1e-30
    assert most_likely_to_meet(accuracy, predicted, sd, 20.0) == 1
    assert most_likely_to_meet([], [], [], 10.0) is None
    assert most_likely_to_meet([90.0], [11.0], [0.0], 10.0) is None  # certainly over: no chance
    # predicted over the budget: never chosen, though it counts against the archs it beats by the gap
    log_p = log_target_probabilities([90.0, 95.0], [9.9, 10.05], [0.2, 0.2], 10.0)
    assert log_p[1] > log_p[0]  # the arch predicted just over the budget is the likelier to meet the target
    assert most_likely_to_meet([90.0, 95.0], [9.9, 10.05], [0.2, 0.2], 10.0) == 0


def test_bad_inputs_name_the_arch_and_the_value() -> None:
    with pytest.raises(InvalidInputError, match="one of each per arch"):
        log_target_probabilities([1.0, 2.0], [1.0], [0.1, 0.1], 5.0)
    with pytest.raises(InvalidInputError, match=r"arch 1 has accuracy 2.0, predicted latency -1.0 ms"):
        log_target_probabilities([1.0, 2.0], [1.0, -1.0], [0.1, 0.1], 5.0)
    with pytest.raises(InvalidInputError, match=r"arch 0 .* log_std nan"):
        log_target_probabilities([1.0], [1.0], [np.nan], 5.0)
    with pytest.raises(InvalidInputError, match="max_latency_ms must be positive"):
        log_target_probabilities([1.0], [1.0], [0.1], 0.0)
    with pytest.raises(InvalidInputError, match="gap_points must be >= 0"):
        log_target_probabilities([1.0], [1.0], [0.1], 5.0, gap_points=-1.0)


def test_budget_choices_by_the_most_likely_rule_are_judged_on_the_measurements() -> None:
    archs = ["a", "b", "c"]
    accuracy = {"a": 93.0, "b": 93.3, "c": 93.6}
    measured = [7.0, 9.5, 10.3]  # c is truly over a budget of 10 ms
    guessed = [8.0, 9.0, 9.95]
    sd = [0.07, 0.07, 0.07]
    budget_q = (10.0 - 9.5) / (10.3 - 9.5) * 0.5 + 0.5  # the quantile of the measurements that is 10 ms
    assert float(np.quantile(measured, budget_q)) == pytest.approx(10.0)
    assert budget_choices_met(archs, measured, guessed, accuracy, quantiles=[budget_q]) == [False]  # chose c
    assert budget_choices_met(archs, measured, guessed, accuracy, quantiles=[budget_q],
                              guessed_log_std=sd) == [True]  # chose b
    assert meets_target(9.5, 93.3, 10.0, 93.3)
    with pytest.raises(InvalidInputError, match="guessed log_std"):
        budget_choices_met(archs, measured, guessed, accuracy, guessed_log_std=sd[:2])


def test_a_measured_arch_is_taken_at_its_measurement_with_no_uncertainty() -> None:
    from nas_latency.evaluate.budget_choice import with_measurements

    latency, std, is_measured = with_measurements(["a", "b", "c"], [9.0, 9.5, 11.0], [0.1, 0.2, 0.3],
                                                  {"b": 10.5, "z": 1.0})
    np.testing.assert_array_equal(latency, [9.0, 10.5, 11.0])
    np.testing.assert_array_equal(std, [0.1, 0.0, 0.3])
    np.testing.assert_array_equal(is_measured, [False, True, False])
    # b, the most accurate, is predicted within 10 ms but measured over it: never chosen
    assert most_likely_to_meet([90.0, 95.0, 96.0], [9.0, 9.5, 11.0], [0.1, 0.2, 0.3], 10.0) == 1
    assert most_likely_to_meet([90.0, 95.0, 96.0], latency, std, 10.0) == 0
    with pytest.raises(InvalidInputError, match="one of each per arch"):
        with_measurements(["a", "b"], [1.0], [0.1, 0.1], {})


def test_the_most_accurate_candidate_and_on_a_tie_the_faster() -> None:
    from nas_latency.evaluate.budget_choice import most_accurate_of

    accuracy, latency = [91.0, 92.0, 92.0, 93.0], [5.0, 6.0, 5.5, 9.0]
    assert most_accurate_of([0, 1, 2], accuracy, latency) == 2
    assert most_accurate_of([3, 0], accuracy, latency) == 3
    with pytest.raises(InvalidInputError, match="no candidates"):
        most_accurate_of([], accuracy, latency)
