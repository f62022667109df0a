"""Framework-free network IR: typed layers in a DAG, with shape, MAC, parameter and byte accounting."""

from nas_latency.ir.builder import NetworkBuilder
from nas_latency.ir.features import IR_FEATURE_NAMES, FeatureMatrix, IRFeaturizer, network_features
from nas_latency.ir.liveness import needed_layers, pruned_features
from nas_latency.ir.network import DEFAULT_DTYPE_BYTES, Layer, Network, Shape, TensorSpec, numel
from nas_latency.ir.ops import OpKind, conv_kind
from nas_latency.ir.passes import canonicalize, eliminate_common_subexpressions, fuse_transposes, remove_identities
from nas_latency.ir.serialize import (
    load_network_json,
    network_from_dict,
    network_from_json,
    network_to_dict,
    network_to_json,
)
from nas_latency.ir.structure import structure_diff, structure_key

__all__ = [
    "DEFAULT_DTYPE_BYTES",
    "IR_FEATURE_NAMES",
    "FeatureMatrix",
    "IRFeaturizer",
    "Layer",
    "Network",
    "NetworkBuilder",
    "OpKind",
    "Shape",
    "TensorSpec",
    "canonicalize",
    "conv_kind",
    "eliminate_common_subexpressions",
    "fuse_transposes",
    "load_network_json",
    "network_features",
    "network_from_dict",
    "network_from_json",
    "network_to_dict",
    "network_to_json",
    "needed_layers",
    "numel",
    "pruned_features",
    "remove_identities",
    "structure_diff",
    "structure_key",
]
