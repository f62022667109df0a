"""The log-space mix of training devices (``nnls_mix``, and ``nnls_mix_measured``).

Fit: per training device, a ridge model of log latency on the standardized features (plus intercept), so any
architecture can be predicted for every training device, measured or not. Adapt: non-negative least-squares
weights ``c ≥ 0`` such that the training devices' log latencies, mixed by ``c``, match the K measured log
latencies (no intercept). Predict: ``exp(Σ_d c_d · log-latency_d)``.

Which "log latency of training device ``d``" is mixed:

``use_measured=False`` (the default, kind ``nnls_mix``)
    the ridge prediction, for every row.
``use_measured=True`` (kind ``nnls_mix_measured`` is this model with the option on)
    the research recipe (the collaborative repository of Ganesan et al.): at fit the model also keeps the
    training log-latency table, keyed by the ``FeatureMatrix`` row ids (architecture ids; a numpy unicode
    array in the artifact, no pickle). At adapt and predict, a row whose id is in the table uses the training
    devices' **measured** log latencies of that architecture, with the ridge prediction where a training device
    has no measurement (NaN); a row whose id is not in the table uses the ridge predictions. The mix weights are
    fitted on the same quantities they are applied to.

Row lookup (both here and in :mod:`nas_latency.models.gp_mix`): :meth:`adapt` / :meth:`predict` look rows up by
``features.rows``. Composite models (``geo_ensemble``, ``degenerate_aware``) hand their members feature values
only (``_adapt(X, y)`` / ``_predict(X, a)``); then a row is matched by an exact digest of its feature values
against the training rows' (the featurizers are deterministic per row, so a training architecture featurized
again gets the same bytes). Feature rows shared by several training rows, or not found, use the ridge
predictions.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator, Mapping

import numpy as np
from scipy.optimize import nnls

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models.base import CrossDeviceModel, DeviceAdaptation
from nas_latency.models.linalg import (
    check_alpha,
    check_standardize,
    check_table_coverage,
    design_matrix,
    fingerprint,
    fit_standardizer,
    linear_predictor,
    ridge_per_device,
)

# ---- the training table keyed by row id -------------------------------------------------------------------------
#: ``(feature values, row ids)`` of the FeatureMatrix a row-aware model is adapting to / predicting right now: set by
#: :meth:`RowAwareModel.adapt` / :meth:`RowAwareModel.predict` around the base-class call, so that ``_adapt`` /
#: ``_predict`` (which receive feature values only) can look rows up by id. A ContextVar: safe across threads.
_QUERY_ROWS: ContextVar[tuple[np.ndarray, tuple[str, ...]] | None] = ContextVar("nas_latency_query_rows", default=None)
UNKNOWN = -1


def row_digests(X: np.ndarray) -> np.ndarray:
    """A 64-bit digest of each row's float64 feature values (``-0.0`` counted as ``0.0``)."""
    values = np.ascontiguousarray(np.asarray(X, dtype=np.float64) + 0.0)
    out = np.empty(values.shape[0], dtype=np.uint64)
    for i, row in enumerate(values):
        out[i] = int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little")
    return out


class TrainingTable:
    """The training devices' log latencies per training row (measured, ridge-filled where NaN), with the row ids
    and feature digests that find a query row in it."""

    def __init__(self, ids: np.ndarray, log_latency: np.ndarray, measured: np.ndarray, digests: np.ndarray) -> None:
        self.ids = ids
        self.log_latency = log_latency
        self.measured = measured
        self.digests = digests
        self._by_id = {str(row_id): i for i, row_id in enumerate(ids.tolist())}
        by_digest: dict[int, int] = {}
        for i, digest in enumerate(digests.tolist()):
            by_digest[digest] = UNKNOWN if digest in by_digest else i  # shared features: ambiguous
        self._by_digest = by_digest

    @classmethod
    def build(cls, features: FeatureMatrix, log_latency: np.ndarray, ridge_log: np.ndarray, *,
              where: str) -> "TrainingTable":
        """``log_latency`` with NaN = unmeasured; ``ridge_log`` the ridge predictions of the same cells."""
        if len(set(features.rows)) != len(features.rows):
            raise InvalidInputError(f"{where}: use_measured needs distinct row ids in the training features")
        measured = ~np.isnan(log_latency)
        return cls(
            ids=np.array([str(r) for r in features.rows], dtype=str),
            log_latency=np.where(measured, log_latency, ridge_log),
            measured=measured,
            digests=row_digests(features.values),
        )

    def positions(self, X: np.ndarray) -> np.ndarray:
        """Row of the table for each row of ``X`` (``UNKNOWN`` = not in it): by id when ``X`` is the values of the
        FeatureMatrix being adapted to / predicted, else by feature digest."""
        query = _QUERY_ROWS.get()
        if query is not None and query[0] is X:
            return np.fromiter((self._by_id.get(str(r), UNKNOWN) for r in query[1]), dtype=np.intp, count=len(X))
        return np.fromiter((self._by_digest.get(d, UNKNOWN) for d in row_digests(X).tolist()), dtype=np.intp,
                           count=len(X))

    def rows_of(self, X: np.ndarray, ridge_log: np.ndarray) -> np.ndarray:
        """``(n, n_devices)``: the table's rows for the known rows of ``X``, ``ridge_log`` (same shape) elsewhere."""
        positions = self.positions(X)
        known = positions != UNKNOWN
        out = np.array(ridge_log, dtype=np.float64, copy=True)
        out[known] = self.log_latency[positions[known]]
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {"table_ids": self.ids, "table_log_latency": self.log_latency, "table_measured": self.measured,
                "table_digests": self.digests}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "TrainingTable":
        return cls(
            ids=np.asarray(arrays["table_ids"]).astype(str),
            log_latency=np.asarray(arrays["table_log_latency"], dtype=np.float64),
            measured=np.asarray(arrays["table_measured"], dtype=bool),
            digests=np.asarray(arrays["table_digests"], dtype=np.uint64),
        )


