"""The stacked network model (ANNETTE): a network's latency is the sum of its fused kernels' predicted times.

``latency(network) = overhead_ms + Σ_{kernel groups g of the mapping} Σ_{layers l in g} w(l) · t(l)``,
``t(l) = hot(l) + κ(F) · A(l) + φ(F) · max(cold(l) − hot(l), 0)``

* the :class:`~nas_latency.models.layer_mapping.MappingModel` splits the network into fused kernel groups and gives
  each layer its weight ``w`` (``weighting="learned"``: the learned weight of the layer's pattern, so a fused layer
  costs ~0 and a layer whose input is still in cache costs a little less than alone; ``"discrete"``: ANNETTE's
  rule, the group costs exactly its main layer);
* a layer model (any :data:`LAYER_MODELS` kind) predicts each layer's in-network time from its features: ``hot``,
  fitted on micro-kernels timed in a loop (weights in cache), and optionally ``cold``, the same kind fitted on
  cold-weight micro-kernels (weights read from memory);
* ``φ(F)`` (:class:`~nas_latency.models.layer_footprint.FootprintModel`) says how much of the cold penalty a
  network of footprint ``F`` (its weights and activations, bytes) pays; without a cold model ``t = hot``;
* ``κ(F)`` (another footprint curve, optional) is the context cost, in ms per MB of activations a layer reads and
  writes (``A(l)``), of running inside a network of footprint ``F``: its output goes to memory that is no longer in
  cache, and its input may have left the cache too;
* ``overhead_ms`` is the runtime's fixed cost per network call (measured on a calibration chain).

Also here: the registry of layer models by short name, and :class:`LookupLayerModel` (nn-Meter-style kernel table:
the measured time of an exactly matching micro-kernel, a fallback model elsewhere).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix, Layer, Network
from nas_latency.models.artifacts import Artifact
from nas_latency.models.base import CostModel, LatencyRegressor
from nas_latency.models.layer_features import LayerFeaturizer, layer_key
from nas_latency.models.layer_footprint import FootprintModel
from nas_latency.models.layer_mapping import BlockObservation, MappingModel
from nas_latency.models.layer_resperfnet import ResPerfNetLayerModel
from nas_latency.models.layer_roofline import RefinedRooflineLayerModel, RooflineLayerModel, _check_fit_inputs
from nas_latency.models.layer_statistical import MixedLayerModel, StatisticalLayerModel
from nas_latency.models.linalg import nest_artifact, unnest_artifact

Weighting = Literal["learned", "discrete"]


class LookupLayerModel(LatencyRegressor):
    """Measured time of the exactly matching micro-kernel (geometric mean of repeats); ``fallback`` elsewhere."""

    kind = "layer_lookup"

    def __init__(self, *, fallback: str = "mixed") -> None:
        self.fallback = fallback

    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "LookupLayerModel":
        y = _check_fit_inputs(self, features, latency_ms)
        cls = layer_model_class(self.fallback)
        if cls is LookupLayerModel:
            raise InvalidInputError("a lookup layer model cannot fall back to another lookup model")
        self.fallback_ = cls().fit(features, y)
        logs: dict[str, list[float]] = defaultdict(list)
        for key, value in zip(features.rows, y):
            logs[key].append(float(np.log(value)))
        self.table_ = {key: float(np.exp(np.mean(v))) for key, v in logs.items()}
        self._remember_schema(features)
        return self

    def predict(self, features: FeatureMatrix) -> np.ndarray:
        self._check_features(features)
        out = self.fallback_.predict(features) if len(features.rows) else np.zeros(0)
        for i, key in enumerate(features.rows):
            hit = self.table_.get(key)
            if hit is not None:
                out[i] = hit
        return out

    def _learned_arrays(self) -> dict[str, np.ndarray]:
        _, arrays, _ = nest_artifact("fallback", self.fallback_.to_artifact())
        keys = sorted(self.table_)
        arrays["table_keys"] = np.asarray(keys, dtype=str) if keys else np.zeros(0, dtype="<U1")
        arrays["table_ms"] = np.asarray([self.table_[k] for k in keys], dtype=np.float64)
        return arrays

    def _learned_extra(self) -> dict[str, Any]:
        spec, _, extra = nest_artifact("fallback", self.fallback_.to_artifact())
        return {"fallback_model": spec, "fallback_extra": extra}

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        parent = Artifact(kind=self.kind, params=self.get_params(), feature_schema_hash=self.feature_schema_hash_ or "",
                          arrays=arrays, extra={"feature_names": list(self.feature_names_)})
        member = unnest_artifact("fallback", extra["fallback_model"], parent, extra.get("fallback_extra", {}))
        self.fallback_ = layer_model_from_artifact(member, source="lookup fallback")
        keys = [str(k) for k in np.asarray(arrays["table_keys"]).tolist()]
        self.table_ = dict(zip(keys, (float(v) for v in arrays["table_ms"])))


#: Layer models by short name (CLI, reports) → class.
LAYER_MODELS: dict[str, type[LatencyRegressor]] = {
    "roofline": RooflineLayerModel,
    "refined_roofline": RefinedRooflineLayerModel,
    "statistical": StatisticalLayerModel,
    "mixed": MixedLayerModel,
    "resperfnet": ResPerfNetLayerModel,
    "lookup": LookupLayerModel,
}
_BY_KIND: dict[str, type[LatencyRegressor]] = {cls.kind: cls for cls in LAYER_MODELS.values()}


def layer_model_class(name: str) -> type[LatencyRegressor]:
    """A layer model class by short name (``mixed``) or artifact kind (``layer_mixed``)."""
    cls = LAYER_MODELS.get(name) or _BY_KIND.get(name)
    if cls is None:
        raise InvalidInputError(f"unknown layer model {name!r}; known: {', '.join(LAYER_MODELS)}")
    return cls


def layer_model_from_artifact(artifact: Artifact, *, source: str = "artifact") -> LatencyRegressor:
    return layer_model_class(artifact.kind).from_artifact(artifact, source=source)


def network_footprint_bytes(network: Network) -> int:
    """Bytes a network touches once per inference: every weight and every layer output."""
    return int(sum(layer.weight_bytes() + layer.bytes_written() for layer in network.layers))


def activation_mb(layer: Layer) -> float:
    """MB (2**20 bytes) of activations the layer reads and writes: what the context cost ``κ`` is per."""
    return (layer.activation_bytes_read() + layer.bytes_written()) / 2**20


@dataclass(frozen=True)
class GroupCost:
    """One fused kernel of a network and its predicted time."""

    main: str
    members: tuple[str, ...]
    patterns: tuple[str, ...]
    weights: tuple[float, ...]
    layer_ms: tuple[float, ...]
    ms: float


class StackedNetworkModel(CostModel):
    """Mapping model over a layer model; predicts whole networks from their IR."""

    kind = "stacked_network"

    def __init__(self, *, layer_model: str = "mixed", layer_params: Mapping[str, Any] | None = None,
                 runtime: str = "torch", weighting: Weighting = "learned", fuse_threshold: float = 0.35) -> None:
        self.layer_model = layer_model
        self.layer_params = layer_params
        self.runtime = runtime
        self.weighting = weighting
        self.fuse_threshold = fuse_threshold

    def _check_weighting(self) -> None:
        if self.weighting not in ("learned", "discrete"):
            raise InvalidInputError(f"weighting must be 'learned' or 'discrete', got {self.weighting!r}")

    def fit(self, kernel_features: FeatureMatrix, kernel_ms: np.ndarray, blocks: Sequence[BlockObservation], *,
            overhead_ms: float, cold_features: FeatureMatrix | None = None, cold_ms: np.ndarray | None = None,
            footprint: FootprintModel | None = None, context: FootprintModel | None = None
            ) -> "StackedNetworkModel":
        """Fit the layer model on micro-kernels (in-network ms), the mapping model on blocks and, given cold-weight
        kernels, a cold layer model of the same kind (mixed by ``footprint``, default curve if None)."""
        self._check_weighting()
        if not np.isfinite(overhead_ms) or overhead_ms < 0:
            raise InvalidInputError(f"overhead_ms must be a finite number >= 0, got {overhead_ms!r}")
        cls = layer_model_class(self.layer_model)
        self.layer_model_ = cls(**dict(self.layer_params or {})).fit(kernel_features, kernel_ms)
        self.cold_model_ = None
        self.footprint_ = None
        if cold_features is not None and cold_ms is not None:
            self.cold_model_ = cls(**dict(self.layer_params or {})).fit(cold_features, cold_ms)
            self.footprint_ = footprint if footprint is not None else FootprintModel().fit([], [])
        if context is not None:
            context._check_fitted()
        self.context_ = context
        self.mapping_ = MappingModel(runtime=self.runtime, fuse_threshold=self.fuse_threshold).fit(blocks)
        self.overhead_ms_ = float(overhead_ms)
        self._remember_schema(kernel_features)
        return self

    @classmethod
    def from_parts(cls, layer_model: LatencyRegressor, mapping: MappingModel, *, overhead_ms: float,
                   layer_name: str | None = None, weighting: Weighting = "learned",
                   cold_model: LatencyRegressor | None = None, footprint: FootprintModel | None = None,
                   context: FootprintModel | None = None) -> "StackedNetworkModel":
        """Assemble fitted parts (one mapping and footprint curve shared by several layer models)."""
        layer_model._check_fitted()
        mapping._check_fitted()
        name = layer_name or next(k for k, c in LAYER_MODELS.items() if c is type(layer_model))
        model = cls(layer_model=name, layer_params=layer_model.get_params(), runtime=mapping.runtime,
                    weighting=weighting, fuse_threshold=mapping.fuse_threshold)
        model._check_weighting()
        model.layer_model_ = layer_model
        model.cold_model_ = cold_model
        model.footprint_ = None
        if cold_model is not None:
            cold_model._check_fitted()
            if type(cold_model) is not type(layer_model):
                raise InvalidInputError("the cold layer model must be of the same kind as the hot one")
            model.footprint_ = footprint if footprint is not None else FootprintModel().fit([], [])
        if context is not None:
            context._check_fitted()
        model.context_ = context
        model.mapping_ = mapping
        model.overhead_ms_ = float(overhead_ms)
        model.feature_schema_hash_ = layer_model.feature_schema_hash_
        model.feature_names_ = layer_model.feature_names_
        return model

    # ---- prediction ---------------------------------------------------------------------------------------------
    def _predict_layers(self, layers: Sequence[Layer]) -> tuple[dict[str, float], dict[str, float]]:
        """Predicted hot and cold in-network ms of each distinct layer configuration (by layer key)."""
        self._check_fitted()
        unique: dict[str, Layer] = {}
        for layer in layers:
            unique.setdefault(layer_key(layer), layer)
        if not unique:
            return {}, {}
        features = LayerFeaturizer().transform(list(unique.values()))
        out = []
        for model in (self.layer_model_, self.cold_model_):
            if model is None:
                out.append(out[0])
                continue
            predicted = model.predict(features)
            bad = ~np.isfinite(predicted) | (predicted < 0)
            if bad.any():
                key = features.rows[int(np.argmax(bad))]
                raise InvalidInputError(f"layer model {self.layer_model!r} predicted {predicted[bad][0]} ms for {key}")
            out.append(dict(zip(features.rows, (float(v) for v in predicted))))
        return out[0], out[1]

    def layer_times(self, layers: Sequence[Layer], *, phi: float = 0.0, kappa: float = 0.0) -> dict[str, float]:
        """Predicted in-network ms of each distinct layer configuration, for a network paying ``phi`` of the
        cold-weight penalty and ``kappa`` ms per MB of activations."""
        hot, cold = self._predict_layers(layers)
        mb = {layer_key(layer): activation_mb(layer) for layer in layers}
        return {k: hot[k] + kappa * mb[k] + phi * max(cold[k] - hot[k], 0.0) for k in hot}

    def phi(self, network: Network) -> float:
        """The share of the cold-weight penalty ``network`` pays (0 without a cold model)."""
        if self.cold_model_ is None or self.footprint_ is None:
            return 0.0
        return float(self.footprint_.phi(network_footprint_bytes(network)))

    def kappa(self, network: Network) -> float:
        """The context cost in ``network``, ms per MB of activations a layer moves (0 without a context curve)."""
        context = getattr(self, "context_", None)
        return 0.0 if context is None else float(context.phi(network_footprint_bytes(network)))

    def _group_costs(self, network: Network, times: Mapping[str, float]) -> list[GroupCost]:
        out = []
        for group in self.mapping_.groups(network):
            layer_ms = tuple(times[layer_key(network.layer(name))] for name in group.members)
            if self.weighting == "discrete":
                ms = layer_ms[0]
            else:
                ms = float(sum(w * t for w, t in zip(group.weights, layer_ms)))
            out.append(GroupCost(group.main, group.members, group.patterns, group.weights, layer_ms, ms))
        return out

    def breakdown(self, network: Network) -> list[GroupCost]:
        """The network's fused kernels with their predicted times (they sum, with ``overhead_ms_``, to the
        prediction)."""
        return self._group_costs(network, self.layer_times(network.layers, phi=self.phi(network),
                                                           kappa=self.kappa(network)))

    def predict_networks(self, networks: Sequence[Network]) -> np.ndarray:
        """Predicted latency (ms) of each network."""
        hot, cold = self._predict_layers([layer for network in networks for layer in network.layers])
        out = []
        for network in networks:
            phi, kappa = self.phi(network), self.kappa(network)
            times = {}
            for layer in network.layers:
                k = layer_key(layer)
                times[k] = hot[k] + kappa * activation_mb(layer) + phi * max(cold[k] - hot[k], 0.0)
            out.append(self.overhead_ms_ + sum(g.ms for g in self._group_costs(network, times)))
        return np.array(out, dtype=np.float64)

    # ---- artifacts ------------------------------------------------------------------------------------------------
    def _parts(self) -> dict[str, CostModel]:
        parts: dict[str, CostModel] = {"layer": self.layer_model_, "mapping": self.mapping_}
        if self.cold_model_ is not None and self.footprint_ is not None:
            parts["cold"] = self.cold_model_
            parts["footprint"] = self.footprint_
        if getattr(self, "context_", None) is not None:
            parts["context"] = self.context_
        return parts

    def _learned_arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {"overhead_ms": np.array([self.overhead_ms_])}
        for prefix, part in self._parts().items():
            arrays.update(nest_artifact(prefix, part.to_artifact())[1])
        return arrays

    def _learned_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"parts": list(self._parts())}
        for prefix, part in self._parts().items():
            spec, _, part_extra = nest_artifact(prefix, part.to_artifact())
            extra[prefix] = spec
            extra[f"{prefix}_extra"] = part_extra
        return extra

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        parent = Artifact(kind=self.kind, params=self.get_params(), feature_schema_hash=self.feature_schema_hash_ or "",
                          arrays=arrays, extra={"feature_names": list(self.feature_names_)})

        def part(prefix: str) -> Artifact:
            return unnest_artifact(prefix, extra[prefix], parent, extra.get(f"{prefix}_extra", {}))

        self.layer_model_ = layer_model_from_artifact(part("layer"), source="stacked model layer model")
        self.mapping_ = MappingModel.from_artifact(part("mapping"), source="stacked model mapping")
        self.cold_model_ = None
        self.footprint_ = None
        if "cold" in extra.get("parts", ()):
            self.cold_model_ = layer_model_from_artifact(part("cold"), source="stacked model cold layer model")
            self.footprint_ = FootprintModel.from_artifact(part("footprint"), source="stacked model footprint")
        self.context_ = None
        if "context" in extra.get("parts", ()):
            self.context_ = FootprintModel.from_artifact(part("context"), source="stacked model context curve")
        self.overhead_ms_ = float(np.asarray(arrays["overhead_ms"])[0])
