"""Execute any IR :class:`~nas_latency.ir.Network` with real torch layers.

:func:`build_torch_module` registers one torch submodule per weighted or stateful IR layer, under the layer's
name made into a valid attribute name (``cells.3.edge_1_2.conv`` → ``cells_3_edge_1_2_conv``), and runs the
layers in the IR's topological order with a plain loop. The loop depends only on the (fixed) network, never
on tensor values, so ``torch.fx`` traces the module of a single-input network into the same DAG.

How IR kinds map to torch:

========================  ============================================================================
conv kinds                ``nn.Conv2d`` (groups, dilation, bias); asymmetric padding becomes an
                          ``nn.ZeroPad2d`` before an unpadded conv (both inside one ``nn.Sequential``)
linear                    ``nn.Linear`` (acts on the last dimension)
matmul                    ``torch.matmul`` of the two inputs (``(..., M, K) @ (..., K, N)``)
avg/max pool              ``nn.AvgPool2d`` / ``nn.MaxPool2d`` (``count_include_pad``, ``ceil_mode``);
                          padding that torch cannot express (asymmetric, or over half the kernel) goes
                          through :class:`PaddedPool2d`, which pads explicitly with the same result
global avg/max pool       ``nn.AdaptiveAvgPool2d(1)`` / ``nn.AdaptiveMaxPool2d(1)``
add / mul                 ``+`` / ``*`` chained in input order (``a + b + c`` for a 3-input add)
scale                     :class:`Scale`: ``x * SCALE_FACTOR`` (0.5, a constant operand)
concat                    ``torch.cat`` on the layer's axis
activations               ``nn.ReLU`` (not in place), ``ReLU6``, ``Sigmoid``, ``Hardsigmoid``,
                          ``Hardswish``, ``SiLU``, ``GELU``, ``Tanh``, ``Softmax(dim=axis)``
batch norm                ``nn.BatchNorm1d/2d/3d`` by rank (``affine`` as in the IR), eval mode
layer norm                ``nn.LayerNorm(shape[axis:])`` with a scale (``affine``) and shift (``bias``) as in the
                          IR; :class:`ShiftOnlyLayerNorm` for a shift without a scale
transpose                 :class:`Transpose`: a permutation of the input that gives the IR's output shape
                          (:func:`transpose_permutation`), copied into a new contiguous tensor
slice                     :class:`Slice`: a ``select`` and/or ``narrow`` view of the input that gives the IR's
                          output shape (:func:`slice_plan`), copied into a new contiguous tensor
pad                       :class:`Pad`: ``F.pad(x, (left, right, top, bottom), mode=...)``, reflect where
                          possible, else replicate (:func:`pad_mode`)
channel shuffle, zero     :class:`~nas_latency.frontends.torch_modules.ChannelShuffle`, ``Zero``
flatten / reshape         ``nn.Flatten(axis)`` / ``torch.reshape`` to the IR's output shape
identity                  ``nn.Identity``
========================  ============================================================================

Parameter counts equal :attr:`Network.params` (batch-norm running statistics are buffers).

The IR keeps a transpose's shapes, not its permutation; :func:`transpose_permutation` picks one
deterministically: output dimension ``i`` takes the first input dimension not yet taken whose size is
``out[i]`` (the stable choice: equal-sized dimensions keep their order). Where that is the identity (output shape
equal to the input shape), the last pair of equal-sized dimensions is swapped instead (``(B, H, T, T)`` →
its last two dimensions swapped, as in ``K^T`` of attention with head size ``T``); only a shape without two
equal dimensions, transposed to itself, keeps the identity. Either way the result is copied
(``clone(memory_format=torch.contiguous_format)``; ``.contiguous()`` would return a permuted view that is
already contiguous, e.g. one that moves only size-1 dimensions, without copying it), so a transpose always
moves its data, as the IR counts it.

The IR keeps a slice's shapes, not its offsets; :func:`slice_plan` picks the part deterministically. An output
one dimension shorter than the input is a select: the dropped dimension is the one that leaves the fewest other
dimensions to narrow (none where the output is the input without it, as for one of q, k, v unbound from a packed
``(3, B, H, T, d)`` tensor), the first (outermost) of those on a tie (among exact fits only a run of equal-sized
dimensions ties, and each of them leaves the same shape). Dimensions smaller in the output than in the input are
narrowed. Which part: the ``k``-th slice of one tensor to one output shape (``k = 0, 1, ...`` in the network's
topological order) takes the ``k``-th part, as ``unbind`` and ``chunk`` hand them out: index ``k`` of the
dropped dimension, or the ``k``-th run of elements of the first narrowed dimension (the leading elements of any
other narrowed dimension), wrapping around where there are fewer parts than slices. So q, k and v of a packed
tensor are its three parts and the two halves of a GLU its two halves, not one part copied twice (which the ONNX
exporter's common-subexpression pass would merge into one node). The part is copied like a transpose
(``clone(memory_format=torch.contiguous_format)``: a select of the outermost dimension is already a contiguous
view, which ``.contiguous()`` would return as it is), so a slice always moves the data it keeps, as the IR counts
it.

The IR keeps a pad's shape, not its mode (reflect, replicate and constant pads are one ``pad`` kind, which moves
the same data). :class:`Pad` reflects, as the image-to-image networks that pad explicitly do (CycleGAN's
``ReflectionPad2d(3)`` before its 7×7 convolutions, ``ReflectionPad2d(1)`` in its residual blocks). Reflect needs
each pad to be smaller than the input in its dimension (``top, bottom < H`` and ``left, right < W``); where it
is not (a pad of 3 on a 2×2 map), :func:`pad_mode` falls back to replicate, which pads any amount and writes the
same output shape.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from nas_latency.errors import InvalidInputError, UnsupportedOperatorError
from nas_latency.frontends.torch_modules import ChannelShuffle, Zero
from nas_latency.ir import Layer, Network, OpKind
from nas_latency.ir.ops import CONV_KINDS
from nas_latency.ir.shapes import check_slice, check_transpose

__all__ = [
    "IRModule", "Pad", "PadMode", "PaddedPool2d", "SCALE_FACTOR", "Scale", "SingleInputIRModule", "Slice", "SlicePlan",
    "Transpose", "build_torch_module", "layer_module", "pad_mode", "slice_plan", "transpose_permutation",
]

_ACTIVATIONS: dict[OpKind, Callable[[], nn.Module]] = {
    OpKind.RELU: lambda: nn.ReLU(inplace=False),
    OpKind.RELU6: lambda: nn.ReLU6(inplace=False),
    OpKind.SIGMOID: nn.Sigmoid,
    OpKind.HARD_SIGMOID: lambda: nn.Hardsigmoid(inplace=False),
    OpKind.HARD_SWISH: lambda: nn.Hardswish(inplace=False),
    OpKind.SILU: lambda: nn.SiLU(inplace=False),
    OpKind.GELU: nn.GELU,
    OpKind.TANH: nn.Tanh,
}
# Kinds computed by a function in ``forward`` rather than by a submodule.
_FUNCTIONAL_KINDS = frozenset({OpKind.ADD, OpKind.MUL, OpKind.CONCAT, OpKind.RESHAPE, OpKind.MATMUL})
#: The constant operand of a ``scale`` layer (not 1, so the multiplication cannot be skipped).
SCALE_FACTOR = 0.5


class PaddedPool2d(nn.Module):
    """A window pool with explicit ``(top, left, bottom, right)`` padding, for padding torch's pools reject.

    Max pools pad with ``-inf``. Average pools pad with zeros; when padding is not counted, the window sums
    are divided by the number of real (unpadded) elements, computed by pooling a mask of ones. The result is
    cropped to ``output_size`` (the IR's size), which drops any extra ``ceil_mode`` window that would start
    in the trailing padding, as torch's own pools do.
    """

    def __init__(
        self,
        kind: str,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[int, int, int, int],
        output_size: tuple[int, int],
        *,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        if kind not in ("avg", "max"):
            raise ValueError(f"kind must be 'avg' or 'max', got {kind!r}")
        self.kind = kind
        self.kernel = kernel
        self.stride = stride
        top, left, bottom, right = padding
        self.pad = (left, right, top, bottom)  # F.pad order: last dimension first
        self.output_size = output_size
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.output_size
        if self.kind == "max":
            padded = F.pad(x, self.pad, value=float("-inf"))
            return F.max_pool2d(padded, self.kernel, self.stride, 0, 1, self.ceil_mode)[:, :, :h, :w]
        padded = F.pad(x, self.pad)
        sums = F.avg_pool2d(padded, self.kernel, self.stride, 0, self.ceil_mode, True)
        if self.count_include_pad:
            return sums[:, :, :h, :w]
        mask = F.pad(torch.ones_like(x), self.pad)
        counts = F.avg_pool2d(mask, self.kernel, self.stride, 0, self.ceil_mode, True)
        return (sums / counts)[:, :, :h, :w]

    def extra_repr(self) -> str:
        return (
            f"kind={self.kind}, kernel={self.kernel}, stride={self.stride}, pad={self.pad}, "
            f"ceil_mode={self.ceil_mode}, count_include_pad={self.count_include_pad}"
        )


class Scale(nn.Module):
    """One elementwise pass with a constant operand: ``x * factor``."""

    def __init__(self, factor: float = SCALE_FACTOR) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class ShiftOnlyLayerNorm(nn.Module):
    """A layer norm with a learned shift and no learned scale (``nn.LayerNorm`` has no such setting)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape
        self.bias = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.shape, None, self.bias)


