"""The choice a latency-constrained search makes, judged against measurements.

A search under a latency budget keeps the most accurate architecture whose latency (predicted, or measured by
someone else) is within the budget. The choice meets the target of a search when its *measured* latency is within
the budget and its accuracy is within ``gap_points`` of the most accurate architecture measured within it.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError

#: budgets at these quantiles of the measured latencies, as the main job's sweep sets them
BUDGET_QUANTILES: tuple[float, ...] = (0.25, 0.5, 0.75)
#: the accuracy (percentage points) a choice may lose to the best architecture measured within the budget
ACCURACY_GAP_POINTS = 0.5


def best_under_budget(archs: Sequence[str], latency_ms: Sequence[float], accuracy: Mapping[str, float],
                      max_latency_ms: float) -> tuple[str | None, float | None]:
    """The most accurate arch whose (e.g. measured) latency is within the budget, and its accuracy."""
    best, best_acc = None, None
    for arch, lat in zip(archs, latency_ms):
        if lat <= max_latency_ms and (best_acc is None or accuracy[arch] > best_acc):
            best, best_acc = arch, accuracy[arch]
    return best, best_acc


def meets_target(measured_ms: float, accuracy: float, max_latency_ms: float, best_accuracy: float, *,
                 gap_points: float = ACCURACY_GAP_POINTS) -> bool:
    """Does a choice measured at ``measured_ms`` with ``accuracy`` meet the target under ``max_latency_ms``, where
    the most accurate architecture measured within the budget has ``best_accuracy``?"""
    return bool(measured_ms <= max_latency_ms and accuracy >= best_accuracy - gap_points)


def budget_choices_met(archs: Sequence[str], measured_ms: Sequence[float], guessed_ms: Sequence[float],
                       accuracy: Mapping[str, float], *, quantiles: Sequence[float] = BUDGET_QUANTILES,
                       gap_points: float = ACCURACY_GAP_POINTS) -> list[bool]:
    """For a budget at each quantile of ``measured_ms``: does the most accurate arch whose ``guessed_ms`` is within
    the budget meet the target against ``measured_ms``? False where no guess is within the budget."""
    measured = np.asarray(measured_ms, dtype=np.float64)
    guessed = np.asarray(guessed_ms, dtype=np.float64)
    if not (len(archs) == measured.size == guessed.size) or measured.ndim != 1 or guessed.ndim != 1:
        raise InvalidInputError(f"budget_choices_met: {len(archs)} archs, {measured.shape} measured and "
                                f"{guessed.shape} guessed latencies; give one of each per arch")
    if not (np.all(np.isfinite(measured)) and np.all(np.isfinite(guessed))):
        raise InvalidInputError("budget_choices_met: every measured and guessed latency must be finite")
    if any(not 0.0 < q < 1.0 for q in quantiles):
        raise InvalidInputError(f"budget_choices_met: quantiles must lie in (0, 1), got {list(quantiles)}")
    position = {arch: i for i, arch in enumerate(archs)}
    met = []
    for q in quantiles:
        budget = float(np.quantile(measured, q))
        _, best_acc = best_under_budget(archs, measured, accuracy, budget)
        chosen, chosen_acc = best_under_budget(archs, guessed, accuracy, budget)
        met.append(chosen is not None and best_acc is not None and chosen_acc is not None
                   and meets_target(measured[position[chosen]], chosen_acc, budget, best_acc, gap_points=gap_points))
    return met


__all__ = ["ACCURACY_GAP_POINTS", "BUDGET_QUANTILES", "best_under_budget", "budget_choices_met", "meets_target"]
