"""The choice a latency-constrained search makes, judged against measurements.

A search under a latency budget keeps the most accurate architecture whose latency (predicted, or measured by
someone else) is within the budget. The choice meets the target of a search when its *measured* latency is within
the budget and its accuracy is within ``gap_points`` of the most accurate architecture measured within it.

Where the predictions come with a predictive standard deviation, :func:`log_target_probabilities` gives each
architecture's probability of meeting that target, and :func:`most_likely_to_meet` chooses the one most likely to:
the most accurate architecture predicted within the budget sits at the budget, and a few percent of error decide
whether it truly fits. On the 13 bundled NAS-Bench-201 devices, each held out and onboarded from 10 measurements
(budgets at the 25/50/75 % quantiles of its latencies), the most likely choice among all 15,625 archs met the
target 31 times of 39, the most accurate arch predicted within the budget 26 times (``python -m
nas_latency.mainjob --sweep``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from scipy.stats import norm

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


def _budget_z(predicted_ms: np.ndarray, log_std: np.ndarray, max_latency_ms: float) -> np.ndarray:
    """(ln budget - ln predicted) / log_std: ±inf where ``log_std`` is 0 (+inf at or under the budget)."""
    margin = np.log(max_latency_ms) - np.log(predicted_ms)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(log_std > 0, margin / np.where(log_std > 0, log_std, 1.0),
                        np.where(margin >= 0, np.inf, -np.inf))


def log_within_budget(predicted_ms: np.ndarray, log_std: np.ndarray, max_latency_ms: float) -> np.ndarray:
    """ln P(measured <= ``max_latency_ms``) of each arch, for ``ln measured ~ N(ln predicted_ms, log_std²)`` (a
    ``log_std`` of 0: 0 where the prediction is within the budget, else -inf). Inputs as validated by
    :func:`log_target_probabilities`."""
    return np.asarray(norm.logcdf(_budget_z(predicted_ms, log_std, max_latency_ms)), dtype=np.float64)


def log_target_probabilities(accuracy: Sequence[float], predicted_ms: Sequence[float], log_std: Sequence[float],
                             max_latency_ms: float, *, gap_points: float = ACCURACY_GAP_POINTS) -> np.ndarray:
    """The natural log of each architecture's probability of meeting the target under ``max_latency_ms`` among
    these architectures: that its measured latency is within the budget, and that no architecture more than
    ``gap_points`` more accurate is within it too (then the most accurate one within the budget is at most
    ``gap_points`` better).

    Each measured latency is taken as log-normal around its prediction, ``ln measured ~ N(ln predicted_ms,
    log_std²)``, independently of the others (a ``log_std`` of 0: the prediction is the measurement). The
    probability is of the target among the architectures given: archs not given (say, never evaluated) count as
    over the budget."""
    acc = np.asarray(accuracy, dtype=np.float64)
    mu = np.asarray(predicted_ms, dtype=np.float64)
    sd = np.asarray(log_std, dtype=np.float64)
    if not (acc.ndim == mu.ndim == sd.ndim == 1 and acc.size == mu.size == sd.size):
        raise InvalidInputError(f"log_target_probabilities: {acc.shape} accuracies, {mu.shape} predicted latencies "
                                f"and {sd.shape} standard deviations; give one of each per arch")
    bad = np.flatnonzero(~np.isfinite(acc) | ~np.isfinite(mu) | (mu <= 0) | ~np.isfinite(sd) | (sd < 0))
    if bad.size:
        i = int(bad[0])
        raise InvalidInputError(f"log_target_probabilities: arch {i} has accuracy {acc[i]}, predicted latency "
                                f"{mu[i]} ms and log_std {sd[i]}; need finite accuracies, positive latencies and "
                                f"log standard deviations >= 0 ({bad.size} such archs)")
    if not (np.isfinite(max_latency_ms) and max_latency_ms > 0):
        raise InvalidInputError(f"log_target_probabilities: max_latency_ms must be positive, got {max_latency_ms}")
    if not (np.isfinite(gap_points) and gap_points >= 0):
        raise InvalidInputError(f"log_target_probabilities: gap_points must be >= 0, got {gap_points}")
    z = _budget_z(mu, sd, max_latency_ms)
    log_within, log_over = norm.logcdf(z), norm.logsf(z)
    order = np.argsort(-acc, kind="stable")
    descending = acc[order]
    # log P(every arch of the first k in accuracy order is over the budget), k = 0..n
    log_all_over = np.concatenate([[0.0], np.cumsum(log_over[order])])
    # how many archs are more than gap_points more accurate than each (descending order)
    above = np.searchsorted(-descending, -(descending + gap_points), side="left")
    out = np.empty_like(acc)
    out[order] = log_within[order] + log_all_over[above]
    return out


def target_ranking(accuracy: Sequence[float], predicted_ms: Sequence[float], log_std: Sequence[float],
                   max_latency_ms: float, *, gap_points: float = ACCURACY_GAP_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """``(order, log_p)``: the indices of the architectures predicted within ``max_latency_ms``, most likely to meet
    the target first, and every architecture's :func:`log_target_probabilities`. Probabilities within a factor
    ``1 ± 1e-9`` of each other tie (two archs each surely within the budget differ only by rounding), and ties go
    to the more accurate, then the faster predicted, then the first given.

    Only a prediction within the budget is ranked: under independent errors, an architecture predicted over a
    crowded budget can be the likeliest (so many near it that one of them is surely within), which is a bet on the
    model's errors, not a choice within the budget. Architectures over the budget still count against those they
    beat by more than ``gap_points``."""
    log_p = log_target_probabilities(accuracy, predicted_ms, log_std, max_latency_ms, gap_points=gap_points)
    predicted = np.asarray(predicted_ms, dtype=np.float64)
    within = np.flatnonzero(predicted <= max_latency_ms)
    acc = np.asarray(accuracy, dtype=np.float64)[within]
    tied = np.round(log_p[within], 9)  # ln p to 1e-9: p to a relative 1e-9
    return within[np.lexsort((within, predicted[within], -acc, -tied))], log_p


def most_likely_to_meet(accuracy: Sequence[float], predicted_ms: Sequence[float], log_std: Sequence[float],
                        max_latency_ms: float, *, gap_points: float = ACCURACY_GAP_POINTS) -> int | None:
    """The index of the architecture predicted within ``max_latency_ms`` that is most likely to meet the target
    (the first of :func:`target_ranking`); None when none is predicted within the budget."""
    order, _ = target_ranking(accuracy, predicted_ms, log_std, max_latency_ms, gap_points=gap_points)
    return int(order[0]) if order.size else None


def most_accurate_of(candidates: Sequence[int] | np.ndarray, accuracy: Sequence[float],
                     latency_ms: Sequence[float]) -> int:
    """Of the indices ``candidates`` (say, those predicted within a budget), the most accurate; of equally accurate
    ones the faster, then the first in ``candidates``."""
    index = np.asarray(candidates, dtype=np.int64)
    if index.size == 0:
        raise InvalidInputError("most_accurate_of: no candidates")
    acc, latency = np.asarray(accuracy, dtype=np.float64), np.asarray(latency_ms, dtype=np.float64)
    return int(index[np.lexsort((latency[index], -acc[index]))[0]])


def with_measurements(archs: Sequence[str], predicted_ms: Sequence[float], log_std: Sequence[float],
                      measured: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(latency_ms, log_std, is_measured)``: what a budget choice goes by. An arch the device has measured is
    taken at its measurement, with a ``log_std`` of 0 (known, not predicted), so a measured arch over the budget is
    never chosen and one within it is certain to fit; every other arch at its prediction and its ``log_std``."""
    latency = np.array(predicted_ms, dtype=np.float64)
    std = np.array(log_std, dtype=np.float64)
    if latency.shape != (len(archs),) or std.shape != (len(archs),):
        raise InvalidInputError(f"with_measurements: {len(archs)} archs, {latency.shape} predicted latencies and "
                                f"{std.shape} standard deviations; give one of each per arch")
    is_measured = np.array([arch in measured for arch in archs], dtype=bool)
    for i in np.flatnonzero(is_measured):
        latency[i], std[i] = float(measured[archs[i]]), 0.0
    return latency, std, is_measured