class Transpose(nn.Module):
    """``x.permute(dims)`` copied into a new contiguous tensor (a copy even where the permuted view is already
    contiguous, so the data always moves)."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims).clone(memory_format=torch.contiguous_format)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


def transpose_permutation(source: tuple[int, ...], target: tuple[int, ...], *, where: str) -> tuple[int, ...]:
    """The input dimension of each output dimension of a transpose from shape ``source`` to ``target``.

    Output dimension ``i`` takes the first unused input dimension of size ``target[i]`` (stable: equal-sized
    dimensions keep their order). If that is the identity, the last pair of equal-sized dimensions is swapped;
    the identity remains only where no two dimensions are equal. Raises
    :class:`~nas_latency.errors.InvalidInputError` (naming ``where``) when ``target`` is not a permutation of
    ``source``.
    """
    check_transpose(source, target, where=where)
    unused = list(range(len(source)))
    dims = []
    for size in target:
        j = next(j for j in unused if source[j] == size)
        unused.remove(j)
        dims.append(j)
    if dims != sorted(dims):
        return tuple(dims)
    for last in range(len(source) - 1, 0, -1):
        for first in range(last - 1, -1, -1):
            if source[first] == source[last]:
                dims[first], dims[last] = dims[last], dims[first]
                return tuple(dims)
    return tuple(dims)


@dataclass(frozen=True, slots=True)
class SlicePlan:
    """Which part of its input a slice copies: ``index`` of dimension ``dropped`` (a select; ``None`` for none),
    then ``(dim, start, length)`` of each narrowed dimension (dimensions of the selected view)."""

    dropped: int | None
    index: int
    narrows: tuple[tuple[int, int, int], ...]


class Slice(nn.Module):
    """A select and/or narrows of the input (:class:`SlicePlan`), copied into a new contiguous tensor (a copy even
    where the view is already contiguous, so the data always moves)."""

    def __init__(self, plan: SlicePlan) -> None:
        super().__init__()
        self.plan = plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.plan.dropped is not None:
            x = x.select(self.plan.dropped, self.plan.index)
        for dim, start, length in self.plan.narrows:
            x = x.narrow(dim, start, length)
        return x.clone(memory_format=torch.contiguous_format)

    def extra_repr(self) -> str:
        return f"dropped={self.plan.dropped}, index={self.plan.index}, narrows={self.plan.narrows}"


def slice_plan(source: tuple[int, ...], target: tuple[int, ...], *, where: str, part: int = 0) -> SlicePlan:
    """The part of a tensor of shape ``source`` that a slice to shape ``target`` copies (the ``part``-th such part;
    the rule is in the module docstring). Raises :class:`~nas_latency.errors.InvalidInputError` (naming ``where``)
    when ``target`` is not a part of ``source``."""
    if part < 0:
        raise InvalidInputError(f"{where}: part must be >= 0, got {part}")
    check_slice(source, target, where=where)
    if len(target) == len(source):
        candidates = [(None, source)]
    elif len(target) == len(source) - 1:
        candidates = [(d, source[:d] + source[d + 1:]) for d in range(len(source))]
    else:
        candidates = []
    fitting = [(sum(t < s for t, s in zip(target, rest)), d, rest) for d, rest in candidates
               if all(t <= s for t, s in zip(target, rest))]  # not empty: check_slice held
    _, dropped, rest = min(fitting, key=lambda f: (f[0], -1 if f[1] is None else f[1]))  # fewest narrowed, then first
    narrowed = [i for i, (t, s) in enumerate(zip(target, rest)) if t < s]
    if dropped is not None:
        return SlicePlan(dropped, part % source[dropped], tuple((i, 0, target[i]) for i in narrowed))
    narrows = tuple((i, 0, target[i]) for i in narrowed)
    if narrows:
        first = narrowed[0]
        start = part % (rest[first] // target[first]) * target[first]
        narrows = ((first, start, target[first]),) + narrows[1:]
    return SlicePlan(None, 0, narrows)


PadMode = Literal["reflect", "replicate"]


def pad_mode(source: tuple[int, ...], padding: tuple[int, int, int, int]) -> PadMode:
    """``"reflect"`` where every pad of ``padding`` (``(top, left, bottom, right)``) is smaller than the input
    ``(N, C, H, W)`` in its dimension (as torch's reflect pad requires), else ``"replicate"``."""
    top, left, bottom, right = padding
    height, width = source[-2], source[-1]
    return "reflect" if max(top, bottom) < height and max(left, right) < width else "replicate"


class Pad(nn.Module):
    """An explicit pad of an ``(N, C, H, W)`` input by ``(top, left, bottom, right)``, in ``mode``."""

    def __init__(self, padding: tuple[int, int, int, int], mode: PadMode = "reflect") -> None:
        super().__init__()
        top, left, bottom, right = padding
        self.pad = (left, right, top, bottom)  # F.pad order: last dimension first
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pad, mode=self.mode)

    def extra_repr(self) -> str:
        return f"pad={self.pad}, mode={self.mode}"


