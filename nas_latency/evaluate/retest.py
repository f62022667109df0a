"""Test-retest: how closely a second measurement of the identical network reproduces the first.

NAS-Bench-201 spells 1,500 networks twice (:func:`search_spaces.nasbench201.branch_swap_twin`): two strings that
run the same operations on the same tensors. A latency table measures each of these networks twice, as two
architectures at unrelated places of the benchmark order, so a pair shows how well a measurement on that device
is reproduced: the timer's noise, the drift between the two times, whole-millisecond rounding.

:func:`retest_agreement` scores, per device, the twin's measurement as if it were a prediction of the
architecture's own (both ways round, so the score is symmetric) with the metrics a model gets
(:func:`~nas_latency.evaluate.metrics.summarize`), and, given the accuracies, whether a latency-constrained choice
made on the twins' measurements meets the search target against the architectures' own
(:func:`~nas_latency.evaluate.budget_choice.budget_choices_met`). ``leave_device_out(..., twins=True)`` scores a
model on the same architectures (the ``twins`` scoring set), so that a model and a second measurement can be read
side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.evaluate.budget_choice import budget_choices_met
from nas_latency.evaluate.metrics import summarize

if TYPE_CHECKING:
    from nas_latency.evaluate.datasets import LatencyDataset

#: a device needs at least this many measured twin pairs for a retest score
MIN_PAIRS = 10


def _twin_function(space: str) -> Callable[[str], str | None]:
    if space == "nasbench201":
        from search_spaces.nasbench201 import branch_swap_twin

        return branch_swap_twin
    raise InvalidInputError(f"{space} has no architectures known to spell the same network twice; the retest "
                            f"needs nasbench201")


def twin_pairs(space: str, archs: Sequence[str]) -> np.ndarray:
    """``(n, 2)`` positions in ``archs`` of the pairs of architectures that are the same network, each pair once
    (smaller position first, pairs sorted); a twin missing from ``archs`` makes no pair."""
    twin_of = _twin_function(space)
    position = {arch: i for i, arch in enumerate(archs)}
    pairs = set()
    for i, arch in enumerate(archs):
        twin = twin_of(arch)
        if twin is not None and twin in position:
            pairs.add((min(i, position[twin]), max(i, position[twin])))
    return np.array(sorted(pairs), dtype=np.intp).reshape(-1, 2)


def both_orders(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, second)``: every twin architecture's position and its twin's, each pair in both orders."""
    return np.concatenate([pairs[:, 0], pairs[:, 1]]), np.concatenate([pairs[:, 1], pairs[:, 0]])


def twin_rows(space: str, archs: Sequence[str]) -> np.ndarray:
    """Sorted positions in ``archs`` of every architecture whose twin is in ``archs`` too."""
    return np.unique(twin_pairs(space, archs))


@dataclass(frozen=True)
class RetestScore:
    """One device's second measurements of its twin architectures, scored as predictions of the first."""

    device: str
    #: pairs with both twins measured
    n_pairs: int
    #: median over the pairs of ``|ln first − ln second|``
    median_abs_log_diff: float
    #: :func:`summarize` of each twin architecture's measurement against its twin's, over both orders of every pair
    metrics: Mapping[str, float]
    #: an estimate of the share within ±10 % that a model with no error of its own would reach against one
    #: measurement: the pairs with ``|ln first − ln second| / √2 ≤ ln 1.1`` (if the two measurements' errors are
    #: independent and alike, their difference has √2 times their spread)
    noise_only_within_10pct: float
    #: per budget quantile (:data:`~nas_latency.evaluate.budget_choice.BUDGET_QUANTILES`): did the choice made on
    #: the twins' measurements meet the search target; None when no accuracies were given
    budget_choices: tuple[bool, ...] | None


def retest_agreement(dataset: LatencyDataset, accuracy: Mapping[str, float] | None = None) -> list[RetestScore]:
    """Per device: how well each twin architecture's measurement is reproduced by its twin's (see the module)."""
    pairs = twin_pairs(dataset.space, dataset.archs)
    scores = []
    for j, device in enumerate(dataset.devices):
        y = dataset.latency_ms[:, j]
        both = pairs[np.isfinite(y[pairs]).all(axis=1)]
        if both.shape[0] < MIN_PAIRS:
            raise InvalidInputError(f"{device}: {both.shape[0]} twin pairs measured on both sides; the retest needs "
                                    f"at least {MIN_PAIRS}")
        first, second = both_orders(both)
        choices = None
        if accuracy is not None:
            choices = tuple(budget_choices_met([dataset.archs[i] for i in first], y[first], y[second], accuracy))
        difference = np.abs(np.log(y[both[:, 0]] / y[both[:, 1]]))
        scores.append(RetestScore(device, int(both.shape[0]), float(np.median(difference)),
                                  summarize(y[first], y[second]),
                                  float(np.mean(difference / np.sqrt(2.0) <= np.log(1.1))), choices))
    return scores


__all__ = ["MIN_PAIRS", "RetestScore", "both_orders", "retest_agreement", "twin_pairs", "twin_rows"]
