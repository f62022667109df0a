"""The operator mapping from torch to the network IR: which torch call (a leaf module, a function or a tensor
method) becomes which IR layers. Both tracers of :mod:`~nas_latency.frontends.torch_fx` feed it.

Transformer operators: ``matmul``/``bmm``/``@`` of two network tensors is ``MATMUL`` (by a 2-D constant on the
right, a bias-free ``LINEAR``); ``transpose``/``permute``/``swapaxes``/``swapdims``/``t``/``.T``/``.mT`` are
``TRANSPOSE`` (the identity permutation is no layer, one that moves only size-1 dimensions a ``RESHAPE``);
``F.layer_norm``/``nn.LayerNorm`` are ``LAYER_NORM``; add/sub/mul/div of a network tensor and a constant (a number,
or a tensor that broadcasts to the input's shape, such as a positional embedding), ``-x`` and ``reciprocal`` are one
``SCALE`` pass (but ``x * 0`` is ``ZERO``); ``F.scaled_dot_product_attention`` is decomposed into transpose(k),
matmul, scale, mask (``ADD`` of a network tensor, ``SCALE`` for a constant or causal mask), softmax and matmul, and
``nn.MultiheadAttention`` into the layers torch runs (for self-attention one packed in-projection to 3E split
by three selects; head split, that attention, head merge and ``out_proj``), as its ONNX export records them.
``nn.TransformerEncoder``/``Decoder`` and their layers are traced into, with torch's fused multi-head-attention
fast path turned off while converting (in :func:`~nas_latency.frontends.torch_fx.torch_to_ir`), so they convert as
the layers they are made of.

Slicing: ``unbind(dim)`` is one select per output, ``split``/``chunk``/``tensor_split``/``split_with_sizes`` one
``SLICE`` per part (sizes from the actual outputs), ``narrow``, ``select`` and basic indexing with ints and slices
of step 1 (``x[:, 0]``, ``x[..., :8]``, ``x[0]``, ``x[:, 1:5]``) one ``SLICE`` each (several ints: a slice keeping
them as size 1, then a reshape without them); a part that is all of its input (``x[:]``, ``chunk(1)``) is the input
itself, one that only drops size-1 dimensions a cost-free reshape. A part no layer or output reads is no layer
(:meth:`~nas_latency.frontends.conversion.IRAssembler.part`). Indexing with a step other than 1, ``None``, bools,
tensors or lists (advanced indexing, a gather) stays unsupported and says which was used, as do sub and div of two
network tensors, attention dropout and an empty part of a ``tensor_split`` (when read).

Padding: ``F.pad`` (any mode) of an (N, C, H, W) input with a 2- or 4-element ``pad`` (torch's (left, right, top,
bottom)) and the ``nn.ReflectionPad2d``/``ReplicationPad2d``/``ZeroPad2d``/``ConstantPad2d``/``CircularPad2d`` leaf
modules are one ``PAD`` with (top, left, bottom, right); an all-zero pad is the input itself; a negative pad
(cropping), a non-zero pad of C or N (6 or 8 elements) or of a non-4-D input stays unsupported, naming the pad.
``nn.Conv2d`` with ``padding_mode`` reflect, replicate or circular is a ``PAD`` (``{node}.pad``) then the
convolution without padding, as torch runs it. ``torch.cat`` of one tensor is that tensor.

Not layers: parameters, buffers and anything computed from them alone; shape arithmetic (``x.shape``,
``x.size(0)``, integer maths); ``contiguous``/``detach``/``clone``/``to``, ``+ 0``, ``- 0``, ``* 1`` and ``/ 1``
(the result is the input). Operators the IR cannot represent follow
:class:`~nas_latency.frontends.conversion.IRAssembler`'s policy.
"""

from __future__ import annotations

import operator
from collections import Counter
from typing import Any, Callable, Iterator, Literal, Sequence

import torch
from torch import nn

from nas_latency.errors import InvalidInputError
from nas_latency.frontends.conversion import (
    IRAssembler,
    Symbol,
    TensorRef,
    Unsupported,
    has_symbol,
    is_symbol,
    iter_symbols,
)
from nas_latency.frontends.torch_modules import ChannelShuffle, Zero
from nas_latency.ir import OpKind, Shape

_Arithmetic = Literal["add", "sub", "mul", "div"]


#: modules converted as one layer each (never traced into)
LEAF_MODULE_TYPES: tuple[type[nn.Module], ...] = (
    nn.Conv2d,
    nn.modules.batchnorm._BatchNorm,
    nn.Linear,
    nn.LayerNorm,
    nn.MultiheadAttention,
    nn.ReLU,
    nn.Hardtanh,  # nn.ReLU6 is a Hardtanh
    nn.Sigmoid,
    nn.Hardsigmoid,
    nn.Hardswish,
    nn.SiLU,
    nn.GELU,
    nn.Tanh,
    nn.Softmax,
    nn.AvgPool2d,
    nn.MaxPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.Flatten,
    nn.Identity,
    nn.modules.dropout._DropoutNd,
    nn.ChannelShuffle,
    nn.modules.padding._ReflectionPadNd,
    nn.modules.padding._ReplicationPadNd,
    nn.modules.padding._ConstantPadNd,  # nn.ZeroPad2d is a ConstantPad2d
    nn.modules.padding._CircularPadNd,
    Zero,
    ChannelShuffle,
)
#: the 2-D padding modules, converted as ``PAD``
_PAD_MODULES = (nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ConstantPad2d, nn.CircularPad2d)
_PAD_MODES = ("constant", "reflect", "replicate", "circular")
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
#: torch modules built of supported parts, traced into (with torch's fused "fast path" kernels off, see
#: :func:`~nas_latency.frontends.torch_fx.torch_to_ir`) rather than treated as one operator
_COMPOSITES = (nn.TransformerEncoderLayer, nn.TransformerEncoder, nn.TransformerDecoderLayer, nn.TransformerDecoder)

_ACTIVATIONS: dict[str, OpKind] = {
    "relu": OpKind.RELU,
    "relu6": OpKind.RELU6,
    "sigmoid": OpKind.SIGMOID,
    "hardsigmoid": OpKind.HARD_SIGMOID,
    "hardswish": OpKind.HARD_SWISH,
    "silu": OpKind.SILU,
    "gelu": OpKind.GELU,
    "tanh": OpKind.TANH,
}
_ACTIVATION_MODULES: tuple[tuple[type[nn.Module], OpKind], ...] = (
    (nn.ReLU, OpKind.RELU),
    (nn.Sigmoid, OpKind.SIGMOID),
    (nn.Hardsigmoid, OpKind.HARD_SIGMOID),
    (nn.Hardswish, OpKind.HARD_SWISH),
    (nn.SiLU, OpKind.SILU),
    (nn.GELU, OpKind.GELU),
    (nn.Tanh, OpKind.TANH),
)
_DROPOUTS = {
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "feature_dropout"
}
# the result is the input tensor itself (or a copy of it): no layer
_ALIASES = {"contiguous", "detach", "clone", "to", "float", "type_as", "cpu", "data", "requires_grad"}
_VIEWS = {"flatten", "view", "reshape", "view_as", "reshape_as", "squeeze", "unsqueeze"}
_OPERATOR_NAMES: dict[Any, str] = {
    operator.add: "add", operator.iadd: "add", operator.mul: "mul", operator.imul: "mul",
    operator.getitem: "getitem", operator.sub: "sub", operator.isub: "sub", operator.truediv: "div",
    operator.itruediv: "div", operator.floordiv: "floordiv", operator.matmul: "matmul", operator.neg: "neg",
}
_INPLACE_OPERATORS = (operator.iadd, operator.imul, operator.isub, operator.itruediv, operator.ifloordiv)
_INPLACE_DUNDERS = {f"__i{op}__" for op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul",
                                             "and", "or", "xor", "lshift", "rshift")}
