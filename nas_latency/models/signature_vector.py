"""Signature vectors, and the machinery shared by the models that read a device through one.

A device is described to a signature model by its log-latencies on a fixed **signature set** of K architectures
(chosen at ``fit`` with :func:`nas_latency.signature.select_signature`, stored in the artifact). The
**signature vector** is those K log-latencies centred by their mean, followed by the mean itself
(:func:`signature_vector`): the model sees the device's overall speed and its relative pattern separately, and
predicts the **centred** log-latency of any arch (the mean is added back). The research found this better than
raw log-latencies.

:class:`SignatureCrossDeviceModel` implements everything but the regressor:

``fit(features, latency_ms_table)``
    1. signature set: ``signature_archs`` if given, else ``select_signature(signature_method, …, seed)``; the
       archs with feature ``degenerate_feature`` > 0.5 (if that parameter names one) form the degenerate mask, so
       one degenerate arch joins the set;
    2. a ridge prior (:class:`~nas_latency.signature.RidgePrior`) over all training devices, kept for imputation;
       a training device that did not measure a signature arch gets its own ridge prediction there;
    3. ``n_synthetic`` synthetic devices: log-space Dirichlet mixes of 2–3 random training devices (seeded), for
       device diversity (with only ~12 real devices the regressor sees too few signature vectors otherwise);
    4. training rows: for every real and synthetic device, ``rows_per_device`` archs it measured (seeded
       subsample), input ``[arch features, signature vector]``, target the centred log-latency;
    5. the subclass fits its regressor on them.

``adapt(features, latency_ms)``
    ``features.rows`` are the arch ids of the measurements (a :class:`~nas_latency.ir.FeatureMatrix` names its
    rows), so the adapter maps them onto the signature set; a signature arch whose id is absent is still
    recognised by an identical feature vector (the only way on the id-less ``_adapt(X, y)`` path that wrappers
    such as ``DegenerateAware`` and ``GeometricEnsemble`` use; a feature twin is indistinguishable to the model
    anyway). Repeated archs are averaged in log space.
    Signature archs the device did not measure are **imputed**: the ridge prior's posterior from every measured
    point (signature or not) predicts their log-latency (``info["n_imputed"]`` counts them, ``info["imputed"]``
    names them). Then a per-device affine correction in log space, ``log ŷ ← log ŷ + a + b·(log ŷ − c)``, is fitted
    on the measured points (ridge ``affine_ridge`` on ``b``, none on ``a``; ``c`` = mean prediction there).

The adaptation holds ``signature_log_latency`` (K log-ms values, imputed ones included) and ``affine``
(``[a, b, c]``); its info carries the model fingerprint (an adaptation made by another fit is refused), the
counts ``n_signature_measured``, ``n_imputed``, ``n_matched_by_features``, ``n_other_measured`` and the ids of
the imputed archs.

Degenerate devices (those that report ~0 ms for degenerate archs, e.g. pixel3 on dead NAS-Bench-201 cells) are
not handled here: wrap the model in :class:`~nas_latency.models.degenerate.DegenerateAware` for that.
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from typing import Any, Mapping, Sequence

import numpy as np

from nas_latency.errors import FailedPreconditionError, InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models.base import CrossDeviceModel, DeviceAdaptation, check_latencies
from nas_latency.models.linalg import fingerprint, params_text
from nas_latency.signature import RidgePrior, log_latency, select_signature
from nas_latency.signature.ridge_prior import FeatureTransform, prior_from_weights, ridge_weights

logger = logging.getLogger(__name__)

#: ridge-prior hyper-parameters for imputing missing signature latencies (research values)
IMPUTE_PRIOR = {"ridge": 1e-2, "scale": 4.0, "tau2": 1e-4, "noise": 1e-2}


def signature_vector(signature_log_latency: np.ndarray) -> np.ndarray:
    """``(..., K)`` log-latencies → ``(..., K + 1)``: centred by their mean, then the mean."""
    values = np.asarray(signature_log_latency, dtype=np.float64)
    mean = values.mean(axis=-1, keepdims=True)
    return np.concatenate([values - mean, mean], axis=-1)


def fit_affine(pred_log: np.ndarray, true_log: np.ndarray, *, ridge: float) -> np.ndarray:
    """``[a, b, c]`` so that ``pred + a + b (pred − c)`` fits ``true`` (ridge on ``b`` only; ``c`` = mean pred)."""
    pred_log = np.asarray(pred_log, dtype=np.float64)
    c = float(pred_log.mean())
    A = np.column_stack([np.ones(len(pred_log)), pred_log - c])
    coef = np.linalg.solve(A.T @ A + np.diag([0.0, ridge]), A.T @ (np.asarray(true_log) - pred_log))
    return np.array([coef[0], coef[1], c])


def apply_affine(pred_log: np.ndarray, affine: np.ndarray) -> np.ndarray:
    a, b, c = (float(v) for v in affine)
    return pred_log + a + b * (pred_log - c)


def synthetic_devices(
    L: np.ndarray, L_signature: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` log-space Dirichlet mixes of 2–3 of the columns of ``L`` (archs × devices; NaN propagates) and of the
    matching signature log-latencies ``L_signature`` (K × devices)."""
    n_dev = L.shape[1]
    mixes, sig_mixes = np.zeros((L.shape[0], n)), np.zeros((L_signature.shape[0], n))
    for s in range(n):
        m = int(rng.integers(2, min(3, n_dev) + 1))
        idx = rng.choice(n_dev, size=m, replace=False)
        w = rng.dirichlet(np.ones(m))
        mixes[:, s] = L[:, idx] @ w
        sig_mixes[:, s] = L_signature[:, idx] @ w
    return mixes, sig_mixes


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidInputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class SignatureCrossDeviceModel(CrossDeviceModel):
    """Base of the models that read a device through its signature vector (see the module docstring).

    Subclasses store ``seed, signature_k, signature_method, signature_archs, degenerate_feature, n_synthetic,
    rows_per_device, affine, affine_ridge`` (plus their own parameters) and implement the regressor hooks.
    """

    min_measurements = 3

    seed: int
    signature_k: int
    signature_method: str
    signature_archs: Sequence[str] | None
    degenerate_feature: str | None
    n_synthetic: int
    rows_per_device: int
    affine: bool
    affine_ridge: float

    # ---- regressor hooks ----------------------------------------------------------------------------------
    @abstractmethod
    def _fit_regressor(
        self, X: np.ndarray, S: np.ndarray, y: np.ndarray, arch_index: np.ndarray, rng: np.random.Generator
    ) -> None:
        """Fit on rows ``[X, S] → y`` (S = signature vectors, y = centred log-latency); ``arch_index`` names the
        arch of each row (to hold out whole archs for validation)."""

    @abstractmethod
    def _regress(self, X: np.ndarray, signature: np.ndarray) -> np.ndarray:
        """Centred log-latency of every row of ``X`` on the device of signature vector ``signature``."""

    @abstractmethod
    def _regressor_arrays(self) -> dict[str, np.ndarray]:
        ...

    def _regressor_extra(self) -> dict[str, Any]:
        return {}

    @abstractmethod
    def _restore_regressor(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        ...

    # ---- fit ------------------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        _check_int(self.seed, "seed", 0)
        _check_int(self.n_synthetic, "n_synthetic", 0)
        _check_int(self.rows_per_device, "rows_per_device", 1)
        if self.signature_archs is None:
            _check_int(self.signature_k, "signature_k", 1)
        if not (isinstance(self.affine_ridge, (int, float)) and self.affine_ridge >= 0):
            raise InvalidInputError(f"affine_ridge must be a number >= 0, got {self.affine_ridge!r}")

    def _choose_signature(self, features: FeatureMatrix, Y: np.ndarray) -> list[str]:
        rows = list(features.rows)
        if self.signature_archs is not None:
            archs = [str(a) for a in self.signature_archs]
            known = set(rows)
            unknown = [a for a in archs if a not in known]
            if unknown:
                raise InvalidInputError(
                    f"fit: {len(unknown)} signature archs are not rows of the features (first {unknown[0]!r})"
                )
            if len(set(archs)) != len(archs) or not archs:
                raise InvalidInputError("fit: signature_archs must be a non-empty list of distinct arch ids")
            return archs
        mask = None
        if self.degenerate_feature is not None:
            if self.degenerate_feature not in features.names:
                raise InvalidInputError(
                    f"fit: degenerate_feature {self.degenerate_feature!r} is not one of the {len(features.names)} "
                    "feature names"
                )
            mask = features.column(self.degenerate_feature) > 0.5
        return select_signature(
            self.signature_method, Y, rows, self.signature_k, seed=self.seed, features=features, degenerate_mask=mask
        )

    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "SignatureCrossDeviceModel":
        start = time.perf_counter()
        self._check_params()
        Y = self._validate_table(features, latency_ms)
        rows = list(features.rows)
        if len(set(rows)) != len(rows):
            raise InvalidInputError("fit: feature rows must be distinct arch ids (the signature set is named by them)")
        X = np.asarray(features.values, dtype=np.float64)
        if not np.isfinite(X).all():
            raise InvalidInputError("fit: features contain NaN or inf")
        if not np.isfinite(Y).any(axis=0).all():
            raise InvalidInputError("fit: every training device needs at least one measured latency")
        signature = self._choose_signature(features, Y)
        position = {a: i for i, a in enumerate(rows)}
        sig_idx = np.array([position[a] for a in signature])
        L = log_latency(Y)

        transform = FeatureTransform.fit(X)
        W = ridge_weights(transform.transform(X), L, ridge=IMPUTE_PRIOR["ridge"])
        mu, Sigma = prior_from_weights(W, scale=IMPUTE_PRIOR["scale"], tau2=IMPUTE_PRIOR["tau2"])
        prior = RidgePrior(transform, mu, Sigma, IMPUTE_PRIOR["noise"])

        L_sig = L[sig_idx].copy()
        missing = np.isnan(L_sig)
        if missing.any():  # a training device without a signature arch: its own ridge fit fills in
            own = transform.transform(X[sig_idx]) @ W
            L_sig[missing] = own[missing]
        rng = np.random.default_rng(self.seed)
        L_syn, sig_syn = synthetic_devices(L, L_sig, self.n_synthetic, rng)
        L_all = np.hstack([L, L_syn])
        sig_all = np.hstack([L_sig, sig_syn])

        Xs, Ss, ys, idx = [], [], [], []
        for d in range(L_all.shape[1]):
            measured = np.flatnonzero(np.isfinite(L_all[:, d]))
            take = measured if len(measured) <= self.rows_per_device else np.sort(
                rng.choice(measured, size=self.rows_per_device, replace=False)
            )
            sv = signature_vector(sig_all[:, d])
            Xs.append(X[take])
            Ss.append(np.tile(sv, (len(take), 1)))
            ys.append(L_all[take, d] - sv[-1])
            idx.append(take)
        self.feature_schema_hash_ = None  # unfitted until the regressor is in place
        self.signature_archs_: list[str] = signature
        self.signature_features_: np.ndarray = X[sig_idx].copy()
        self.prior_: RidgePrior = prior
        self._fit_regressor(np.vstack(Xs), np.vstack(Ss), np.concatenate(ys), np.concatenate(idx), rng)
        self._remember_schema(features)  # last: a failed fit leaves no half-fitted model behind
        self.fit_info_: dict[str, Any] = {
            "n_training_devices": int(Y.shape[1]),
            "n_synthetic_devices": int(self.n_synthetic),
            "n_training_rows": int(sum(len(i) for i in idx)),
            "n_signature_imputed": int(missing.sum()),
            "fit_seconds": round(time.perf_counter() - start, 3),
        }
        self._set_fingerprint()
        logger.info("%s fitted: %s", type(self).__name__, self.fit_info_)
        return self

    def _set_fingerprint(self) -> None:
        self.fingerprint_: str = fingerprint(self._learned_arrays(), params_text(self))

    # ---- adapt / predict -----------------------------------------------------------------------------------
    def adapt(self, features: FeatureMatrix, latency_ms: np.ndarray) -> DeviceAdaptation:
        """Onboard one device from its latencies on the archs named by ``features.rows``.

        The measurements should cover the signature set (:attr:`signature_archs_`); a signature arch is found
        by its id among ``features.rows``, else by an identical feature vector; missing ones are imputed
        (counted in ``info["n_imputed"]``). Other measured archs help the imputation and the affine correction.
        """
        X = self._check_features(features)
        y = check_latencies(latency_ms, where=f"{type(self).__name__}.adapt")
        if y.shape != (X.shape[0],):
            raise InvalidInputError(f"adapt: {X.shape[0]} feature rows but latencies of shape {y.shape}")
        if len(y) < self.min_measurements:
            raise InvalidInputError(
                f"adapt: {type(self).__name__} needs at least {self.min_measurements} measurements, got {len(y)}"
            )
        return self._adapt_matched(X, [str(r) for r in features.rows], y)

    def _adapt(self, X: np.ndarray, latency_ms: np.ndarray) -> DeviceAdaptation:
        """The id-less path (used by wrappers such as ``DegenerateAware``): signature archs are recognised by
        their feature vectors only."""
        return self._adapt_matched(X, None, latency_ms)

    def _adapt_matched(self, X: np.ndarray, rows: list[str] | None, y: np.ndarray) -> DeviceAdaptation:
        log_y = log_latency(y)
        keys: list[Any] = rows if rows is not None else [x.tobytes() for x in np.ascontiguousarray(X)]
        position: dict[Any, int] = {}
        for key in keys:
            position.setdefault(key, len(position))
        group = np.array([position[k] for k in keys])
        log_u = np.bincount(group, weights=log_y) / np.bincount(group)  # repeated archs: mean in log space
        first = np.unique(group, return_index=True)[1]
        X_u = X[first]
        by_features = {x.tobytes(): j for j, x in enumerate(np.ascontiguousarray(X_u))}

        K = len(self.signature_archs_)
        sig_log = np.full(K, np.nan)
        imputed: list[str] = []
        matched_by_features = 0
        for i, arch in enumerate(self.signature_archs_):
            j = position.get(arch) if rows is not None else None
            if j is None:
                j = by_features.get(np.ascontiguousarray(self.signature_features_[i]).tobytes())
                if j is not None:
                    matched_by_features += 1
            if j is None:
                imputed.append(arch)
            else:
                sig_log[i] = log_u[j]
        if imputed:
            weights = self.prior_.adapt(X_u, log_u)
            missing = np.isnan(sig_log)
            sig_log[missing] = self.prior_.predict_log(self.signature_features_[missing], weights)
        affine = np.zeros(3)
        if self.affine:
            pred = self._regress(X_u, signature_vector(sig_log)) + sig_log.mean()
            affine = fit_affine(pred, log_u, ridge=float(self.affine_ridge))
        assert self.feature_schema_hash_ is not None
        return DeviceAdaptation(
            model_kind=self.kind,
            feature_schema_hash=self.feature_schema_hash_,
            n_measurements=int(len(y)),
            arrays={"signature_log_latency": sig_log, "affine": affine},
            info={
                "model_fingerprint": self.fingerprint_,
                "n_signature": K,
                "n_signature_measured": K - len(imputed),
                "n_imputed": len(imputed),
                "imputed": imputed,
                "n_matched_by_features": int(matched_by_features),
                "n_other_measured": len(X_u) - (K - len(imputed)),
            },
        )

    def _predict(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        sig_log = np.asarray(adaptation.arrays["signature_log_latency"], dtype=np.float64)
        if sig_log.shape != (len(self.signature_archs_),):
            raise FailedPreconditionError(
                f"device adaptation holds {sig_log.shape} signature latencies; this model's signature set has "
                f"{len(self.signature_archs_)} archs"
            )
        pred = self._regress(X, signature_vector(sig_log)) + sig_log.mean()
        pred = apply_affine(pred, np.asarray(adaptation.arrays["affine"], dtype=np.float64))
        return np.exp(pred)

    # ---- artifacts -------------------------------------------------------------------------------------------
    def _learned_arrays(self) -> dict[str, np.ndarray]:
        return {
            "signature_features": self.signature_features_,
            **self.prior_.to_arrays("prior."),
            **{f"regressor.{k}": v for k, v in self._regressor_arrays().items()},
        }

    def _learned_extra(self) -> dict[str, Any]:
        return {
            "signature_archs": list(self.signature_archs_),
            "fit_info": dict(self.fit_info_),
            "regressor": self._regressor_extra(),
        }

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        self.signature_archs_ = [str(a) for a in extra["signature_archs"]]
        self.signature_features_ = np.asarray(arrays["signature_features"], dtype=np.float64)
        self.prior_ = RidgePrior.from_arrays(arrays, "prior.")
        self.fit_info_ = dict(extra.get("fit_info", {}))
        prefix = "regressor."
        self._restore_regressor(
            {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}, extra.get("regressor", {})
        )
        self._set_fingerprint()
