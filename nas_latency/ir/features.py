"""Per-network features derived from the IR.

Every feature is a sum over layers (counts, MACs, parameters, bytes per op group), so a network's feature
vector is the sum of its layers' vectors. Search spaces rely on that to featurize thousands of architectures
without building their IR (they sum precomputed per-block vectors); tests check both paths agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.ir.network import DEFAULT_DTYPE_BYTES, Layer, Network
from nas_latency.ir.ops import OpKind

OP_GROUPS: dict[str, frozenset[OpKind]] = {
    "conv": frozenset({OpKind.CONV}),
    "grouped_conv": frozenset({OpKind.GROUPED_CONV}),
    "depthwise_conv": frozenset({OpKind.DEPTHWISE_CONV}),
    "linear": frozenset({OpKind.LINEAR}),
    "pool": frozenset({OpKind.AVG_POOL, OpKind.MAX_POOL}),
    "global_pool": frozenset({OpKind.GLOBAL_AVG_POOL, OpKind.GLOBAL_MAX_POOL}),
    "elementwise": frozenset({OpKind.ADD, OpKind.MUL, OpKind.ZERO, OpKind.SCALE}),
    "activation": frozenset(
        {OpKind.RELU, OpKind.RELU6, OpKind.SIGMOID, OpKind.HARD_SIGMOID, OpKind.HARD_SWISH, OpKind.SILU,
         OpKind.GELU, OpKind.TANH, OpKind.SOFTMAX}
    ),
    "batch_norm": frozenset({OpKind.BATCH_NORM}),
    "data_movement": frozenset({OpKind.CONCAT, OpKind.CHANNEL_SHUFFLE, OpKind.TRANSPOSE, OpKind.SLICE,
                                OpKind.PAD}),
    "view": frozenset({OpKind.FLATTEN, OpKind.RESHAPE, OpKind.IDENTITY}),
    # attention and transformer blocks
    "matmul": frozenset({OpKind.MATMUL}),
    "layer_norm": frozenset({OpKind.LAYER_NORM}),
}
GROUP_OF: dict[OpKind, str] = {op: group for group, ops in OP_GROUPS.items() for op in ops}
assert set(GROUP_OF) == set(OpKind), "every op kind belongs to exactly one feature group"

QUANTITIES = ("count", "macs", "params", "bytes_read", "bytes_written")
IR_FEATURE_NAMES: tuple[str, ...] = tuple(f"{g}.{q}" for g in OP_GROUPS for q in QUANTITIES) + tuple(
    f"total.{q}" for q in QUANTITIES
)
_INDEX = {name: i for i, name in enumerate(IR_FEATURE_NAMES)}
_TOTAL = len(OP_GROUPS) * len(QUANTITIES)


def schema_hash(names: Sequence[str]) -> str:
    """A short digest of a feature schema (names and order), stored in model artifacts."""
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def layer_features(layer: Layer, dtype_bytes: int = DEFAULT_DTYPE_BYTES) -> np.ndarray:
    values = (
        1.0,
        float(layer.macs),
        float(layer.params),
        float(layer.bytes_read(dtype_bytes)),
        float(layer.bytes_written(dtype_bytes)),
    )
    vec = np.zeros(len(IR_FEATURE_NAMES))
    base = _INDEX[f"{GROUP_OF[layer.op]}.count"]
    vec[base : base + len(QUANTITIES)] = values
    vec[_TOTAL : _TOTAL + len(QUANTITIES)] = values
    return vec


def layers_features(layers: Iterable[Layer], dtype_bytes: int = DEFAULT_DTYPE_BYTES) -> np.ndarray:
    """Sum of :func:`layer_features` over some layers (a network, or a block of one)."""
    vec = np.zeros(len(IR_FEATURE_NAMES))
    for layer in layers:
        vec += layer_features(layer, dtype_bytes)
    return vec


def network_features(network: Network, dtype_bytes: int = DEFAULT_DTYPE_BYTES) -> np.ndarray:
    return layers_features(network.layers, dtype_bytes)


@dataclass(frozen=True)
class FeatureMatrix:
    """Rows are networks (named by ``rows``), columns are features (named by ``names``)."""

    names: tuple[str, ...]
    values: np.ndarray
    rows: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.values.shape != (len(self.rows), len(self.names)):
            raise InvalidInputError(
                f"feature matrix of shape {self.values.shape} does not match {len(self.rows)} rows "
                f"x {len(self.names)} names"
            )

    @property
    def schema_hash(self) -> str:
        return schema_hash(self.names)

    def column(self, name: str) -> np.ndarray:
        try:
            return self.values[:, self.names.index(name)]
        except ValueError:
            raise KeyError(f"no feature named {name!r}") from None


class IRFeaturizer:
    """The generic featurizer: IR features of any network. Passed to cost models, never hard-wired."""

    def __init__(self, *, dtype_bytes: int = DEFAULT_DTYPE_BYTES) -> None:
        self.dtype_bytes = dtype_bytes

    @property
    def feature_names(self) -> tuple[str, ...]:
        return IR_FEATURE_NAMES

    def transform(self, networks: Sequence[Network]) -> FeatureMatrix:
        values = np.zeros((len(networks), len(IR_FEATURE_NAMES)))
        for i, network in enumerate(networks):
            values[i] = network_features(network, self.dtype_bytes)
        return FeatureMatrix(IR_FEATURE_NAMES, values, tuple(n.name for n in networks))
