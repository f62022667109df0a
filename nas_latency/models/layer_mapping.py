"""ANNETTE's mapping model: which layers a runtime fuses into one kernel, learned from multi-layer blocks.

Every layer of a network gets a *pattern*: ``"producer>consumer"`` (layer families, see
:func:`~nas_latency.models.layer_features.family`) when it reads, as its first input, the output of a layer that
nothing else reads (the case a runtime can fuse), else just its own family (it starts a kernel of its own).

Fitting compares each multi-layer block's measured time with the standalone times of its layers: the block is
modelled as ``t_block ≈ Σ_layers w[pattern(layer)] · t_layer`` and the weights ``w ∈ [0, max_weight]`` are found by
bounded least squares on *relative* errors, with a ridge pull (``prior_strength``) toward the runtime's default
rules so that patterns seen in few blocks stay near them. A weight near 0 means the consumer costs nothing once it
follows its producer: the runtime fused it (``w < fuse_threshold``). A weight near 1 means it runs as its own kernel;
values in between are partial savings (the consumer's input is still in cache).

Where no block showed a pattern, the default rules of the runtime apply (:data:`DEFAULT_RULES`: torch eager fuses
nothing; onnxruntime folds batch norm and activations into the convolution before it, the scaling of a matmul's
product into the matmul, and drops views), then the standalone weight of the consumer's family, then 1.

:meth:`MappingModel.groups` turns a network into fused kernels (a main layer and the layers fused into it) — the
unit the stacked network model sums over.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.optimize import lsq_linear

from nas_latency.errors import InvalidInputError
from nas_latency.ir import Network
from nas_latency.models.base import CostModel
from nas_latency.models.layer_features import family, layer_key

_CONV_FAMILIES = ("conv", "depthwise_conv", "grouped_conv")

#: Default fusion weights per runtime, used where no block measured a pattern.
DEFAULT_RULES: dict[str, dict[str, float]] = {
    "torch": {},
    "cuda": {},
    "onnxruntime": {
        **{f"{c}>batch_norm": 0.0 for c in _CONV_FAMILIES},
        **{f"{c}>relu": 0.0 for c in _CONV_FAMILIES},
        "batch_norm>relu": 0.0,
        "linear>relu": 0.0,
        # MatMulScaleFusion: a matmul and the scaling of its product run as one FusedMatMul (alpha)
        "matmul>scale": 0.0,
        "view": 0.0,
    },
}


def layer_patterns(network: Network) -> dict[str, str]:
    """The pattern of every layer of ``network`` (by layer name)."""
    users = network.consumers()
    producers = {layer.name: layer for layer in network.layers}
    patterns: dict[str, str] = {}
    for layer in network.layers:
        own = family(layer)
        src = layer.inputs[0]
        producer = producers.get(src)
        if producer is not None and len(users[src]) == 1:
            patterns[layer.name] = f"{family(producer)}>{own}"
        else:
            patterns[layer.name] = own
    return patterns


def producer_of(pattern: str) -> str | None:
    return pattern.split(">", 1)[0] if ">" in pattern else None


def consumer_of(pattern: str) -> str:
    return pattern.split(">", 1)[-1]


@dataclass(frozen=True)
class BlockObservation:
    """One measured multi-layer block: its time and the standalone time of each of its layers.

    Both are *in-network* times in ms (the runtime's fixed per-call cost removed, as for the layer models);
    ``layer_ms`` is keyed by :func:`~nas_latency.models.layer_features.layer_key`.
    """

    network: Network
    block_ms: float
    layer_ms: Mapping[str, float]


@dataclass(frozen=True)
class KernelGroup:
    """A fused kernel: the main layer and the layers fused into it (names), with each member's weight."""

    main: str
    members: tuple[str, ...]
    weights: tuple[float, ...]
    patterns: tuple[str, ...]


class MappingModel(CostModel):
    """Fusion weights per layer pattern, learned from blocks; default rules elsewhere."""

    kind = "layer_mapping"

    def __init__(self, *, runtime: str = "torch", fuse_threshold: float = 0.35, max_weight: float = 2.0,
                 prior_strength: float = 0.01) -> None:
        self.runtime = runtime
        self.fuse_threshold = fuse_threshold
        self.max_weight = max_weight
        self.prior_strength = prior_strength

    def _defaults(self) -> dict[str, float]:
        if self.runtime not in DEFAULT_RULES:
            raise InvalidInputError(
                f"mapping model: unknown runtime {self.runtime!r}; known: {', '.join(DEFAULT_RULES)}")
        return DEFAULT_RULES[self.runtime]

    def _prior(self, pattern: str) -> float:
        return float(self._defaults().get(pattern, 1.0))

    def fit(self, blocks: Sequence[BlockObservation]) -> "MappingModel":
        defaults = self._defaults()
        for name in ("fuse_threshold", "max_weight", "prior_strength"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
                raise InvalidInputError(f"{name} must be a finite number >= 0, got {value!r}")
        rows: list[dict[str, float]] = []
        targets: list[float] = []
        for block in blocks:
            if not np.isfinite(block.block_ms) or block.block_ms <= 0:
                raise InvalidInputError(f"block {block.network.name!r}: time must be > 0 ms, got {block.block_ms}")
            row: dict[str, float] = {}
            block_patterns = layer_patterns(block.network)
            for layer in block.network.layers:
                key = layer_key(layer)
                if key not in block.layer_ms:
                    raise InvalidInputError(
                        f"block {block.network.name!r}: no standalone time for layer {layer.name!r} ({key})")
                pattern = block_patterns[layer.name]
                row[pattern] = row.get(pattern, 0.0) + float(block.layer_ms[key])
            rows.append(row)
            targets.append(float(block.block_ms))
        patterns = sorted({p for row in rows for p in row})
        index = {p: i for i, p in enumerate(patterns)}
        A = np.zeros((len(rows), len(patterns)))
        for r, row in enumerate(rows):
            for p, t in row.items():
                A[r, index[p]] = t
        y = np.asarray(targets)
        prior = np.array([self._prior(p) for p in patterns])
        counts = (A > 0).sum(axis=0)
        if len(rows):
            # relative residuals of the blocks, plus ridge rows pulling each weight toward its prior
            lam = np.sqrt(float(self.prior_strength))
            M = np.vstack([A / y[:, None], lam * np.eye(len(patterns))])
            b = np.concatenate([np.ones(len(rows)), lam * prior])
            upper = np.full(len(patterns), float(self.max_weight))
            result = lsq_linear(M, b, bounds=(np.zeros(len(patterns)), np.maximum(upper, 1e-9)), method="bvls")
            weights = result.x
            predicted = A @ weights
            self.block_rel_errors_ = np.abs(predicted - y) / y
            self.block_rel_errors_sum_ = np.abs(A.sum(axis=1) - y) / y
        else:
            weights = prior
            self.block_rel_errors_ = np.zeros(0)
            self.block_rel_errors_sum_ = np.zeros(0)
        self.patterns_ = tuple(patterns)
        self.weights_ = np.asarray(weights, dtype=np.float64)
        self.counts_ = counts.astype(np.int64)
        self.defaults_ = dict(defaults)
        self.feature_schema_hash_ = hashlib.sha256(f"mapping:{self.runtime}".encode()).hexdigest()[:16]
        self.feature_names_ = ()
        return self

    # ---- queries ------------------------------------------------------------------------------------------------
    def weight(self, pattern: str) -> float:
        """The learned weight of ``pattern``, else its default rule, else the consumer's standalone weight, else 1."""
        self._check_fitted()
        learned = dict(zip(self.patterns_, self.weights_))
        if pattern in learned:
            return float(learned[pattern])
        if pattern in self.defaults_:
            return float(self.defaults_[pattern])
        standalone = consumer_of(pattern)
        if standalone in learned:
            return float(learned[standalone])
        return float(self.defaults_.get(standalone, 1.0))

    def is_fused(self, pattern: str) -> bool:
        return producer_of(pattern) is not None and self.weight(pattern) < float(self.fuse_threshold)

    def groups(self, network: Network) -> list[KernelGroup]:
        """The network's layers as fused kernels, in topological order of their main layers."""
        self._check_fitted()
        patterns = layer_patterns(network)
        group_of: dict[str, int] = {}
        members: list[list[str]] = []
        for layer in network.layers:
            pattern = patterns[layer.name]
            if self.is_fused(pattern):
                g = group_of[layer.inputs[0]]
                members[g].append(layer.name)
            else:
                g = len(members)
                members.append([layer.name])
            group_of[layer.name] = g
        return [
            KernelGroup(main=m[0], members=tuple(m), weights=tuple(self.weight(patterns[n]) for n in m),
                        patterns=tuple(patterns[n] for n in m))
            for m in members
        ]

    def rules(self) -> list[dict[str, Any]]:
        """The learned patterns (weight, blocks that showed them, fused or not), for reports."""
        self._check_fitted()
        return [
            {"pattern": p, "weight": float(w), "blocks": int(c), "fused": self.is_fused(p),
             "default": float(self.defaults_.get(p, 1.0))}
            for p, w, c in zip(self.patterns_, self.weights_, self.counts_)
        ]

    # ---- artifacts ------------------------------------------------------------------------------------------------
    def _learned_arrays(self) -> dict[str, np.ndarray]:
        return {
            "patterns": np.asarray(self.patterns_, dtype=str) if self.patterns_ else np.zeros(0, dtype="<U1"),
            "weights": self.weights_,
            "counts": self.counts_,
            "block_rel_errors": self.block_rel_errors_,
            "block_rel_errors_sum": self.block_rel_errors_sum_,
        }

    def _learned_extra(self) -> dict[str, Any]:
        return {"defaults": dict(self.defaults_)}

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        self.patterns_ = tuple(str(p) for p in np.asarray(arrays["patterns"]).tolist())
        self.weights_ = np.asarray(arrays["weights"], dtype=np.float64)
        self.counts_ = np.asarray(arrays["counts"], dtype=np.int64)
        self.block_rel_errors_ = np.asarray(arrays["block_rel_errors"], dtype=np.float64)
        self.block_rel_errors_sum_ = np.asarray(arrays["block_rel_errors_sum"], dtype=np.float64)
        self.defaults_ = {str(k): float(v) for k, v in dict(extra.get("defaults", {})).items()}
