"""Framework-free network IR: a DAG of typed layers with shapes.

Shapes always include the batch dimension (``(N, C, H, W)`` for feature maps, ``(N, F)`` after flattening), so
every derived quantity of a layer (MACs, bytes) is for the whole batch. Layers are stored in topological order;
a layer names its inputs by the names of the layers (or network inputs) that produce them.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

from nas_latency.errors import InvalidInputError
from nas_latency.ir.ops import (
    ACTIVATION_KINDS,
    CONV_KINDS,
    ELEMENTWISE_BINARY_KINDS,
    GLOBAL_POOL_KINDS,
    VIEW_KINDS,
    WINDOW_POOL_KINDS,
    OpKind,
    conv_kind,
)
from nas_latency.ir.shapes import (
    Shape,
    channel_shuffle_output_shape,
    check_layer_norm,
    check_slice,
    check_transpose,
    concat_output_shape,
    elementwise_output_shape,
    flatten_output_shape,
    global_pool_output_shape,
    matmul_output_shape,
    normalized_axis,
    pad_output_shape,
    window_output_size,
)

DEFAULT_DTYPE_BYTES = 4  # float32
#: kinds whose output has the shape of their one input
SHAPE_KEEPING_KINDS = ACTIVATION_KINDS | {OpKind.BATCH_NORM, OpKind.LAYER_NORM, OpKind.CHANNEL_SHUFFLE, OpKind.ZERO,
                                          OpKind.IDENTITY, OpKind.SCALE}


def numel(shape: Shape) -> int:
    """Number of elements of a tensor of this shape."""
    return math.prod(shape)


@dataclass(frozen=True, slots=True)
class Layer:
    """One operator application.

    Attributes that do not apply to an op kind stay at their defaults (``None``, ``1`` or ``False``). ``padding`` is
    ``(top, left, bottom, right)``. ``bias`` applies to conv and linear layers and to layer norm (its learned
    shift), ``affine`` to batch norm (learned scale and shift) and layer norm (its learned scale),
    ``count_include_pad`` and ``ceil_mode`` to window pools, ``axis`` to concat, softmax, flatten and layer norm
    (the first normalized dimension; default the last). ``scale`` is one elementwise pass with a constant operand
    (``x * c``, ``x / c``, ``x + c``, ``x - c``: an attention's scaling, a positional embedding); ``matmul``
    multiplies two activations (``(..., M, K) @ (..., K, N)``; a product with learned weights is ``linear``);
    ``transpose`` reorders dimensions (the IR keeps the shapes, not the permutation: what it costs is the data it
    moves); ``pad`` copies its input into a larger one (``padding`` as for windows; reflect, replicate or constant:
    the IR keeps the shape, not the mode); ``slice`` copies out a part of its input (a narrow, select, or one part
    of a split, chunk or unbind: the IR keeps the shapes, not the offsets) and reads only that part.
    """

    name: str
    op: OpKind
    inputs: tuple[str, ...]
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: tuple[int, int, int, int] | None = None
    dilation: tuple[int, int] | None = None
    groups: int = 1
    bias: bool = False
    affine: bool = False
    count_include_pad: bool = False
    ceil_mode: bool = False
    axis: int | None = None

    # ---- derived quantities -------------------------------------------------------------------------
    @property
    def in_channels(self) -> int:
        return self.input_shapes[0][1]

    @property
    def out_channels(self) -> int:
        return self.output_shape[1]

    @property
    def macs(self) -> int:
        """Multiply-accumulates of convolutions and linear layers (whole batch); 0 for every other kind."""
        if self.op in CONV_KINDS:
            assert self.kernel is not None
            return numel(self.output_shape) * (self.in_channels // self.groups) * self.kernel[0] * self.kernel[1]
        if self.op is OpKind.LINEAR or self.op is OpKind.MATMUL:
            return numel(self.output_shape) * self.input_shapes[0][-1]
        return 0

    @property
    def params(self) -> int:
        """Learned parameters (batch-norm running statistics are buffers, not parameters)."""
        if self.op in CONV_KINDS:
            assert self.kernel is not None
            weights = self.out_channels * (self.in_channels // self.groups) * self.kernel[0] * self.kernel[1]
            return weights + (self.out_channels if self.bias else 0)
        if self.op is OpKind.LINEAR:
            in_features, out_features = self.input_shapes[0][-1], self.output_shape[-1]
            return in_features * out_features + (out_features if self.bias else 0)
        if self.op is OpKind.BATCH_NORM:
            return 2 * self.out_channels if self.affine else 0
        if self.op is OpKind.LAYER_NORM:
            return numel(self.output_shape[self.norm_axis:]) * (int(self.affine) + int(self.bias))
        return 0

    @property
    def norm_axis(self) -> int:
        """The first dimension a layer norm normalizes (``axis``, default the last), counted from 0."""
        rank = len(self.input_shapes[0])
        return (self.axis if self.axis is not None else -1) % rank

    def activation_bytes_read(self, dtype_bytes: int = DEFAULT_DTYPE_BYTES) -> int:
        """Bytes of input activations read; 0 for view-like kinds (flatten, reshape, identity); the part it copies
        for a slice."""
        if self.op in VIEW_KINDS:
            return 0
        if self.op is OpKind.SLICE:
            return numel(self.output_shape) * dtype_bytes
        return sum(numel(s) for s in self.input_shapes) * dtype_bytes

    def weight_bytes(self, dtype_bytes: int = DEFAULT_DTYPE_BYTES) -> int:
        return self.params * dtype_bytes

    def bytes_read(self, dtype_bytes: int = DEFAULT_DTYPE_BYTES) -> int:
        """Input activations plus weights."""
        return self.activation_bytes_read(dtype_bytes) + self.weight_bytes(dtype_bytes)

    def bytes_written(self, dtype_bytes: int = DEFAULT_DTYPE_BYTES) -> int:
        """Output activation bytes; 0 for view-like kinds."""
        if self.op in VIEW_KINDS:
            return 0
        return numel(self.output_shape) * dtype_bytes

    def arithmetic_intensity(self, dtype_bytes: int = DEFAULT_DTYPE_BYTES) -> float:
        """FLOPs (2 per MAC) per byte moved; 0 where nothing is moved."""
        moved = self.bytes_read(dtype_bytes) + self.bytes_written(dtype_bytes)
        return 2.0 * self.macs / moved if moved else 0.0

    def check(self) -> None:
        """Raise :class:`InvalidInputError` naming this layer if its attributes are inconsistent."""
        where = f"layer {self.name!r} ({self.op.value})"
        if len(self.inputs) != len(self.input_shapes):
            raise InvalidInputError(f"{where}: {len(self.inputs)} inputs but {len(self.input_shapes)} input shapes")
        if not self.inputs:
            raise InvalidInputError(f"{where}: has no inputs")
        for shape in (*self.input_shapes, self.output_shape):
            if not shape or any((not isinstance(d, int)) or d <= 0 for d in shape):
                raise InvalidInputError(f"{where}: bad shape {shape!r} (dimensions must be positive integers)")
        if self.op in CONV_KINDS or self.op in WINDOW_POOL_KINDS:
            if self.kernel is None or self.stride is None or self.padding is None:
                raise InvalidInputError(f"{where}: needs kernel, stride and padding")
            if min(self.kernel) < 1 or min(self.stride) < 1 or min(self.dilation or (1,)) < 1 or min(self.padding) < 0:
                raise InvalidInputError(
                    f"{where}: kernel {self.kernel}, stride {self.stride} and dilation {self.dilation} must be >= 1 "
                    f"and padding {self.padding} >= 0"
                )
            if len(self.input_shapes[0]) != 4 or len(self.output_shape) != 4:
                raise InvalidInputError(
                    f"{where}: expects (N, C, H, W) input and output, got {self.input_shapes[0]} -> {self.output_shape}"
                )
            n, c, h, w = self.input_shapes[0]
            dilation = self.dilation or (1, 1)
            expected_hw = (
                window_output_size(h, self.kernel[0], self.stride[0], self.padding[0], self.padding[2], dilation[0],
                                   self.ceil_mode),
                window_output_size(w, self.kernel[1], self.stride[1], self.padding[1], self.padding[3], dilation[1],
                                   self.ceil_mode),
            )
            out_c = self.output_shape[1] if self.op in CONV_KINDS else c
            if self.output_shape != (n, out_c, *expected_hw):
                raise InvalidInputError(
                    f"{where}: output shape {self.output_shape} does not follow from input {self.input_shapes[0]}, "
                    f"kernel {self.kernel}, stride {self.stride}, padding {self.padding} "
                    f"(expected {(n, out_c, *expected_hw)})"
                )
        if self.op is OpKind.LINEAR and self.output_shape[:-1] != self.input_shapes[0][:-1]:
            raise InvalidInputError(
                f"{where}: output shape {self.output_shape} must keep the leading dimensions of input {self.input_shapes[0]}"
            )
        self._check_kind(where)
        if self.op in CONV_KINDS:
            if self.groups < 1 or self.in_channels % self.groups or self.out_channels % self.groups:
                raise InvalidInputError(
                    f"{where}: groups={self.groups} must divide in_channels={self.in_channels} "
                    f"and out_channels={self.out_channels}"
                )
            expected = conv_kind(self.in_channels, self.out_channels, self.groups)
            if expected is not self.op:
                raise InvalidInputError(f"{where}: groups={self.groups} makes this a {expected.value}")

    def _check_kind(self, where: str) -> None:
        """The shape rules of the kinds besides windows and linear layers: the rules the builder infers with."""
        op, shapes, out = self.op, self.input_shapes, self.output_shape
        if op in ELEMENTWISE_BINARY_KINDS:
            expected = elementwise_output_shape(shapes, where=where)
            if out != expected:
                raise InvalidInputError(f"{where}: output shape {out} does not follow from inputs {list(shapes)} "
                                        f"(expected {expected})")
            return
        if op is OpKind.MATMUL:
            if len(shapes) != 2:
                raise InvalidInputError(f"{where}: takes two inputs, got {len(shapes)}")
            expected = matmul_output_shape(shapes[0], shapes[1], where=where)
            if out != expected:
                raise InvalidInputError(f"{where}: output shape {out} does not follow from inputs {list(shapes)} "
                                        f"(expected {expected})")
            return
        if op is not OpKind.CONCAT and len(shapes) != 1:
            raise InvalidInputError(f"{where}: takes one input, got {len(shapes)}")
        if self.groups != 1 and op not in CONV_KINDS and op is not OpKind.CHANNEL_SHUFFLE:
            raise InvalidInputError(f"{where}: groups applies to convolutions and channel_shuffle only, got "
                                    f"{self.groups}")
        source = shapes[0]
        if op is OpKind.CONCAT:
            expected = concat_output_shape(shapes, self.axis if self.axis is not None else 1, where=where)
        elif op is OpKind.CHANNEL_SHUFFLE:
            expected = channel_shuffle_output_shape(source, self.groups, where=where)
        elif op in SHAPE_KEEPING_KINDS:
            expected = source
            if op is OpKind.SOFTMAX and self.axis is not None:
                normalized_axis(self.axis, len(source), where=where)
            if op is OpKind.BATCH_NORM and len(source) < 2:
                raise InvalidInputError(f"{where}: needs an input with a channel dimension, got {source}")
            if op is OpKind.LAYER_NORM:
                check_layer_norm(source, self.axis if self.axis is not None else -1, where=where)
        elif op in GLOBAL_POOL_KINDS:
            expected = global_pool_output_shape(source, where=where)
        elif op is OpKind.FLATTEN:
            expected = flatten_output_shape(source, self.axis if self.axis is not None else 1, where=where)
        elif op is OpKind.TRANSPOSE:
            check_transpose(source, out, where=where)
            return
        elif op is OpKind.SLICE:
            check_slice(source, out, where=where)
            return
        elif op is OpKind.PAD:
            expected = pad_output_shape(source, self.padding, where=where)
        else:  # windows and linear layers: checked by the caller; a reshape (also a frontend's stand-in for a
            return  # skipped node, which may change the element count) takes any output shape
        if out != expected:
            raise InvalidInputError(f"{where}: output shape {out} does not follow from input {source} "
                                    f"(expected {expected})")


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A named network input."""

    name: str
    shape: Shape


@dataclass(frozen=True)
class Network:
    """A DAG of layers in topological order. Construction checks names, references and shapes."""

    name: str
    inputs: tuple[TensorSpec, ...]
    layers: tuple[Layer, ...]
    outputs: tuple[str, ...]
    _by_name: dict[str, Layer] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"network {self.name!r}"
        if not self.inputs:
            raise InvalidInputError(f"{where}: has no inputs")
        shapes: dict[str, Shape] = {}
        for spec in self.inputs:
            if spec.name in shapes:
                raise InvalidInputError(f"{where}: duplicate input name {spec.name!r}")
            if not spec.shape or any((not isinstance(d, int)) or d <= 0 for d in spec.shape):
                raise InvalidInputError(
                    f"{where}: input {spec.name!r} has bad shape {spec.shape!r} (dimensions must be positive integers)"
                )
            shapes[spec.name] = spec.shape
        by_name: dict[str, Layer] = {}
        for layer in self.layers:
            if layer.name in shapes:
                raise InvalidInputError(f"{where}: duplicate layer name {layer.name!r}")
            layer.check()
            for src, shape in zip(layer.inputs, layer.input_shapes):
                if src not in shapes:
                    raise InvalidInputError(
                        f"{where}: layer {layer.name!r} reads {src!r}, which is not an input or an earlier layer"
                    )
                if shapes[src] != shape:
                    raise InvalidInputError(
                        f"{where}: layer {layer.name!r} expects {shape} from {src!r}, which produces {shapes[src]}"
                    )
            shapes[layer.name] = layer.output_shape
            by_name[layer.name] = layer
        if not self.outputs:
            raise InvalidInputError(f"{where}: has no outputs")
        for out in self.outputs:
            if out not in shapes:
                raise InvalidInputError(f"{where}: output {out!r} is not a layer or input")
        object.__setattr__(self, "_by_name", by_name)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def layer(self, name: str) -> Layer:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"network {self.name!r} has no layer {name!r}") from None

    @property
    def batch_size(self) -> int:
        return self.inputs[0].shape[0]

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    def bytes_read(self, dtype_bytes: int = DEFAULT_DTYPE_BYTES) -> int:
        return sum(layer.bytes_read(dtype_bytes) for layer in self.layers)

    def bytes_written(self, dtype_bytes: int = DEFAULT_DTYPE_BYTES) -> int:
        return sum(layer.bytes_written(dtype_bytes) for layer in self.layers)

    def arithmetic_intensity(self, dtype_bytes: int = DEFAULT_DTYPE_BYTES) -> float:
        moved = self.bytes_read(dtype_bytes) + self.bytes_written(dtype_bytes)
        return 2.0 * self.macs / moved if moved else 0.0

    def op_counts(self) -> Counter[OpKind]:
        return Counter(layer.op for layer in self.layers)

    def consumers(self) -> dict[str, list[str]]:
        """For every input and layer name, the names of the layers that read it."""
        users: dict[str, list[str]] = {spec.name: [] for spec in self.inputs}
        for layer in self.layers:
            users[layer.name] = []
            for src in layer.inputs:
                users[src].append(layer.name)
        return users
