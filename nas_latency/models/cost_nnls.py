"""``cost_nnls``: a device as non-negative prices of a network's physical costs (ANNETTE's mapping idea).

A device that runs a network's layers one after another takes, per layer, about a fixed price per
operation, per multiply-accumulate, per byte moved, each op group (convolution, depthwise convolution,
pooling, elementwise, ...) at its own price. Summed over the layers that is

    latency_ms(x) ≈ b + Σ_q p_q · c_q(x) / s_q,    b ≥ 0, p_q ≥ 0,

with ``c_q`` the network's IR cost features (the ``cost.*`` columns of a space's ``model_features``: count,
MACs, parameters, bytes read and written per op group) and ``s_q`` their spread over the training rows (so the
prices are on one scale). ``adapt`` fits ``b`` and ``p`` by non-negative least squares on the *relative* error
(each measured row divided by its latency: the log metrics score ratios, and a slow architecture must not
outweigh the others). The signs are what makes ten measurements enough: a price cannot be negative, so most of
them come out exactly zero and the rest are pinned by the data.

The training devices do not enter the prices: the model is the same for a device like them and for one unlike
every one of them, such as an accelerator whose latency follows the layer sequence rather than FLOPs, where a
prior learned from the training devices points the wrong way. ``fit`` only learns which columns are costs and
their scales. It is meant as a member of :class:`~nas_latency.models.selection.LeaveOneOutSelection`, which
takes it for the devices it explains better than the transfer models do.

``bagged=True`` (the shipped phone model's): the prices are the mean of the K price lists fitted without each
measurement. With more prices than measurements, the least-squares fit sits on a corner of the non-negative
prices that one measurement more or less can move to another corner (a different set of zero prices); the mean
of the K corners is steadier. Leave-device-out at K = 10 (docs/figures.md), the phones' simulated
accelerators gain (R² 0.951 -> 0.957) and so do their phones of an unseen CPU (0.935 -> 0.939); NB201's and FBNet's
unseen kinds of hardware lose (FBNet HELP 0.824 -> 0.819), so they keep the plain fit (the default). Every
leave-one-out prediction (for σ and for ``loo_select``) is bagged in turn on its K − 1 measurements: K² small
fits per adaptation instead of K.

Uncertainty, the same for every row: the root mean square ``s`` of the leave-one-out log residuals on the K
measurements (refit without each one, predict it), widened as a prediction interval from K residuals is: ``σ =
s · t_{0.975, K−1} · √(1 + 1/K) / 1.96``, so that ``± 1.96 σ`` is the Student-t 95 % interval (1.21 s at K = 10).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
from scipy.optimize import nnls
from scipy.stats import norm
from scipy.stats import t as student_t

from nas_latency.errors import FailedPreconditionError, InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models.base import CrossDeviceModel, DeviceAdaptation
from nas_latency.models.linalg import cross_validation_folds, fingerprint, params_text

#: feature columns whose name starts with this are physical costs
COST_PREFIX = "cost."
#: ... and with this, the physical costs of the layers a runtime that prunes unread values runs
#: (:mod:`nas_latency.ir.liveness`; NAS-Bench-201's ``pruned_cost.*`` columns)
PRUNED_COST_PREFIX = "pruned_cost."
#: every cost column family: the transfer models never see them (``without_costs``), nor does signature selection
COST_PREFIXES: tuple[str, ...] = (COST_PREFIX, PRUNED_COST_PREFIX)
#: predictions are floored at this share of the fastest measured latency (a network whose every priced cost is
#: zero would otherwise be predicted at 0 ms, whose log is undefined)
FLOOR_SHARE = 1e-3
#: the smallest predictive standard deviation of ln latency (K measurements fitted exactly say little)
MIN_LOG_STD = 1e-3


#: how an adaptation turns (scaled costs, latencies) into ``[b, p_1..p_q]``: :func:`fit_prices` or :func:`bagged_prices`
PriceFitter = Callable[[np.ndarray, np.ndarray], np.ndarray]


def fit_prices(costs: np.ndarray, latency_ms: np.ndarray) -> np.ndarray:
    """``(1 + q,)`` non-negative ``[b, p_1..p_q]`` minimizing ``Σ_i (1 − (b + costs_i·p) / y_i)²``."""
    design = np.column_stack([np.ones(len(latency_ms)), costs]) / latency_ms[:, None]
    prices, _ = nnls(design, np.ones(len(latency_ms)))
    return prices


def bagged_prices(costs: np.ndarray, latency_ms: np.ndarray) -> np.ndarray:
    """The mean of the :func:`fit_prices` of the rows without each one (without each of
    :data:`~nas_latency.models.linalg.MAX_FOLDS` folds beyond that many rows); a single row's own prices."""
    if len(latency_ms) < 2:
        return fit_prices(costs, latency_ms)
    fold = cross_validation_folds(len(latency_ms))
    return np.mean([fit_prices(costs[fold != f], latency_ms[fold != f]) for f in np.unique(fold)], axis=0)


