"""``DegenerateAware``: a wrapper for devices that skip degenerate architectures.

Some measuring pipelines drop the work of an architecture that computes nothing useful (a NAS-Bench-201 cell
with no input→output path) and report a near-zero latency; others run every op. A log-space model fitted
through such a point is wrecked by one outlier, so the wrapper decides from the device's own measurements:

* The degenerate rows are marked by a 0/1 feature column (``is_degenerate`` by default; the search space's
  ``model_features`` provides it from its ``degenerate_mask``).
* ``adapt``: if no degenerate architecture was measured, the base model is adapted on all points. Otherwise
  the base model is adapted on the non-degenerate points and predicts the measured degenerate ones. The device
  *drops degenerate architectures* when the median of measured / predicted is below ``ratio_threshold`` (the
  research rule) **and** the measured degenerate latency (median if several) is below ``ratio_threshold`` times
  the fastest measured non-degenerate architecture (a guard: without it a live-only fit that extrapolates badly
  along the degenerate direction, e.g. predicting 245 ms for a 33 ms cell, makes a normal device look like one
  that drops). Then every degenerate row is predicted as the measured value and the base adaptation stays the
  one without them. Else the base model is adapted again on all points.
* A device that drops degenerate architectures runs a runtime that prunes what is not read (a dead cell is the
  extreme case of a value no output reads), so with ``prune_costs`` (the default) its base model is adapted
  again, and predicts, with every ``cost.*`` column replaced by its ``pruned_cost.*`` twin (columns without a
  twin stay): the costs such a runtime pays (:mod:`nas_latency.ir.liveness`). A price list (``cost_nnls``) then
  prices the pruned network even when the measured live architectures cost the same either way and cannot tell
  the two price lists apart (the nine live archs of the shipped 10-arch NAS-Bench-201 signature read every value
  they compute). The transfer models never see cost columns (``without_costs``) and are not changed.
* With fewer non-degenerate points than the base model needs (a device onboarded from the first 3 signature
  architectures, one of them degenerate), the rule cannot be tested: the base model is adapted on all points,
  the adaptation records ``degenerate_untested`` and a warning is logged.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models.artifacts import Artifact
from nas_latency.models.base import CrossDeviceModel, DeviceAdaptation
from nas_latency.models.cost_nnls import COST_PREFIX, PRUNED_COST_PREFIX
from nas_latency.models.linalg import check_open_unit, clone, column_index, nest_adaptation
from nas_latency.models.wrapper import WrappedModel

log = logging.getLogger(__name__)

DEFAULT_DEGENERATE_FEATURE = "is_degenerate"


class DegenerateAware(WrappedModel):
    """Wraps any :class:`CrossDeviceModel`; see the module docstring for the rule."""

    kind = "degenerate_aware"

    def __init__(
        self,
        *,
        base: CrossDeviceModel,
        degenerate_feature: str = DEFAULT_DEGENERATE_FEATURE,
        ratio_threshold: float = 0.25,
        prune_costs: bool = True,
    ) -> None:
        self.base = base
        self.degenerate_feature = degenerate_feature
        self.ratio_threshold = ratio_threshold
        self.prune_costs = prune_costs

    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "DegenerateAware":
        self._check_base()
        check_open_unit(self.ratio_threshold, "ratio_threshold")
        if not isinstance(self.prune_costs, bool):
            raise InvalidInputError(f"DegenerateAware: prune_costs must be true or false, got {self.prune_costs!r}")
        self._validate_table(features, latency_ms)
        self._set_columns(features.names)
        self.base_: CrossDeviceModel = clone(self.base).fit(features, latency_ms)  # type: ignore[assignment]
        self._remember_schema(features)
        return self

    def _set_columns(self, names: Sequence[str]) -> None:
        self.column_ = column_index(names, self.degenerate_feature, model="DegenerateAware")
        self.cost_columns_, self.pruned_columns_ = pruned_cost_twins(names)

    def degenerate_rows(self, X: np.ndarray) -> np.ndarray:
        return X[:, self.column_] > 0.5

    def _costs_pruned(self, X: np.ndarray) -> np.ndarray:
        """``X`` with each ``cost.*`` column replaced by its ``pruned_cost.*`` twin."""
        pruned = X.copy()
        pruned[:, self.cost_columns_] = X[:, self.pruned_columns_]
        return pruned

    def _base_inputs(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        """The rows as the base model was adapted on them: with the pruned costs for a device priced on them."""
        return self._costs_pruned(X) if adaptation.info.get("costs_pruned") else X

    def _adapt(self, X: np.ndarray, latency_ms: np.ndarray) -> DeviceAdaptation:
        degenerate = self.degenerate_rows(X)
        info: dict[str, Any] = {"degenerate_measured": int(degenerate.sum()), "drops_degenerate": False,
                                "degenerate_latency_ms": None, "degenerate_ratio": None}
        live = ~degenerate
        if degenerate.any() and live.sum() < self.base_.min_measurements:
            # too few live points to test the rule on: the base model takes every point, and the adaptation says so
            info["degenerate_untested"] = True
            log.warning("%d of the %d measurements are of degenerate architectures, which leaves %d; at least %d "
                        "are needed to tell whether the device drops degenerate architectures, so the model is "
                        "adapted on all of them as if it does not", int(degenerate.sum()), len(latency_ms),
                        int(live.sum()), self.base_.min_measurements)
            base_adaptation = self.base_._adapt(X, latency_ms)
        elif degenerate.any():
            base_live = self.base_._adapt(X[live], latency_ms[live])
            predicted = self.base_._predict(X[degenerate], base_live)
            ratio = float(np.median(latency_ms[degenerate] / predicted))
            measured = float(np.median(latency_ms[degenerate]))
            info["degenerate_ratio"] = ratio
            # the guard: a dropped architecture is also far faster than every measured real one, so a model that
            # extrapolates wildly along the degenerate direction cannot make a normal device look like it drops
            if ratio < self.ratio_threshold and measured < self.ratio_threshold * float(latency_ms[live].min()):
                info["drops_degenerate"] = True
                info["degenerate_latency_ms"] = measured
                info["base_rows"] = np.flatnonzero(live).tolist()  # the measurements the base was adapted on
                base_adaptation = base_live
                if self.prune_costs and len(self.cost_columns_):
                    info["costs_pruned"] = True
                    base_adaptation = self.base_._adapt(self._costs_pruned(X[live]), latency_ms[live])
            else:
                base_adaptation = self.base_._adapt(X, latency_ms)
        else:
            base_adaptation = self.base_._adapt(X, latency_ms)
        arrays, info["base"] = nest_adaptation("base", base_adaptation)
        return DeviceAdaptation(
            model_kind=self.kind,
            feature_schema_hash=self.feature_schema_hash_ or "",
            n_measurements=len(latency_ms),
            arrays=arrays,
            info=info,
        )

    def _predict(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        out = self.base_._predict(self._base_inputs(X, adaptation), self._base_adaptation(adaptation))
        if adaptation.info.get("drops_degenerate"):
            out = out.copy()
            out[self.degenerate_rows(X)] = float(adaptation.info["degenerate_latency_ms"])
        return out

    def _predict_log_std(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        """The base model's uncertainty (also on the degenerate rows of a device that drops them, which get the
        measured value)."""
        return self.base_._predict_log_std(self._base_inputs(X, adaptation), self._base_adaptation(adaptation))

    # ---- artifacts ----------------------------------------------------------------------------------------
    def to_artifact(self) -> Artifact:
        return self._wrapper_artifact({"degenerate_feature": self.degenerate_feature,
                                       "ratio_threshold": self.ratio_threshold,
                                       "prune_costs": self.prune_costs})

    @classmethod
    def from_artifact(cls, artifact: Artifact, *, source: str = "artifact") -> "DegenerateAware":
        base, params = cls._restore_base(artifact, source=source)
        model = cls(base=base, **params)
        model.base_ = base
        model.feature_schema_hash_ = artifact.feature_schema_hash
        model.feature_names_ = tuple(artifact.extra.get("feature_names", ()))
        model._set_columns(model.feature_names_)
        return model


def pruned_cost_twins(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Column indices ``(cost, pruned)``: each ``cost.*`` column that has a ``pruned_cost.*`` twin, and the twin."""
    index = {name: i for i, name in enumerate(names)}
    cost: list[int] = []
    pruned: list[int] = []
    for i, name in enumerate(names):
        twin = PRUNED_COST_PREFIX + name[len(COST_PREFIX):]
        if name.startswith(COST_PREFIX) and twin in index:
            cost.append(i)
            pruned.append(index[twin])
    return np.array(cost, dtype=np.intp), np.array(pruned, dtype=np.intp)
