"""Roofline layer models (ANNETTE): a layer's time from its arithmetic and the bytes it moves.

:class:`RooflineLayerModel`
    ``t = t0 + max(F / P, B / BW)`` with one peak compute rate ``P`` (FLOP/ms) and one memory bandwidth ``BW``
    (bytes/ms) for the whole device, estimated from the micro-kernels as the ``peak_quantile`` quantile of the
    rates they achieve, and ``t0`` (the fixed cost of running any layer: dispatch, launch) as the
    ``overhead_quantile`` quantile of their times. A pure roofline: nothing else is fitted.

:class:`RefinedRooflineLayerModel`
    per-family efficiencies on top of that roofline: ``t = t0_f + max(F / (P · ηc_f(layer)), B / (BW · ηm_f))``,
    where ``log ηc_f`` is linear in the layer's log channels-per-group, log output channels and log output size
    (how well the shape fills the vector units) for families with enough micro-kernels, constant otherwise; fitted
    per family by robust least squares on log time. Families never measured use the plain roofline.

Both read the ``flops`` and ``bytes`` columns of :class:`~nas_latency.models.layer_features.LayerFeaturizer`.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from scipy.optimize import least_squares

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models.base import LatencyRegressor, check_latencies
from nas_latency.models.layer_features import FAMILIES, families_of
from nas_latency.models.linalg import column_index

_SHAPE_TERMS = ("log_cin_per_group", "log_cout", "log_numel_out")


def _check_fit_inputs(model: LatencyRegressor, features: FeatureMatrix, latency_ms: np.ndarray) -> np.ndarray:
    y = check_latencies(latency_ms, where=f"{type(model).__name__}.fit")
    if y.shape != (features.values.shape[0],):
        raise InvalidInputError(f"fit: {features.values.shape[0]} feature rows but latencies of shape {y.shape}")
    if len(y) < 3:
        raise InvalidInputError(f"{type(model).__name__}.fit needs at least 3 measured layers, got {len(y)}")
    return y


def _quantile(model: Any, name: str) -> float:
    value = getattr(model, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InvalidInputError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


#: the largest exponent the refined roofline evaluates (exp(300) is finite in float64)
_MAX_EXPONENT = 300.0

class RooflineLayerModel(LatencyRegressor):
    """Device roofline: peak FLOP rate and bandwidth from the micro-kernels, plus a fixed per-layer cost."""

    kind = "layer_roofline"

    def __init__(self, *, peak_quantile: float = 0.95, overhead_quantile: float = 0.02) -> None:
        self.peak_quantile = peak_quantile
        self.overhead_quantile = overhead_quantile

    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "RooflineLayerModel":
        y = _check_fit_inputs(self, features, latency_ms)
        peak_q = _quantile(self, "peak_quantile")
        overhead_q = _quantile(self, "overhead_quantile")
        flops = features.values[:, column_index(features.names, "flops", model=self.kind)]
        moved = features.values[:, column_index(features.names, "bytes", model=self.kind)]
        t0 = float(np.quantile(y, overhead_q))
        busy = np.maximum(y - t0, 1e-6)
        compute = flops > 0
        self.peak_flops_per_ms_ = float(np.quantile(flops[compute] / busy[compute], peak_q)) if compute.any() else 1.0
        self.bandwidth_bytes_per_ms_ = float(np.quantile(moved / busy, peak_q))
        self.overhead_ms_ = t0
        self._remember_schema(features)
        return self

    def predict(self, features: FeatureMatrix) -> np.ndarray:
        X = self._check_features(features)
        flops = X[:, self.feature_names_.index("flops")]
        moved = X[:, self.feature_names_.index("bytes")]
        return self.overhead_ms_ + np.maximum(flops / self.peak_flops_per_ms_, moved / self.bandwidth_bytes_per_ms_)

    def _learned_arrays(self) -> dict[str, np.ndarray]:
        return {"roofline": np.array([self.peak_flops_per_ms_, self.bandwidth_bytes_per_ms_, self.overhead_ms_])}

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        self.peak_flops_per_ms_, self.bandwidth_bytes_per_ms_, self.overhead_ms_ = (
            float(v) for v in arrays["roofline"])


class RefinedRooflineLayerModel(LatencyRegressor):
    """The roofline with per-family (and, for well-sampled families, shape-dependent) efficiencies."""

    kind = "layer_refined_roofline"

    def __init__(self, *, peak_quantile: float = 0.95, overhead_quantile: float = 0.02,
                 min_family_samples: int = 4, shape_terms_min_samples: int = 15) -> None:
        self.peak_quantile = peak_quantile
        self.overhead_quantile = overhead_quantile
        self.min_family_samples = min_family_samples
        self.shape_terms_min_samples = shape_terms_min_samples

    # parameters per family: [log t0, log ηm, log ηc (intercept), c_cin_per_group, c_cout, c_numel_out]
    _N_PARAMS = 3 + len(_SHAPE_TERMS)

    def _times(self, theta: np.ndarray, flops: np.ndarray, moved: np.ndarray, shape: np.ndarray) -> np.ndarray:
        # the optimizer may try far-off parameters: exponents are kept where exp stays finite (no overflow warning;
        # the fitted values are far inside)
        t0 = np.exp(np.clip(theta[0], -_MAX_EXPONENT, _MAX_EXPONENT))
        eta_m = np.exp(np.clip(theta[1], -_MAX_EXPONENT, _MAX_EXPONENT))
        log_eta_c = np.clip(theta[2] + shape @ theta[3:], -_MAX_EXPONENT, _MAX_EXPONENT)
        compute = flops / (self.peak_flops_per_ms_ * np.exp(log_eta_c))
        memory = moved / (self.bandwidth_bytes_per_ms_ * eta_m)
        return t0 + np.maximum(compute, memory)

    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "RefinedRooflineLayerModel":
        y = _check_fit_inputs(self, features, latency_ms)
        for name in ("min_family_samples", "shape_terms_min_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
        base = RooflineLayerModel(peak_quantile=self.peak_quantile, overhead_quantile=self.overhead_quantile)
        base.fit(features, y)
        self.peak_flops_per_ms_ = base.peak_flops_per_ms_
        self.bandwidth_bytes_per_ms_ = base.bandwidth_bytes_per_ms_
        self.overhead_ms_ = base.overhead_ms_
        X = features.values
        flops = X[:, features.names.index("flops")]
        moved = X[:, features.names.index("bytes")]
        shape = X[:, [features.names.index(t) for t in _SHAPE_TERMS]]
        fams = families_of(features)
        params = np.zeros((len(FAMILIES), self._N_PARAMS))
        params[:, 0] = np.log(self.overhead_ms_)
        fitted = np.zeros(len(FAMILIES), dtype=bool)
        for i, fam in enumerate(FAMILIES):
            rows = fams == fam
            n = int(rows.sum())
            if n < self.min_family_samples:
                continue
            use_shape = n >= self.shape_terms_min_samples and bool((flops[rows] > 0).any())
            params[i] = self._fit_family(flops[rows], moved[rows], shape[rows], y[rows], use_shape)
            fitted[i] = True
        self.family_params_ = params
        self.family_fitted_ = fitted
        self._remember_schema(features)
        return self

    def _fit_family(self, flops: np.ndarray, moved: np.ndarray, shape: np.ndarray, y: np.ndarray,
                    use_shape: bool) -> np.ndarray:
        center = shape.mean(axis=0) if use_shape else np.zeros(shape.shape[1])
        shape_c = shape - center
        log_y = np.log(y)

        def residuals(free: np.ndarray) -> np.ndarray:
            theta = np.zeros(self._N_PARAMS)
            theta[: len(free)] = free
            return np.log(self._times(theta, flops, moved, shape_c)) - log_y

        t0_init = np.log(max(float(np.quantile(y, 0.05)) * 0.5, 1e-6))
        start = np.zeros(self._N_PARAMS if use_shape else 3)
        start[0] = t0_init
        result = least_squares(residuals, start, loss="soft_l1", f_scale=0.1, max_nfev=2000)
        theta = np.zeros(self._N_PARAMS)
        theta[: len(result.x)] = result.x
        # fold the centring into the intercept so prediction needs no stored centre
        theta[2] -= float(center @ theta[3:])
        return theta

    def predict(self, features: FeatureMatrix) -> np.ndarray:
        X = self._check_features(features)
        flops = X[:, self.feature_names_.index("flops")]
        moved = X[:, self.feature_names_.index("bytes")]
        shape = X[:, [self.feature_names_.index(t) for t in _SHAPE_TERMS]]
        fams = families_of(features)
        out = np.empty(len(X))
        for i, fam in enumerate(FAMILIES):
            rows = fams == fam
            if not rows.any():
                continue
            theta = self.family_params_[i]
            if not self.family_fitted_[i]:
                theta = np.zeros(self._N_PARAMS)
                theta[0] = np.log(self.overhead_ms_)
            out[rows] = self._times(theta, flops[rows], moved[rows], shape[rows])
        return out

    def _learned_arrays(self) -> dict[str, np.ndarray]:
        return {
            "roofline": np.array([self.peak_flops_per_ms_, self.bandwidth_bytes_per_ms_, self.overhead_ms_]),
            "family_params": self.family_params_,
            "family_fitted": self.family_fitted_.astype(np.int8),
        }

    def _learned_extra(self) -> dict[str, Any]:
        return {"families": list(FAMILIES)}

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        if list(extra.get("families", FAMILIES)) != list(FAMILIES):
            raise InvalidInputError("refined roofline artifact was made with another list of layer families; refit it")
        self.peak_flops_per_ms_, self.bandwidth_bytes_per_ms_, self.overhead_ms_ = (
            float(v) for v in arrays["roofline"])
        self.family_params_ = np.asarray(arrays["family_params"], dtype=np.float64)
        self.family_fitted_ = np.asarray(arrays["family_fitted"]).astype(bool)
