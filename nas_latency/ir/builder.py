"""Build a :class:`Network` op by op, with shape inference. Used by the search-space builders (the fast path),
the frontends and the layer-table reader, so every producer of IR infers shapes the same way."""

from __future__ import annotations

from typing import Sequence

from nas_latency.errors import InvalidInputError
from nas_latency.ir.network import Layer, Network, Shape, TensorSpec, numel
from nas_latency.ir.shapes import (
    channel_shuffle_output_shape,
    check_layer_norm,
    concat_output_shape,
    elementwise_output_shape,
    flatten_output_shape,
    global_pool_output_shape,
    matmul_output_shape,
    normalized_axis,
    pad_output_shape,
    window_output_size,
)
from nas_latency.ir.ops import ACTIVATION_KINDS, OpKind, conv_kind

IntPair = int | tuple[int, int]
Padding = int | tuple[int, int] | tuple[int, int, int, int]


def pair(value: IntPair, *, what: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    if len(value) == 2:
        return (int(value[0]), int(value[1]))
    raise InvalidInputError(f"{what} must be an int or a pair of ints, got {value!r}")


def padding4(value: Padding) -> tuple[int, int, int, int]:
    """Normalize padding to ``(top, left, bottom, right)``."""
    if isinstance(value, int):
        return (value, value, value, value)
    if len(value) == 2:
        return (int(value[0]), int(value[1]), int(value[0]), int(value[1]))
    if len(value) == 4:
        return (int(value[0]), int(value[1]), int(value[2]), int(value[3]))
    raise InvalidInputError(f"padding must be an int, a pair or (top, left, bottom, right), got {value!r}")


def _check_window(
    where: str, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int, int, int],
    dilation: tuple[int, int] = (1, 1),
) -> None:
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise InvalidInputError(
            f"{where}: kernel {kernel}, stride {stride} and dilation {dilation} must be >= 1 and padding {padding} >= 0"
        )


