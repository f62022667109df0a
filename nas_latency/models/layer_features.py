"""Per-layer features for the device-specific layer models (ANNETTE's layer models, ResPerfNet).

A *layer* here is one IR :class:`~nas_latency.ir.Layer` as it runs on its own (a micro-kernel). Its features are
shape-derived, so two layers with the same configuration have the same row; :func:`layer_key` names that
configuration (names and graph position left out), and is what micro-kernel measurements are stored under.

Families group op kinds that cost alike and share a model (``identity``, ``flatten`` and ``reshape`` are
``view``; both global pools are ``global_pool``); :func:`layer_flops` counts arithmetic the way a roofline
needs it (2 per MAC for convolutions, linear layers and matmuls, one per window element for pools, per element for the
rest; 0 for views).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from nas_latency.ir import FeatureMatrix, Layer, OpKind, numel
from nas_latency.ir.ops import ACTIVATION_KINDS, CONV_KINDS, VIEW_KINDS

FAMILIES: tuple[str, ...] = (
    "conv", "depthwise_conv", "grouped_conv", "linear", "avg_pool", "max_pool", "global_pool", "add", "mul",
    "concat", "relu", "activation", "softmax", "batch_norm", "channel_shuffle", "zero", "view",
    "matmul", "layer_norm", "transpose", "scale", "slice", "pad",
)
_FAMILY: dict[OpKind, str] = {
    OpKind.CONV: "conv",
    OpKind.DEPTHWISE_CONV: "depthwise_conv",
    OpKind.GROUPED_CONV: "grouped_conv",
    OpKind.LINEAR: "linear",
    OpKind.MATMUL: "matmul",
    OpKind.AVG_POOL: "avg_pool",
    OpKind.MAX_POOL: "max_pool",
    OpKind.GLOBAL_AVG_POOL: "global_pool",
    OpKind.GLOBAL_MAX_POOL: "global_pool",
    OpKind.ADD: "add",
    OpKind.MUL: "mul",
    OpKind.SCALE: "scale",
    OpKind.CONCAT: "concat",
    OpKind.RELU: "relu",
    OpKind.RELU6: "relu",
    OpKind.SOFTMAX: "softmax",
    OpKind.BATCH_NORM: "batch_norm",
    OpKind.LAYER_NORM: "layer_norm",
    OpKind.CHANNEL_SHUFFLE: "channel_shuffle",
    OpKind.TRANSPOSE: "transpose",
    OpKind.SLICE: "slice",
    OpKind.PAD: "pad",
    OpKind.ZERO: "zero",
    OpKind.FLATTEN: "view",
    OpKind.RESHAPE: "view",
    OpKind.IDENTITY: "view",
}
for _op in ACTIVATION_KINDS:
    _FAMILY.setdefault(_op, "activation")
assert set(_FAMILY) == set(OpKind) and set(_FAMILY.values()) <= set(FAMILIES)

#: Relative arithmetic per output element of element-wise kinds (ReLU = 1).
_ELEMENT_OPS: dict[OpKind, float] = {
    OpKind.RELU: 1, OpKind.RELU6: 2, OpKind.SIGMOID: 4, OpKind.HARD_SIGMOID: 3, OpKind.HARD_SWISH: 4,
    OpKind.SILU: 5, OpKind.GELU: 8, OpKind.TANH: 4, OpKind.SOFTMAX: 5, OpKind.BATCH_NORM: 2, OpKind.ZERO: 1,
    OpKind.CHANNEL_SHUFFLE: 0, OpKind.CONCAT: 0, OpKind.TRANSPOSE: 0, OpKind.SLICE: 0, OpKind.LAYER_NORM: 8,
    OpKind.SCALE: 1, OpKind.PAD: 0,
}


def family(layer_or_op: Layer | OpKind) -> str:
    op = layer_or_op.op if isinstance(layer_or_op, Layer) else layer_or_op
    return _FAMILY[op]


def layer_flops(layer: Layer) -> float:
    """Arithmetic operations of one run of the layer (whole batch)."""
    op = layer.op
    if op in CONV_KINDS or op is OpKind.LINEAR or op is OpKind.MATMUL:
        return 2.0 * layer.macs
    if op in (OpKind.AVG_POOL, OpKind.MAX_POOL):
        assert layer.kernel is not None
        return float(numel(layer.output_shape) * layer.kernel[0] * layer.kernel[1])
    if op in (OpKind.GLOBAL_AVG_POOL, OpKind.GLOBAL_MAX_POOL):
        return float(numel(layer.input_shapes[0]))
    if op in (OpKind.ADD, OpKind.MUL):
        return float(numel(layer.output_shape) * (len(layer.inputs) - 1))
    if op in VIEW_KINDS:
        return 0.0
    return float(numel(layer.output_shape) * _ELEMENT_OPS.get(op, 1))


def layer_bytes(layer: Layer) -> float:
    """Bytes moved by one run: inputs and weights read, output written (float32)."""
    return float(layer.bytes_read() + layer.bytes_written())


def layer_key(layer: Layer) -> str:
    """The layer's configuration as a compact, canonical string (no names): equal keys, equal work."""

    def dims(shape: Sequence[int]) -> str:
        return "x".join(str(d) for d in shape)

    parts = [layer.op.value, "i=" + ",".join(dims(s) for s in layer.input_shapes), "o=" + dims(layer.output_shape)]
    if layer.kernel is not None:
        parts.append("k=" + dims(layer.kernel))
    if layer.stride is not None:
        parts.append("s=" + dims(layer.stride))
    if layer.padding is not None:
        parts.append("p=" + dims(layer.padding))
    if layer.dilation is not None and layer.dilation != (1, 1):
        parts.append("d=" + dims(layer.dilation))
    if layer.groups != 1:
        parts.append(f"g={layer.groups}")
    if layer.bias:
        parts.append("bias")
    if layer.affine:
        parts.append("affine")
    if layer.count_include_pad:
        parts.append("cip")
    if layer.ceil_mode:
        parts.append("ceil")
    if layer.axis is not None:
        parts.append(f"a={layer.axis}")
    return ";".join(parts)