_REFLECTED = {"radd": "add", "iadd": "add", "rmul": "mul", "imul": "mul", "rsub": "sub", "isub": "sub",
              "truediv": "div", "rtruediv": "div", "rdiv": "div", "itruediv": "div", "rmatmul": "matmul"}
#: reflected tensor dunders (``2 - x`` calls ``x.__rsub__(2)``): the eager tracer swaps their two operands back, so
#: that handlers see ``sub(2, x)`` as torch.fx records it
REFLECTED_DUNDERS = {"__radd__", "__rmul__", "__rsub__", "__rtruediv__", "__rdiv__", "__rmatmul__"}
_TRANSPOSES = {"transpose", "swapaxes", "swapdims"}
#: torch calls with several tensor results the IR cannot take, and why
_MULTI_OUTPUT_REASONS = {
    "multi_head_attention_forward": (
        "F.multi_head_attention_forward called directly is not representable; use nn.MultiheadAttention "
        "(converted) or F.scaled_dot_product_attention"
    ),
}
#: torch calls that split a tensor into parts along one dimension (``dim``, the third argument, default 0)
_SPLITS = {"split", "chunk", "tensor_split", "split_with_sizes", "unsafe_split", "unsafe_chunk",
           "unsafe_split_with_sizes"}


def _overrides_forward(cls: type, leaf: type) -> bool:
    """Whether a class between ``cls`` and the leaf type ``leaf`` (torch's own classes excluded) defines its own
    ``forward``: timm's ``BatchNormAct2d(nn.BatchNorm2d)`` adds an activation, a LoRA ``nn.Linear`` a low-rank
    branch, so converting such a module as its base layer would drop compute without a word."""
    for klass in cls.__mro__:
        if klass is leaf or klass.__module__.startswith("torch."):
            return False
        if "forward" in vars(klass):
            return True
    return False


def is_leaf_module(module: nn.Module) -> bool:
    """Whether the tracers treat ``module`` as one operator: the known leaf types, and any other ``torch.nn``
    module except containers (so that, say, ``nn.LSTM`` becomes one unsupported node instead of a failed trace).
    A subclass of a leaf type with a ``forward`` of its own is traced into instead (its ``super().forward`` call
    becomes the functional layer)."""
    for leaf in LEAF_MODULE_TYPES:
        if isinstance(module, leaf):
            return not _overrides_forward(type(module), leaf)
    return (type(module).__module__.startswith(("torch.nn.", "torch.ao.nn."))
            and not isinstance(module, _CONTAINERS + _COMPOSITES))


def canonical_name(target: Any) -> str:
    """One name for a torch function, tensor method or operator however it was called: ``operator.add``,
    ``torch.add``, ``Tensor.add``, ``Tensor.__radd__`` and ``Tensor.add_`` are all ``"add"``."""
    if isinstance(target, str):
        name = target
    else:
        try:
            name = _OPERATOR_NAMES.get(target)  # type: ignore[assignment]
        except TypeError:  # unhashable target
            name = None
        if name is None:
            name = getattr(target, "__name__", None) or type(target).__name__
            if name == "__get__":  # a tensor property such as x.shape or x.data
                name = getattr(getattr(target, "__self__", None), "__name__", name)
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
        name = _REFLECTED.get(name, name)
    name = name.lstrip("_")
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]  # in-place variant
    return name


def is_inplace(target: Any, kwargs: dict[str, Any]) -> bool:
    """Whether a call mutates its first argument: ``relu_``, ``x += y``, ``F.relu(x, inplace=True)``, or a module
    built with ``inplace=True``."""
    if isinstance(target, nn.Module):
        return bool(getattr(target, "inplace", False))
    if target in _INPLACE_OPERATORS or kwargs.get("inplace"):
        return True
    raw = target if isinstance(target, str) else getattr(target, "__name__", "")
    return raw in _INPLACE_DUNDERS or (raw.endswith("_") and not raw.endswith("__"))


# ---- the operator mapping shared by both tracers -------------------------------------------------------------
def iter_tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from iter_tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_tensors(item)


def has_tensor(value: Any) -> bool:
    return next(iter_tensors(value), None) is not None


def _mirror(value: Any, symbols: Iterator[Any]) -> Any:
    """``value`` with each tensor replaced by the next symbol."""
    if isinstance(value, torch.Tensor):
        return next(symbols)
    if isinstance(value, (tuple, list)):
        items = tuple(_mirror(item, symbols) for item in value)
        if hasattr(type(value), "n_fields"):  # torch.return_types.* (values, indices)
            return type(value)(items)
        if hasattr(type(value), "_fields"):  # a namedtuple
            return type(value)(*items)
        return items
    if isinstance(value, dict):
        return {key: _mirror(item, symbols) for key, item in value.items()}
    return value


def _bind(args: Sequence[Any], kwargs: dict[str, Any], names: Sequence[str], **defaults: Any) -> dict[str, Any]:
    bound = dict(defaults)
    bound.update(zip(names, args))
    bound.update(kwargs)
    return bound


def _uniform(value: Any) -> float | None:
    """The single value of a number or of a tensor whose elements are all equal; None otherwise."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() > 0 and not value.is_complex():
        flat = value.detach().reshape(-1)
        if bool((flat == flat[0]).all()):
            return float(flat[0])
    return None


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    items = tuple(int(v) for v in value)
    return (items[0], items[0]) if len(items) == 1 else (items[0], items[1])


def tensor_shape(value: torch.Tensor) -> Shape:
    return tuple(int(d) for d in value.shape)


def _conv_padding(padding: Any, kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int, int, int]:
    """A convolution's ``padding`` (an int, a pair, ``"valid"`` or ``"same"``) as (top, left, bottom, right);
    for ``"same"`` torch puts the odd element of the total padding at the end."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise Unsupported(f"convolution padding {padding!r} (torch knows 'valid' and 'same')")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return (totals[0] // 2, totals[1] // 2, totals[0] - totals[0] // 2, totals[1] - totals[1] // 2)
    top, left = _pair(padding)
    return (top, left, top, left)