def _unsupported(layer: Layer, why: str) -> UnsupportedOperatorError:
    return UnsupportedOperatorError(
        f"layer {layer.name!r} ({layer.op.value}): {why}", node=layer.name, operator=layer.op.value
    )


def _conv(layer: Layer) -> nn.Module:
    assert layer.kernel is not None and layer.stride is not None and layer.padding is not None
    top, left, bottom, right = layer.padding
    symmetric = top == bottom and left == right

    def conv(padding: tuple[int, int]) -> nn.Conv2d:
        return nn.Conv2d(
            layer.in_channels, layer.out_channels, layer.kernel,  # type: ignore[arg-type]
            stride=layer.stride, padding=padding, dilation=layer.dilation or (1, 1),  # type: ignore[arg-type]
            groups=layer.groups, bias=layer.bias,
        )

    if symmetric:
        return conv((top, left))
    return nn.Sequential(OrderedDict(pad=nn.ZeroPad2d((left, right, top, bottom)), conv=conv((0, 0))))


def _window_pool(layer: Layer) -> nn.Module:
    assert layer.kernel is not None and layer.stride is not None and layer.padding is not None
    top, left, bottom, right = layer.padding
    native = top == bottom and left == right and top <= layer.kernel[0] // 2 and left <= layer.kernel[1] // 2
    if native and layer.op is OpKind.AVG_POOL:
        return nn.AvgPool2d(
            layer.kernel, layer.stride, (top, left), ceil_mode=layer.ceil_mode,
            count_include_pad=layer.count_include_pad,
        )
    if native:
        return nn.MaxPool2d(layer.kernel, layer.stride, (top, left), ceil_mode=layer.ceil_mode)
    return PaddedPool2d(
        "avg" if layer.op is OpKind.AVG_POOL else "max", layer.kernel, layer.stride, layer.padding,
        (layer.output_shape[2], layer.output_shape[3]), ceil_mode=layer.ceil_mode,
        count_include_pad=layer.count_include_pad,
    )