_NUMERIC = (
    "log_flops", "log_bytes", "log_bytes_in", "log_bytes_out", "log_weight_bytes", "log_numel_out", "log_batch",
    "log_cin", "log_cout", "log_h_in", "log_w_in", "log_h_out", "log_w_out", "kernel_h", "kernel_w", "stride",
    "log_groups", "log_cin_per_group", "n_inputs", "log_intensity", "align_cin", "align_cout",
)
#: Raw (unlogged) quantities the roofline models read.
RAW = ("flops", "bytes")
LAYER_FEATURE_NAMES: tuple[str, ...] = RAW + _NUMERIC + tuple(f"family.{f}" for f in FAMILIES)


def _log2(value: float) -> float:
    return math.log2(max(float(value), 0.0) + 1.0)


def _alignment(channels: int) -> float:
    """log2 of the largest power of two (up to 64) dividing ``channels``: vector kernels run best on multiples
    of their block size (8 or 16 float32 lanes)."""
    power = 0
    while power < 6 and channels % (2 ** (power + 1)) == 0:
        power += 1
    return float(power)


def layer_feature_vector(layer: Layer) -> np.ndarray:
    flops = layer_flops(layer)
    moved = layer_bytes(layer)
    in_shape = layer.input_shapes[0]
    out_shape = layer.output_shape
    spatial_in = in_shape[2:4] if len(in_shape) >= 4 else (1, 1)
    spatial_out = out_shape[2:4] if len(out_shape) >= 4 else (1, 1)
    cin = in_shape[1] if len(in_shape) > 1 else in_shape[-1]
    cout = out_shape[1] if len(out_shape) > 1 else out_shape[-1]
    if layer.op is OpKind.LINEAR or layer.op is OpKind.MATMUL:
        cin, cout = in_shape[-1], out_shape[-1]
    elif layer.op is OpKind.LAYER_NORM:  # its "channels" are the features of a normalized row, as batch norm's
        cin = cout = numel(in_shape[layer.norm_axis:])
    kernel = layer.kernel or (1, 1)
    stride = layer.stride[0] if layer.stride else 1
    values = [
        flops, moved,
        _log2(flops), _log2(moved), _log2(layer.activation_bytes_read()), _log2(layer.bytes_written()),
        _log2(layer.weight_bytes()), _log2(numel(out_shape)), _log2(out_shape[0]),
        _log2(cin), _log2(cout), _log2(spatial_in[0]), _log2(spatial_in[1]), _log2(spatial_out[0]),
        _log2(spatial_out[1]), float(kernel[0]), float(kernel[1]), float(stride), _log2(layer.groups),
        _log2(cin / max(layer.groups, 1)), float(len(layer.inputs)), _log2(flops / moved if moved else 0.0),
        _alignment(cin // max(layer.groups, 1)), _alignment(cout // max(layer.groups, 1)),
    ]
    onehot = [1.0 if family(layer) == f else 0.0 for f in FAMILIES]
    return np.asarray(values + onehot, dtype=np.float64)


class LayerFeaturizer:
    """Layers → a :class:`~nas_latency.ir.FeatureMatrix` (rows named by :func:`layer_key`)."""

    @property
    def feature_names(self) -> tuple[str, ...]:
        return LAYER_FEATURE_NAMES

    def transform(self, layers: Sequence[Layer]) -> FeatureMatrix:
        values = np.zeros((len(layers), len(LAYER_FEATURE_NAMES)))
        for i, layer in enumerate(layers):
            values[i] = layer_feature_vector(layer)
        return FeatureMatrix(LAYER_FEATURE_NAMES, values, tuple(layer_key(layer) for layer in layers))


def families_of(features: FeatureMatrix) -> np.ndarray:
    """The family name of each row, read back from the one-hot columns."""
    start = features.names.index(f"family.{FAMILIES[0]}")
    onehot = features.values[:, start : start + len(FAMILIES)]
    if onehot.shape[0] and not np.all(onehot.sum(axis=1) == 1):
        raise ValueError("feature rows without exactly one family set")
    return np.asarray(FAMILIES, dtype=object)[onehot.argmax(axis=1)] if onehot.shape[0] else np.zeros(0, dtype=object)