def _check_budget_arrays(archs: Sequence[str], **arrays: np.ndarray) -> None:
    if any(a.ndim != 1 or a.size != len(archs) for a in arrays.values()):
        shapes = ", ".join(f"{name} {a.shape}" for name, a in arrays.items())
        raise InvalidInputError(f"budget_choices_met: {len(archs)} archs and {shapes}; give one of each per arch")
    for name, a in arrays.items():
        if not np.all(np.isfinite(a)):
            raise InvalidInputError(f"budget_choices_met: every {name} value must be finite")


def budget_choices_met(archs: Sequence[str], measured_ms: Sequence[float], guessed_ms: Sequence[float],
                       accuracy: Mapping[str, float], *, quantiles: Sequence[float] = BUDGET_QUANTILES,
                       gap_points: float = ACCURACY_GAP_POINTS,
                       guessed_log_std: Sequence[float] | None = None) -> list[bool]:
    """For a budget at each quantile of ``measured_ms``: does the arch chosen by ``guessed_ms`` meet the target
    against ``measured_ms``? The choice is the most accurate arch whose guess is within the budget, or, given
    ``guessed_log_std``, the arch :func:`most_likely_to_meet` it. False where nothing is chosen."""
    measured = np.asarray(measured_ms, dtype=np.float64)
    guessed = np.asarray(guessed_ms, dtype=np.float64)
    arrays = {"measured latency": measured, "guessed latency": guessed}
    if guessed_log_std is not None:
        arrays["guessed log_std"] = np.asarray(guessed_log_std, dtype=np.float64)
    _check_budget_arrays(archs, **arrays)
    if any(not 0.0 < q < 1.0 for q in quantiles):
        raise InvalidInputError(f"budget_choices_met: quantiles must lie in (0, 1), got {list(quantiles)}")
    position = {arch: i for i, arch in enumerate(archs)}
    acc = None if guessed_log_std is None else np.array([accuracy[arch] for arch in archs], dtype=np.float64)
    met = []
    for q in quantiles:
        budget = float(np.quantile(measured, q))
        _, best_acc = best_under_budget(archs, measured, accuracy, budget)
        if acc is None:
            chosen, _ = best_under_budget(archs, guessed, accuracy, budget)
        else:
            index = most_likely_to_meet(acc, guessed, arrays["guessed log_std"], budget, gap_points=gap_points)
            chosen = None if index is None else archs[index]
        met.append(chosen is not None and best_acc is not None
                   and meets_target(measured[position[chosen]], accuracy[chosen], budget, best_acc,
                                    gap_points=gap_points))
    return met


__all__ = ["ACCURACY_GAP_POINTS", "BUDGET_QUANTILES", "best_under_budget", "budget_choices_met",
           "log_target_probabilities", "log_within_budget", "meets_target", "most_accurate_of", "most_likely_to_meet",
           "target_ranking", "with_measurements"]
