"""Test-retest on the architectures that spell the same network twice: a device whose latency depends on the
network alone reproduces itself exactly, a noisy one by its noise; a choice under a budget is judged as the main
job's sweep judges it; a leave-device-out run scores a model on the same architectures."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from nas_latency.errors import InvalidInputError
from nas_latency.evaluate.budget_choice import budget_choices_met
from nas_latency.evaluate.datasets import LatencyDataset
from nas_latency.evaluate.protocols import RandomSignature, leave_device_out
from nas_latency.evaluate.retest import MIN_PAIRS, retest_agreement, twin_pairs, twin_rows
from nas_latency.models.specs import build_model
from search_spaces.nasbench201 import all_archs, branch_swap_twin, op_indices

NOISE_LOG = 0.05
ARCHS = [a for a in all_archs() if op_indices(a)[2] == 0][:1200]  # edge 1→2 none: most have their twin here


def network_latency_ms(arch: str) -> float:
    """A latency that depends on the network alone: the same for both spellings of it."""
    codes = sorted(op_indices(arch)[i] for i in (0, 1, 3, 4, 5))
    return 1.0 + sum((c + 1) ** 2 * 0.3 for c in codes)


def toy_dataset(accuracy_seed: int = 0) -> tuple[LatencyDataset, dict[str, float]]:
    rng = np.random.default_rng(accuracy_seed)
    exact = np.array([network_latency_ms(a) for a in ARCHS])
    noisy = exact * np.exp(rng.normal(scale=NOISE_LOG, size=exact.size))
    devices = ["exact", "noisy", "slower"]
    dataset = LatencyDataset(space="nasbench201", archs=list(ARCHS), devices=devices,
                             latency_ms=np.column_stack([exact, noisy, 3.0 * exact]), groups=devices,
                             info={d: {} for d in devices}, arch_ids=np.arange(len(ARCHS)),
                             degenerate=np.zeros(len(ARCHS), bool))
    accuracy = {a: float(v) for a, v in zip(ARCHS, rng.uniform(80, 95, len(ARCHS)))}
    return dataset, accuracy


def test_twin_pairs_are_the_pairs_present_each_once() -> None:
    pairs = twin_pairs("nasbench201", ARCHS)
    expected = {tuple(sorted((i, ARCHS.index(t)))) for i, a in enumerate(ARCHS)
                if (t := branch_swap_twin(a)) is not None and t in ARCHS}
    assert {tuple(p) for p in pairs.tolist()} == expected and len(pairs) == len(expected) > 100
    assert np.all(pairs[:, 0] < pairs[:, 1])
    assert twin_rows("nasbench201", ARCHS).tolist() == sorted({i for p in expected for i in p})
    with pytest.raises(InvalidInputError, match="fbnet has no architectures known to spell the same network twice"):
        twin_pairs("fbnet", ["x"])


def test_a_device_of_the_network_alone_reproduces_itself_and_a_noisy_one_by_its_noise() -> None:
    dataset, accuracy = toy_dataset()
    exact, noisy, slower = retest_agreement(dataset, accuracy)
    assert slower.metrics == exact.metrics
    n_pairs = len(twin_pairs("nasbench201", ARCHS))
    assert exact.device == "exact" and exact.n_pairs == noisy.n_pairs == n_pairs
    assert exact.median_abs_log_diff == 0.0 and exact.metrics["within_10pct"] == 1.0
    assert exact.metrics["spearman"] == pytest.approx(1.0) and exact.metrics["r2"] == pytest.approx(1.0)
    assert exact.noise_only_within_10pct == 1.0 and exact.budget_choices == (True, True, True)
    # the difference of two independent N(0, σ) log errors: median |d| = 0.674·√2·σ; |d|/√2 within ln 1.1 with
    # the probability of |z| ≤ ln 1.1 / σ = 1.91 (0.944)
    assert noisy.median_abs_log_diff == pytest.approx(0.674 * np.sqrt(2) * NOISE_LOG, rel=0.15)
    assert noisy.noise_only_within_10pct == pytest.approx(0.944, abs=0.03)
    assert noisy.metrics["within_10pct"] < noisy.noise_only_within_10pct
    assert noisy.metrics["spearman"] < exact.metrics["spearman"]
    assert retest_agreement(dataset)[0].budget_choices is None  # no accuracies, no choices


def test_unmeasured_twins_drop_their_pair_and_too_few_pairs_are_refused() -> None:
    dataset, _ = toy_dataset()
    pairs = twin_pairs("nasbench201", ARCHS)
    latency = dataset.latency_ms.copy()
    latency[pairs[0, 1], 1] = np.nan
    holed = replace(dataset, latency_ms=latency)
    exact, noisy, _ = retest_agreement(holed)
    assert (exact.n_pairs, noisy.n_pairs) == (len(pairs), len(pairs) - 1)
    latency = latency.copy()  # the dataset made its table read-only
    latency[pairs[MIN_PAIRS - 1:, 0], 1] = np.nan
    with pytest.raises(InvalidInputError, match=f"noisy: {MIN_PAIRS - 2} twin pairs measured on both sides"):
        retest_agreement(replace(dataset, latency_ms=latency))


def test_a_budget_choice_is_judged_on_the_measurements() -> None:
    archs = ["a", "b", "c", "d"]
    accuracy = {"a": 90.0, "b": 92.0, "c": 95.0, "d": 96.0}
    measured = [1.0, 2.0, 3.0, 4.0]  # the median budget is 2.5 ms: b is the best measured within it
    assert budget_choices_met(archs, measured, measured, accuracy, quantiles=[0.5]) == [True]
    assert budget_choices_met(archs, measured, [1.0, 2.0, 2.4, 4.0], accuracy, quantiles=[0.5]) == [False]  # c: over
    assert budget_choices_met(archs, measured, [1.0, 2.6, 3.0, 4.0], accuracy, quantiles=[0.5]) == [False]  # a: 2 pts
    assert budget_choices_met(archs, measured, [1.0, 2.6, 3.0, 4.0], accuracy, quantiles=[0.5],
                              gap_points=2.0) == [True]
    assert budget_choices_met(archs, measured, [9.0, 9.0, 9.0, 9.0], accuracy, quantiles=[0.5]) == [False]  # none
    assert budget_choices_met(archs, measured, measured, accuracy) == [True, True, True]
    with pytest.raises(InvalidInputError, match="one of each per arch"):
        budget_choices_met(archs, measured, measured[:3], accuracy)
    with pytest.raises(InvalidInputError, match="finite"):
        budget_choices_met(archs, measured, [1.0, np.nan, 3.0, 4.0], accuracy)
    with pytest.raises(InvalidInputError, match="quantiles must lie in"):
        budget_choices_met(archs, measured, measured, accuracy, quantiles=[1.0])


def test_leave_device_out_scores_the_twins_set_without_signature_archs() -> None:
    dataset, _ = toy_dataset()
    models = {"flops_xdev": lambda: build_model("flops_xdev")}
    result = leave_device_out(dataset, models, budget=5, seeds=[0], selector=RandomSignature(), twins=True)
    assert result.scoring_sets == ("help", "all", "twins")
    twins = twin_rows("nasbench201", ARCHS)
    for score in (s for s in result.scores if s.scoring_set == "twins"):
        signature = result.predictions[("flops_xdev", score.device)].signature_rows
        assert score.n_scored == np.setdiff1d(twins, signature).size
    assert leave_device_out(dataset, models, budget=5, seeds=[0], selector=RandomSignature()).scoring_sets == (
        "help", "all")
    other = replace(dataset, space="ganesan_mobile")
    with pytest.raises(InvalidInputError, match="ganesan_mobile has no architectures known"):
        leave_device_out(other, models, budget=5, seeds=[0], selector=RandomSignature(), twins=True)


def test_a_report_with_the_twins_set_puts_the_second_measurement_beside_the_model() -> None:
    from nas_latency.evaluate.report import render_markdown, result_document

    dataset, _ = toy_dataset()
    models = {"flops_xdev": lambda: build_model("flops_xdev")}
    result = leave_device_out(dataset, models, budget=5, seeds=[0, 1], selector=RandomSignature(), twins=True,
                              holdout=["noisy", "slower"])
    document = result_document(result)
    expected = {r.device: r for r in retest_agreement(dataset)}
    assert [r["device"] for r in document["retest"]] == ["noisy", "slower"]  # the held-out devices only
    for row in document["retest"]:
        assert row["spearman"] == pytest.approx(expected[row["device"]].metrics["spearman"])
        assert row["noise_only_within_10pct"] == expected[row["device"]].noise_only_within_10pct
    markdown = render_markdown(result)
    assert "## A second measurement of the same networks" in markdown
    assert "| slower |" in markdown.split("## A second measurement of the same networks")[1]
    without = leave_device_out(dataset, models, budget=5, seeds=[0], selector=RandomSignature())
    assert "retest" not in result_document(without) and "second measurement" not in render_markdown(without)
