"""BLR whose hyper-parameters are averaged per device by their evidence (``blr_evidence``).

:class:`~nas_latency.models.blr.BayesianDeviceModel` picks one ``(s, σ², τ²)`` at fit time, by an inner
leave-one-device-out over the training devices: the setting that suits devices *like the training devices*. A
new device unlike all of them (another kind of hardware, an estimated accelerator) needs a wider prior than
that, and a device like them a narrower one. This model lets each device's own K measurements decide.

Prior of a device's weights, for one grid entry ``(s, σ², τ², v)``
    ``w ~ N(μ, s·Cov(W) + τ²·I + v·P Pᵀ + v₀·e₀e₀ᵀ)``: as ``blr`` (``μ``, ``Cov(W)`` from the training devices'
    ridge weights; ``τ²`` an isotropic out-of-span term; a free intercept) plus ``v·P Pᵀ``, extra variance along
    the *physical* features: every feature that is not a 0/1 indicator (MACs, parameters, counts of each
    operator, path lengths, depth). A device whose latency follows those quantities in proportions no training
    device has is reachable from a few measurements through ``v``.
Adapt (Bayesian model averaging)
    For every grid entry ``g``: the log evidence of the K measured log latencies,
    ``log N(t | Φμ, Φ Σ_g Φᵀ + σ²_g I)``, and the posterior mean ``w_g``. The adaptation keeps
    ``w̄ = Σ_g π_g w_g`` with ``π ∝ exp(log evidence)`` (uniform over the grid a priori), so prediction is one
    linear map as in ``blr``; and, for :meth:`predict_with_uncertainty`, the posterior factors of the entries
    that carry the weight (``π_g ≥ uncertainty_weight_floor``, at most the 8 heaviest), whose mixture variance
    it returns.
No inner leave-device-out at fit: nothing is tuned on the training devices but the ridge weights.
"""

from __future__ import annotations

import itertools
from typing import Any, Mapping, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models.base import CrossDeviceModel, DeviceAdaptation
from nas_latency.models.blr import WeightPrior
from nas_latency.models.linalg import (
    as_float_tuple,
    check_alpha,
    check_standardize,
    check_table_coverage,
    design_matrix,
    fingerprint,
    fit_standardizer,
    linear_predictor,
    params_text,
    ridge_per_device,
)

#: (prior_scale s, noise_variance σ², isotropic_variance τ², physical_variance v): every combination of
#: s ∈ {1, 4, 16}, σ² ∈ {1e-3, 1e-2, 3e-2}, τ² ∈ {1e-4, 1e-3, 1e-2}, v ∈ {0, 0.01, 0.1}
DEFAULT_EVIDENCE_GRID: tuple[tuple[float, float, float, float], ...] = tuple(
    itertools.product((1.0, 4.0, 16.0), (1e-3, 1e-2, 3e-2), (1e-4, 1e-3, 1e-2), (0.0, 0.01, 0.1))
)
#: at most this many grid entries (the heaviest) are kept in an adaptation for the predictive uncertainty
MAX_KEPT_ENTRIES = 8
GRID_FIELDS = ("prior_scale", "noise_variance", "isotropic_variance", "physical_variance")


