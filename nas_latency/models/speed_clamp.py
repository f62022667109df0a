"""``clamp_speed``: a wrapper that onboards a device faster or slower than every training device as if it were
at the edge of their range, then scales its predictions back.

A device's overall speed (its units, its clock) should move every prediction by one factor and change no
ranking. The transfer models do not quite do that: ``nnls_mix`` mixes the training devices' log latencies with
non-negative weights and no intercept, so a device ten times faster than any of them is matched by smaller
weights, which changes the mix; the Bayesian models learn their prior over a device's offset from the training
devices. Measured leave-device-out (one held-out device's latencies multiplied by 0.1 or 10, training devices as
measured, K = 10): the shipped FBNet model's mean HELP Spearman falls from 0.892 to 0.860 and 0.866, the phones'
R² from 0.944 to 0.878 and 0.915 (docs/figures.md).

The wrapper learns, at fit, a *reference*: a ridge model of the training devices' per-architecture median log
latency, and each training device's *offset*, its mean log latency minus the reference's. At adapt, the
device's offset is the mean over its measurements of ln(latency) − reference; when it lies outside the
training devices' range ``[lowest, highest]``, the measurements are multiplied by ``exp(shift)`` with ``shift``
the distance to the nearest edge, the base model is adapted on them, and every prediction is divided by
``exp(shift)``. A device within the range is the base model's, untouched (``shift = 0``). Beyond the range, a
device scaled by any factor gets the same ranking and predictions scaled by that factor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models.artifacts import Artifact
from nas_latency.models.base import CrossDeviceModel, DeviceAdaptation
from nas_latency.models.linalg import (
    check_alpha,
    clone,
    design_matrix,
    fingerprint,
    fit_standardizer,
    linear_predictor,
    nest_adaptation,
    ridge_per_device,
)
from nas_latency.models.wrapper import WrappedModel

#: the arrays of the reference model in the artifact (the base's are nested under ``base.``)
_REFERENCE_ARRAYS = ("reference.mean", "reference.scale", "reference.weights", "reference.device_offsets")


class SpeedClamp(WrappedModel):
    """Wraps any :class:`CrossDeviceModel`; see the module docstring. ``alpha``: the reference ridge's penalty."""

    kind = "clamp_speed"

    def __init__(self, *, base: CrossDeviceModel, alpha: float = 1e-2) -> None:
        self.base = base
        self.alpha = alpha

    @property
    def fingerprint_(self) -> str:
        """The base's fingerprint and the reference's, digested once at fit or load (every predict checks it)."""
        return self._fingerprint_value

    def _remember_fingerprint(self) -> None:
        self._fingerprint_value = fingerprint(self._reference_arrays(), str(getattr(self.base_, "fingerprint_", "")))

    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "SpeedClamp":
        self._check_base()
        self.alpha = check_alpha(self.alpha)
        Y = self._validate_table(features, latency_ms)
        self.base_: CrossDeviceModel = clone(self.base).fit(features, Y)  # type: ignore[assignment]
        log_latency = np.log(Y)
        rows = np.isfinite(log_latency).any(axis=1)
        typical = np.nanmedian(log_latency[rows], axis=1)
        X = features.values[rows]
        self.mean_, self.scale_ = fit_standardizer(X, "non_binary")
        self.weights_ = ridge_per_device(design_matrix(X, self.mean_, self.scale_), typical[:, None], self.alpha)[:, 0]
        residual = log_latency[rows] - linear_predictor(X, self.mean_, self.scale_, self.weights_)[:, None]
        offsets = np.nanmean(residual, axis=0)
        if not np.isfinite(offsets).all():
            raise InvalidInputError("clamp_speed.fit: a training device has no latency on any architecture")
        self.device_offsets_ = offsets
        self._remember_schema(features)
        self._remember_fingerprint()
        return self

    def offset(self, X: np.ndarray, latency_ms: np.ndarray) -> float:
        """A device's offset from the reference: the mean of ln(latency) − reference over its measurements."""
        return float(np.mean(np.log(latency_ms) - linear_predictor(X, self.mean_, self.scale_, self.weights_)))

    def _adapt(self, X: np.ndarray, latency_ms: np.ndarray) -> DeviceAdaptation:
        offset = self.offset(X, latency_ms)
        lowest, highest = float(self.device_offsets_.min()), float(self.device_offsets_.max())
        shift = float(np.clip(offset, lowest, highest)) - offset
        arrays, info = nest_adaptation("base", self.base_._adapt(X, latency_ms * np.exp(shift)))
        return DeviceAdaptation(
            model_kind=self.kind,
            feature_schema_hash=self.feature_schema_hash_ or "",
            n_measurements=len(latency_ms),
            arrays=arrays,
            info={"base": info, "offset": offset, "training_offsets": [lowest, highest], "shift": shift},
        )

    def _predict(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        return self.base_._predict(X, self._base_adaptation(adaptation)) * np.exp(-float(adaptation.info["shift"]))

    def _predict_log_std(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        """The base model's uncertainty: the shift moves every log prediction by one constant."""
        return self.base_._predict_log_std(X, self._base_adaptation(adaptation))

    # ---- artifacts ----------------------------------------------------------------------------------------
    def _reference_arrays(self) -> dict[str, np.ndarray]:
        return dict(zip(_REFERENCE_ARRAYS, (self.mean_, self.scale_, self.weights_, self.device_offsets_)))

    def to_artifact(self) -> Artifact:
        self._check_fitted()  # before reading base_
        return self._wrapper_artifact({"alpha": self.alpha}, arrays=self._reference_arrays())

    @classmethod
    def from_artifact(cls, artifact: Artifact, *, source: str = "artifact") -> "SpeedClamp":
        base, params = cls._restore_base(artifact, source=source)
        missing = [name for name in _REFERENCE_ARRAYS if name not in artifact.arrays]
        if missing:
            raise InvalidInputError(f"{source}: clamp_speed artifact lacks the arrays {', '.join(missing)}")
        try:
            model = cls(base=base, alpha=check_alpha(params.pop("alpha", 1e-2)), **params)
        except (InvalidInputError, TypeError) as exc:
            raise InvalidInputError(f"{source}: bad clamp_speed parameters {params!r}: {exc}") from None
        arrays: list[Any] = [np.asarray(artifact.arrays[name], dtype=np.float64) for name in _REFERENCE_ARRAYS]
        model.mean_, model.scale_, model.weights_, model.device_offsets_ = arrays
        width = len(artifact.extra.get("feature_names", ()))
        if model.mean_.shape != (width,) or model.scale_.shape != (width,) or model.weights_.shape != (width + 1,) \
                or model.device_offsets_.ndim != 1 or model.device_offsets_.size < 1:
            raise InvalidInputError(f"{source}: clamp_speed reference arrays do not fit {width} features")
        model.feature_schema_hash_ = artifact.feature_schema_hash
        model.feature_names_ = tuple(artifact.extra.get("feature_names", ()))
        model.base_ = base
        model._remember_fingerprint()
        return model


__all__ = ["SpeedClamp"]