def _batch_norm(layer: Layer) -> nn.Module:
    rank = len(layer.output_shape)
    classes = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}
    if rank not in classes:
        raise _unsupported(layer, f"batch norm of a rank-{rank} tensor {layer.output_shape}")
    return classes[rank](layer.out_channels, affine=layer.affine)


def _layer_norm(layer: Layer) -> nn.Module:
    shape = layer.input_shapes[0][layer.norm_axis:]
    if layer.bias and not layer.affine:
        return ShiftOnlyLayerNorm(shape)
    return nn.LayerNorm(shape, elementwise_affine=layer.affine, bias=layer.bias and layer.affine)


def layer_module(layer: Layer, *, part: int = 0) -> nn.Module:
    """The torch module computing one IR layer (not for add/mul/concat/reshape/matmul, which are functions);
    ``part``: which part of its input a slice copies (:func:`slice_plan`)."""
    op = layer.op
    if op in _FUNCTIONAL_KINDS:
        raise _unsupported(layer, "computed by a function in IRModule.forward, not by a module")
    if op in CONV_KINDS:
        return _conv(layer)
    if op is OpKind.LINEAR:
        return nn.Linear(layer.input_shapes[0][-1], layer.output_shape[-1], bias=layer.bias)
    if op in (OpKind.AVG_POOL, OpKind.MAX_POOL):
        return _window_pool(layer)
    if op is OpKind.GLOBAL_AVG_POOL:
        return nn.AdaptiveAvgPool2d(1)
    if op is OpKind.GLOBAL_MAX_POOL:
        return nn.AdaptiveMaxPool2d(1)
    if op in _ACTIVATIONS:
        return _ACTIVATIONS[op]()
    if op is OpKind.SOFTMAX:
        return nn.Softmax(dim=layer.axis if layer.axis is not None else -1)
    if op is OpKind.BATCH_NORM:
        return _batch_norm(layer)
    if op is OpKind.LAYER_NORM:
        return _layer_norm(layer)
    if op is OpKind.SCALE:
        return Scale()
    if op is OpKind.TRANSPOSE:
        where = f"layer {layer.name!r} ({op.value})"
        return Transpose(transpose_permutation(layer.input_shapes[0], layer.output_shape, where=where))
    if op is OpKind.SLICE:
        where = f"layer {layer.name!r} ({op.value})"
        return Slice(slice_plan(layer.input_shapes[0], layer.output_shape, where=where, part=part))
    if op is OpKind.PAD:
        assert layer.padding is not None
        return Pad(layer.padding, pad_mode(layer.input_shapes[0], layer.padding))
    if op is OpKind.CHANNEL_SHUFFLE:
        return ChannelShuffle(layer.groups)
    if op is OpKind.FLATTEN:
        return nn.Flatten(start_dim=layer.axis if layer.axis is not None else 1)
    if op is OpKind.ZERO:
        return Zero()
    if op is OpKind.IDENTITY:
        return nn.Identity()
    raise _unsupported(layer, "no torch equivalent is known for this op kind")