def _torch_pad_to_ir(pad: Any, rank: int) -> tuple[int, int, int, int]:
    """torch's ``F.pad`` ``pad`` (pairs (begin, end) from the last dimension backwards: (left, right, top, bottom,
    ...)) as the IR's (top, left, bottom, right) of an (N, C, H, W) input; Unsupported naming the pad when it crops
    (a negative element) or pads a dimension other than H and W."""
    if has_symbol(pad):
        raise Unsupported(f"F.pad with a pad computed by the network ({pad!r})")
    items = [int(v) for v in (pad if isinstance(pad, (tuple, list)) else (pad,))]
    if rank != 4:
        raise Unsupported(f"F.pad of a {rank}-D input with pad {tuple(items)} (only (N, C, H, W) inputs are "
                          "representable)")
    if len(items) % 2 or not 2 <= len(items) <= 2 * rank:
        raise Unsupported(f"F.pad with pad {tuple(items)}: it must be 2, 4, 6 or 8 elements (begin, end) per "
                          "dimension, from the last one")
    if any(v < 0 for v in items):
        raise Unsupported(f"F.pad with negative elements in pad {tuple(items)} (cropping is not representable)")
    if any(items[4:]):
        raise Unsupported(f"F.pad with pad {tuple(items)} pads the channel or batch dimension (only H and W "
                          "padding is representable)")
    left, right, top, bottom = (items + [0, 0])[:4]
    return (top, left, bottom, right)


def _index_item_kind(item: Any) -> str:
    """``"..."``, ``"slice"`` or ``"int"`` for the items of a basic index; Unsupported naming anything else."""
    if item is Ellipsis:
        return "..."
    if item is None:
        raise Unsupported("indexing with None (a new axis of size 1; use unsqueeze, a reshape)")
    if isinstance(item, bool):
        raise Unsupported(f"indexing with the bool {item} (a new axis with a mask)")
    if is_symbol(item):
        raise Unsupported("indexing with a tensor computed by the network (advanced indexing gathers elements; the "
                          "IR has slices of consecutive elements only)")
    if isinstance(item, torch.Tensor):
        raise Unsupported(f"indexing with a constant tensor of shape {tensor_shape(item)} (advanced indexing gathers "
                          "elements; the IR has slices of consecutive elements only)")
    if isinstance(item, (list, tuple)):
        raise Unsupported(f"indexing with the list {list(item)!r} (advanced indexing gathers elements; the IR has "
                          "slices of consecutive elements only)")
    if isinstance(item, slice):
        if has_symbol(item):
            raise Unsupported(f"slicing with a bound computed by the network ({item!r})")
        if item.step is not None and int(item.step) != 1:
            raise Unsupported(f"slicing with step {item.step} (only steps of 1 are representable)")
        return "slice"
    if isinstance(item, int) or hasattr(item, "__index__"):
        return "int"
    raise Unsupported(f"indexing with a {type(item).__name__} ({item!r})")


def _indexed_dims(index: Any, rank: int) -> tuple[int, ...]:
    """The dimensions of a rank-``rank`` tensor that a basic index of ints and step-1 slices drops (its ints);
    see :func:`_index_item_kind` for what is not basic."""
    items = index if isinstance(index, tuple) else (index,)
    kinds = [_index_item_kind(item) for item in items]
    if kinds.count("...") > 1:
        raise Unsupported("an index with more than one ellipsis")
    if "..." in kinds:
        at = kinds.index("...")
        kinds[at:at + 1] = ["slice"] * (rank - len(kinds) + 1)
    if len(kinds) > rank:
        raise Unsupported(f"an index of {len(kinds)} dimensions into a tensor of rank {rank}")
    return tuple(d for d, kind in enumerate(kinds) if kind == "int")


