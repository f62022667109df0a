"""The in-device ceiling: how well the model features explain a device given *all* of its measurements.

For each device, a ridge model of log latency on the standardized features (the same design as the cross-device
models) is fitted by k-fold cross-validation over that device's own measured architectures, and its out-of-fold
predictions are scored on the same sets as :func:`~nas_latency.evaluate.protocols.leave_device_out` (HELP's query
set and all archs; no signature to drop). A cross-device model onboarded from K measurements is not expected to
beat it: it is the reference that says how much of a target is left to the features, and how much is the data's
own noise (whole-millisecond phones, for example).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.evaluate.metrics import summarize
from nas_latency.evaluate.protocols import LatencyDataset, all_query_indices, help_query_indices, scoring_sets
from nas_latency.ir import FeatureMatrix
from nas_latency.models.linalg import design_matrix, fit_standardizer, ridge_per_device


@dataclass(frozen=True)
class CeilingScore:
    """Out-of-fold metrics of one device on one scoring set."""

    device: str
    scoring_set: str
    n_scored: int
    metrics: Mapping[str, float]


def in_device_ceiling(dataset: LatencyDataset, features: FeatureMatrix, *, folds: int = 5, alpha: float = 1e-2,
                      seed: int = 0) -> list[CeilingScore]:
    """Per device and scoring set: the metrics of ``folds``-fold cross-validated ridge predictions of log latency
    (fold of each architecture drawn with ``seed``)."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise InvalidInputError(f"folds must be an integer of at least 2, got {folds!r}")
    if features.values.shape[0] != len(dataset.archs):
        raise InvalidInputError(f"{features.values.shape[0]} feature rows for {len(dataset.archs)} architectures")
    mean, scale = fit_standardizer(features.values, "non_binary")
    Z = design_matrix(features.values, mean, scale)
    fold_of = np.random.default_rng(seed).integers(0, folds, len(dataset.archs))
    scores: list[CeilingScore] = []
    for j, device in enumerate(dataset.devices):
        y = dataset.latency_ms[:, j]
        measured = np.isfinite(y) & (y > 0)
        predicted = np.full(len(y), np.nan)
        for fold in range(folds):
            train = measured & (fold_of != fold)
            test = measured & (fold_of == fold)
            if train.sum() < 2 or not test.any():
                continue
            weights = ridge_per_device(Z[train], np.log(y[train])[:, None], alpha)[:, 0]
            predicted[test] = np.exp(Z[test] @ weights)
        for scoring in scoring_sets(dataset.space):
            rows = help_query_indices(dataset.arch_ids, y) if scoring == "help" else all_query_indices(y)
            rows = rows[np.isfinite(predicted[rows])]
            scores.append(CeilingScore(device, scoring, int(rows.size), summarize(y[rows], predicted[rows])))
    return scores


__all__ = ["CeilingScore", "in_device_ceiling"]
