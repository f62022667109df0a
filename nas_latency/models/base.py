"""The cost-model contract (scikit-learn style).

* ``__init__`` takes keyword-only arguments and only stores them; ``get_params()`` returns them.
* Validation happens in ``fit``; learned state lives in attributes ending in ``_``; ``fit`` returns ``self``.
* Predicting before fitting raises :class:`NotFittedError`.
* Features arrive as a :class:`~nas_latency.ir.FeatureMatrix` (the featurizer is passed in by the caller, never
  hard-wired); the model remembers the schema hash it was fitted on and refuses features of another schema.
* ``to_artifact()`` / ``from_artifact()`` (and ``save`` / ``load``) go through a JSON manifest plus ``.npz``
  arrays: no pickle.

Two families share it:

:class:`LatencyRegressor`
    one device: ``fit(features, latency_ms)`` then ``predict(features) -> latency_ms``.
:class:`CrossDeviceModel`
    many devices: ``fit(features, latency_ms_table)`` over training devices (columns, NaN = not measured), then
    ``adapt(features, latency_ms)`` turns a few measurements of one (possibly unseen) device into a
    :class:`DeviceAdaptation`, and ``predict(features, adaptation)`` predicts for that device.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Mapping, TypeVar

import numpy as np

from nas_latency.errors import FailedPreconditionError, InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models.artifacts import Artifact, check_artifact, load_artifact

M = TypeVar("M", bound="CostModel")


class NotFittedError(FailedPreconditionError):
    """A model was used before ``fit``."""

    reason = "MODEL_NOT_FITTED"


def check_latencies(latency_ms: np.ndarray, *, where: str, allow_nan: bool = False) -> np.ndarray:
    """Latencies as float64, finite (NaN allowed only where marked missing) and strictly positive."""
    values = np.asarray(latency_ms, dtype=np.float64)
    bad = ~np.isfinite(values)
    if allow_nan:
        bad &= ~np.isnan(values)
    if bad.any():
        raise InvalidInputError(f"{where}: {int(bad.sum())} latencies are not finite (first at {np.argwhere(bad)[0].tolist()})")
    nonpositive = np.isfinite(values) & (values <= 0)
    if nonpositive.any():
        raise InvalidInputError(
            f"{where}: {int(nonpositive.sum())} latencies are zero or negative "
            f"(first at {np.argwhere(nonpositive)[0].tolist()}); latencies must be > 0 ms"
        )
    return values


class CostModel(ABC):
    """Shared machinery: parameters, fitted checks, artifacts."""

    #: registry name written into artifacts
    kind: ClassVar[str]

    def get_params(self) -> dict[str, Any]:
        signature = inspect.signature(type(self).__init__)
        return {name: getattr(self, name) for name in signature.parameters if name != "self"}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    @property
    def is_fitted(self) -> bool:
        return getattr(self, "feature_schema_hash_", None) is not None

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit() first")

    def _check_features(self, features: FeatureMatrix) -> np.ndarray:
        self._check_fitted()
        if features.schema_hash != self.feature_schema_hash_:
            raise FailedPreconditionError(
                f"{type(self).__name__} was fitted on feature schema {self.feature_schema_hash_} "
                f"({len(self.feature_names_)} features) but got schema {features.schema_hash} "
                f"({len(features.names)} features)"
            )
        return features.values

    def _remember_schema(self, features: FeatureMatrix) -> None:
        self.feature_schema_hash_: str | None = features.schema_hash
        self.feature_names_: tuple[str, ...] = tuple(features.names)

    # ---- artifacts ------------------------------------------------------------------------------------
    @abstractmethod
    def _learned_arrays(self) -> dict[str, np.ndarray]:
        """The learned state as named arrays (and :meth:`_learned_extra` for JSON-able scalars)."""

    def _learned_extra(self) -> dict[str, Any]:
        return {}

    @abstractmethod
    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        """Set the learned attributes back from :meth:`_learned_arrays` / :meth:`_learned_extra`."""

    def to_artifact(self) -> Artifact:
        self._check_fitted()
        assert self.feature_schema_hash_ is not None
        return Artifact(
            kind=self.kind,
            params=self.get_params(),
            feature_schema_hash=self.feature_schema_hash_,
            arrays=self._learned_arrays(),
            extra={"feature_names": list(self.feature_names_), **self._learned_extra()},
        )

    @classmethod
    def from_artifact(cls: type[M], artifact: Artifact, *, source: str = "artifact") -> M:
        check_artifact(artifact, kind=cls.kind, feature_schema_hash=None, source=source)
        try:
            model = cls(**artifact.params)
        except TypeError as exc:  # parameters of another kind or another release
            raise InvalidInputError(f"{source}: the {cls.kind!r} artifact's parameters do not fit this release's "
                                    f"model ({exc})") from None
        model.feature_schema_hash_ = artifact.feature_schema_hash
        model.feature_names_ = tuple(artifact.extra.get("feature_names", ()))
        try:
            model._restore(artifact.arrays, artifact.extra)
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise InvalidInputError(f"{source}: the {cls.kind!r} artifact is incomplete or damaged "
                                    f"({type(exc).__name__}: {exc})") from None
        return model

    def save(self, path: str | Path) -> Path:
        return self.to_artifact().save(path)

    @classmethod
    def load(cls: type[M], path: str | Path) -> M:
        return cls.from_artifact(load_artifact(path), source=str(path))


class LatencyRegressor(CostModel):
    """A single-device model: features → latency in ms."""

    @abstractmethod
    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "LatencyRegressor":
        ...

    @abstractmethod
    def predict(self, features: FeatureMatrix) -> np.ndarray:
        ...


@dataclass(frozen=True)
class DeviceAdaptation:
    """A device as a cross-device model sees it after onboarding: a few arrays (e.g. posterior weights) and
    JSON-able facts (e.g. whether it drops dead cells). Small, so a store can keep one per device."""

    model_kind: str
    feature_schema_hash: str
    n_measurements: int
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)


class CrossDeviceModel(CostModel):
    """Trained over many devices; adapted to one device from a few measurements.

    Subclasses set ``fingerprint_`` (a digest of the fitted state) at fit and load; :meth:`adapt` stamps it on
    every adaptation and :meth:`predict` refuses an adaptation made by another fit, instead of silently mixing
    a device's weights with a refitted model's.
    """

    #: the fewest measurements ``adapt`` accepts
    min_measurements: ClassVar[int] = 3

    @abstractmethod
    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "CrossDeviceModel":
        """``latency_ms`` has one row per feature row and one column per training device (NaN = unmeasured)."""

    @abstractmethod
    def _adapt(self, X: np.ndarray, latency_ms: np.ndarray) -> DeviceAdaptation:
        ...

    @abstractmethod
    def _predict(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        ...

    def adapt(self, features: FeatureMatrix, latency_ms: np.ndarray) -> DeviceAdaptation:
        """Onboard one device from its measured latencies on the rows of ``features``."""
        X = self._check_features(features)
        y = check_latencies(latency_ms, where=f"{type(self).__name__}.adapt")
        if y.shape != (X.shape[0],):
            raise InvalidInputError(f"adapt: {X.shape[0]} feature rows but latencies of shape {y.shape}")
        if len(y) < self.min_measurements:
            raise InvalidInputError(
                f"adapt: {type(self).__name__} needs at least {self.min_measurements} measurements, got {len(y)}"
            )
        return self._sealed(self._adapt(X, y))

    def _fingerprint(self) -> str:
        """``fingerprint_`` as the subclass set it at fit/load; else a digest of the learned state and params,
        computed on each call (correct after a refit, only slower)."""
        value = getattr(self, "fingerprint_", None)
        if value is None:
            from nas_latency.models.linalg import fingerprint, params_text  # linalg imports this module

            value = fingerprint(self._learned_arrays(), params_text(self))
        return str(value)

    def _sealed(self, adaptation: DeviceAdaptation) -> DeviceAdaptation:
        """The adaptation stamped with this fit's fingerprint (checked again by :meth:`predict`)."""
        mine = self._fingerprint()
        if adaptation.info.get("model_fingerprint") == mine:
            return adaptation
        return replace(adaptation, info={**adaptation.info, "model_fingerprint": mine})

    def predict(self, features: FeatureMatrix, adaptation: DeviceAdaptation) -> np.ndarray:
        X = self._check_features(features)
        if adaptation.model_kind != self.kind or adaptation.feature_schema_hash != self.feature_schema_hash_:
            raise FailedPreconditionError(
                f"device adaptation was made by a {adaptation.model_kind!r} model on schema "
                f"{adaptation.feature_schema_hash}; this is a {self.kind!r} model on schema {self.feature_schema_hash_}"
            )
        made_by, mine = adaptation.info.get("model_fingerprint"), self._fingerprint()
        if made_by != mine:
            raise FailedPreconditionError(
                f"this device adaptation was made by another fit of the {self.kind!r} model "
                f"(fingerprint {made_by}, this model {mine}); adapt the device again"
            )
        return self._predict(X, adaptation)

    def predict_with_uncertainty(
        self, features: FeatureMatrix, adaptation: DeviceAdaptation
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(latency_ms, std_log)``: :meth:`predict` and the standard deviation of each predicted log latency.
        ``FailedPreconditionError`` for a model that gives no uncertainty."""
        latency_ms = self.predict(features, adaptation)  # validates the features and the adaptation
        return latency_ms, self._predict_log_std(features.values, adaptation)

    def _predict_log_std(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        """The standard deviation of the predicted log latency of each row of ``X`` (validated by the caller)."""
        raise FailedPreconditionError(f"the {self.kind!r} model gives no uncertainty")

    def _held_out_log_predictions(self, X: np.ndarray, latency_ms: np.ndarray, fold: np.ndarray) -> np.ndarray:
        """Cross-validation of an adaptation: for each fold ``f`` (``fold`` holds each row's), the model adapted on
        the rows of the other folds predicts the log latency of the rows of ``f``. This generic version adapts once
        per fold; a model with a closed form (the Bayesian linear ones) overrides it with the same numbers."""
        out = np.empty(len(latency_ms))
        for f in np.unique(fold):
            held = fold == f
            adaptation = self._adapt(X[~held], latency_ms[~held])
            out[held] = np.log(self._predict(X[held], adaptation))
        return out

    def _adapt_and_held_out(self, X: np.ndarray, latency_ms: np.ndarray,
                            fold: np.ndarray) -> tuple[DeviceAdaptation, np.ndarray]:
        """``(self._adapt(X, latency_ms), self._held_out_log_predictions(X, latency_ms, fold))``, which a choice
        among members by their cross-validation needs together. A model whose adaptation already solves what its
        cross-validation needs (the Bayesian linear systems, a price list's σ) overrides it to solve it once; the
        numbers are the same."""
        return self._adapt(X, latency_ms), self._held_out_log_predictions(X, latency_ms, fold)

    def _validate_table(self, features: FeatureMatrix, latency_ms: np.ndarray) -> np.ndarray:
        Y = check_latencies(latency_ms, where=f"{type(self).__name__}.fit", allow_nan=True)
        if Y.ndim != 2 or Y.shape[0] != features.values.shape[0]:
            raise InvalidInputError(
                f"fit: expected a latency table of shape ({features.values.shape[0]}, n_devices), got {Y.shape}"
            )
        if Y.shape[1] < 2:
            raise InvalidInputError(f"fit: a cross-device model needs at least 2 training devices, got {Y.shape[1]}")
        return Y