def priced(costs: np.ndarray, prices: np.ndarray, floor_ms: float) -> np.ndarray:
    return np.maximum(prices[0] + costs @ prices[1:], floor_ms)


def held_out_log_predictions(costs: np.ndarray, latency_ms: np.ndarray, fold: np.ndarray,
                             fitter: PriceFitter = fit_prices) -> np.ndarray:
    """``ln ŷ`` of each row from prices fitted on the rows of the other folds (and floored as an adaptation on
    those rows is): the cross-validation of one adaptation, without the σ each adaptation also computes."""
    out = np.empty(len(latency_ms))
    for f in np.unique(fold):
        held = fold == f
        train = latency_ms[~held]
        out[held] = np.log(priced(costs[held], fitter(costs[~held], train), FLOOR_SHARE * float(train.min())))
    return out


def leave_one_out_log_std(costs: np.ndarray, latency_ms: np.ndarray, fitter: PriceFitter = fit_prices) -> float:
    """RMS of ``ln y_i − ln ŷ_i`` with ``ŷ_i`` from prices fitted without row ``i`` (without its fold beyond
    :data:`~nas_latency.models.linalg.MAX_FOLDS` rows), widened to a Student-t prediction interval (module
    docstring)."""
    fold = cross_validation_folds(len(latency_ms))
    return log_std_of_residuals(np.log(latency_ms) - held_out_log_predictions(costs, latency_ms, fold, fitter))


def log_std_of_residuals(residuals: np.ndarray) -> float:
    """The predictive σ of :func:`leave_one_out_log_std` from its ``K`` held-out log residuals."""
    k = len(residuals)
    widening = float(student_t.ppf(0.975, k - 1)) * np.sqrt(1.0 + 1.0 / k) / float(norm.ppf(0.975))
    return max(float(np.sqrt(np.mean(residuals**2))) * widening, MIN_LOG_STD)