class NetworkBuilder:
    """Append layers one at a time; each method returns the name of the tensor it produced."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._inputs: list[TensorSpec] = []
        self._layers: list[Layer] = []
        self._shapes: dict[str, Shape] = {}
        self._counter = 0

    # ---- bookkeeping ----------------------------------------------------------------------------------
    def shape(self, tensor: str) -> Shape:
        try:
            return self._shapes[tensor]
        except KeyError:
            raise InvalidInputError(f"network {self.name!r}: no tensor named {tensor!r}") from None

    def _fresh(self, op: OpKind, name: str | None) -> str:
        if name is None:
            self._counter += 1
            name = f"{op.value}_{self._counter}"
        if name in self._shapes:
            raise InvalidInputError(f"network {self.name!r}: duplicate tensor name {name!r}")
        return name

    def add_layer(self, layer: Layer) -> str:
        """Append a fully specified layer (used by readers that already know every shape)."""
        for src, shape in zip(layer.inputs, layer.input_shapes):
            if self.shape(src) != shape:
                raise InvalidInputError(
                    f"network {self.name!r}: layer {layer.name!r} expects {shape} from {src!r}, "
                    f"which produces {self.shape(src)}"
                )
        if layer.name in self._shapes:
            raise InvalidInputError(f"network {self.name!r}: duplicate tensor name {layer.name!r}")
        self._layers.append(layer)
        self._shapes[layer.name] = layer.output_shape
        return layer.name

    def _emit(self, op: OpKind, srcs: Sequence[str], out_shape: Shape, name: str | None, **attrs: object) -> str:
        layer = Layer(
            name=self._fresh(op, name),
            op=op,
            inputs=tuple(srcs),
            input_shapes=tuple(self.shape(s) for s in srcs),
            output_shape=tuple(int(d) for d in out_shape),
            **attrs,  # type: ignore[arg-type]
        )
        self._layers.append(layer)
        self._shapes[layer.name] = layer.output_shape
        return layer.name

    def input(self, shape: Sequence[int], name: str = "input") -> str:
        if name in self._shapes:
            raise InvalidInputError(f"network {self.name!r}: duplicate tensor name {name!r}")
        spec = TensorSpec(name, tuple(int(d) for d in shape))
        self._inputs.append(spec)
        self._shapes[name] = spec.shape
        return name

    def build(self, outputs: Sequence[str] | None = None) -> Network:
        if outputs is None:
            if not self._layers:
                raise InvalidInputError(f"network {self.name!r}: has no layers")
            outputs = [self._layers[-1].name]
        return Network(self.name, tuple(self._inputs), tuple(self._layers), tuple(outputs))

    # ---- ops --------------------------------------------------------------------------------------------
    def _where(self, op: OpKind, srcs: Sequence[str]) -> str:
        """How an error names the layer being added: the network, the kind and its inputs."""
        return f"network {self.name!r}: {op.value} of {list(srcs)}"

    def _feature_map(self, src: str, what: str) -> Shape:
        shape = self.shape(src)
        if len(shape) != 4:
            raise InvalidInputError(f"network {self.name!r}: {what} needs an (N, C, H, W) input, {src!r} is {shape}")
        return shape

    def conv(
        self,
        src: str,
        out_channels: int,
        kernel: IntPair,
        *,
        stride: IntPair = 1,
        padding: Padding = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        bias: bool = False,
        name: str | None = None,
    ) -> str:
        n, c, h, w = self._feature_map(src, "conv")
        k, s, d, p = pair(kernel, what="kernel"), pair(stride, what="stride"), pair(dilation, what="dilation"), padding4(padding)
        if groups < 1 or c % groups or out_channels % groups:
            raise InvalidInputError(
                f"network {self.name!r}: conv on {src!r}: groups={groups} must divide in_channels={c} "
                f"and out_channels={out_channels}"
            )
        _check_window(f"network {self.name!r}: conv on {src!r}", k, s, p, d)
        ho = window_output_size(h, k[0], s[0], p[0], p[2], d[0])
        wo = window_output_size(w, k[1], s[1], p[1], p[3], d[1])
        return self._emit(
            conv_kind(c, out_channels, groups), [src], (n, out_channels, ho, wo), name,
            kernel=k, stride=s, padding=p, dilation=d, groups=groups, bias=bias,
        )

    def linear(self, src: str, out_features: int, *, bias: bool = True, name: str | None = None) -> str:
        shape = self.shape(src)
        return self._emit(OpKind.LINEAR, [src], (*shape[:-1], out_features), name, bias=bias)

    def batch_norm(self, src: str, *, affine: bool = True, name: str | None = None) -> str:
        return self._emit(OpKind.BATCH_NORM, [src], self.shape(src), name, affine=affine)

    def scale(self, src: str, *, name: str | None = None) -> str:
        """One elementwise pass with a constant operand (``x * c``, ``x + c``, ...): the input's shape."""
        return self._emit(OpKind.SCALE, [src], self.shape(src), name)

    def layer_norm(self, src: str, *, axis: int = -1, affine: bool = True, bias: bool = True,
                   name: str | None = None) -> str:
        """Normalize over the dimensions from ``axis`` on (torch ``LayerNorm(shape[axis:])``), with a learned scale
        (``affine``) and shift (``bias``)."""
        shape = self.shape(src)
        ax = check_layer_norm(shape, axis, where=self._where(OpKind.LAYER_NORM, [src]))
        return self._emit(OpKind.LAYER_NORM, [src], shape, name, axis=ax, affine=affine, bias=bias)

    def matmul(self, left: str, right: str, *, name: str | None = None) -> str:
        """The product of two activations, ``(..., M, K) @ (..., K, N)`` (with weights: :meth:`linear`)."""
        out = matmul_output_shape(self.shape(left), self.shape(right), where=self._where(OpKind.MATMUL, [left, right]))
        return self._emit(OpKind.MATMUL, [left, right], out, name)

    def pad(self, src: str, padding: Padding, *, name: str | None = None) -> str:
        """An explicit pad (reflect, replicate or constant) of an ``(N, C, H, W)`` input; ``padding`` as for
        :meth:`conv`."""
        p = padding4(padding)
        out = pad_output_shape(self.shape(src), p, where=self._where(OpKind.PAD, [src]))
        return self._emit(OpKind.PAD, [src], out, name, padding=p)

    def slice(self, src: str, axis: int, size: int, *, name: str | None = None) -> str:
        """``size`` consecutive elements of dimension ``axis`` (a narrow, or one part of a split or chunk)."""
        shape = self.shape(src)
        where = self._where(OpKind.SLICE, [src])
        ax = normalized_axis(axis, len(shape), where=where)
        if not 1 <= size <= shape[ax]:
            raise InvalidInputError(f"{where}: size {size} of dimension {ax} must be in 1..{shape[ax]}")
        return self._emit(OpKind.SLICE, [src], tuple(size if i == ax else d for i, d in enumerate(shape)), name)

    def select(self, src: str, axis: int, *, name: str | None = None) -> str:
        """One index of dimension ``axis``, which the output drops (``x[:, 0]``, one part of an unbind)."""
        shape = self.shape(src)
        where = self._where(OpKind.SLICE, [src])
        ax = normalized_axis(axis, len(shape), where=where)
        if len(shape) < 2:
            raise InvalidInputError(f"{where}: cannot drop the only dimension of {shape}")
        return self._emit(OpKind.SLICE, [src], shape[:ax] + shape[ax + 1:], name)

    def transpose(self, src: str, perm: Sequence[int], *, name: str | None = None) -> str:
        """Reorder the dimensions: output dimension ``i`` is input dimension ``perm[i]``."""
        shape = self.shape(src)
        if sorted(perm) != list(range(len(shape))):
            raise InvalidInputError(f"{self._where(OpKind.TRANSPOSE, [src])}: {list(perm)} is not a permutation of "
                                    f"the {len(shape)} dimensions of {shape}")
        return self._emit(OpKind.TRANSPOSE, [src], tuple(shape[i] for i in perm), name)

    def activation(self, src: str, op: OpKind, *, axis: int | None = None, name: str | None = None) -> str:
        if op not in ACTIVATION_KINDS:
            raise InvalidInputError(f"network {self.name!r}: {op.value} is not an activation")
        if op is OpKind.SOFTMAX and axis is None:
            axis = len(self.shape(src)) - 1
        elif op is OpKind.SOFTMAX:
            normalized_axis(axis, len(self.shape(src)), where=self._where(op, [src]))
        return self._emit(op, [src], self.shape(src), name, axis=axis if op is OpKind.SOFTMAX else None)

    def relu(self, src: str, *, name: str | None = None) -> str:
        return self.activation(src, OpKind.RELU, name=name)

    def _pool(
        self, op: OpKind, src: str, kernel: IntPair, stride: IntPair | None, padding: Padding,
        count_include_pad: bool, ceil_mode: bool, name: str | None,
    ) -> str:
        n, c, h, w = self._feature_map(src, op.value)
        k = pair(kernel, what="kernel")
        s = pair(stride if stride is not None else kernel, what="stride")
        p = padding4(padding)
        _check_window(f"network {self.name!r}: {op.value} on {src!r}", k, s, p)
        ho = window_output_size(h, k[0], s[0], p[0], p[2], 1, ceil_mode)
        wo = window_output_size(w, k[1], s[1], p[1], p[3], 1, ceil_mode)
        return self._emit(
            op, [src], (n, c, ho, wo), name, kernel=k, stride=s, padding=p,
            count_include_pad=count_include_pad if op is OpKind.AVG_POOL else False, ceil_mode=ceil_mode,
        )

    def avg_pool(
        self, src: str, kernel: IntPair, *, stride: IntPair | None = None, padding: Padding = 0,
        count_include_pad: bool = True, ceil_mode: bool = False, name: str | None = None,
    ) -> str:
        return self._pool(OpKind.AVG_POOL, src, kernel, stride, padding, count_include_pad, ceil_mode, name)

    def max_pool(
        self, src: str, kernel: IntPair, *, stride: IntPair | None = None, padding: Padding = 0,
        ceil_mode: bool = False, name: str | None = None,
    ) -> str:
        return self._pool(OpKind.MAX_POOL, src, kernel, stride, padding, False, ceil_mode, name)

    def _global_pool(self, op: OpKind, src: str, name: str | None) -> str:
        out = global_pool_output_shape(self.shape(src), where=self._where(op, [src]))
        return self._emit(op, [src], out, name)

    def global_avg_pool(self, src: str, *, name: str | None = None) -> str:
        return self._global_pool(OpKind.GLOBAL_AVG_POOL, src, name)

    def global_max_pool(self, src: str, *, name: str | None = None) -> str:
        return self._global_pool(OpKind.GLOBAL_MAX_POOL, src, name)

    def _elementwise(self, op: OpKind, srcs: Sequence[str], name: str | None) -> str:
        out = elementwise_output_shape([self.shape(s) for s in srcs], where=self._where(op, srcs))
        return self._emit(op, srcs, out, name)

    def add(self, *srcs: str, name: str | None = None) -> str:
        return self._elementwise(OpKind.ADD, srcs, name)

    def mul(self, *srcs: str, name: str | None = None) -> str:
        return self._elementwise(OpKind.MUL, srcs, name)

    def concat(self, srcs: Sequence[str], *, axis: int = 1, name: str | None = None) -> str:
        if not srcs:
            raise InvalidInputError(f"network {self.name!r}: concat needs at least one input")
        shapes = [self.shape(s) for s in srcs]
        where = f"{self._where(OpKind.CONCAT, srcs)} on axis {axis}"
        out = concat_output_shape(shapes, axis, where=where)
        return self._emit(OpKind.CONCAT, srcs, out, name, axis=normalized_axis(axis, len(shapes[0]), where=where))

    def channel_shuffle(self, src: str, groups: int, *, name: str | None = None) -> str:
        out = channel_shuffle_output_shape(self.shape(src), groups, where=self._where(OpKind.CHANNEL_SHUFFLE, [src]))
        return self._emit(OpKind.CHANNEL_SHUFFLE, [src], out, name, groups=groups)

    def flatten(self, src: str, *, axis: int = 1, name: str | None = None) -> str:
        where = self._where(OpKind.FLATTEN, [src])
        shape = self.shape(src)
        out = flatten_output_shape(shape, axis, where=where)
        return self._emit(OpKind.FLATTEN, [src], out, name, axis=normalized_axis(axis, len(shape), where=where))

    def reshape(self, src: str, shape: Sequence[int], *, name: str | None = None) -> str:
        if numel(tuple(shape)) != numel(self.shape(src)):
            raise InvalidInputError(f"network {self.name!r}: cannot reshape {src!r} of {self.shape(src)} to {tuple(shape)}")
        return self._emit(OpKind.RESHAPE, [src], tuple(shape), name)

    def zero(self, src: str, *, name: str | None = None) -> str:
        return self._emit(OpKind.ZERO, [src], self.shape(src), name)

    def identity(self, src: str, *, name: str | None = None) -> str:
        return self._emit(OpKind.IDENTITY, [src], self.shape(src), name)
