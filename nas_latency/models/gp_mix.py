"""A Gaussian process over networks in log space, with the training devices as its covariance (``gp_mix``).

The research "GPMix" (Ganesan phones: best single model, and best in a geometric ensemble with the NNLS mix).

Fit
    Standardize the features (fit-time mean/scale kept) and fit one ridge model of log latency per training
    device (as ``nnls_mix``). Keep the training log-latency table keyed by row id (a
    :class:`~nas_latency.models.mix.TrainingTable`: measured where measured, ridge-predicted where a training
    device has NaN). The *profile* of a network is its vector of ``D`` training-device log latencies: the table's
    row for a training network, the ridge predictions for any other network. With ``m(x)`` the profile's mean and
    ``c(x)`` the centred profile, the prior of a new device's log latency ``f`` is a GP with

    * mean ``m(x)`` (the training devices' mean log latency; for an unseen network the ridge prediction of it),
    * covariance ``k(x, x') = s/(D−1) · c(x)·c(x') + v₀ + v_μ · m(x) m(x') + v_φ · φ(x)·φ(x')``: the empirical
      device covariance (rank ≤ D−1), a free intercept, a rescaling of the mean pattern and a linear kernel on the
      standardized features φ (intercept first) for what the training devices do not span,

    and the K measurements are ``log y = f + ε``, ``ε ~ N(0, σ²)``. ``(s, v_φ, σ²)`` come from ``grid``: the
    research values ``(4, 1e-3, 1e-2)`` by default (with ``v₀ = 1``, ``v_μ = 0.1``), or, with several entries,
    chosen here by an inner leave-one-device-out over the training devices only (each training device held out in
    turn, the kernel built from the others, onboarded from random K-point signatures drawn with
    ``selection_seed`` and scored on its other measured rows by ``selection_metric``). The grid, the choice and
    every inner score are kept in the artifact.
Adapt
    The posterior mean weights ``α = (K_ss + σ² I)⁻¹ (log y_s − m_s)``, folded into a linear predictor of the
    query's profile and features: ``f(x) = m(x)(1 + v_μ m_sᵀα) + c(x)·(s/(D−1) C_sᵀα) + φ(x)·(v_φ Φ_sᵀα + v₀Σα e₀)``.
Predict
    ``exp(f(x))``. A query network outside the training table uses its ridge-predicted training latencies for
    its profile (so for its mean and its cross-covariance with the signature). Rows are found in the table by
    ``features.rows`` (by feature digest inside composite models; see :mod:`nas_latency.models.mix`).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models.base import DeviceAdaptation
from nas_latency.models.linalg import (
    calibration_scale,
    check_open_unit,
    check_grid,
    check_selection_settings,
    check_alpha,
    check_standardize,
    check_table_coverage,
    design_matrix,
    fingerprint,
    fit_standardizer,
    linear_predictor,
    params_text,
    rank_correlations,
    ridge_per_device,
)
from nas_latency.models.mix import RowAwareModel, TrainingTable

#: ``(device_scale s, feature_variance v_φ, noise_variance σ²)``: the research values (Ganesan phones).
RESEARCH_HYPERPARAMETERS: tuple[float, float, float] = (4.0, 1e-3, 1e-2)
DEFAULT_GRID: tuple[tuple[float, float, float], ...] = (RESEARCH_HYPERPARAMETERS,)
#: a grid for the inner leave-one-device-out selection (``GPMixModel(grid=SELECTION_GRID)``)
SELECTION_GRID: tuple[tuple[float, float, float], ...] = (
    (1.0, 1e-3, 1e-2),
    (4.0, 1e-3, 1e-2),
    (16.0, 1e-3, 1e-2),
    (4.0, 1e-2, 1e-2),
    (4.0, 1e-3, 1e-3),
    (4.0, 1e-3, 3e-2),
)
SELECTION_METRICS = ("log_rmse", "spearman")
GRID_FIELDS = ("device_scale", "feature_variance", "noise_variance")


class _Kernel:
    """The GP prior over networks for one set of training-device columns and hyper-parameters."""

    def __init__(self, n_devices: int, device_scale: float, feature_variance: float, noise_variance: float,
                 intercept_variance: float, mean_variance: float) -> None:
        self.device_factor = device_scale / max(n_devices - 1, 1)
        self.feature_variance = feature_variance
        self.noise_variance = noise_variance
        self.intercept_variance = intercept_variance
        self.mean_variance = mean_variance

    def solve(self, centred: np.ndarray, mean: np.ndarray, design: np.ndarray, t: np.ndarray) -> np.ndarray:
        """``α = (K_ss + σ² I)⁻¹ (t − m_s)`` for the signature's centred profiles, profile means and design rows."""
        return self.solve_with_factor(centred, mean, design, t)[0]

    def solve_with_factor(self, centred: np.ndarray, mean: np.ndarray, design: np.ndarray,
                          t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`solve` and the lower Cholesky factor of ``K_ss + σ² I``."""
        gram = self.cross(centred @ centred.T, np.outer(mean, mean), design @ design.T)
        gram[np.diag_indices_from(gram)] += self.noise_variance
        factor = cho_factor(gram, lower=True)
        return cho_solve(factor, t - mean), np.tril(factor[0])

    def cross(self, profile_products: np.ndarray, mean_products: np.ndarray,
              feature_products: np.ndarray) -> np.ndarray:
        return (self.device_factor * profile_products + self.intercept_variance + self.mean_variance * mean_products
                + self.feature_variance * feature_products)


def _profiles(log_latency: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(centred, mean)`` of profiles (rows of training-device log latencies)."""
    mean = log_latency.mean(axis=1)
    return log_latency - mean[:, None], mean


class GPMixModel(RowAwareModel):
    """GP in log space: training-device covariance (measured latencies where known) plus a feature kernel."""

    kind = "gp_mix"

    def __init__(
        self,
        *,
        alpha: float = 1e-2,
        standardize: str = "non_binary",
        grid: Sequence[Sequence[float]] = DEFAULT_GRID,
        intercept_variance: float = 1.0,
        mean_variance: float = 0.1,
        selection_signature_size: int = 10,
        selection_draws: int = 3,
        selection_seed: int = 0,
        selection_metric: str = "log_rmse",
        calibrate: bool = True,
        calibration_coverage: float = 0.95,
    ) -> None:
        self.alpha = alpha
        self.standardize = standardize
        self.grid = grid
        self.intercept_variance = intercept_variance
        self.mean_variance = mean_variance
        self.selection_signature_size = selection_signature_size
        self.selection_draws = selection_draws
        self.selection_seed = selection_seed
        self.selection_metric = selection_metric
        self.calibrate = calibrate
        self.calibration_coverage = calibration_coverage

    # ---- validation ---------------------------------------------------------------------------------------
    @staticmethod
    def _check_variance(value: object, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
            raise InvalidInputError(f"{name} must be a non-negative number, got {value!r}")
        return float(value)

    # ---- fit ----------------------------------------------------------------------------------------------
    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "GPMixModel":
        Y = self._validate_table(features, latency_ms)
        alpha = check_alpha(self.alpha)
        grid = check_grid(self.grid, GRID_FIELDS, non_negative=(1,))
        self._check_variance(self.intercept_variance, "intercept_variance")
        self._check_variance(self.mean_variance, "mean_variance")
        size, draws, seed = check_selection_settings(
            self, metrics=SELECTION_METRICS, grid_size=len(grid), n_devices=Y.shape[1],
            grid_fields=", ".join(GRID_FIELDS)
        )
        check_table_coverage(Y, minimum=2, where="GPMixModel.fit")
        self.mean_, self.scale_ = fit_standardizer(features.values, check_standardize(self.standardize))
        Z = design_matrix(features.values, self.mean_, self.scale_)
        L = np.log(Y)
        self.device_weights_ = ridge_per_device(Z, L, alpha)
        self.table_ = TrainingTable.build(features, L, Z @ self.device_weights_, where="GPMixModel.fit")
        self.grid_ = grid
        if len(grid) > 1:
            self.selection_scores_ = self._inner_lodo(Z, L, grid, size, draws, seed)
            metric = SELECTION_METRICS.index(self.selection_metric)
            mean_scores = self.selection_scores_[..., metric].mean(axis=(1, 2))
            best = int(np.argmin(mean_scores) if self.selection_metric == "log_rmse" else np.argmax(mean_scores))
        else:
            self.selection_scores_ = np.zeros((1, 0, 0, 2))
            best = 0
        self.hyperparameters_ = grid[best].copy()
        self.std_scale_ = self._calibration_scale(Z, L, size, seed) if self.calibrate else 1.0
        self._remember_schema(features)
        self._set_state()
        return self

    def _calibration_scale(self, Z: np.ndarray, L: np.ndarray, size: int, seed: int) -> float:
        """The factor that makes the ``calibration_coverage`` quantile of |log error| / σ of an inner
        leave-one-device-out (the chosen hyper-parameters; each training device onboarded from a random
        signature with the kernel of the others, scored on its other rows) equal to a normal's."""
        coverage = check_open_unit(self.calibration_coverage, "calibration_coverage")
        F = self.table_.log_latency
        s, v_phi, sigma2 = (float(v) for v in self.hyperparameters_)
        rng = np.random.default_rng(seed + 1)
        ratios = []
        for d in range(F.shape[1]):
            centred, mean = _profiles(np.delete(F, d, axis=1))
            rows = np.flatnonzero(~np.isnan(L[:, d]))
            k = min(size, len(rows) - 1)
            signature = np.sort(rng.choice(rows, size=k, replace=False))
            rest = np.setdiff1d(rows, signature)
            kernel = _Kernel(F.shape[1] - 1, s, v_phi, sigma2, float(self.intercept_variance),
                             float(self.mean_variance))
            weights, factor = kernel.solve_with_factor(centred[signature], mean[signature], Z[signature],
                                                       L[signature, d])
            cross = kernel.cross(centred[rest] @ centred[signature].T, np.outer(mean[rest], mean[signature]),
                                 Z[rest] @ Z[signature].T)
            own = kernel.cross((centred[rest] ** 2).sum(axis=1), mean[rest] ** 2, (Z[rest] ** 2).sum(axis=1))
            explained = solve_triangular(factor, cross.T, lower=True)
            std = np.sqrt(np.maximum(own - (explained**2).sum(axis=0) + sigma2, 1e-24))
            ratios.append(np.abs(L[rest, d] - (mean[rest] + cross @ weights)) / std)
        return calibration_scale(ratios, coverage)

    def _inner_lodo(self, Z: np.ndarray, L: np.ndarray, grid: np.ndarray, size: int, draws: int,
                    seed: int) -> np.ndarray:
        """Scores ``(n_grid, n_devices, draws, 2)``: inner log-RMSE and Spearman of each held-out training device,
        onboarded from random signatures with the kernel of the other training devices."""
        F = self.table_.log_latency
        n_devices = F.shape[1]
        scores = np.zeros((len(grid), n_devices, draws, 2))
        rng = np.random.default_rng(seed)
        for d in range(n_devices):
            centred, mean = _profiles(np.delete(F, d, axis=1))
            rows = np.flatnonzero(~np.isnan(L[:, d]))
            k = min(size, len(rows) - 1)
            for draw in range(draws):
                signature = np.sort(rng.choice(rows, size=k, replace=False))
                rest = np.setdiff1d(rows, signature)
                truth = L[rest, d]
                products = ((centred @ centred[signature].T)[rest], np.outer(mean[rest], mean[signature]),
                            (Z @ Z[signature].T)[rest])
                for g, (s, v_phi, sigma2) in enumerate(grid):
                    kernel = _Kernel(n_devices - 1, s, v_phi, sigma2, float(self.intercept_variance),
                                     float(self.mean_variance))
                    weights = kernel.solve(centred[signature], mean[signature], Z[signature], L[signature, d])
                    predicted = mean[rest] + kernel.cross(*products) @ weights
                    scores[g, d, draw, 0] = np.sqrt(np.mean((predicted - truth) ** 2))
                    scores[g, d, draw, 1] = rank_correlations(truth, predicted[:, None])[0]
        return scores

    def _set_state(self) -> None:
        s, v_phi, sigma2 = (float(v) for v in self.hyperparameters_)
        self.kernel_ = _Kernel(self.device_weights_.shape[1], s, v_phi, sigma2, float(self.intercept_variance),
                               float(self.mean_variance))
        self.fingerprint_ = fingerprint(self._learned_arrays(), params_text(self))

    # ---- adapt / predict ----------------------------------------------------------------------------------
    def profile_log_latencies(self, X: np.ndarray) -> np.ndarray:
        """``(n, n_devices)``: the training devices' log latencies of each row (measured for training networks,
        ridge-predicted where unmeasured or for other networks)."""
        return self.table_.rows_of(X, linear_predictor(X, self.mean_, self.scale_, self.device_weights_))

    def _adapt(self, X: np.ndarray, latency_ms: np.ndarray) -> DeviceAdaptation:
        centred, mean = _profiles(self.profile_log_latencies(X))
        design = design_matrix(X, self.mean_, self.scale_)
        kernel = self.kernel_
        weights, gram_factor = kernel.solve_with_factor(centred, mean, design, np.log(latency_ms))
        feature_weights = kernel.feature_variance * (design.T @ weights)
        feature_weights[0] += kernel.intercept_variance * weights.sum()
        return DeviceAdaptation(
            model_kind=self.kind,
            feature_schema_hash=self.feature_schema_hash_ or "",
            n_measurements=len(latency_ms),
            arrays={
                "weights": weights,
                "device_coefficients": kernel.device_factor * (centred.T @ weights),
                "feature_weights": feature_weights,
                "mean_coefficient": np.array([1.0 + kernel.mean_variance * float(mean @ weights)]),
                # for the predictive variance: the signature's profiles, design rows and Cholesky factor
                "signature_centred": centred,
                "signature_mean": mean,
                "signature_design": design,
                "gram_factor": gram_factor,
            },
            info={"hyperparameters": self.hyperparameters()},
        )

    def _predict(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        centred, mean = _profiles(self.profile_log_latencies(X))
        arrays = adaptation.arrays
        log_latency = (
            mean * float(np.asarray(arrays["mean_coefficient"], dtype=np.float64)[0])
            + centred @ np.asarray(arrays["device_coefficients"], dtype=np.float64)
            + linear_predictor(X, self.mean_, self.scale_, np.asarray(arrays["feature_weights"], dtype=np.float64))
        )
        return np.exp(log_latency)

    def _predict_log_std(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        """The GP's predictive standard deviation of the log latency:
        ``√(k(x, x) − k_s(x)ᵀ (K_ss + σ² I)⁻¹ k_s(x) + σ²)``."""
        arrays = adaptation.arrays
        centred, mean = _profiles(self.profile_log_latencies(X))
        design = design_matrix(X, self.mean_, self.scale_)
        kernel = self.kernel_
        own = kernel.cross((centred**2).sum(axis=1), mean**2, (design**2).sum(axis=1))
        cross = kernel.cross(centred @ np.asarray(arrays["signature_centred"], dtype=np.float64).T,
                             np.outer(mean, np.asarray(arrays["signature_mean"], dtype=np.float64)),
                             design @ np.asarray(arrays["signature_design"], dtype=np.float64).T)
        explained = solve_triangular(np.asarray(arrays["gram_factor"], dtype=np.float64), cross.T, lower=True)
        variance = own - (explained**2).sum(axis=0) + kernel.noise_variance
        return self.std_scale_ * np.sqrt(np.maximum(variance, 0.0))

    def hyperparameters(self) -> dict[str, float]:
        """The chosen ``(s, v_φ, σ²)`` and the fixed ``v₀``, ``v_μ`` by name."""
        self._check_fitted()
        s, v_phi, sigma2 = (float(v) for v in self.hyperparameters_)
        return {"device_scale": s, "feature_variance": v_phi, "noise_variance": sigma2,
                "intercept_variance": float(self.intercept_variance), "mean_variance": float(self.mean_variance)}

    # ---- artifacts ----------------------------------------------------------------------------------------
    def _learned_arrays(self) -> dict[str, np.ndarray]:
        return {
            "mean": self.mean_,
            "scale": self.scale_,
            "device_weights": self.device_weights_,
            **self.table_.arrays(),
            "grid": self.grid_,
            "hyperparameters": self.hyperparameters_,
            "selection_scores": self.selection_scores_,
            "std_scale": np.array([self.std_scale_]),
        }

    def _learned_extra(self) -> dict[str, Any]:
        scores = self.selection_scores_
        return {
            "hyperparameters": self.hyperparameters(),
            "selection": {
                "metric": self.selection_metric,
                "scores_axes": ["grid", "training_device", "draw", "metric (log_rmse, spearman)"],
                "mean_scores": scores.mean(axis=(1, 2)).tolist() if scores.size else [],
            },
        }

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        for name in ("mean", "scale", "device_weights", "grid", "hyperparameters", "selection_scores"):
            setattr(self, f"{name}_", np.asarray(arrays[name], dtype=np.float64))
        self.table_ = TrainingTable.from_arrays(arrays)
        self.std_scale_ = float(np.asarray(arrays["std_scale"], dtype=np.float64)[0])
        self._set_state()