class CostPriceModel(CrossDeviceModel):
    """Non-negative prices of the ``cost.*`` feature columns, per device; see the module docstring."""

    kind = "cost_nnls"

    def __init__(self, *, cost_prefix: str = COST_PREFIX, bagged: bool = False) -> None:
        self.cost_prefix = cost_prefix
        self.bagged = bagged

    def _fitter(self) -> PriceFitter:
        return bagged_prices if self.bagged else fit_prices

    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "CostPriceModel":
        if not isinstance(self.cost_prefix, str) or not self.cost_prefix:
            raise InvalidInputError(f"cost_prefix must be a non-empty string, got {self.cost_prefix!r}")
        if not isinstance(self.bagged, bool):
            raise InvalidInputError(f"bagged must be true or false, got {self.bagged!r}")
        self._validate_table(features, latency_ms)
        named = [i for i, name in enumerate(features.names) if name.startswith(self.cost_prefix)]
        if not named:
            raise FailedPreconditionError(
                f"{self.kind} needs feature columns named {self.cost_prefix}* (a space's IR cost features); none "
                f"among the {len(features.names)} features"
            )
        values = features.values[:, named]
        if (values < 0).any() or not np.isfinite(values).all():
            bad = named[int(np.argwhere(~(np.isfinite(values) & (values >= 0)))[0][1])]
            raise InvalidInputError(f"cost column {features.names[bad]!r} has negative or non-finite values")
        spread = values.std(axis=0)
        varying = spread > 0
        if not varying.any():
            raise InvalidInputError(f"every {self.cost_prefix}* column is constant over the training rows")
        self.columns_ = np.asarray(named, dtype=np.int64)[varying]
        self.scale_ = spread[varying]
        self._remember_schema(features)
        self.fingerprint_ = fingerprint(self._learned_arrays(), params_text(self))
        return self

    def _costs(self, X: np.ndarray) -> np.ndarray:
        return X[:, self.columns_] / self.scale_

    def _adapt(self, X: np.ndarray, latency_ms: np.ndarray) -> DeviceAdaptation:
        costs = self._costs(X)
        return self._adaptation(costs, latency_ms, leave_one_out_log_std(costs, latency_ms, self._fitter()))

    def _adaptation(self, costs: np.ndarray, latency_ms: np.ndarray, log_std: float) -> DeviceAdaptation:
        return DeviceAdaptation(
            model_kind=self.kind,
            feature_schema_hash=self.feature_schema_hash_ or "",
            n_measurements=len(latency_ms),
            arrays={"prices": self._fitter()(costs, latency_ms)},
            info={"floor_ms": FLOOR_SHARE * float(latency_ms.min()), "log_std": log_std},
        )

    def _adapt_and_held_out(self, X: np.ndarray, latency_ms: np.ndarray,
                            fold: np.ndarray) -> tuple[DeviceAdaptation, np.ndarray]:
        """The σ of the adaptation is the cross-validation's own when ``fold`` is the one σ uses (it is for a
        choice by leave-one-out): the price lists of the folds are fitted once, not twice."""
        costs = self._costs(X)
        held_out = held_out_log_predictions(costs, latency_ms, fold, self._fitter())
        if np.array_equal(fold, cross_validation_folds(len(latency_ms))):
            log_std = log_std_of_residuals(np.log(latency_ms) - held_out)
        else:
            log_std = leave_one_out_log_std(costs, latency_ms, self._fitter())
        return self._adaptation(costs, latency_ms, log_std), held_out

    def _predict(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        prices = np.asarray(adaptation.arrays["prices"], dtype=np.float64)
        if prices.shape != (len(self.columns_) + 1,):
            raise InvalidInputError(
                f"{self.kind} adaptation has {prices.shape} prices, the model {len(self.columns_) + 1}"
            )
        return priced(self._costs(X), prices, float(adaptation.info["floor_ms"]))

    def _predict_log_std(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        return np.full(X.shape[0], float(adaptation.info["log_std"]))

    def _held_out_log_predictions(self, X: np.ndarray, latency_ms: np.ndarray, fold: np.ndarray) -> np.ndarray:
        # the generic version adapts per fold, and every adaptation runs its own leave-one-out for σ
        return held_out_log_predictions(self._costs(X), latency_ms, fold, self._fitter())

    # ---- artifacts ----------------------------------------------------------------------------------------
    def _learned_arrays(self) -> dict[str, np.ndarray]:
        return {"columns": self.columns_, "scale": self.scale_}

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        self.columns_ = np.asarray(arrays["columns"], dtype=np.int64)
        self.scale_ = np.asarray(arrays["scale"], dtype=np.float64)
        if self.columns_.shape != self.scale_.shape or self.columns_.ndim != 1:
            raise InvalidInputError(
                f"{self.kind} artifact: {self.columns_.shape} columns but {self.scale_.shape} scales")
        self.fingerprint_ = fingerprint(self._learned_arrays(), params_text(self))


class PrunedCostPriceModel(CostPriceModel):
    """``pruned_cost_nnls``: :class:`CostPriceModel` on the ``pruned_cost.*`` columns, the costs of the layers a
    runtime that prunes unread values runs. Next to ``cost_nnls`` in a ``loo_select``, a device's own
    measurements tell whether it runs the ops whose results no output reads (NAS-Bench-201 pixel3 does not:
    leave-device-out HELP Spearman 0.628 with ``cost_nnls`` alone, 0.921 with this model alone, K = 10;
    docs/figures.md)."""

    kind = "pruned_cost_nnls"

    def __init__(self, *, cost_prefix: str = PRUNED_COST_PREFIX, bagged: bool = False) -> None:
        super().__init__(cost_prefix=cost_prefix, bagged=bagged)


__all__ = ["COST_PREFIX", "COST_PREFIXES", "PRUNED_COST_PREFIX", "CostPriceModel", "PriceFitter", "PrunedCostPriceModel",
           "bagged_prices", "fit_prices",
           "held_out_log_predictions", "leave_one_out_log_std", "log_std_of_residuals"]
