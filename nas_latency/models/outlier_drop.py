"""``drop_outliers``: a wrapper that leaves a measurement out of a device's onboarding when the device's other
measurements say it is wrong.

Ten measurements are few, and one of them can be wrong: a phone throttling in the middle of a run, a process
preempting the benchmark, a typo. Every model adapts to what it is given, and one bad point among ten moves the
whole device. Measured leave-device-out (K = 10, one of the held-out device's ten measurements multiplied by 2,
``nas-latency evaluate --spike-held-out 2``), the shipped FBNet model's mean HELP Spearman falls from 0.89 to
about 0.6; leaving that one point out restores it.

The wrapper asks each measurement whether the others agree with it. At adapt, for every measurement ``i`` the
base model is adapted on the others and predicts ``i`` (beyond ``MAX_FOLDS`` measurements, on the others of its
fold, below): its held-out log error ``r_i = ln y_i − ln ŷ_i`` and its standardized error ``z_i = |r_i| / σ_i``,
with ``σ_i`` the base model's predictive standard deviation of ``ln ŷ_i`` (or, for a base model without one,
``1.4826 ×`` the median ``|r_j|`` of the other measurements). The measurement with the largest ``z`` is left out
when both ``|r_i| ≥ min_log_error`` (default ln 1.5: measured at least 1.5 times slower or faster than the
others predict) and ``z_i ≥ min_z`` (default 3). This repeats, on the remaining measurements, while fewer than
``max_fraction`` of them have been left out (default 1/9: none of fewer than 9 measurements, one of 9–17; nine,
so that a device onboarded from ten, one of them a degenerate arch that it drops, which ``degenerate_aware``
keeps from its base model, is still checked). The base model is then adapted on the kept measurements, and the
adaptation records each one left out (its row, measured and predicted latency, ``r`` and ``z``), which
``devices show`` reports so the user can measure it again.

A measurement that alone shows the model something can look like an outlier to the others: on NB201, the one
degenerate arch of a signature (a cell whose output reads nothing) tells a device that runs it at full cost from
one that drops it, and without it the price list of the pruned network predicts 0.4 ms for the 24 ms it took on
1080ti_256. Rows marked by ``exempt_feature`` (default ``is_degenerate``, when the features have it;
``degenerate_aware`` decides about those rows) are never left out.

Leaving out a good measurement costs little (nine instead of ten), keeping a bad one can cost a great deal; the
thresholds were set from the leave-one-out errors of the bundled devices' signature measurements as measured
(the largest ``|r|`` on an FBNet device was ln 1.5, its ``z`` 6.8) and with one of them spiked (``× 0.5`` or
``× 2``: in nine of ten cases the spike's ``|r|`` was at least ln 1.7 and, on FBNet and the phones, its ``z`` at
least 3.3).

Adapting costs K + 1 adaptations of the base model instead of one, and one more round of K for each measurement
left out. Beyond ``MAX_FOLDS`` (20) measurements, each is predicted by the model adapted without its fold of
``MAX_FOLDS`` folds (measurement ``i`` in fold ``i mod 20``), so a device registered with hundreds of
measurements costs 21 adaptations per round, not hundreds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nas_latency.errors import FailedPreconditionError, InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models.artifacts import Artifact
from nas_latency.models.base import CrossDeviceModel, DeviceAdaptation
from nas_latency.models.degenerate import DEFAULT_DEGENERATE_FEATURE
from nas_latency.models.linalg import check_alpha, check_open_unit, clone, cross_validation_folds, nest_adaptation
from nas_latency.models.wrapper import WrappedModel

#: a normal distribution's standard deviation over its median absolute deviation
_MAD_TO_STD = 1.4826
#: beyond this many measurements, the errors are cross-validated in this many folds instead of one per measurement
MAX_FOLDS = 20


def held_out_errors(model: CrossDeviceModel, X: np.ndarray, latency_ms: np.ndarray,
                    max_folds: int = MAX_FOLDS) -> tuple[np.ndarray, np.ndarray]:
    """``(r, sigma)``: for each measurement, the log error of the model adapted on the others, and the model's
    predictive standard deviation of that log prediction (NaN where the model gives none). Up to ``max_folds``
    measurements this is leave-one-out; beyond, measurement ``i`` is held out with the others of fold
    ``i mod max_folds``."""
    n = len(latency_ms)
    fold = cross_validation_folds(n, max_folds)
    errors, sigma = np.empty(n), np.full(n, np.nan)
    for f in range(min(n, max_folds)):
        held = fold == f
        adaptation = model._adapt(X[~held], latency_ms[~held])
        errors[held] = np.log(latency_ms[held]) - np.log(model._predict(X[held], adaptation))
        try:
            sigma[held] = model._predict_log_std(X[held], adaptation)
        except FailedPreconditionError:
            pass
    return errors, sigma


def standardized(errors: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``|r_i| / σ_i``; where ``σ_i`` is missing (or not positive), the scale is ``1.4826 ×`` the median ``|r_j|``
    of the other measurements."""
    absolute = np.abs(errors)
    out = np.empty(len(errors))
    for i, (error, s) in enumerate(zip(absolute, sigma)):
        if not (np.isfinite(s) and s > 0):
            s = _MAD_TO_STD * float(np.median(np.delete(absolute, i)))
        out[i] = error / s if s > 0 else (math.inf if error > 0 else 0.0)
    return out


