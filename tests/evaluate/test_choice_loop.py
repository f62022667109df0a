"""Choose, measure, add, choose again: on a real embedded predictor (fresh SQLite store, the built-in NB201 model)
with a device registered from a bundled device's 10 signature latencies, whose "measurements" then run 30 % slower
than the ones it was registered with, so the first choices measure over the budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas_latency.builtin_models import bundled_training_table
from nas_latency.data import nb201_accuracy
from nas_latency.errors import InvalidInputError
from nas_latency.evaluate.choice_loop import choose_measure_add
from nas_latency.predictor import Predictor
from search_spaces import get_space

SPACE = "nasbench201"


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory):
    space = get_space(SPACE)
    table = bundled_training_table(space)
    truth = dict(zip(table.archs, table.latency_ms[:, 0]))
    accuracy = nb201_accuracy("cifar10_valid_acc")
    archs = sorted(table.archs)[::7]  # 2,233 candidates
    with Predictor(store_url=f"sqlite:///{tmp_path_factory.mktemp('loop') / 'store.sqlite'}") as predictor:
        signature = predictor.signature_set(SPACE, 10)
        yield predictor, truth, {a: truth[a] for a in signature}, archs, [accuracy[a] for a in archs]


def test_choices_measured_over_the_budget_are_added_and_never_chosen_again(setting) -> None:
    predictor, truth, signature, archs, accuracy = setting
    predictor.register_device("slower", SPACE, signature)
    budget = float(np.quantile([truth[a] for a in archs], 0.5))
    measured: list[str] = []

    def measure(arch: str) -> float:
        measured.append(arch)
        return 1.3 * truth[arch]

    loop = choose_measure_add(predictor, "slower", SPACE, archs, accuracy, measure, budget, max_added=8)
    assert len(loop.added) >= 1 and len(set(loop.added)) == len(loop.added)
    assert all(1.3 * truth[a] > budget for a in loop.added)
    assert measured == [*loop.added, loop.arch]  # each choice measured once
    assert loop.within_budget == (loop.measured_ms <= budget) and loop.measured_ms == 1.3 * truth[loop.arch]
    assert loop.within_budget or len(loop.added) == 8
    stored = predictor.device_measurements("slower", SPACE).as_mapping()
    assert len(stored) == 10 + len(loop.added) and all(stored[a] == 1.3 * truth[a] for a in loop.added)


def test_no_added_measurement_when_the_first_choice_fits(setting) -> None:
    predictor, truth, signature, archs, accuracy = setting
    predictor.register_device("exact", SPACE, signature)
    budget = float(np.quantile([truth[a] for a in archs], 0.9))
    loop = choose_measure_add(predictor, "exact", SPACE, archs, accuracy, lambda a: 0.5 * truth[a], budget)
    assert loop.added == () and loop.within_budget
    with pytest.raises(InvalidInputError, match="max_added"):
        choose_measure_add(predictor, "exact", SPACE, archs, accuracy, truth.__getitem__, budget, max_added=-1)


def test_the_most_accurate_rule_takes_the_most_accurate_arch_that_measures_within(setting) -> None:
    predictor, truth, signature, archs, accuracy = setting
    predictor.register_device("greedy", SPACE, signature)
    budget = float(np.quantile([truth[a] for a in archs], 0.5))
    loop = choose_measure_add(predictor, "greedy", SPACE, archs, accuracy, lambda a: 1.3 * truth[a], budget,
                              max_added=8, rule="most_accurate")
    predicted = predictor.predict(SPACE, archs, device="greedy")
    stored = predictor.device_measurements("greedy", SPACE).as_mapping()
    latency = [stored.get(a, p) for a, p in zip(archs, predicted)]
    within = [acc for acc, lat in zip(accuracy, latency) if lat <= budget]
    assert loop.within_budget and accuracy[archs.index(loop.arch)] == max(within)
    assert all(stored[a] > budget for a in loop.added)
    with pytest.raises(InvalidInputError, match="unknown rule 'fastest'"):
        choose_measure_add(predictor, "greedy", SPACE, archs, accuracy, truth.__getitem__, budget, rule="fastest")
