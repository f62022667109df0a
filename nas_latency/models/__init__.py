"""Cost models on one contract (:mod:`nas_latency.models.base`) and the registry of their kinds.

=====================  =======================  ==========================================================
kind                   class                    what
=====================  =======================  ==========================================================
``flops``              :class:`FlopsRegressor`  one device, ``log latency = a + b·log MACs``
``flops_xdev``         :class:`FlopsCrossDevice` the same per device; a new device from K points, slope prior
``nnls_mix``           :class:`LogMixModel`     non-negative log-space mix of per-device ridge models
``blr``                :class:`BayesianDeviceModel` BLR in log space, prior from training devices
``blr_evidence``       :class:`EvidenceBayesianDeviceModel` BLR with a wider prior, averaged per device by evidence
``degenerate_aware``   :class:`DegenerateAware` wrapper: devices that drop degenerate architectures
``geo_ensemble``       :class:`GeometricEnsemble` geometric mean of member models
``nnls_mix_measured``  :class:`MeasuredLogMixModel` ``nnls_mix`` on the measured training latencies
``gp_mix``             :class:`GPMixModel`      GP over networks, the training devices as its covariance
``cost_nnls``          :class:`CostPriceModel`  per device, non-negative prices of the IR cost features
``pruned_cost_nnls``   :class:`PrunedCostPriceModel` the same on the costs of the layers whose values are read
``loo_select``         :class:`LeaveOneOutSelection` per device, a member chosen by leave-one-out (F-test)
``loo_average``        :class:`LeaveOneOutAverage` per device, members weighted by leave-one-out (pseudo-BMA)
``without_costs``      :class:`WithoutCosts`    wrapper: the base model never sees the cost columns
``clamp_speed``        :class:`SpeedClamp`      wrapper: a device faster/slower than every training one, onboarded at
                                                the edge of their range and scaled back
``drop_outliers``      :class:`OutlierDrop`     wrapper: a measurement the device's others disagree with is left out
=====================  =======================  ==========================================================

Artifacts carry their kind, so :func:`model_from_artifact` / :func:`load_model` rebuild any of them. The
registry also names the layer-level and signature-vector models of the sibling modules (imported lazily).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from nas_latency.errors import NotFoundError
from nas_latency.models.artifacts import Artifact, artifact_from_bytes, load_artifact
from nas_latency.models.base import (
    CostModel,
    CrossDeviceModel,
    DeviceAdaptation,
    LatencyRegressor,
    NotFittedError,
    check_latencies,
)
from nas_latency.models.blr import DEFAULT_GRID, BayesianDeviceModel
from nas_latency.models.blr_evidence import EvidenceBayesianDeviceModel
from nas_latency.models.cost_nnls import CostPriceModel, PrunedCostPriceModel
from nas_latency.models.degenerate import DegenerateAware
from nas_latency.models.ensemble import GeometricEnsemble
from nas_latency.models.flops import FlopsCrossDevice, FlopsRegressor
from nas_latency.models.gp_mix import GPMixModel
from nas_latency.models.mix import LogMixModel, MeasuredLogMixModel
from nas_latency.models.outlier_drop import OutlierDrop
from nas_latency.models.selection import LeaveOneOutAverage, LeaveOneOutSelection
from nas_latency.models.speed_clamp import SpeedClamp
from nas_latency.models.without_costs import WithoutCosts

#: the models of this package's core modules (imported eagerly: numpy/scipy only)
MODEL_CLASSES: dict[str, type[CostModel]] = {
    cls.kind: cls
    for cls in (FlopsRegressor, FlopsCrossDevice, LogMixModel, BayesianDeviceModel, DegenerateAware, GeometricEnsemble,
                MeasuredLogMixModel, GPMixModel, EvidenceBayesianDeviceModel, CostPriceModel, PrunedCostPriceModel,
                LeaveOneOutSelection, LeaveOneOutAverage, WithoutCosts, SpeedClamp, OutlierDrop)
}

#: every other registered kind as "module:Class", imported on first use (some need torch or lightgbm at fit time)
_LAZY: dict[str, str] = {
    "resperfnet": "nas_latency.models.resperfnet:ResPerfNetModel",
    "signature_gbm": "nas_latency.models.signature_model:SignatureModel",
    "layer_mapping": "nas_latency.models.layer_mapping:MappingModel",
    "layer_resperfnet": "nas_latency.models.layer_resperfnet:ResPerfNetLayerModel",
    "layer_roofline": "nas_latency.models.layer_roofline:RooflineLayerModel",
    "layer_refined_roofline": "nas_latency.models.layer_roofline:RefinedRooflineLayerModel",
    "layer_lookup": "nas_latency.models.layer_stacked:LookupLayerModel",
    "stacked_network": "nas_latency.models.layer_stacked:StackedNetworkModel",
    "layer_statistical": "nas_latency.models.layer_statistical:StatisticalLayerModel",
    "layer_mixed": "nas_latency.models.layer_statistical:MixedLayerModel",
    "layer_footprint": "nas_latency.models.layer_footprint:FootprintModel",
}
_LOADED: dict[str, type[CostModel]] = {}


def model_kinds() -> list[str]:
    return sorted({*MODEL_CLASSES, *_LAZY})


def model_class(kind: str) -> type[CostModel]:
    """The class registered for ``kind``; ``NotFoundError`` listing the known kinds otherwise."""
    if kind in MODEL_CLASSES:
        return MODEL_CLASSES[kind]
    if kind in _LOADED:
        return _LOADED[kind]
    target = _LAZY.get(kind)
    if target is None:
        raise NotFoundError(f"unknown model kind {kind!r}; known kinds: {', '.join(model_kinds())}")
    module_name, attribute = target.split(":")
    cls = getattr(importlib.import_module(module_name), attribute)
    if getattr(cls, "kind", None) != kind:
        raise NotFoundError(f"model kind {kind!r} is registered as {target}, whose kind is {cls.kind!r}")
    _LOADED[kind] = cls
    return cls


def model_from_artifact(artifact: Artifact, *, source: str = "artifact") -> CostModel:
    """Rebuild the model an artifact holds, whatever its kind."""
    return model_class(artifact.kind).from_artifact(artifact, source=source)


def model_from_bytes(data: bytes, *, source: str = "artifact") -> CostModel:
    return model_from_artifact(artifact_from_bytes(data, source=source), source=source)


def load_model(path: str | Path) -> CostModel:
    return model_from_artifact(load_artifact(path), source=str(path))


__all__ = [
    "DEFAULT_GRID",
    "MODEL_CLASSES",
    "Artifact",
    "BayesianDeviceModel",
    "CostPriceModel",
    "PrunedCostPriceModel",
    "CostModel",
    "CrossDeviceModel",
    "DegenerateAware",
    "SpeedClamp",
    "DeviceAdaptation",
    "EvidenceBayesianDeviceModel",
    "FlopsCrossDevice",
    "FlopsRegressor",
    "GeometricEnsemble",
    "LatencyRegressor",
    "LeaveOneOutAverage",
    "LeaveOneOutSelection",
    "LogMixModel",
    "NotFittedError",
    "OutlierDrop",
    "WithoutCosts",
    "check_latencies",
    "load_model",
    "model_class",
    "model_from_artifact",
    "model_from_bytes",
    "model_kinds",
]
