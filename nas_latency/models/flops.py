"""The FLOPs baselines: latency as a power law of the network's multiply-accumulates.

``log latency_ms = a + b · log MACs``. The MACs come from one named feature column, ``log_macs`` by default
(the natural log of the whole network's MACs, as every space's ``model_features`` provides); with
``log_transform=True`` the column holds raw MACs (e.g. ``total.macs`` of the generic IR features) and is
logged here.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models.base import CrossDeviceModel, DeviceAdaptation, LatencyRegressor, check_latencies
from nas_latency.models.linalg import (
    check_alpha,
    check_table_coverage,
    column_index,
    fingerprint,
    params_text,
)

DEFAULT_MACS_FEATURE = "log_macs"


def _log_macs(X: np.ndarray, column: int, log_transform: bool) -> np.ndarray:
    x = X[:, column].astype(np.float64)
    if log_transform:
        if (x <= 0).any():
            raise InvalidInputError(f"log_transform=True needs positive MACs, got {float(x.min())}")
        x = np.log(x)
    return x


def _line(x: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(intercept, slope)`` of ``t`` on ``x``; slope 0 when ``x`` does not vary."""
    xm, tm = float(x.mean()), float(t.mean())
    sxx = float(((x - xm) ** 2).sum())
    slope = float(((x - xm) * (t - tm)).sum() / sxx) if sxx > 0 else 0.0
    return tm - slope * xm, slope


class FlopsRegressor(LatencyRegressor):
    """One device: ``log latency = a + b · log MACs`` by least squares."""

    kind = "flops"

    def __init__(self, *, macs_feature: str = DEFAULT_MACS_FEATURE, log_transform: bool = False) -> None:
        self.macs_feature = macs_feature
        self.log_transform = log_transform

    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "FlopsRegressor":
        y = check_latencies(latency_ms, where="FlopsRegressor.fit")
        if y.shape != (features.values.shape[0],):
            raise InvalidInputError(f"fit: {features.values.shape[0]} feature rows but latencies of shape {y.shape}")
        if len(y) < 2:
            raise InvalidInputError(f"FlopsRegressor.fit needs at least 2 measurements, got {len(y)}")
        column = column_index(features.names, self.macs_feature, model="FlopsRegressor")
        x = _log_macs(features.values, column, bool(self.log_transform))
        self.intercept_, self.slope_ = _line(x, np.log(y))
        self._remember_schema(features)
        return self

    def predict(self, features: FeatureMatrix) -> np.ndarray:
        X = self._check_features(features)
        x = _log_macs(X, self.feature_names_.index(self.macs_feature), bool(self.log_transform))
        return np.exp(self.intercept_ + self.slope_ * x)

    def _learned_arrays(self) -> dict[str, np.ndarray]:
        return {"coefficients": np.array([self.intercept_, self.slope_])}

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        self.intercept_, self.slope_ = (float(v) for v in arrays["coefficients"])


class FlopsCrossDevice(CrossDeviceModel):
    """Many devices: each training device gets its own line; a new device gets a line fitted to its K points
    with a Gaussian prior on the slope, centred on the training devices' mean slope with variance
    ``prior_scale`` × their slope variance, against log-space noise ``noise_variance`` (so 3 points are enough;
    the intercept is free)."""

    kind = "flops_xdev"

    def __init__(
        self,
        *,
        macs_feature: str = DEFAULT_MACS_FEATURE,
        log_transform: bool = False,
        prior_scale: float = 4.0,
        noise_variance: float = 1e-2,
    ) -> None:
        self.macs_feature = macs_feature
        self.log_transform = log_transform
        self.prior_scale = prior_scale
        self.noise_variance = noise_variance

    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "FlopsCrossDevice":
        Y = self._validate_table(features, latency_ms)
        check_alpha(self.prior_scale, "prior_scale")
        check_alpha(self.noise_variance, "noise_variance")
        check_table_coverage(Y, minimum=2, where="FlopsCrossDevice.fit")
        column = column_index(features.names, self.macs_feature, model="FlopsCrossDevice")
        x = _log_macs(features.values, column, bool(self.log_transform))
        lines = np.zeros((Y.shape[1], 2))
        for d in range(Y.shape[1]):
            rows = ~np.isnan(Y[:, d])
            lines[d] = _line(x[rows], np.log(Y[rows, d]))
        self.device_lines_ = lines
        self._remember_schema(features)
        self._set_fingerprint()
        return self

    def _set_fingerprint(self) -> None:
        self.fingerprint_ = fingerprint(self._learned_arrays(), params_text(self))

    def _adapt(self, X: np.ndarray, latency_ms: np.ndarray) -> DeviceAdaptation:
        x = _log_macs(X, self.feature_names_.index(self.macs_feature), bool(self.log_transform))
        t = np.log(latency_ms)
        slopes = self.device_lines_[:, 1]
        prior_mean = float(slopes.mean())
        prior_var = float(self.prior_scale) * float(slopes.var(ddof=1)) + 1e-6
        xm, tm = float(x.mean()), float(t.mean())
        sxx = float(((x - xm) ** 2).sum())
        sxt = float(((x - xm) * (t - tm)).sum())
        precision = sxx / self.noise_variance + 1.0 / prior_var
        slope = (sxt / self.noise_variance + prior_mean / prior_var) / precision
        return DeviceAdaptation(
            model_kind=self.kind,
            feature_schema_hash=self.feature_schema_hash_ or "",
            n_measurements=len(t),
            arrays={"coefficients": np.array([tm - slope * xm, slope])},
            info={},
        )

    def _predict(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        intercept, slope = (float(v) for v in adaptation.arrays["coefficients"])
        x = _log_macs(X, self.feature_names_.index(self.macs_feature), bool(self.log_transform))
        return np.exp(intercept + slope * x)

    def _learned_arrays(self) -> dict[str, np.ndarray]:
        return {"device_lines": self.device_lines_}

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        self.device_lines_ = np.asarray(arrays["device_lines"], dtype=np.float64)
        self._set_fingerprint()