class TorchOps:
    """Maps one torch call (a leaf module, a function or a tensor method) to IR layers."""

    def __init__(self, asm: IRAssembler) -> None:
        self.asm = asm
        self.b = asm.builder
        self._counts: Counter[str] = Counter()

    def node_name(self, fname: str) -> str:
        """fx-style names for function and method calls, the same on both paths: ``add``, ``add_1``..."""
        count = self._counts[fname]
        self._counts[fname] += 1
        return fname if count == 0 else f"{fname}_{count}"

    def convert(self, node: str, target: nn.Module | str, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Any:
        """The symbolic value of the call's result: a symbol, a structure of symbols, or (for constants and shape
        arithmetic) the real value."""
        if target == "getitem" and isinstance(args[0], (tuple, list, dict)) and has_symbol(args[0]):
            return args[0][args[1]]  # picks an output of a multi-output call; not tensor indexing
        if not has_symbol((args, kwargs)):
            return out  # computed from parameters, buffers and literals only
        if not has_tensor(out):
            return out  # shape arithmetic: x.shape, x.size(0), x.dim()
        operator_name = type(target).__name__ if isinstance(target, nn.Module) else target
        try:
            if isinstance(target, nn.MultiheadAttention):
                return self._multihead_attention(node, target, args, kwargs, out)
            if target == "unbind" or target in _SPLITS:
                return self._parts(node, str(target), args, kwargs, out)
            if not isinstance(out, torch.Tensor):
                raise Unsupported(_MULTI_OUTPUT_REASONS.get(str(operator_name), "it returns several tensors"))
            if isinstance(target, nn.Module):
                return self._module(node, target, args, kwargs, out)
            handler = self._FUNCTIONS.get(target)
            if handler is None:
                if target in _ACTIVATIONS:
                    return self._activation(node, args[0], _ACTIVATIONS[target], out)
                raise Unsupported(f"the IR has no operator for {target!r}")
            return handler(self, node, args, kwargs, out)
        except Unsupported as exc:
            shapes = [tensor_shape(t) for t in iter_tensors(out)]
            source = next(iter_symbols((args, kwargs)), None)
            deferred = self.asm.unsupported(node, operator_name, str(exc), source, shapes)
            return _mirror(out, iter(deferred))

    # ---- helpers ----------------------------------------------------------------------------------------------
    def _src(self, value: Any, what: str) -> TensorRef:
        if not is_symbol(value):
            raise Unsupported(f"its {what} is a constant, not a tensor of the network")
        return self.asm.resolve(value)

    def _feature_map(self, node: str, x: Any, what: str) -> TensorRef:
        src = self._src(x, "input")
        if len(src.shape) == 3:
            raise InvalidInputError(
                f"{self.asm.source}: node {node!r} ({what}) got an input of shape {src.shape} with no batch "
                "dimension; the example input must include it, e.g. (1, C, H, W)"
            )
        if len(src.shape) != 4:
            raise Unsupported(f"only 2-D {what} over (N, C, H, W) inputs is representable, got {src.shape}")
        return src

    def _activation(self, node: str, x: Any, kind: OpKind, out: torch.Tensor, axis: int | None = None) -> TensorRef:
        src = self._src(x, "input")
        return self.asm.layer(node, tensor_shape(out), lambda n: self.b.activation(src.name, kind, axis=axis, name=n))

    def _identity(self, node: str, x: Any, out: torch.Tensor) -> TensorRef:
        src = self._src(x, "input")
        return self.asm.layer(node, tensor_shape(out), lambda n: self.b.identity(src.name, name=n))

    def _zero(self, node: str, x: Any, out: torch.Tensor) -> TensorRef:
        src = self._src(x, "input")
        if src.shape != tensor_shape(out):
            raise Unsupported(f"zeros of shape {tensor_shape(out)} from an input of shape {src.shape}")
        return self.asm.layer(node, tensor_shape(out), lambda n: self.b.zero(src.name, name=n))

    def _channel_shuffle(self, node: str, x: Any, groups: int, out: torch.Tensor) -> TensorRef:
        src = self._src(x, "input")
        return self.asm.layer(node, tensor_shape(out), lambda n: self.b.channel_shuffle(src.name, int(groups), name=n))

    def _conv(
        self, node: str, x: Any, out: torch.Tensor, *, out_channels: int, kernel: Any, stride: Any, padding: Any,
        dilation: Any, groups: int, bias: bool, padding_mode: str = "zeros",
    ) -> TensorRef:
        """A convolution; with a ``padding_mode`` other than ``"zeros"`` (reflect, replicate, circular) torch pads
        explicitly first: one ``PAD`` layer (``{node}.pad``), then the convolution without padding."""
        src = self._feature_map(node, x, "convolution")
        k, d = _pair(kernel), _pair(dilation)
        pads = _conv_padding(padding, k, d)
        if padding_mode != "zeros" and max(pads) > 0:
            src = self._pad(f"{node}.pad", src, pads, None)
            pads = (0, 0, 0, 0)
        return self.asm.layer(
            node, tensor_shape(out),
            lambda n: self.b.conv(
                src.name, int(out_channels), k, stride=_pair(stride), padding=pads, dilation=d, groups=int(groups),
                bias=bias, name=n,
            ),
        )

    def _pad(self, node: str, x: Any, padding: tuple[int, int, int, int], out: torch.Tensor | None) -> Any:
        """An explicit pad by (top, left, bottom, right): ``PAD``, or the input itself when all are 0."""
        src = self._src(x, "input")
        if max(padding) == 0:
            return x
        return self.asm.layer(
            node, None if out is None else tensor_shape(out), lambda n: self.b.pad(src.name, padding, name=n)
        )

    def _linear(self, node: str, x: Any, out: torch.Tensor | None, out_features: int, bias: bool) -> TensorRef:
        src = self._src(x, "input")
        return self.asm.layer(
            node, None if out is None else tensor_shape(out),
            lambda n: self.b.linear(src.name, int(out_features), bias=bias, name=n),
        )

    def _batch_norm(self, node: str, x: Any, out: torch.Tensor, affine: bool) -> TensorRef:
        src = self._src(x, "input")
        return self.asm.layer(node, tensor_shape(out), lambda n: self.b.batch_norm(src.name, affine=affine, name=n))

    def _softmax(self, node: str, x: Any, dim: int | None, out: torch.Tensor) -> TensorRef:
        rank = out.dim()
        if dim is None:  # torch's legacy implicit dimension
            dim = 0 if rank in (0, 1, 3) else 1
        return self._activation(node, x, OpKind.SOFTMAX, out, axis=int(dim) % rank)

    def _clamp(self, node: str, x: Any, low: Any, high: Any, out: torch.Tensor) -> TensorRef:
        lo = _uniform(low) if low is not None else None
        hi = _uniform(high) if high is not None else None
        if lo == 0.0 and high is None:
            return self._activation(node, x, OpKind.RELU, out)
        if lo == 0.0 and hi == 6.0:
            return self._activation(node, x, OpKind.RELU6, out)
        raise Unsupported(f"clamping to [{low}, {high}] (only [0, 6] and [0, inf) are representable)")

    def _pool(
        self, node: str, kind: OpKind, x: Any, out: torch.Tensor, *, kernel: Any, stride: Any, padding: Any,
        ceil_mode: bool, count_include_pad: bool = False, dilation: Any = 1, divisor_override: Any = None,
    ) -> TensorRef:
        src = self._feature_map(node, x, "pooling")
        if _pair(dilation) != (1, 1):
            raise Unsupported("dilated pooling")
        if divisor_override is not None:
            raise Unsupported("average pooling with divisor_override")
        stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and not stride) else stride
        if kind is OpKind.AVG_POOL:
            return self.asm.layer(
                node, tensor_shape(out),
                lambda n: self.b.avg_pool(
                    src.name, _pair(kernel), stride=_pair(stride), padding=_pair(padding),
                    count_include_pad=bool(count_include_pad), ceil_mode=bool(ceil_mode), name=n,
                ),
            )
        if _pair(kernel) == tuple(src.shape[2:]) and _pair(padding) == (0, 0):
            # one window over the whole input is a global max pool, as the ONNX frontend reads the same export
            return self.asm.layer(node, tensor_shape(out), lambda n: self.b.global_max_pool(src.name, name=n))
        return self.asm.layer(
            node, tensor_shape(out),
            lambda n: self.b.max_pool(
                src.name, _pair(kernel), stride=_pair(stride), padding=_pair(padding), ceil_mode=bool(ceil_mode), name=n
            ),
        )

    def _adaptive(self, node: str, average: bool, x: Any, out: torch.Tensor) -> TensorRef:
        """Adaptive pooling: global when the output is 1x1, else a window pool when the windows are even (what the
        ONNX exporter emits too)."""
        src = self._feature_map(node, x, "pooling")
        (h, w), (oh, ow) = src.shape[2:], tensor_shape(out)[2:]
        if (oh, ow) == (1, 1):
            build = self.b.global_avg_pool if average else self.b.global_max_pool
            return self.asm.layer(node, tensor_shape(out), lambda n: build(src.name, name=n))
        if h % oh or w % ow:
            raise Unsupported(f"adaptive pooling from {(h, w)} to {(oh, ow)} has uneven windows")
        kernel = (h // oh, w // ow)
        return self._pool(
            node, OpKind.AVG_POOL if average else OpKind.MAX_POOL, x, out, kernel=kernel, stride=kernel, padding=0,
            ceil_mode=False, count_include_pad=False,
        )

    def _binary(
        self, node: str, op: _Arithmetic, x: Any, y: Any, out: torch.Tensor, *, transforms: bool = False
    ) -> Any:
        """``x op y`` for ``op`` in add, sub, mul, div. Two network tensors: ``ADD`` or ``MUL`` (sub and div of two
        tensors have no IR kind). A network tensor and a constant (a number, or a tensor that broadcasts to the
        input's shape, such as a positional embedding): no layer for ``x + 0``, ``x - 0``, ``x * 1``, ``x / 1``,
        ``ZERO`` for ``x * 0``, else one ``SCALE`` pass. ``transforms``: the result is never the input itself even
        for those constants (``torch.add(c, x, alpha=2)`` scales ``x``, ``torch.div(x, 1, rounding_mode="floor")``
        rounds it)."""
        if is_symbol(x) and is_symbol(y):
            a, c = self.asm.resolve(x), self.asm.resolve(y)  # an unsupported producer is reported first
            if op not in ("add", "mul"):
                raise Unsupported(
                    f"{op} of two network tensors (the IR has add and mul of two tensors; {op} only with a constant)"
                )
            if transforms:
                raise Unsupported(f"{op} of two network tensors with alpha != 1")
            build = self.b.add if op == "add" else self.b.mul
            return self.asm.layer(node, tensor_shape(out), lambda n: build(a.name, c.name, name=n))
        symbol_first = is_symbol(x)
        sym, const = (x, y) if symbol_first else (y, x)
        if not is_symbol(sym) or has_symbol(const):
            raise Unsupported(f"{op} whose operands are not a network tensor and a constant")
        if sym.shape is not None and sym.shape != tensor_shape(out):
            const_shape = tensor_shape(const) if isinstance(const, torch.Tensor) else ()
            raise Unsupported(
                f"{op} with a constant of shape {const_shape} that broadcasts the input of shape {sym.shape} to the "
                f"larger {tensor_shape(out)}"
            )
        value = None if transforms else _uniform(const)
        neutral = 0.0 if op in ("add", "sub") else 1.0
        if value == neutral and (symbol_first or op in ("add", "mul")):
            return sym  # x + 0, x - 0, x * 1, x / 1: the input itself
        if op == "mul" and value == 0.0:
            return self._zero(node, sym, out)
        src = self._src(sym, "input")
        return self.asm.layer(node, tensor_shape(out), lambda n: self.b.scale(src.name, name=n))

    def _transpose(self, node: str, x: Any, perm: Sequence[int], out: torch.Tensor) -> TensorRef:
        """A reordering of dimensions (:meth:`IRAssembler.permute`)."""
        return self.asm.permute(node, self._src(x, "input"), perm, tensor_shape(out))

    def _layer_norm(self, node: str, x: Any, normalized: Any, weight: Any, bias: Any, out: torch.Tensor) -> TensorRef:
        src = self._src(x, "input")
        dims = 1 if isinstance(normalized, int) else len(tuple(normalized))
        if is_symbol(weight) or is_symbol(bias):
            raise Unsupported("a layer norm whose scale or shift is computed by the network")
        axis = len(src.shape) - dims
        return self.asm.layer(node, tensor_shape(out), lambda n: self.b.layer_norm(
            src.name, axis=axis, affine=weight is not None, bias=bias is not None, name=n))

    def _attention(
        self, node: str, q: TensorRef, k: TensorRef, v: TensorRef, *, scale: float, mask: Any, constant_mask: bool,
        expected: Shape | None,
    ) -> TensorRef:
        """``softmax(q @ kᵀ · scale + mask) @ v`` as transpose(k), matmul, scale, mask (``ADD`` of a network tensor,
        or one ``SCALE`` pass for a constant or causal mask), softmax over the last axis, matmul."""
        if len(q.shape) < 2 or len(k.shape) < 2 or len(v.shape) < 2:
            raise Unsupported(f"attention over operands {q.shape}, {k.shape}, {v.shape} of rank < 2")
        perm = list(range(len(k.shape)))
        perm[-2], perm[-1] = perm[-1], perm[-2]
        key_t = self.asm.layer(f"{node}.key_t", None, lambda n: self.b.transpose(k.name, perm, name=n))
        scores = self.asm.layer(f"{node}.qk", None, lambda n: self.b.matmul(q.name, key_t.name, name=n))
        if scale != 1.0:
            scores = self.asm.layer(f"{node}.scale", None, lambda n: self.b.scale(scores.name, name=n))
        if is_symbol(mask):
            m = self.asm.resolve(mask)
            if torch.broadcast_shapes(scores.shape, m.shape) != scores.shape:
                raise Unsupported(f"an attention mask of shape {m.shape} that broadcasts the scores {scores.shape}")
            scores = self.asm.layer(f"{node}.mask", None, lambda n: self.b.add(scores.name, m.name, name=n))
        elif constant_mask:
            scores = self.asm.layer(f"{node}.mask", None, lambda n: self.b.scale(scores.name, name=n))
        axis = len(scores.shape) - 1
        weights = self.asm.layer(
            f"{node}.softmax", None, lambda n: self.b.activation(scores.name, OpKind.SOFTMAX, axis=axis, name=n)
        )
        return self.asm.layer(f"{node}.av", expected, lambda n: self.b.matmul(weights.name, v.name, name=n))

    # ---- parts of a tensor ------------------------------------------------------------------------------------
    def _part_source(self, x: Any) -> Symbol:
        """The tensor a slice reads (its shape known), not resolved: a part nobody reads is no layer, and does not
        read its source (see :meth:`IRAssembler.part`)."""
        if not is_symbol(x):
            raise Unsupported("its input is a constant, not a tensor of the network")
        if x.shape is None:
            raise Unsupported("the shape of its input is unknown")
        return x

    def _select(self, node: str, src: Symbol, dim: int) -> Symbol:
        """One index of dimension ``dim`` of ``src``, which the part drops (``select``, one output of ``unbind``)."""
        shape = src.shape
        return self.asm.part(node, src, shape[:dim] + (1,) + shape[dim + 1:], drop=(dim,))

    def _parts(self, node: str, fname: str, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[Any, ...]:
        """``unbind(dim)``: one select per output; ``split``/``chunk``/``tensor_split``/``split_with_sizes``: one
        slice per part, of the size of the actual output tensor (a part as large as the input is the input
        itself). An empty part (``tensor_split`` at the start) is unsupported, reported only when read."""
        x = args[0] if args else next((kwargs[k] for k in ("input", "tensor", "self") if k in kwargs), None)
        src = self._part_source(x)
        rank = len(src.shape)
        default = args[1] if fname == "unbind" and len(args) > 1 else args[2] if len(args) > 2 else 0
        dim = int(kwargs.get("dim", default)) % rank
        parts: list[Any] = []
        for i, tensor in enumerate(out):
            part_node = f"{node}.{i}"
            if fname == "unbind":
                parts.append(self._select(part_node, src, dim))
            elif tensor.shape[dim] == 0:
                parts.append(self.asm.unsupported(
                    part_node, fname, f"an empty part (size 0 along dimension {dim})", src, [tensor_shape(tensor)]
                )[0])
            else:
                parts.append(self.asm.part(part_node, src, tensor_shape(tensor)))
        return tuple(parts)

    def _f_narrow(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        b = _bind(args, kwargs, ("input", "dim", "start", "length"))
        return self.asm.part(node, self._part_source(b["input"]), tensor_shape(out))

    def _f_select(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        b = _bind(args, kwargs, ("input", "dim", "index"))
        src = self._part_source(b["input"])
        return self._select(node, src, int(b["dim"]) % len(src.shape))

    def _f_getitem(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        """Basic indexing with ints and slices of step 1 (``x[:, 0]``, ``x[..., :8]``, ``x[0]``, ``x[:, 1:5]``):
        one part of the input (:meth:`IRAssembler.part`); the input itself when it takes everything (``x[:]``)."""
        src = self._part_source(args[0])
        dropped = _indexed_dims(args[1], len(src.shape))
        kept = iter(tensor_shape(out))
        sizes = tuple(1 if d in dropped else next(kept, 0) for d in range(len(src.shape)))
        if next(kept, None) is not None or 0 in sizes:
            raise Unsupported(
                f"indexing {src.shape} with {args[1]!r} gives {tensor_shape(out)}, not a non-empty part of it"
            )
        return self.asm.part(node, src, sizes, drop=dropped)

    # ---- functions and tensor methods --------------------------------------------------------------------------
    def _f_add(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        return self._add_or_sub(node, "add", args, kwargs, out)

    def _f_sub(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        return self._add_or_sub(node, "sub", args, kwargs, out)

    def _add_or_sub(
        self, node: str, op: _Arithmetic, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor
    ) -> Any:
        b = _bind(args, kwargs, ("input", "other"), alpha=1)
        x, y = b["input"], b["other"]
        if _uniform(b["alpha"]) != 1.0:
            if is_symbol(y):  # c ± alpha * x: one pass over x, never x itself
                return self._binary(node, op, x, y, out, transforms=True)
            y = y * b["alpha"]  # x ± alpha * c: a constant
        return self._binary(node, op, x, y, out)

    def _f_rsub(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        b = _bind(args, kwargs, ("input", "other"), alpha=1)  # other - alpha * input
        return self._add_or_sub(node, "sub", (b["other"], b["input"]), {"alpha": b["alpha"]}, out)

    def _f_mul(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        b = _bind(args, kwargs, ("input", "other"))
        return self._binary(node, "mul", b["input"], b["other"], out)

    def _f_div(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        b = _bind(args, kwargs, ("input", "other"), rounding_mode=None)
        return self._binary(node, "div", b["input"], b["other"], out, transforms=b["rounding_mode"] is not None)

    def _f_neg(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        """``-x`` and ``x.reciprocal()``: one pass with a constant (``x · -1``, ``1 / x``)."""
        src = self._src(_bind(args, kwargs, ("input",))["input"], "input")
        return self.asm.layer(node, tensor_shape(out), lambda n: self.b.scale(src.name, name=n))

    def _f_matmul(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        b = _bind(args, kwargs, ("input", "other"))
        x, y = b["input"], b["other"]
        if is_symbol(x) and is_symbol(y):
            a, c = self.asm.resolve(x), self.asm.resolve(y)
            if len(a.shape) < 2 or len(c.shape) < 2:
                raise Unsupported(
                    f"a matrix product of {a.shape} and {c.shape} (the IR's matmul takes operands of rank 2 or more)"
                )
            return self.asm.layer(node, tensor_shape(out), lambda n: self.b.matmul(a.name, c.name, name=n))
        if is_symbol(x) and isinstance(y, torch.Tensor) and y.dim() == 2:
            return self._linear(node, x, out, y.shape[1], bias=False)  # x @ W: a linear layer without bias
        const = y if is_symbol(x) else x
        shape = tensor_shape(const) if isinstance(const, torch.Tensor) else type(const).__name__
        raise Unsupported(
            f"a matrix product with a constant {'right' if is_symbol(x) else 'left'} operand of shape {shape} (only "
            "x @ W with a 2-D constant W on the right is representable, as a linear layer)"
        )

    def _f_transpose(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        b = _bind(args, kwargs, ("input", "dim0", "dim1"))
        x = b["input"]
        rank = out.dim()
        perm = list(range(rank))
        d0, d1 = int(b["dim0"]) % rank, int(b["dim1"]) % rank
        perm[d0], perm[d1] = perm[d1], perm[d0]
        return self._transpose(node, x, perm, out)

    def _f_permute(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        x = args[0] if args else kwargs["input"]
        dims = args[1:] if len(args) > 1 else kwargs.get("dims", ())
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = dims[0]  # x.permute((0, 2, 1)) as well as x.permute(0, 2, 1)
        return self._transpose(node, x, [int(d) for d in dims], out)

    def _f_reverse_dims(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        """``x.t()``, ``x.T``: all dimensions reversed."""
        return self._transpose(node, args[0], list(range(out.dim()))[::-1], out)

    def _f_matrix_transpose(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        """``x.mT``: the last two dimensions swapped."""
        perm = list(range(out.dim()))
        perm[-2:] = perm[-2:][::-1]
        return self._transpose(node, args[0], perm, out)

    def _f_layer_norm(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> TensorRef:
        b = _bind(args, kwargs, ("input", "normalized_shape", "weight", "bias"), weight=None, bias=None)
        return self._layer_norm(node, b["input"], b["normalized_shape"], b["weight"], b["bias"], out)

    def _f_scaled_dot_product_attention(
        self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor
    ) -> TensorRef:
        b = _bind(
            args, kwargs, ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa"),
            attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False,
        )
        q, k, v = (self._src(b[name], name) for name in ("query", "key", "value"))
        if _uniform(b["dropout_p"]) != 0.0:
            raise Unsupported(
                f"dropout_p={b['dropout_p']} drops attention weights at random even in eval mode; pass dropout_p=0.0 "
                "for inference"
            )
        if b["enable_gqa"] and len(q.shape) >= 3 and q.shape[-3] != k.shape[-3]:
            raise Unsupported(f"grouped-query attention ({q.shape[-3]} query heads, {k.shape[-3]} key heads)")
        scale = q.shape[-1] ** -0.5 if b["scale"] is None else float(b["scale"])
        mask = b["attn_mask"]
        return self._attention(
            node, q, k, v, scale=scale, mask=mask, constant_mask=mask is not None or bool(b["is_causal"]),
            expected=tensor_shape(out),
        )

    def _f_cat(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        """``CONCAT``; a concatenation of one tensor is that tensor (a copy, as ``clone``)."""
        b = _bind(args, kwargs, ("tensors", "dim"), dim=0)
        tensors = list(b["tensors"])
        if not all(is_symbol(t) for t in tensors):
            raise Unsupported("concatenation with a constant tensor")
        if len(tensors) == 1:
            return tensors[0]
        srcs = [self.asm.resolve(t) for t in tensors]
        axis = int(b["dim"]) % out.dim()
        names = [s.name for s in srcs]
        return self.asm.layer(node, tensor_shape(out), lambda n: self.b.concat(names, axis=axis, name=n))

    def _f_view(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> TensorRef:
        x = args[0] if args else next(iter(kwargs.values()))
        return self.asm.view(node, self._src(x, "input"), tensor_shape(out))

    def _f_alias(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        x = args[0] if args else next(iter(kwargs.values()))
        if not is_symbol(x) or x.shape != tensor_shape(out):
            raise Unsupported("a copy that changes the shape")
        return x

    def _f_dropout(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> TensorRef:
        return self._identity(node, _bind(args, kwargs, ("input",))["input"], out)

    def _f_hardtanh(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> TensorRef:
        b = _bind(args, kwargs, ("input", "min_val", "max_val"), min_val=-1.0, max_val=1.0)
        return self._clamp(node, b["input"], b["min_val"], b["max_val"], out)

    def _f_clamp(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> TensorRef:
        b = _bind(args, kwargs, ("input", "min", "max"), min=None, max=None)
        return self._clamp(node, b["input"], b["min"], b["max"], out)

    def _f_softmax(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> TensorRef:
        b = _bind(args, kwargs, ("input", "dim"), dim=None)
        return self._softmax(node, b["input"], b["dim"], out)

    def _f_avg_pool2d(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> TensorRef:
        b = _bind(
            args, kwargs, ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                           "divisor_override"),
            stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None,
        )
        return self._pool(
            node, OpKind.AVG_POOL, b["input"], out, kernel=b["kernel_size"], stride=b["stride"], padding=b["padding"],
            ceil_mode=b["ceil_mode"], count_include_pad=b["count_include_pad"], divisor_override=b["divisor_override"],
        )

    def _f_max_pool2d(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> TensorRef:
        b = _bind(
            args, kwargs, ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
            stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False,
        )
        return self._pool(
            node, OpKind.MAX_POOL, b["input"], out, kernel=b["kernel_size"], stride=b["stride"], padding=b["padding"],
            ceil_mode=b["ceil_mode"], dilation=b["dilation"],
        )

    def _f_adaptive_avg_pool2d(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        return self._adaptive(node, True, _bind(args, kwargs, ("input",))["input"], out)

    def _f_adaptive_max_pool2d(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        return self._adaptive(node, False, _bind(args, kwargs, ("input",))["input"], out)

    def _f_mean(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> TensorRef:
        b = _bind(args, kwargs, ("input", "dim", "keepdim"), dim=None, keepdim=False)
        src = self._src(b["input"], "input")
        dims = b["dim"]
        dims = [dims] if isinstance(dims, int) else list(dims or [])
        if len(src.shape) != 4 or sorted(int(d) % 4 for d in dims) != [2, 3]:
            raise Unsupported(f"mean over dims {dims} of a {src.shape} tensor (only over H and W is representable)")
        n_, c_ = src.shape[:2]
        pooled = self.asm.layer(node, (n_, c_, 1, 1), lambda n: self.b.global_avg_pool(src.name, name=n))
        return pooled if b["keepdim"] else self.asm.view(f"{node}.flatten", pooled, tensor_shape(out))

    def _f_pad(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        b = _bind(args, kwargs, ("input", "pad", "mode", "value"), mode="constant", value=None)
        src = self._src(b["input"], "input")
        if b["mode"] not in _PAD_MODES:
            raise Unsupported(f"F.pad with mode {b['mode']!r} (known: {', '.join(_PAD_MODES)})")
        return self._pad(node, b["input"], _torch_pad_to_ir(b["pad"], len(src.shape)), out)

    def _f_conv2d(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> TensorRef:
        b = _bind(
            args, kwargs, ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
            bias=None, stride=1, padding=0, dilation=1, groups=1,
        )
        weight = b["weight"]
        if not isinstance(weight, torch.Tensor) or is_symbol(b["bias"]):
            raise Unsupported("a convolution whose weight or bias is computed by the network")
        return self._conv(
            node, b["input"], out, out_channels=weight.shape[0], kernel=tuple(weight.shape[2:]), stride=b["stride"],
            padding=b["padding"], dilation=b["dilation"], groups=b["groups"], bias=b["bias"] is not None,
        )

    def _f_linear(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> TensorRef:
        b = _bind(args, kwargs, ("input", "weight", "bias"), bias=None)
        weight = b["weight"]
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or is_symbol(b["bias"]):
            raise Unsupported("a linear layer whose weight or bias is computed by the network")
        return self._linear(node, b["input"], out, weight.shape[0], b["bias"] is not None)

    def _f_batch_norm(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> TensorRef:
        b = _bind(args, kwargs, ("input", "running_mean", "running_var", "weight", "bias"), weight=None, bias=None)
        if any(is_symbol(b[k]) for k in ("running_mean", "running_var", "weight", "bias")):
            raise Unsupported("a batch norm whose statistics or affine parameters are computed by the network")
        return self._batch_norm(node, b["input"], out, b["weight"] is not None)

    def _f_channel_shuffle(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        b = _bind(args, kwargs, ("input", "groups"))
        return self._channel_shuffle(node, b["input"], b["groups"], out)

    def _f_zeros_like(self, node: str, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> TensorRef:
        return self._zero(node, _bind(args, kwargs, ("input",))["input"], out)

    _FUNCTIONS: dict[str, Callable[["TorchOps", str, Sequence[Any], dict[str, Any], torch.Tensor], Any]] = {
        "add": _f_add,
        "sub": _f_sub,
        "subtract": _f_sub,
        "rsub": _f_rsub,
        "mul": _f_mul,
        "multiply": _f_mul,
        "div": _f_div,
        "divide": _f_div,
        "true_divide": _f_div,
        "neg": _f_neg,
        "negative": _f_neg,
        "reciprocal": _f_neg,
        "matmul": _f_matmul,
        "bmm": _f_matmul,
        **dict.fromkeys(_TRANSPOSES, _f_transpose),
        "permute": _f_permute,
        "t": _f_reverse_dims,
        "T": _f_reverse_dims,
        "mT": _f_matrix_transpose,
        "layer_norm": _f_layer_norm,
        "scaled_dot_product_attention": _f_scaled_dot_product_attention,
        "cat": _f_cat,
        "concat": _f_cat,
        "concatenate": _f_cat,
        **dict.fromkeys(_VIEWS, _f_view),
        **dict.fromkeys(_ALIASES, _f_alias),
        **dict.fromkeys(_DROPOUTS, _f_dropout),
        "hardtanh": _f_hardtanh,
        "clamp": _f_clamp,
        "clip": _f_clamp,
        "softmax": _f_softmax,
        "avg_pool2d": _f_avg_pool2d,
        "max_pool2d": _f_max_pool2d,
        "adaptive_avg_pool2d": _f_adaptive_avg_pool2d,
        "adaptive_max_pool2d": _f_adaptive_max_pool2d,
        "mean": _f_mean,
        "conv2d": _f_conv2d,
        "pad": _f_pad,
        "linear": _f_linear,
        "batch_norm": _f_batch_norm,
        "channel_shuffle": _f_channel_shuffle,
        "native_channel_shuffle": _f_channel_shuffle,
        "zeros_like": _f_zeros_like,
        "getitem": _f_getitem,
        "narrow": _f_narrow,
        "select": _f_select,
    }

    # ---- nn.MultiheadAttention ---------------------------------------------------------------------------------
    def _multihead_attention(
        self, node: str, m: nn.MultiheadAttention, args: Sequence[Any], kwargs: dict[str, Any], out: Any
    ) -> tuple[Any, Any]:
        """Inference-mode ``nn.MultiheadAttention`` as the layers torch's ``F.multi_head_attention_forward`` runs
        (and its ONNX export records), with ``E`` the embedding, ``H`` the heads, ``D = E / H``:

        * batch-first inputs transposed to (L, N, E) (``{node}.query_seq``...; one transpose for one tensor used as
          query, key and value), unbatched ones viewed as (L, 1, E);
        * the in-projection as torch packs it: for self-attention (query, key and value one tensor) one linear to
          3E (``{node}.in_proj``) viewed as (L, N, 3, E) and (1, L, N, 3, E), transposed to (3, L, N, 1, E), viewed
          as (3, L, N, E) and selected into ``{node}.q``, ``.k``, ``.v``; when only key and value are one tensor, a
          linear for q and one to 2E for k and v, split the same way; else three linears (``{node}.q_proj``...);
        * each of q, k, v viewed as (L, N·H, D), transposed to (N·H, L, D), viewed as (N, H, L, D);
        * the attention of :meth:`_attention`, transposed to (L, N, H, D), viewed as (L·N, E), ``out_proj``, viewed
          as (L, N, E), transposed back to batch first (unbatched: viewed as (L, E)).

        (With ``need_weights=True`` torch multiplies (N·H, L, D) operands with ``bmm`` instead: the same MACs.) The
        averaged attention weights it then returns have no IR operator: they become an unsupported result, reported
        when read (or, unread, listed as skipped)."""
        b = _bind(
            args, kwargs, ("query", "key", "value", "key_padding_mask", "need_weights", "attn_mask",
                           "average_attn_weights", "is_causal"),
            key_padding_mask=None, need_weights=True, attn_mask=None, is_causal=False,
        )
        if m.bias_k is not None or m.add_zero_attn:
            raise Unsupported("nn.MultiheadAttention with add_bias_kv=True or add_zero_attn=True")
        if is_symbol(b["key_padding_mask"]) or is_symbol(b["attn_mask"]):
            raise Unsupported(
                "nn.MultiheadAttention with a mask computed by the network; use F.scaled_dot_product_attention, "
                "whose attn_mask may be a network tensor"
            )
        q, k, v = (self._src(b[name], name) for name in ("query", "key", "value"))
        heads, embed = m.num_heads, m.embed_dim
        head_dim = embed // heads
        batched = len(q.shape) == 3
        seq_first: dict[str, TensorRef] = {}

        def to_seq_first(src: TensorRef, what: str) -> TensorRef:
            if src.name not in seq_first:
                if not batched:
                    unbatched = (src.shape[0], 1, src.shape[1])
                    seq_first[src.name] = self.asm.view(f"{node}.{what}_unsqueeze", src, unbatched)
                elif m.batch_first:
                    seq_first[src.name] = self.asm.permute(f"{node}.{what}_seq", src, [1, 0, 2])
                else:
                    seq_first[src.name] = src
            return seq_first[src.name]

        qs, ks, vs = to_seq_first(q, "query"), to_seq_first(k, "key"), to_seq_first(v, "value")
        (length, batch, _), source_length = qs.shape, ks.shape[0]
        bias = m.in_proj_bias is not None

        def linear(src: TensorRef, what: str, features: int) -> TensorRef:
            return self.asm.layer(
                f"{node}.{what}", None, lambda n: self.b.linear(src.name, features, bias=bias, name=n)
            )

        def packed(src: TensorRef, what: str, parts: Sequence[str]) -> list[Symbol]:
            proj = linear(src, what, len(parts) * embed)
            rows, cols = proj.shape[:2]
            x = self.asm.view(f"{node}.{what}.unflatten", proj, (rows, cols, len(parts), embed))
            x = self.asm.view(f"{node}.{what}.unsqueeze", x, (1, rows, cols, len(parts), embed))
            x = self.asm.permute(f"{node}.{what}.t", x, [3, 1, 2, 0, 4])
            x = self.asm.view(f"{node}.{what}.squeeze", x, (len(parts), rows, cols, embed))
            return [self.asm.part(f"{node}.{part}", x, (1, rows, cols, embed), drop=(0,)) for part in parts]

        projected: list[Symbol]
        if m._qkv_same_embed_dim and qs.name == ks.name == vs.name:
            projected = packed(qs, "in_proj", ("q", "k", "v"))
        elif m._qkv_same_embed_dim and ks.name == vs.name:
            projected = [linear(qs, "q_proj", embed), *packed(ks, "kv_proj", ("k", "v"))]
        else:
            projected = [linear(qs, "q_proj", embed), linear(ks, "k_proj", embed), linear(vs, "v_proj", embed)]

        def split_heads(x: Symbol, what: str, rows: int) -> TensorRef:
            flat = self.asm.view(f"{node}.{what}_heads", x, (rows, batch * heads, head_dim))
            moved = self.asm.permute(f"{node}.{what}_t", flat, [1, 0, 2])
            return self.asm.view(f"{node}.{what}_split", moved, (batch, heads, rows, head_dim))

        qh = split_heads(projected[0], "q", length)
        kh = split_heads(projected[1], "k", source_length)
        vh = split_heads(projected[2], "v", source_length)
        constant_mask = b["key_padding_mask"] is not None or b["attn_mask"] is not None or bool(b["is_causal"])
        att = self._attention(node, qh, kh, vh, scale=head_dim ** -0.5, mask=None, constant_mask=constant_mask,
                              expected=None)
        merged = self.asm.view(f"{node}.merge", self.asm.permute(f"{node}.merge_t", att, [2, 0, 1, 3]),
                               (length * batch, embed))
        proj_out = self._linear(f"{node}.out_proj", merged, None, m.out_proj.out_features, m.out_proj.bias is not None)
        result = self.asm.view(f"{node}.out", proj_out, (length, batch, proj_out.shape[-1]))
        if not batched:
            result = self.asm.view(f"{node}.squeeze", result, (length, proj_out.shape[-1]))
        elif m.batch_first:
            result = self.asm.permute(f"{node}.out_t", result, [1, 0, 2])
        if result.shape != tensor_shape(out[0]):
            raise InvalidInputError(
                f"{self.asm.source}: node {node!r}: the IR infers output shape {result.shape}, torch computed "
                f"{tensor_shape(out[0])}"
            )
        weights: Any = out[1]
        if isinstance(weights, torch.Tensor):
            weights = self.asm.unsupported(
                f"{node}.attn_output_weights", "MultiheadAttention",
                "the attention weights nn.MultiheadAttention returns with need_weights=True (an average over heads) "
                "have no IR operator; pass need_weights=False", q, [tensor_shape(weights)],
            )[0]
        return (result, weights)

    # ---- leaf modules ----------------------------------------------------------------------------------------
    def _module(self, node: str, m: nn.Module, args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Any:
        x = args[0] if args else next(iter(kwargs.values()), None)
        if isinstance(m, Zero):
            return self._zero(node, x, out)
        if isinstance(m, (ChannelShuffle, nn.ChannelShuffle)):
            return self._channel_shuffle(node, x, m.groups, out)
        if isinstance(m, nn.Conv2d):
            return self._conv(
                node, x, out, out_channels=m.out_channels, kernel=m.kernel_size, stride=m.stride, padding=m.padding,
                dilation=m.dilation, groups=m.groups, bias=m.bias is not None, padding_mode=m.padding_mode,
            )
        if isinstance(m, _PAD_MODULES):
            src = self._src(x, "input")
            return self._pad(node, x, _torch_pad_to_ir(m.padding, len(src.shape)), out)
        if isinstance(m, nn.Linear):
            return self._linear(node, x, out, m.out_features, m.bias is not None)
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            return self._batch_norm(node, x, out, m.affine)
        if isinstance(m, nn.LayerNorm):
            return self._layer_norm(node, x, m.normalized_shape, m.weight, m.bias, out)
        for cls, kind in _ACTIVATION_MODULES:
            if isinstance(m, cls):
                return self._activation(node, x, kind, out)
        if isinstance(m, nn.Hardtanh):  # nn.ReLU6 included
            return self._clamp(node, x, m.min_val, m.max_val, out)
        if isinstance(m, nn.Softmax):
            return self._softmax(node, x, m.dim, out)
        if isinstance(m, nn.AvgPool2d):
            return self._pool(
                node, OpKind.AVG_POOL, x, out, kernel=m.kernel_size, stride=m.stride, padding=m.padding,
                ceil_mode=m.ceil_mode, count_include_pad=m.count_include_pad, divisor_override=m.divisor_override,
            )
        if isinstance(m, nn.MaxPool2d):
            return self._pool(
                node, OpKind.MAX_POOL, x, out, kernel=m.kernel_size, stride=m.stride, padding=m.padding,
                ceil_mode=m.ceil_mode, dilation=m.dilation,
            )
        if isinstance(m, nn.AdaptiveAvgPool2d):
            return self._adaptive(node, True, x, out)
        if isinstance(m, nn.AdaptiveMaxPool2d):
            return self._adaptive(node, False, x, out)
        if isinstance(m, nn.Flatten):
            return self.asm.view(node, self._src(x, "input"), tensor_shape(out))
        if isinstance(m, (nn.Identity, nn.modules.dropout._DropoutNd)):
            return self._identity(node, x, out)
        raise Unsupported(f"the IR has no operator for torch.nn.{type(m).__name__}")