@contextmanager
def _query_rows(features: FeatureMatrix) -> Iterator[None]:
    token = _QUERY_ROWS.set((features.values, tuple(features.rows)))
    try:
        yield
    finally:
        _QUERY_ROWS.reset(token)


class RowAwareModel(CrossDeviceModel):
    """A cross-device model whose ``_adapt`` / ``_predict`` may look rows up in a :class:`TrainingTable` by id:
    :meth:`adapt`, :meth:`predict` and :meth:`predict_with_uncertainty` make ``features.rows`` visible to
    :meth:`TrainingTable.positions` (everything else, validation included, is the base class's)."""

    def adapt(self, features: FeatureMatrix, latency_ms: np.ndarray) -> DeviceAdaptation:
        with _query_rows(features):
            return super().adapt(features, latency_ms)

    def predict(self, features: FeatureMatrix, adaptation: DeviceAdaptation) -> np.ndarray:
        with _query_rows(features):
            return super().predict(features, adaptation)

    def predict_with_uncertainty(self, features: FeatureMatrix,
                                 adaptation: DeviceAdaptation) -> tuple[np.ndarray, np.ndarray]:
        with _query_rows(features):
            return super().predict_with_uncertainty(features, adaptation)


# ---- the mix ----------------------------------------------------------------------------------------------------
class LogMixModel(RowAwareModel):
    """Non-negative mix of the training devices' log latencies: per-device ridge models, or (``use_measured``)
    the measured training latencies where the row is a training architecture."""

    kind = "nnls_mix"

    def __init__(self, *, alpha: float = 1e-2, standardize: str = "non_binary", use_measured: bool = False) -> None:
        self.alpha = alpha
        self.standardize = standardize
        self.use_measured = use_measured

    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "LogMixModel":
        Y = self._validate_table(features, latency_ms)
        alpha = check_alpha(self.alpha)
        if not isinstance(self.use_measured, (bool, np.bool_)):
            raise InvalidInputError(f"use_measured must be True or False, got {self.use_measured!r}")
        check_table_coverage(Y, minimum=2, where="LogMixModel.fit")
        self.mean_, self.scale_ = fit_standardizer(features.values, check_standardize(self.standardize))
        Z = design_matrix(features.values, self.mean_, self.scale_)
        L = np.log(Y)
        self.device_weights_ = ridge_per_device(Z, L, alpha)
        self.table_: TrainingTable | None = (
            TrainingTable.build(features, L, Z @ self.device_weights_, where="LogMixModel.fit")
            if self.use_measured else None
        )
        self._remember_schema(features)
        self._set_fingerprint()
        return self

    def _set_fingerprint(self) -> None:
        params = self.get_params()
        if not params.get("use_measured", True):
            del params["use_measured"]  # the default keeps the fingerprint it had before the option existed
        self.fingerprint_ = fingerprint(self._learned_arrays(), json.dumps(params, sort_keys=True))

    def device_log_predictions(self, X: np.ndarray) -> np.ndarray:
        """``(n, n_devices)``: each training device's predicted log latency of each row (ridge)."""
        return linear_predictor(X, self.mean_, self.scale_, self.device_weights_)

    def device_log_latencies(self, X: np.ndarray) -> np.ndarray:
        """``(n, n_devices)``: what is mixed: with ``use_measured``, the training devices' measured log latencies
        of the rows that are training architectures (ridge where unmeasured); ridge predictions otherwise."""
        ridge = self.device_log_predictions(X)
        return ridge if self.table_ is None else self.table_.rows_of(X, ridge)

    def _adapt(self, X: np.ndarray, latency_ms: np.ndarray) -> DeviceAdaptation:
        mix, residual = nnls(self.device_log_latencies(X), np.log(latency_ms))
        return DeviceAdaptation(
            model_kind=self.kind,
            feature_schema_hash=self.feature_schema_hash_ or "",
            n_measurements=len(latency_ms),
            arrays={"mix": mix},
            info={"residual_norm_log": float(residual)},
        )

    def _predict(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        mix = np.asarray(adaptation.arrays["mix"], dtype=np.float64)
        if self.table_ is not None:
            return np.exp(self.device_log_latencies(X) @ mix)
        return np.exp(linear_predictor(X, self.mean_, self.scale_, self.device_weights_ @ mix))

    def _learned_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"mean": self.mean_, "scale": self.scale_, "device_weights": self.device_weights_}
        if self.table_ is not None:
            arrays.update(self.table_.arrays())
        return arrays

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        self.mean_ = np.asarray(arrays["mean"], dtype=np.float64)
        self.scale_ = np.asarray(arrays["scale"], dtype=np.float64)
        self.device_weights_ = np.asarray(arrays["device_weights"], dtype=np.float64)
        self.table_ = TrainingTable.from_arrays(arrays) if self.use_measured else None
        self._set_fingerprint()


class MeasuredLogMixModel(LogMixModel):
    """``nnls_mix_measured``: :class:`LogMixModel` with ``use_measured=True`` (a kind of its own, so that model
    specs such as ``geo_ensemble(nnls_mix_measured,gp_mix)`` can name it)."""

    kind = "nnls_mix_measured"

    def __init__(self, *, alpha: float = 1e-2, standardize: str = "non_binary") -> None:
        super().__init__(alpha=alpha, standardize=standardize, use_measured=True)
