"""The closed set of operator kinds the IR can represent, and what each kind needs."""

from __future__ import annotations

from enum import Enum


class OpKind(str, Enum):
    """Operator kinds. The value is the stable name used in JSON layer tables and feature names."""

    CONV = "conv"
    GROUPED_CONV = "grouped_conv"
    DEPTHWISE_CONV = "depthwise_conv"
    LINEAR = "linear"
    MATMUL = "matmul"
    AVG_POOL = "avg_pool"
    MAX_POOL = "max_pool"
    GLOBAL_AVG_POOL = "global_avg_pool"
    GLOBAL_MAX_POOL = "global_max_pool"
    ADD = "add"
    MUL = "mul"
    SCALE = "scale"
    CONCAT = "concat"
    RELU = "relu"
    RELU6 = "relu6"
    SIGMOID = "sigmoid"
    HARD_SIGMOID = "hard_sigmoid"
    HARD_SWISH = "hard_swish"
    SILU = "silu"
    GELU = "gelu"
    TANH = "tanh"
    SOFTMAX = "softmax"
    BATCH_NORM = "batch_norm"
    LAYER_NORM = "layer_norm"
    CHANNEL_SHUFFLE = "channel_shuffle"
    TRANSPOSE = "transpose"
    SLICE = "slice"
    PAD = "pad"
    FLATTEN = "flatten"
    RESHAPE = "reshape"
    ZERO = "zero"
    IDENTITY = "identity"


CONV_KINDS: frozenset[OpKind] = frozenset({OpKind.CONV, OpKind.GROUPED_CONV, OpKind.DEPTHWISE_CONV})
WINDOW_POOL_KINDS: frozenset[OpKind] = frozenset({OpKind.AVG_POOL, OpKind.MAX_POOL})
GLOBAL_POOL_KINDS: frozenset[OpKind] = frozenset({OpKind.GLOBAL_AVG_POOL, OpKind.GLOBAL_MAX_POOL})
ACTIVATION_KINDS: frozenset[OpKind] = frozenset(
    {
        OpKind.RELU,
        OpKind.RELU6,
        OpKind.SIGMOID,
        OpKind.HARD_SIGMOID,
        OpKind.HARD_SWISH,
        OpKind.SILU,
        OpKind.GELU,
        OpKind.TANH,
        OpKind.SOFTMAX,
    }
)
ELEMENTWISE_BINARY_KINDS: frozenset[OpKind] = frozenset({OpKind.ADD, OpKind.MUL})
# Kinds that move no data at run time: the output is a view of (or the same tensor as) the input.
VIEW_KINDS: frozenset[OpKind] = frozenset({OpKind.FLATTEN, OpKind.RESHAPE, OpKind.IDENTITY})
# Kinds whose result does not depend on the order of their inputs.
COMMUTATIVE_KINDS: frozenset[OpKind] = frozenset({OpKind.ADD, OpKind.MUL})
# Kinds with learned weights: two such layers on the same input are different computations.
WEIGHTED_KINDS: frozenset[OpKind] = CONV_KINDS | {OpKind.LINEAR, OpKind.BATCH_NORM, OpKind.LAYER_NORM}


def conv_kind(in_channels: int, out_channels: int, groups: int) -> OpKind:
    """Classify a convolution by its grouping: ``groups == in_channels > 1`` is depthwise
    (channel multiplier allowed: ``out_channels`` a multiple of ``in_channels``)."""
    if groups == 1:
        return OpKind.CONV
    if groups == in_channels and out_channels % in_channels == 0:
        return OpKind.DEPTHWISE_CONV
    return OpKind.GROUPED_CONV


def parse_op_kind(value: str, *, where: str) -> OpKind:
    """Parse an op-kind name, with an error that names where the bad name came from."""
    try:
        return OpKind(value)
    except ValueError:
        from nas_latency.errors import InvalidInputError

        known = ", ".join(k.value for k in OpKind)
        raise InvalidInputError(f"{where}: unknown op kind {value!r}; known kinds: {known}") from None