class EvidenceBayesianDeviceModel(CrossDeviceModel):
    """BLR in log space, the prior's hyper-parameters averaged per device by evidence; see the module docstring."""

    kind = "blr_evidence"

    def __init__(
        self,
        *,
        alpha: float = 1e-2,
        grid: Sequence[Sequence[float]] = DEFAULT_EVIDENCE_GRID,
        intercept_variance: float = 1.0,
        standardize: str = "non_binary",
        uncertainty_weight_floor: float = 0.01,
    ) -> None:
        self.alpha = alpha
        self.grid = grid
        self.intercept_variance = intercept_variance
        self.standardize = standardize
        self.uncertainty_weight_floor = uncertainty_weight_floor

    def _checked_grid(self) -> np.ndarray:
        try:
            rows = [as_float_tuple(row, what=f"each grid entry ({', '.join(GRID_FIELDS)})", length=4)
                    for row in self.grid]
        except TypeError:
            raise InvalidInputError(f"grid must be a sequence of ({', '.join(GRID_FIELDS)}), got {self.grid!r}") from None
        if not rows:
            raise InvalidInputError(f"grid must hold at least one ({', '.join(GRID_FIELDS)}) entry")
        grid = np.asarray(rows, dtype=np.float64)
        if not np.all(np.isfinite(grid)) or (grid[:, :3] <= 0).any() or (grid[:, 3] < 0).any():
            raise InvalidInputError(f"grid values must be finite, the first three positive and the physical variance "
                                    f"non-negative; got {rows}")
        return grid

    # ---- fit ----------------------------------------------------------------------------------------------
    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "EvidenceBayesianDeviceModel":
        Y = self._validate_table(features, latency_ms)
        alpha = check_alpha(self.alpha)
        check_alpha(self.intercept_variance, "intercept_variance")
        floor = self.uncertainty_weight_floor
        if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0 <= floor < 1:
            raise InvalidInputError(f"uncertainty_weight_floor must be a number in [0, 1), got {floor!r}")
        self.grid_ = self._checked_grid()
        check_table_coverage(Y, minimum=2, where="EvidenceBayesianDeviceModel.fit")
        X = features.values
        self.mean_, self.scale_ = fit_standardizer(X, check_standardize(self.standardize))
        self.physical_ = ~np.all((X == 0.0) | (X == 1.0), axis=0) & (X.std(axis=0) > 0)
        self.device_weights_ = ridge_per_device(design_matrix(X, self.mean_, self.scale_), np.log(Y), alpha)
        self._remember_schema(features)
        self._set_state()
        return self

    def _set_state(self) -> None:
        self._priors: dict[tuple[float, float, float], WeightPrior] = {}
        self.fingerprint_ = fingerprint(self._learned_arrays(), params_text(self))

    def _prior(self, prior_scale: float, isotropic_variance: float, physical_variance: float) -> WeightPrior:
        key = (prior_scale, isotropic_variance, physical_variance)
        prior = self._priors.get(key)
        if prior is None:
            prior = WeightPrior(self.device_weights_, prior_scale, isotropic_variance, float(self.intercept_variance),
                                physical_columns=np.flatnonzero(self.physical_) + 1,  # design column 0: intercept
                                physical_variance=physical_variance)
            self._priors[key] = prior
        return prior

    # ---- adapt / predict ----------------------------------------------------------------------------------
    def _adapt(self, X: np.ndarray, latency_ms: np.ndarray) -> DeviceAdaptation:
        Zs = design_matrix(X, self.mean_, self.scale_)
        t = np.log(latency_ms)
        weights, factors, log_evidence = [], [], np.empty(len(self.grid_))
        for g, (s, sigma2, tau2, v) in enumerate(self.grid_):
            w, F, log_evidence[g] = self._prior(s, tau2, v).posterior_with_evidence(Zs, t, sigma2)
            weights.append(w)
            factors.append(F)
        posterior = np.exp(log_evidence - log_evidence.max())
        posterior /= posterior.sum()
        mean_weights = posterior @ np.array(weights)
        order = np.argsort(-posterior, kind="stable")
        kept = order[: max(1, min(MAX_KEPT_ENTRIES, int((posterior >= self.uncertainty_weight_floor).sum())))]
        return DeviceAdaptation(
            model_kind=self.kind,
            feature_schema_hash=self.feature_schema_hash_ or "",
            n_measurements=len(latency_ms),
            arrays={
                "weights": mean_weights,
                "grid_posterior": posterior,
                "grid_log_evidence": log_evidence,
                "kept_entries": kept.astype(np.int64),
                "kept_weights": np.array([weights[g] for g in kept]),
                "kept_factors": np.array([factors[g] for g in kept]),
            },
            info={"map_hyperparameters": dict(zip(GRID_FIELDS, self.grid_[int(np.argmax(posterior))].tolist())),
                  "map_posterior": float(posterior.max())},
        )

    def _predict(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        weights = np.asarray(adaptation.arrays["weights"], dtype=np.float64)
        return np.exp(linear_predictor(X, self.mean_, self.scale_, weights))

    def _predict_log_std(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        """The standard deviation of the predicted log latency under the mixture of the grid entries that carry
        the weight (each: posterior of the weights plus its noise ``σ²``; renormalized over the kept entries)."""
        kept = np.asarray(adaptation.arrays["kept_entries"], dtype=np.int64)
        posterior = np.asarray(adaptation.arrays["grid_posterior"], dtype=np.float64)[kept]
        posterior = posterior / posterior.sum()
        kept_weights = np.asarray(adaptation.arrays["kept_weights"], dtype=np.float64)
        kept_factors = np.asarray(adaptation.arrays["kept_factors"], dtype=np.float64)
        means = linear_predictor(X, self.mean_, self.scale_, kept_weights.T)  # (n, kept)
        second_moment = np.zeros(len(X))
        for i, g in enumerate(kept):
            s, sigma2, tau2, v = self.grid_[g]
            explained = (linear_predictor(X, self.mean_, self.scale_, kept_factors[i]) ** 2).sum(axis=1)
            variance = self.prior_variance(X, s, tau2, v) - explained + sigma2
            second_moment += posterior[i] * (np.maximum(variance, 0.0) + means[:, i] ** 2)
        mixture_mean = means @ posterior
        return np.sqrt(np.maximum(second_moment - mixture_mean**2, 0.0))

    def prior_variance(self, X: np.ndarray, prior_scale: float, isotropic_variance: float,
                       physical_variance: float) -> np.ndarray:
        """``diag(Φ Σ Φᵀ)`` of one grid entry's prior at rows ``X``."""
        return self._prior(prior_scale, isotropic_variance, physical_variance).variance_at(X, self.mean_, self.scale_)

    # ---- artifacts ----------------------------------------------------------------------------------------
    def _learned_arrays(self) -> dict[str, np.ndarray]:
        return {
            "mean": self.mean_,
            "scale": self.scale_,
            "physical": self.physical_,
            "device_weights": self.device_weights_,
            "grid": self.grid_,
        }

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        for name in ("mean", "scale", "device_weights", "grid"):
            setattr(self, f"{name}_", np.asarray(arrays[name], dtype=np.float64))
        self.physical_ = np.asarray(arrays["physical"], dtype=bool)
        self._set_state()
