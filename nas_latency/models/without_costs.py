"""``without_costs``: a wrapper that hides the cost feature columns (``cost.*``, ``pruned_cost.*``) from the model
it wraps.

A space's ``model_features`` end with the network's IR costs (``cost.conv.macs``, ``cost.total.bytes_read``, ...)
for :class:`~nas_latency.models.cost_nnls.CostPriceModel` (NAS-Bench-201's also with the pruned network's,
``pruned_cost.*``). The transfer models were chosen by leave-device-out
validation on the columns before them, and the extra 24–48 columns change what they fit (a wider physical prior
for ``blr_evidence``, longer ridge models for ``nnls_mix``): on FBNet the samsung_a50 Spearman fell from 0.87 to
0.79. Wrapped, such a model sees exactly the features it was validated on, next to a ``cost_nnls`` that sees the
costs, inside one ``loo_select``.

The wrapped model is fitted on a :class:`~nas_latency.ir.FeatureMatrix` of the other columns (its own schema
hash, kept in the artifact) and receives the same columns at adapt and predict.
"""

from __future__ import annotations

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models.artifacts import Artifact
from nas_latency.models.base import CrossDeviceModel, DeviceAdaptation
from nas_latency.models.cost_nnls import COST_PREFIXES
from nas_latency.models.linalg import clone, nest_adaptation
from nas_latency.models.wrapper import WrappedModel


def kept_columns(names: tuple[str, ...], cost_prefixes: tuple[str, ...]) -> np.ndarray:
    """Indices of the columns whose name starts with none of ``cost_prefixes``."""
    kept = [i for i, name in enumerate(names) if not name.startswith(cost_prefixes)]
    if not kept:
        raise InvalidInputError(
            f"without_costs: every one of the {len(names)} feature columns starts with one of "
            f"{', '.join(cost_prefixes)}"
        )
    return np.asarray(kept, dtype=np.int64)


def check_prefixes(cost_prefixes: object) -> tuple[str, ...]:
    """``cost_prefixes`` as a tuple of non-empty strings, or an InvalidInputError naming what was wrong."""
    if isinstance(cost_prefixes, str) or not isinstance(cost_prefixes, (tuple, list)) or not cost_prefixes or \
            not all(isinstance(p, str) and p for p in cost_prefixes):
        raise InvalidInputError(f"cost_prefixes must be a non-empty list of non-empty strings, got {cost_prefixes!r}")
    return tuple(cost_prefixes)


class WithoutCosts(WrappedModel):
    """Wraps any :class:`CrossDeviceModel`, which then never sees a column named with one of ``cost_prefixes``."""

    kind = "without_costs"

    def __init__(self, *, base: CrossDeviceModel, cost_prefixes: tuple[str, ...] = COST_PREFIXES) -> None:
        self.base = base
        self.cost_prefixes = cost_prefixes

    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "WithoutCosts":
        self._check_base()
        self.cost_prefixes = check_prefixes(self.cost_prefixes)
        self._validate_table(features, latency_ms)
        self.columns_ = kept_columns(tuple(features.names), self.cost_prefixes)
        inner = FeatureMatrix(tuple(features.names[i] for i in self.columns_), features.values[:, self.columns_],
                              features.rows)
        self.base_: CrossDeviceModel = clone(self.base).fit(inner, latency_ms)  # type: ignore[assignment]
        self._remember_schema(features)
        return self

    def _kept(self, X: np.ndarray) -> np.ndarray:
        """``X`` without the cost columns: a view when they are the last columns (as the spaces put them), so a
        prediction over a whole space copies nothing."""
        n = len(self.columns_)
        if self.columns_[-1] == n - 1:  # increasing indices ending at n - 1: exactly 0..n-1
            return X[:, :n]
        return X[:, self.columns_]

    def _adapt(self, X: np.ndarray, latency_ms: np.ndarray) -> DeviceAdaptation:
        return self._adaptation(self.base_._adapt(self._kept(X), latency_ms), len(latency_ms))

    def _adaptation(self, base_adaptation: DeviceAdaptation, n_measurements: int) -> DeviceAdaptation:
        arrays, info = nest_adaptation("base", base_adaptation)
        return DeviceAdaptation(model_kind=self.kind, feature_schema_hash=self.feature_schema_hash_ or "",
                                n_measurements=n_measurements, arrays=arrays, info={"base": info})

    def _held_out_log_predictions(self, X: np.ndarray, latency_ms: np.ndarray, fold: np.ndarray) -> np.ndarray:
        return self.base_._held_out_log_predictions(self._kept(X), latency_ms, fold)

    def _adapt_and_held_out(self, X: np.ndarray, latency_ms: np.ndarray,
                            fold: np.ndarray) -> tuple[DeviceAdaptation, np.ndarray]:
        base_adaptation, held_out = self.base_._adapt_and_held_out(self._kept(X), latency_ms, fold)
        return self._adaptation(base_adaptation, len(latency_ms)), held_out

    def _predict(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        return self.base_._predict(self._kept(X), self._base_adaptation(adaptation))

    def _predict_log_std(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        return self.base_._predict_log_std(self._kept(X), self._base_adaptation(adaptation))

    # ---- artifacts ----------------------------------------------------------------------------------------
    def to_artifact(self) -> Artifact:
        self._check_fitted()  # before reading base_
        return self._wrapper_artifact({"cost_prefixes": list(self.cost_prefixes)},
                                      {"base_feature_schema_hash": self.base_.feature_schema_hash_ or ""})

    @classmethod
    def from_artifact(cls, artifact: Artifact, *, source: str = "artifact") -> "WithoutCosts":
        base, params = cls._restore_base(artifact, source=source)
        if "cost_prefix" in params:  # written before pruned costs existed: one prefix
            params = {"cost_prefixes": [params.pop("cost_prefix")], **params}
        try:
            model = cls(base=base, cost_prefixes=check_prefixes(params.pop("cost_prefixes", COST_PREFIXES)), **params)
        except (InvalidInputError, TypeError) as exc:
            raise InvalidInputError(f"{source}: bad without_costs parameters {params!r}: {exc}") from None
        model.feature_schema_hash_ = artifact.feature_schema_hash
        model.feature_names_ = tuple(artifact.extra.get("feature_names", ()))
        model.columns_ = kept_columns(model.feature_names_, model.cost_prefixes)
        base.feature_schema_hash_ = str(artifact.extra.get("base_feature_schema_hash", ""))
        base.feature_names_ = tuple(model.feature_names_[i] for i in model.columns_)
        model.base_ = base
        return model


__all__ = ["WithoutCosts", "check_prefixes", "kept_columns"]
