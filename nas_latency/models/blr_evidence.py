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
Calibration (``calibrate=True``)
    The mixture's σ is multiplied by ``std_scale_``, found at fit by an inner leave-one-device-out over the
    training devices (each onboarded from random signatures with the prior of the others): the factor that makes
    ``ln ŷ ± 1.96 σ`` hold 95 % (``calibration_coverage``) of their measured latencies. Nothing else is tuned on
    the training devices but the ridge weights; the predictions do not depend on it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models.base import CrossDeviceModel, DeviceAdaptation
from nas_latency.models.blr import WeightPrior, with_noise
from nas_latency.models.linalg import (
    calibration_scale,
    check_alpha,
    check_open_unit,
    check_grid,
    check_standardize,
    check_table_coverage,
    design_matrix,
    fingerprint,
    fit_standardizer,
    integer_setting,
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
#: a grid entry's prior from its (prior_scale, isotropic_variance, physical_variance)
PriorLookup = Callable[[float, float, float], WeightPrior]
GRID_FIELDS = ("prior_scale", "noise_variance", "isotropic_variance", "physical_variance")


@dataclass(frozen=True)
class _GridSystems:
    """The grid entries' linear systems for one set of design rows, per entry: its prior's mean ``μ`` and
    ``A = Σ Zsᵀ`` (shared by the entries of one prior), ``L⁻¹`` of the Cholesky factor ``L`` of ``C``, the residual
    ``r = t − Zs μ``, ``α = C⁻¹ r`` and ``log det C``."""

    means: list[np.ndarray]
    A: list[np.ndarray]
    chol_inverse: np.ndarray
    residual: np.ndarray
    alpha: np.ndarray
    log_det: np.ndarray


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
        calibrate: bool = True,
        calibration_signature_size: int = 10,
        calibration_draws: int = 2,
        calibration_rows: int = 2000,
        calibration_seed: int = 0,
        calibration_coverage: float = 0.95,
    ) -> None:
        self.alpha = alpha
        self.grid = grid
        self.intercept_variance = intercept_variance
        self.standardize = standardize
        self.uncertainty_weight_floor = uncertainty_weight_floor
        self.calibrate = calibrate
        self.calibration_signature_size = calibration_signature_size
        self.calibration_draws = calibration_draws
        self.calibration_rows = calibration_rows
        self.calibration_seed = calibration_seed
        self.calibration_coverage = calibration_coverage

    # ---- fit ----------------------------------------------------------------------------------------------
    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "EvidenceBayesianDeviceModel":
        Y = self._validate_table(features, latency_ms)
        alpha = check_alpha(self.alpha)
        check_alpha(self.intercept_variance, "intercept_variance")
        floor = self.uncertainty_weight_floor
        if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0 <= floor < 1:
            raise InvalidInputError(f"uncertainty_weight_floor must be a number in [0, 1), got {floor!r}")
        self.grid_ = check_grid(self.grid, GRID_FIELDS, non_negative=(3,))
        check_table_coverage(Y, minimum=2, where="EvidenceBayesianDeviceModel.fit")
        X = features.values
        self.mean_, self.scale_ = fit_standardizer(X, check_standardize(self.standardize))
        self.physical_ = ~np.all((X == 0.0) | (X == 1.0), axis=0) & (X.std(axis=0) > 0)
        self.device_weights_ = ridge_per_device(design_matrix(X, self.mean_, self.scale_), np.log(Y), alpha)
        self._priors: dict[tuple[float, float, float], WeightPrior] = {}
        self.std_scale_ = self._calibration_scale(X, Y) if self.calibrate else 1.0
        self._remember_schema(features)
        self._set_state()
        return self

    def _set_state(self) -> None:
        self._priors = {}
        self.fingerprint_ = fingerprint(self._learned_arrays(), params_text(self))

    def _make_prior(self, W: np.ndarray, prior_scale: float, isotropic_variance: float,
                    physical_variance: float) -> WeightPrior:
        return WeightPrior(W, prior_scale, isotropic_variance, float(self.intercept_variance),
                           physical_columns=np.flatnonzero(self.physical_) + 1,  # design column 0: intercept
                           physical_variance=physical_variance)

    def _prior(self, prior_scale: float, isotropic_variance: float, physical_variance: float) -> WeightPrior:
        """One grid entry's prior over all the training devices (cached)."""
        key = (prior_scale, isotropic_variance, physical_variance)
        prior = self._priors.get(key)
        if prior is None:
            prior = self._make_prior(self.device_weights_, *key)
            self._priors[key] = prior
        return prior

    # ---- the mixture over the grid ----------------------------------------------------------------------
    def _grid_systems(self, prior_of: PriorLookup, Zs: np.ndarray, t: np.ndarray) -> _GridSystems:
        """Every grid entry's ``C = Zs Σ Zsᵀ + σ² I`` and residual ``t − Zs μ``, solved at once: each prior's
        Gram is computed once for all its noise levels, and the small systems are stacked."""
        priors: dict[tuple[float, float, float], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        n, k = len(self.grid_), len(t)
        means, As, C, residual = [], [], np.empty((n, k, k)), np.empty((n, k))
        for g, (s, sigma2, tau2, v) in enumerate(self.grid_):
            if (s, tau2, v) not in priors:
                prior = prior_of(s, tau2, v)
                A, G = prior.gram(Zs)
                priors[(s, tau2, v)] = (prior.mean, A, G, t - Zs @ prior.mean)
            mean, A, G, residual[g] = priors[(s, tau2, v)]
            means.append(mean)
            As.append(A)
            C[g] = with_noise(G, sigma2)
        chol = np.linalg.cholesky(C)
        chol_inverse = np.linalg.inv(chol)
        alpha = np.einsum("gji,gj->gi", chol_inverse, np.einsum("gij,gj->gi", chol_inverse, residual))
        log_det = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        return _GridSystems(means, As, chol_inverse, residual, alpha, log_det)

    def _mixture(self, prior_of: PriorLookup, Zs: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """For design rows ``Zs`` and log latencies ``t``: every grid entry's posterior and evidence, the
        evidence-weighted mean weights, and the entries kept for the uncertainty (as adaptation arrays)."""
        return self._mixture_of(self._grid_systems(prior_of, Zs, t), len(t))

    def _mixture_of(self, systems: _GridSystems, k: int) -> dict[str, np.ndarray]:
        """:meth:`_mixture` of ``k`` design rows whose systems are solved."""
        log_evidence = -0.5 * ((systems.residual * systems.alpha).sum(axis=1) + systems.log_det
                               + k * np.log(2.0 * np.pi))
        weights = np.array([mean + A @ alpha for mean, A, alpha in
                            zip(systems.means, systems.A, systems.alpha)])  # each entry's posterior mean
        posterior = np.exp(log_evidence - log_evidence.max())
        posterior /= posterior.sum()
        order = np.argsort(-posterior, kind="stable")
        kept = order[: max(1, min(MAX_KEPT_ENTRIES, int((posterior >= self.uncertainty_weight_floor).sum())))]
        # the posterior covariance factor F (Σ_post = Σ − F Fᵀ) of the kept entries: F = A L⁻ᵀ
        factors = [systems.A[g] @ systems.chol_inverse[g].T for g in kept]
        return {
            "weights": posterior @ weights,
            "grid_posterior": posterior,
            "grid_log_evidence": log_evidence,
            "kept_entries": kept.astype(np.int64),
            "kept_weights": weights[kept],
            "kept_factors": np.array(factors),
        }

    def _mixture_log_std(self, X: np.ndarray, arrays: Mapping[str, np.ndarray], prior_of: PriorLookup) -> np.ndarray:
        """The (uncalibrated) standard deviation of the log latency at rows ``X`` under the mixture of the kept
        grid entries (each: posterior of the weights plus its noise ``σ²``; renormalized over the kept)."""
        kept = np.asarray(arrays["kept_entries"], dtype=np.int64)
        posterior = np.asarray(arrays["grid_posterior"], dtype=np.float64)[kept]
        posterior = posterior / posterior.sum()
        kept_weights = np.asarray(arrays["kept_weights"], dtype=np.float64)
        kept_factors = np.asarray(arrays["kept_factors"], dtype=np.float64)
        means = linear_predictor(X, self.mean_, self.scale_, kept_weights.T)  # (n, kept)
        second_moment = np.zeros(len(X))
        for i, g in enumerate(kept):
            s, sigma2, tau2, v = self.grid_[g]
            explained = (linear_predictor(X, self.mean_, self.scale_, kept_factors[i]) ** 2).sum(axis=1)
            variance = prior_of(s, tau2, v).variance_at(X, self.mean_, self.scale_) - explained + sigma2
            second_moment += posterior[i] * (np.maximum(variance, 0.0) + means[:, i] ** 2)
        mixture_mean = means @ posterior
        return np.sqrt(np.maximum(second_moment - mixture_mean**2, 0.0))

    def _calibration_scale(self, X: np.ndarray, Y: np.ndarray) -> float:
        """The factor that makes the ``calibration_coverage`` quantile of |log error| / σ of the inner
        leave-one-device-out equal to a normal's (1.96 for 0.95): each training device in turn is onboarded from
        random signatures with the prior of the others and scored on a sample of its other rows."""
        coverage = check_open_unit(self.calibration_coverage, "calibration_coverage")
        size, draws, n_rows = (integer_setting(self, name) for name in
                               ("calibration_signature_size", "calibration_draws", "calibration_rows"))
        rng = np.random.default_rng(integer_setting(self, "calibration_seed", 0))
        ratios = []
        for d in range(Y.shape[1]):
            W = self.device_weights_[:, [i for i in range(Y.shape[1]) if i != d]]
            cache: dict[tuple[float, float, float], WeightPrior] = {}

            def prior_of(s: float, tau2: float, v: float, W: np.ndarray = W,
                         cache: dict[tuple[float, float, float], WeightPrior] = cache) -> WeightPrior:
                if (s, tau2, v) not in cache:
                    cache[(s, tau2, v)] = self._make_prior(W, s, tau2, v)
                return cache[(s, tau2, v)]

            rows = np.flatnonzero(np.isfinite(Y[:, d]))
            if len(rows) <= size:
                continue
            for _ in range(draws):
                signature = rng.choice(rows, size=size, replace=False)
                rest = np.setdiff1d(rows, signature)
                rest = rng.choice(rest, size=min(n_rows, len(rest)), replace=False)
                arrays = self._mixture(prior_of, design_matrix(X[signature], self.mean_, self.scale_),
                                       np.log(Y[signature, d]))
                error = np.abs(np.log(Y[rest, d]) - linear_predictor(X[rest], self.mean_, self.scale_,
                                                                     arrays["weights"]))
                ratios.append(error / np.maximum(self._mixture_log_std(X[rest], arrays, prior_of), 1e-12))
        if not ratios:
            raise InvalidInputError(f"calibration needs a training device with more than "
                                    f"{size} measured rows; set calibrate=False")
        return calibration_scale(ratios, coverage)

    # ---- adapt / predict ----------------------------------------------------------------------------------
    def _adapt(self, X: np.ndarray, latency_ms: np.ndarray) -> DeviceAdaptation:
        return self._adaptation(self._mixture(self._prior, design_matrix(X, self.mean_, self.scale_),
                                              np.log(latency_ms)), len(latency_ms))

    def _adapt_and_held_out(self, X: np.ndarray, latency_ms: np.ndarray,
                            fold: np.ndarray) -> tuple[DeviceAdaptation, np.ndarray]:
        """One solve of the grid's systems serves both the adaptation and its cross-validation."""
        t = np.log(latency_ms)
        systems = self._grid_systems(self._prior, design_matrix(X, self.mean_, self.scale_), t)
        return (self._adaptation(self._mixture_of(systems, len(t)), len(t)),
                self._held_out_of(systems, t, fold))

    def _adaptation(self, arrays: dict[str, np.ndarray], n_measurements: int) -> DeviceAdaptation:
        posterior = arrays["grid_posterior"]
        return DeviceAdaptation(
            model_kind=self.kind,
            feature_schema_hash=self.feature_schema_hash_ or "",
            n_measurements=n_measurements,
            arrays=arrays,
            info={"map_hyperparameters": dict(zip(GRID_FIELDS, self.grid_[int(np.argmax(posterior))].tolist())),
                  "map_posterior": float(posterior.max())},
        )

    def _held_out_log_predictions(self, X: np.ndarray, latency_ms: np.ndarray, fold: np.ndarray) -> np.ndarray:
        """Exact cross-validation without adapting per fold. For each grid entry, with ``C = Z Σ Zᵀ + σ² I``,
        ``r = t − Z μ`` and ``α = C⁻¹ r`` over all K rows, the rows ``o`` of a fold, given the others, have
        predictive mean ``t_o − B⁻¹ α_o`` (``B = (C⁻¹)_oo``), and the other rows' log evidence is
        ``−½ (rᵀα − α_oᵀ B⁻¹ α_o + log det C + log det B + (K − |o|) log 2π)``. The held-out prediction is the
        entries' means weighted by their evidence *without* the fold, as an adaptation on the other rows weighs
        them: the same numbers as adapting once per fold, at the cost of one adaptation."""
        t = np.log(latency_ms)
        return self._held_out_of(self._grid_systems(self._prior, design_matrix(X, self.mean_, self.scale_), t), t,
                                 fold)

    def _held_out_of(self, systems: _GridSystems, t: np.ndarray, fold: np.ndarray) -> np.ndarray:
        """:meth:`_held_out_log_predictions` of log latencies ``t`` whose systems are solved."""
        folds = [np.flatnonzero(fold == f) for f in np.unique(fold)]
        inverse = np.swapaxes(systems.chol_inverse, 1, 2) @ systems.chol_inverse  # C⁻¹ of every entry
        alpha, log_det = systems.alpha, systems.log_det
        quadratic = (systems.residual * alpha).sum(axis=1)
        means = np.empty((len(self.grid_), len(t)))
        log_evidence = np.empty((len(self.grid_), len(folds)))
        if all(len(rows) == 1 for rows in folds):  # leave-one-out: B is the 1×1 diagonal entry, every fold at once
            order = np.array([rows[0] for rows in folds])
            precision = np.diagonal(inverse, axis1=1, axis2=2)[:, order]
            beta = alpha[:, order] / precision
            means[:, order] = t[order] - beta
            log_evidence[:] = -0.5 * (quadratic[:, None] - alpha[:, order] * beta + log_det[:, None]
                                      + np.log(precision) + (len(t) - 1) * np.log(2.0 * np.pi))
        else:
            for j, rows in enumerate(folds):
                B = inverse[:, rows[:, None], rows[None, :]]
                beta = np.linalg.solve(B, alpha[:, rows, None])[..., 0]
                means[:, rows] = t[rows] - beta
                _, log_det_B = np.linalg.slogdet(B)
                log_evidence[:, j] = -0.5 * (quadratic - (alpha[:, rows] * beta).sum(axis=1) + log_det + log_det_B
                                             + (len(t) - len(rows)) * np.log(2.0 * np.pi))
        out = np.empty(len(t))
        for j, rows in enumerate(folds):
            weights = np.exp(log_evidence[:, j] - log_evidence[:, j].max())
            out[rows] = (weights / weights.sum()) @ means[:, rows]
        return out

    def _predict(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        weights = np.asarray(adaptation.arrays["weights"], dtype=np.float64)
        return np.exp(linear_predictor(X, self.mean_, self.scale_, weights))

    def _predict_log_std(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        """The standard deviation of the predicted log latency under the mixture of the grid entries that carry
        the weight, times the calibration factor found at fit (``std_scale_``)."""
        return self.std_scale_ * self._mixture_log_std(X, adaptation.arrays, self._prior)

    # ---- artifacts ----------------------------------------------------------------------------------------
    def _learned_arrays(self) -> dict[str, np.ndarray]:
        return {
            "mean": self.mean_,
            "scale": self.scale_,
            "physical": self.physical_,
            "device_weights": self.device_weights_,
            "grid": self.grid_,
            "std_scale": np.array([self.std_scale_]),
        }

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        for name in ("mean", "scale", "device_weights", "grid"):
            setattr(self, f"{name}_", np.asarray(arrays[name], dtype=np.float64))
        self.physical_ = np.asarray(arrays["physical"], dtype=bool)
        self.std_scale_ = float(np.asarray(arrays["std_scale"], dtype=np.float64)[0])
        self._set_state()
