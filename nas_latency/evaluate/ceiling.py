"""The in-device ceiling: how well the model features explain a device given *all* of its measurements.

For each device, a model of log latency on the features is fitted by k-fold cross-validation over that device's
own measured architectures, and its out-of-fold predictions are scored on the same sets as
:func:`~nas_latency.evaluate.protocols.leave_device_out` (HELP's query set and all archs; no signature to drop).
The model (:data:`CEILING_MODELS`) is ``"ridge"``, the linear design of the cross-device models on the
standardized features, or ``"lightgbm"``, gradient-boosted trees that also find interactions and thresholds the
linear design lacks (600 trees, learning rate 0.05, 31 leaves). A cross-device model onboarded from K
measurements is not expected to beat it: it is the reference that says how much of a target is left to the
features, and how much is the data's own noise (whole-millisecond phones, for example).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.evaluate.metrics import summarize
from nas_latency.evaluate.datasets import LatencyDataset
from nas_latency.evaluate.scoring_sets import all_query_indices, help_query_indices, scoring_sets
from nas_latency.ir import FeatureMatrix
from nas_latency.models.linalg import design_matrix, fit_standardizer, ridge_per_device


#: the in-device models :func:`in_device_ceiling` can fit
CEILING_MODELS: tuple[str, ...] = ("ridge", "lightgbm")
#: ``fit_predict(train_X, train_log_latency, test_X) -> test_log_latency``
FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def ridge_fit_predict(features: np.ndarray, alpha: float) -> FitPredict:
    """Ridge regression (penalty ``alpha``) on the features standardized as the cross-device models do."""
    mean, scale = fit_standardizer(features, "non_binary")

    def fit_predict(train: np.ndarray, t: np.ndarray, test: np.ndarray) -> np.ndarray:
        weights = ridge_per_device(design_matrix(train, mean, scale), t[:, None], alpha)[:, 0]
        return design_matrix(test, mean, scale) @ weights

    return fit_predict


def lightgbm_fit_predict(seed: int) -> FitPredict:
    """Gradient-boosted trees (600 trees, learning rate 0.05, 31 leaves, one thread)."""
    import lightgbm

    def fit_predict(train: np.ndarray, t: np.ndarray, test: np.ndarray) -> np.ndarray:
        trees = lightgbm.LGBMRegressor(n_estimators=600, learning_rate=0.05, num_leaves=31, random_state=seed,
                                       n_jobs=1, verbose=-1)
        return np.asarray(trees.fit(train, t).predict(test), dtype=np.float64)

    return fit_predict


def fold_assignment(n: int, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of each of ``n`` rows, drawn with ``seed``."""
    return np.random.default_rng(seed).integers(0, folds, n)


def out_of_fold_log_predictions(X: np.ndarray, latency_ms: np.ndarray, fold_of: np.ndarray,
                                fit_predict: FitPredict) -> np.ndarray:
    """``ln`` latency of every measured row predicted by ``fit_predict`` fitted on the measured rows of the other
    folds; NaN for unmeasured rows (and for a fold with nothing to fit on)."""
    measured = np.isfinite(latency_ms) & (latency_ms > 0)
    predicted = np.full(len(latency_ms), np.nan)
    for fold in np.unique(fold_of):
        train = measured & (fold_of != fold)
        test = measured & (fold_of == fold)
        if train.sum() < 2 or not test.any():
            continue
        predicted[test] = fit_predict(X[train], np.log(latency_ms[train]), X[test])
    return predicted


@dataclass(frozen=True)
class CeilingScore:
    """Out-of-fold metrics of one device on one scoring set."""

    device: str
    scoring_set: str
    n_scored: int
    metrics: Mapping[str, float]


def in_device_ceiling(dataset: LatencyDataset, features: FeatureMatrix, *, folds: int = 5, alpha: float = 1e-2,
                      seed: int = 0, model: str = "ridge") -> list[CeilingScore]:
    """Per device and scoring set: the metrics of ``folds``-fold cross-validated predictions of log latency by
    ``model`` (:data:`CEILING_MODELS`; ridge penalty ``alpha``), the fold of each architecture drawn with
    ``seed``."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise InvalidInputError(f"folds must be an integer of at least 2, got {folds!r}")
    if model not in CEILING_MODELS:
        raise InvalidInputError(f"unknown ceiling model {model!r}; known: {', '.join(CEILING_MODELS)}")
    if features.values.shape[0] != len(dataset.archs):
        raise InvalidInputError(f"{features.values.shape[0]} feature rows for {len(dataset.archs)} architectures")
    X = features.values
    fit_predict = ridge_fit_predict(X, alpha) if model == "ridge" else lightgbm_fit_predict(seed)
    fold_of = fold_assignment(len(dataset.archs), folds, seed)
    scores: list[CeilingScore] = []
    for j, device in enumerate(dataset.devices):
        y = dataset.latency_ms[:, j]
        predicted = np.exp(out_of_fold_log_predictions(X, y, fold_of, fit_predict))
        for scoring in scoring_sets(dataset.space):
            rows = help_query_indices(dataset.arch_ids, y) if scoring == "help" else all_query_indices(y)
            rows = rows[np.isfinite(predicted[rows])]
            scores.append(CeilingScore(device, scoring, int(rows.size), summarize(y[rows], predicted[rows])))
    return scores


__all__ = ["CEILING_MODELS", "CeilingScore", "fold_assignment", "in_device_ceiling", "lightgbm_fit_predict",
           "out_of_fold_log_predictions", "ridge_fit_predict"]
