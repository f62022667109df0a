"""Drift along the order a benchmark measured its architectures in.

A device that measures architecture after architecture for hours does not stay the same device: clocks, heat
and background load change. Where the architectures were measured in the order of their benchmark index, that
change shows up as latency errors that are correlated along the index, which no model of the architecture can
predict (the index says nothing about the architecture: NAS-Bench-201's official order and FBNet's ``arch_id``
are unrelated to the ops).

Estimate, per device (:func:`order_drift`)
    The in-device ridge of :mod:`~nas_latency.evaluate.ceiling` (the linear design of the cross-device models)
    predicts every measured architecture's log latency out of fold; the residuals ``ln y − ln ŷ``, put in
    measurement order (the dataset's ``arch_ids``), are smoothed by a running median over ``window``
    consecutive architectures. The window holds ~100 architectures drawn at random as far as their ops go, so
    it averages the architecture out and keeps what changes with the order: the drift.
Figures (:class:`OrderDrift`)
    The lag-1 autocorrelation of the residuals in measurement order (about 0 for independent errors), their
    standard deviation, the drift's standard deviation and its largest departure from its median, and the share
    of the residual variance that is drift.
Use
    ``nas-latency evaluate --drift`` prints the figures; ``evaluate --score-against drift_removed`` scores a
    leave-device-out run against ``measured × exp(−drift)`` (:func:`drift_removed_latency`), the latency a
    device without drift would have measured. Only the scoring uses it: the models are trained and onboarded on
    the measurements as published.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

from nas_latency.errors import InvalidInputError
from nas_latency.evaluate.ceiling import fold_assignment, out_of_fold_log_predictions, ridge_fit_predict
from nas_latency.evaluate.datasets import LatencyDataset
from nas_latency.ir import FeatureMatrix

#: consecutive measurements the running median spans (odd, so it is centred)
DRIFT_WINDOW = 101
#: a device needs at least this many windows of measurements for a drift estimate
MIN_WINDOWS = 5


@dataclass(frozen=True)
class OrderDrift:
    """One device's residuals along the measurement order (natural-log units)."""

    device: str
    n_measured: int
    lag1_autocorrelation: float
    residual_std_log: float
    drift_std_log: float
    largest_drift_log: float
    drift_share: float


def _check_window(window: int, n_measured: int, device: str) -> None:
    if isinstance(window, bool) or not isinstance(window, int) or window < 3 or window % 2 == 0:
        raise InvalidInputError(f"drift window must be an odd integer of at least 3, got {window!r}")
    if n_measured < MIN_WINDOWS * window:
        raise InvalidInputError(
            f"{device}: {n_measured} measured architectures are too few for a drift estimate over windows of "
            f"{window} (at least {MIN_WINDOWS * window})"
        )


def order_drift(dataset: LatencyDataset, features: FeatureMatrix, *, window: int = DRIFT_WINDOW,
                folds: int = 5, alpha: float = 1e-2, seed: int = 0) -> tuple[np.ndarray, list[OrderDrift]]:
    """``(drift, figures)``: the ``(n_archs, n_devices)`` drift of ``ln`` latency of every measured cell (0 where
    unmeasured) and one :class:`OrderDrift` per device; see the module docstring."""
    if features.values.shape[0] != len(dataset.archs):
        raise InvalidInputError(f"{features.values.shape[0]} feature rows for {len(dataset.archs)} architectures")
    X = features.values
    fit_predict = ridge_fit_predict(X, alpha)
    fold_of = fold_assignment(len(dataset.archs), folds, seed)
    order = np.argsort(np.asarray(dataset.arch_ids), kind="stable")
    drift = np.zeros(dataset.latency_ms.shape)
    figures = []
    for j, device in enumerate(dataset.devices):
        y = np.asarray(dataset.latency_ms[:, j], dtype=np.float64)
        rows = order[np.isfinite(y[order]) & (y[order] > 0)]  # measured rows, in measurement order
        _check_window(window, len(rows), device)
        residual = np.log(y[rows]) - out_of_fold_log_predictions(X, y, fold_of, fit_predict)[rows]
        smooth = median_filter(residual, size=window, mode="nearest")
        drift[rows, j] = smooth
        variance = float(np.var(residual))
        figures.append(OrderDrift(
            device=device,
            n_measured=len(rows),
            lag1_autocorrelation=float(np.corrcoef(residual[:-1], residual[1:])[0, 1]),
            residual_std_log=float(np.sqrt(variance)),
            drift_std_log=float(np.std(smooth)),
            largest_drift_log=float(np.max(np.abs(smooth - np.median(smooth)))),
            drift_share=float(np.var(smooth) / variance) if variance > 0 else 0.0,
        ))
    return drift, figures


def drift_removed_latency(dataset: LatencyDataset, drift: np.ndarray) -> np.ndarray:
    """``measured × exp(−drift)``: the latencies a device without the drift would have measured (NaN stays NaN)."""
    if drift.shape != dataset.latency_ms.shape:
        raise InvalidInputError(f"drift of shape {drift.shape} for a latency table of shape {dataset.latency_ms.shape}")
    return np.asarray(dataset.latency_ms, dtype=np.float64) * np.exp(-drift)


__all__ = ["DRIFT_WINDOW", "MIN_WINDOWS", "OrderDrift", "drift_removed_latency", "order_drift"]
