"""Choose under a latency budget, measure the choice, and choose again until one measures within the budget.

The arch most likely to meet a budget's target (:func:`~nas_latency.evaluate.budget_choice.most_likely_to_meet`)
sits near the budget, so a few percent of prediction error decide whether it truly fits. Where the device is at
hand, measuring the choice settles it: :func:`choose_measure_add` chooses (that arch, or the most accurate one
predicted within the budget), measures the choice with the caller's
``measure``, and, while the measurement is over the budget, adds it to the device (``contribute_measurements``, as
``nas-latency devices add`` does) and chooses again. An added arch is taken at its measurement from then on
(:func:`~nas_latency.evaluate.budget_choice.with_measurements`), so it is never offered twice, and the device's
model is adapted to every measurement so far, so its neighbours move too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.evaluate.budget_choice import (
    ACCURACY_GAP_POINTS,
    most_accurate_of,
    most_likely_to_meet,
    with_measurements,
)


@dataclass(frozen=True)
class LoopChoice:
    """Where :func:`choose_measure_add` stopped.

    ``arch``: the last choice (None when no arch was predicted within the budget); ``measured_ms``: its
    measurement; ``within_budget``: whether that measurement is within the budget (False when the loop ran out of
    ``max_added``); ``added``: the archs measured over the budget and added to the device, in order."""

    arch: str | None
    measured_ms: float | None
    within_budget: bool
    added: tuple[str, ...]


#: how :func:`choose_measure_add` chooses: the arch most likely to meet the target (``nas-latency choose``), or the
#: most accurate arch predicted (or measured) within the budget
LOOP_RULES = ("most_likely", "most_accurate")


def choose_measure_add(predictor: Any, device: str, space: str, archs: Sequence[str], accuracy: Sequence[float],
                       measure: Callable[[str], float], max_latency_ms: float, *, max_added: int = 5,
                       rule: str = "most_likely", gap_points: float = ACCURACY_GAP_POINTS) -> LoopChoice:
    """Choose among ``archs`` (with their ``accuracy``) on the registered ``device`` by ``rule`` (one of
    :data:`LOOP_RULES`), measure the choice, and add each choice measured over ``max_latency_ms`` to the device
    before choosing again, at most ``max_added`` times. ``predictor`` is an embedded
    :class:`~nas_latency.predictor.Predictor` or a :class:`~nas_latency.client.LatencyClient`; ``measure(arch)``
    returns the arch's latency in ms on the device."""
    if isinstance(max_added, bool) or not isinstance(max_added, int) or max_added < 0:
        raise InvalidInputError(f"max_added must be an integer >= 0, got {max_added!r}")
    if rule not in LOOP_RULES:
        raise InvalidInputError(f"unknown rule {rule!r}; choose one of {', '.join(LOOP_RULES)}")
    if len(archs) != len(accuracy):
        raise InvalidInputError(f"choose_measure_add: {len(archs)} archs and {len(accuracy)} accuracies")
    acc = np.asarray(accuracy, dtype=np.float64)
    added: list[str] = []
    while True:
        predicted, log_std = predictor.predict_with_uncertainty(space, list(archs), device=device)
        measured = predictor.device_measurements(device, space).as_mapping()
        latency, std, _ = with_measurements(archs, predicted, log_std, measured)
        if rule == "most_likely":
            index = most_likely_to_meet(acc, latency, std, max_latency_ms, gap_points=gap_points)
        else:
            within = np.flatnonzero(latency <= max_latency_ms)
            index = most_accurate_of(within, acc, latency) if within.size else None
        if index is None:
            return LoopChoice(None, None, False, tuple(added))
        arch = archs[index]
        measured_ms = float(measured[arch]) if arch in measured else float(measure(arch))
        if measured_ms <= max_latency_ms or len(added) == max_added:
            return LoopChoice(arch, measured_ms, measured_ms <= max_latency_ms, tuple(added))
        predictor.contribute_measurements(device, space, {arch: measured_ms})
        added.append(arch)


__all__ = ["LOOP_RULES", "LoopChoice", "choose_measure_add"]