@dataclass(frozen=True, slots=True)
class _Step:
    """One layer of the forward loop: read ``inputs``, write ``output``."""

    output: str
    op: OpKind
    inputs: tuple[str, ...]
    module: str | None  # attribute name of the submodule; None for functional kinds
    axis: int | None
    shape: tuple[int, ...]


_NON_IDENTIFIER = re.compile(r"\W")


class IRModule(nn.Module):
    """A torch module running an IR network layer by layer. Build it with :func:`build_torch_module`."""

    def __init__(self, network: Network) -> None:
        super().__init__()
        self.network_name = network.name
        self.input_names: tuple[str, ...] = tuple(spec.name for spec in network.inputs)
        self.output_names: tuple[str, ...] = tuple(network.outputs)
        #: IR layer name -> attribute name of its submodule
        self.module_names: dict[str, str] = {}
        steps: list[_Step] = []
        slices: dict[tuple[str, tuple[int, ...]], int] = {}  # (input, output shape) -> slices of it so far
        for layer in network.layers:
            attribute = None
            if layer.op not in _FUNCTIONAL_KINDS:
                part = 0
                if layer.op is OpKind.SLICE:
                    part = slices.get((layer.inputs[0], layer.output_shape), 0)
                    slices[(layer.inputs[0], layer.output_shape)] = part + 1
                attribute = self._attribute_name(layer.name)
                self.add_module(attribute, layer_module(layer, part=part))
                self.module_names[layer.name] = attribute
            steps.append(_Step(layer.name, layer.op, layer.inputs, attribute, layer.axis, layer.output_shape))
        self._steps: tuple[_Step, ...] = tuple(steps)

    def _attribute_name(self, layer_name: str) -> str:
        base = _NON_IDENTIFIER.sub("_", layer_name) or "layer"
        if base[0].isdigit():
            base = f"l_{base}"
        name, k = base, 1
        while hasattr(self, name) or name in self._modules:
            k += 1
            name = f"{base}_{k}"
        return name

    def run(self, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Run the layers on the network inputs (in the order of ``Network.inputs``)."""
        env: dict[str, torch.Tensor] = dict(zip(self.input_names, inputs))
        for step in self._steps:
            args = [env[name] for name in step.inputs]
            if step.module is not None:
                out = getattr(self, step.module)(args[0])
            elif step.op is OpKind.ADD:
                out = args[0]
                for term in args[1:]:
                    out = out + term
            elif step.op is OpKind.MUL:
                out = args[0]
                for term in args[1:]:
                    out = out * term
            elif step.op is OpKind.CONCAT:
                out = torch.cat(args, dim=step.axis if step.axis is not None else 1)
            elif step.op is OpKind.MATMUL:
                out = torch.matmul(args[0], args[1])
            else:  # RESHAPE
                out = torch.reshape(args[0], step.shape)
            env[step.output] = out
        if len(self.output_names) == 1:
            return env[self.output_names[0]]
        return tuple(env[name] for name in self.output_names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.input_names):
            raise TypeError(
                f"network {self.network_name!r} takes {len(self.input_names)} inputs "
                f"({', '.join(self.input_names)}), got {len(inputs)}"
            )
        return self.run(inputs)

    def extra_repr(self) -> str:
        return f"network={self.network_name!r}, layers={len(self._steps)}"


class SingleInputIRModule(IRModule):
    """An :class:`IRModule` whose ``forward`` takes exactly one tensor (what ``torch.fx`` traces best)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:  # type: ignore[override]
        return self.run((x,))


def build_torch_module(network: Network, *, seed: int = 0) -> IRModule:
    """A torch module computing ``network``, in eval mode, with weights initialized from ``seed``.

    The global torch random state is left as it was. Raises
    :class:`~nas_latency.errors.UnsupportedOperatorError` naming the layer if a layer has no torch
    equivalent.
    """
    cls = SingleInputIRModule if len(network.inputs) == 1 else IRModule
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = cls(network)
    return module.eval()
