"""A closed-form Bayesian ridge adapter in log space, with its prior learned from training devices.

This is the small, dependency-free adapter that signature selection ("informative") scores candidate sets with,
and that the signature-based models use to impute the log-latency of signature architectures a new device did
not measure. It follows the research recipe ("BLR_full", /tmp/research/FINDINGS.md):

1. features ``φ(arch)``: an intercept, then every non-constant feature column; binary columns stay 0/1, dense
   non-negative columns with values above :data:`LOG_ABOVE` (raw MACs, bytes) become ``log1p``; every non-binary
   column is standardized (:class:`FeatureTransform`);
2. per training device ``d``: ridge weights ``W_d = (ΦᵀΦ + λI)⁻¹ Φᵀ log y_d`` over the archs it measured;
3. prior on a new device's weights: ``w ~ N(μ, Σ)``, ``μ`` the mean of the ``W_d``,
   ``Σ = s·Cov(W_d) + τ²·I + v₀·e₀e₀ᵀ`` (empirical device covariance, an isotropic out-of-span term and a free
   intercept);
4. posterior mean from a few points: ``w = μ + Σ Φ_sᵀ (Φ_s Σ Φ_sᵀ + σ² I)⁻¹ (log y_s − Φ_s μ)``.

Hyper-parameters default to the research values (``s = 4``, ``τ² = 1e-4``, ``σ² = 1e-2``, ``λ = 1e-2``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas_latency.errors import InvalidInputError

#: a dense non-negative feature column gets ``log1p`` when its maximum exceeds this (MACs, bytes, raw counts of
#: hundreds); columns already on a log scale or small counts stay linear
LOG_ABOVE = 100.0
#: latencies are clamped at this many ms before taking the log (a device that "drops" a network reports ~0)
LOG_FLOOR_MS = 1e-3


def log_latency(latency_ms: np.ndarray) -> np.ndarray:
    """``log(max(latency_ms, LOG_FLOOR_MS))``, NaN kept as NaN."""
    values = np.asarray(latency_ms, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.log(np.where(np.isnan(values), np.nan, np.maximum(values, LOG_FLOOR_MS)))


@dataclass(frozen=True)
class FeatureTransform:
    """Column selection, ``log1p`` of large dense non-negative columns and standardization, learned on one
    matrix."""

    columns: np.ndarray  # int64 indices of the kept (non-constant) input columns
    log_columns: np.ndarray  # bool per kept column: log1p applied
    mean: np.ndarray  # per kept column (0 for binary columns)
    scale: np.ndarray  # per kept column (1 for binary columns)

    @classmethod
    def fit(cls, X: np.ndarray) -> "FeatureTransform":
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 1:
            raise InvalidInputError(f"feature transform needs a non-empty 2-D matrix, got shape {X.shape}")
        if not np.isfinite(X).all():
            raise InvalidInputError("feature transform: features contain NaN or inf")
        keep = np.flatnonzero(X.max(axis=0) > X.min(axis=0))
        Xk = X[:, keep]
        binary = np.all((Xk == 0) | (Xk == 1), axis=0)
        log_cols = ~binary & np.all(Xk >= 0, axis=0) & (Xk.max(axis=0) > LOG_ABOVE)
        Z = np.where(log_cols, np.log1p(np.maximum(Xk, 0)), Xk)
        mean = np.where(binary, 0.0, Z.mean(axis=0))
        std = Z.std(axis=0)
        scale = np.where(binary | (std <= 0), 1.0, std)
        return cls(keep.astype(np.int64), log_cols, mean, scale)

    def transform(self, X: np.ndarray, *, intercept: bool = True) -> np.ndarray:
        """Transformed features, with a leading column of ones when ``intercept``."""
        Xk = np.asarray(X, dtype=np.float64)[:, self.columns]
        Z = np.where(self.log_columns, np.log1p(np.maximum(Xk, 0)), Xk)
        Z = (Z - self.mean) / self.scale
        if intercept:
            Z = np.hstack([np.ones((Z.shape[0], 1)), Z])
        return Z

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}columns": self.columns,
            f"{prefix}log_columns": self.log_columns,
            f"{prefix}mean": self.mean,
            f"{prefix}scale": self.scale,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray] | object, prefix: str) -> "FeatureTransform":
        get = arrays.__getitem__  # type: ignore[attr-defined]
        return cls(
            np.asarray(get(f"{prefix}columns"), dtype=np.int64),
            np.asarray(get(f"{prefix}log_columns"), dtype=bool),
            np.asarray(get(f"{prefix}mean"), dtype=np.float64),
            np.asarray(get(f"{prefix}scale"), dtype=np.float64),
        )


def ridge_weights(Phi: np.ndarray, L: np.ndarray, *, ridge: float = 1e-2) -> np.ndarray:
    """Per-device ridge weights ``(p, n_devices)`` of log-latencies ``L`` (NaN = unmeasured) on ``Phi``."""
    Phi = np.asarray(Phi, dtype=np.float64)
    L = np.asarray(L, dtype=np.float64)
    p = Phi.shape[1]
    W = np.zeros((p, L.shape[1]))
    complete = np.isfinite(L).all(axis=0)
    eye = ridge * np.eye(p)
    if complete.any():
        W[:, complete] = np.linalg.solve(Phi.T @ Phi + eye, Phi.T @ L[:, complete])
    for d in np.flatnonzero(~complete):
        rows = np.isfinite(L[:, d])
        if rows.sum() == 0:
            raise InvalidInputError(f"ridge prior: training device column {d} has no measured latency")
        A = Phi[rows]
        W[:, d] = np.linalg.solve(A.T @ A + eye, A.T @ L[rows, d])
    return W


def prior_from_weights(
    W: np.ndarray, *, scale: float = 4.0, tau2: float = 1e-4, intercept_var: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """``(μ, Σ)`` of the device-weight prior from per-device weights ``W`` (``p × n_devices``)."""
    mu = W.mean(axis=1)
    Wc = W - mu[:, None]
    cov = Wc @ Wc.T / max(W.shape[1] - 1, 1)
    Sigma = scale * cov + tau2 * np.eye(len(mu))
    Sigma[0, 0] += intercept_var
    return mu, Sigma


def posterior_weights(
    mu: np.ndarray, Sigma: np.ndarray, Phi_s: np.ndarray, log_y: np.ndarray, *, noise: float = 1e-2
) -> np.ndarray:
    """Posterior mean of the weights given log-latencies ``log_y`` of the rows ``Phi_s``."""
    if Phi_s.shape[0] == 0:
        return mu.copy()
    SXt = Sigma @ Phi_s.T
    G = Phi_s @ SXt + noise * np.eye(Phi_s.shape[0])
    return mu + SXt @ np.linalg.solve(G, log_y - Phi_s @ mu)


@dataclass(frozen=True)
class RidgePrior:
    """A fitted ridge prior: feature transform plus ``(μ, Σ)``; :meth:`adapt` + :meth:`predict_log` onboard a
    device from a few log-latencies."""

    transform: FeatureTransform
    mu: np.ndarray
    Sigma: np.ndarray
    noise: float = 1e-2

    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        L: np.ndarray,
        *,
        ridge: float = 1e-2,
        scale: float = 4.0,
        tau2: float = 1e-4,
        noise: float = 1e-2,
    ) -> "RidgePrior":
        """``X``: raw features (n × f); ``L``: log-latencies (n × n_devices, NaN = unmeasured)."""
        transform = FeatureTransform.fit(X)
        W = ridge_weights(transform.transform(X), L, ridge=ridge)
        mu, Sigma = prior_from_weights(W, scale=scale, tau2=tau2)
        return cls(transform, mu, Sigma, noise)

    def adapt(self, X: np.ndarray, log_y: np.ndarray) -> np.ndarray:
        """Posterior-mean weights from raw features ``X`` and log-latencies ``log_y`` of the measured rows."""
        return posterior_weights(self.mu, self.Sigma, self.transform.transform(X), np.asarray(log_y), noise=self.noise)

    def predict_log(self, X: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return self.transform.transform(X) @ weights

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            **self.transform.to_arrays(prefix),
            f"{prefix}mu": self.mu,
            f"{prefix}Sigma": self.Sigma,
            f"{prefix}noise": np.asarray(self.noise),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray] | object, prefix: str) -> "RidgePrior":
        get = arrays.__getitem__  # type: ignore[attr-defined]
        return cls(
            FeatureTransform.from_arrays(arrays, prefix),
            np.asarray(get(f"{prefix}mu"), dtype=np.float64),
            np.asarray(get(f"{prefix}Sigma"), dtype=np.float64),
            float(get(f"{prefix}noise")),
        )