class OutlierDrop(WrappedModel):
    """Wraps any :class:`CrossDeviceModel`; see the module docstring for the rule."""

    kind = "drop_outliers"

    def __init__(self, *, base: CrossDeviceModel, min_log_error: float = math.log(1.5), min_z: float = 3.0,
                 max_fraction: float = 1 / 9, exempt_feature: str = DEFAULT_DEGENERATE_FEATURE) -> None:
        self.base = base
        self.min_log_error = min_log_error
        self.min_z = min_z
        self.max_fraction = max_fraction
        self.exempt_feature = exempt_feature

    def _check_params(self) -> None:
        self.min_log_error = check_alpha(self.min_log_error, "min_log_error")  # a positive finite number
        self.min_z = check_alpha(self.min_z, "min_z")
        self.max_fraction = check_open_unit(self.max_fraction, "max_fraction")
        if not isinstance(self.exempt_feature, str):
            raise InvalidInputError(f"exempt_feature must be a feature name, got {self.exempt_feature!r}")

    def _remember_exempt_column(self) -> None:
        names = tuple(self.feature_names_)
        self.exempt_column_ = names.index(self.exempt_feature) if self.exempt_feature in names else None

    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "OutlierDrop":
        self._check_base()
        self._check_params()
        self._validate_table(features, latency_ms)
        self.base_: CrossDeviceModel = clone(self.base).fit(features, latency_ms)  # type: ignore[assignment]
        self._remember_schema(features)
        self._remember_exempt_column()
        return self

    def outliers(self, X: np.ndarray, latency_ms: np.ndarray) -> list[dict[str, Any]]:
        """The measurements the rule leaves out (errors by :func:`held_out_errors`), in the order it finds them:
        ``row`` (index into ``latency_ms``), ``measured_ms``, ``predicted_ms`` (by the others), ``log_error``, ``z``."""
        limit = int(math.floor(self.max_fraction * len(latency_ms) + 1e-9))
        kept = np.arange(len(latency_ms))
        exempt = X[:, self.exempt_column_] > 0.5 if self.exempt_column_ is not None else np.zeros(len(kept), bool)
        found: list[dict[str, Any]] = []
        while len(found) < limit and len(kept) - 1 >= self.base_.min_measurements and not exempt[kept].all():
            errors, sigma = held_out_errors(self.base_, X[kept], latency_ms[kept])
            z = np.where(exempt[kept], -np.inf, standardized(errors, sigma))
            worst = int(np.argmax(z))
            if not (abs(errors[worst]) >= self.min_log_error and z[worst] >= self.min_z):
                break
            row = int(kept[worst])
            found.append({"row": row, "measured_ms": float(latency_ms[row]),
                          "predicted_ms": float(latency_ms[row] * math.exp(-errors[worst])),
                          "log_error": float(errors[worst]), "z": float(z[worst])})
            kept = np.delete(kept, worst)
        return found

    def _adapt(self, X: np.ndarray, latency_ms: np.ndarray) -> DeviceAdaptation:
        found = self.outliers(X, latency_ms)
        keep = np.ones(len(latency_ms), dtype=bool)
        keep[[entry["row"] for entry in found]] = False
        arrays, info = nest_adaptation("base", self.base_._adapt(X[keep], latency_ms[keep]))
        return DeviceAdaptation(model_kind=self.kind, feature_schema_hash=self.feature_schema_hash_ or "",
                                n_measurements=len(latency_ms), arrays=arrays,
                                info={"base": info, "outliers": found})

    def _predict(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        return self.base_._predict(X, self._base_adaptation(adaptation))

    def _predict_log_std(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        return self.base_._predict_log_std(X, self._base_adaptation(adaptation))

    # ---- artifacts ----------------------------------------------------------------------------------------
    def to_artifact(self) -> Artifact:
        return self._wrapper_artifact({"min_log_error": self.min_log_error, "min_z": self.min_z,
                                       "max_fraction": self.max_fraction, "exempt_feature": self.exempt_feature})

    @classmethod
    def from_artifact(cls, artifact: Artifact, *, source: str = "artifact") -> "OutlierDrop":
        base, params = cls._restore_base(artifact, source=source)
        try:
            model = cls(base=base, **params)
            model._check_params()
        except (InvalidInputError, TypeError) as exc:
            raise InvalidInputError(f"{source}: bad drop_outliers parameters {params!r}: {exc}") from None
        model.base_ = base
        model.feature_schema_hash_ = artifact.feature_schema_hash
        model.feature_names_ = tuple(artifact.extra.get("feature_names", ()))
        model._remember_exempt_column()
        return model


__all__ = ["MAX_FOLDS", "OutlierDrop", "held_out_errors", "standardized"]
