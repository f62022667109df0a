"""ONNX models to the network IR (torch modules to ONNX: :mod:`~nas_latency.frontends.onnx_export`).

:func:`onnx_to_ir` loads a model (a path, bytes or a ``ModelProto``), checks it, fixes a symbolic batch dimension
to ``batch_size``, runs ONNX shape inference (strict first, lenient if strict fails) and maps nodes to IR layers:

* ``Conv`` (conv / grouped / depthwise by ``group``; ``pads`` ``[top, left, bottom, right]``; ``auto_pad``
  ``SAME_UPPER``/``SAME_LOWER``/``VALID``), ``Gemm`` and ``MatMul`` by a constant (with a following ``Add`` of a
  constant bias folded in) as ``LINEAR``, ``BatchNormalization`` (``affine`` is false only when scale and bias
  are literal ``Constant`` ones and zeros, which is how torch exports ``affine=False``);
* activations ``Relu``, ``Clip`` to [0, 6] (``RELU6``) or [0, inf) (``RELU``), ``Sigmoid``, ``HardSigmoid``,
  ``HardSwish``, ``Tanh``, ``Softmax``, ``Gelu``; ``Sigmoid`` whose only reader is ``Mul(x, sigmoid(x))`` is one
  ``SILU`` layer (torch exports ``nn.SiLU`` that way), ``HardSigmoid(alpha=1/6)`` read only by
  ``Mul(x, hardsigmoid(x))`` one ``HARD_SWISH`` (``nn.Hardswish`` below opset 14), and
  ``Mul(Mul(x, Add(Erf(Div(x, √2)), 1)), 0.5)`` one ``GELU`` (``nn.GELU`` below opset 20);
* ``Add``/``Mul``/``Sum`` of network tensors; ``Add``/``Sub``/``Mul``/``Div`` of a network tensor and a constant
  that does not broadcast it to a larger shape, ``Neg`` and ``Reciprocal`` are one ``SCALE`` pass, except ``Mul``
  by an all-zero constant (``ZERO``) and ``+ 0``, ``- 0``, ``* 1``, ``/ 1`` (no layer); ``Sub``/``Div`` of two
  network tensors are unsupported; ``Concat`` (of one input: that input);
* ``Pad`` (any mode; ``pads`` an attribute below opset 11, a constant input from 11) of an (N, C, H, W) input in H
  and W is ``PAD`` (all-zero pads: the input itself; negative pads or pads of N or C are unsupported, naming the
  pads); torch's export of a circular pad, ``Concat([Slice(x, -b:), x, Slice(x, :a)])`` along H and then W, is one
  ``PAD`` too;
* ``MatMul`` of two network tensors is ``MATMUL`` (torch's ``F.scaled_dot_product_attention`` export,
  ``(q · √s) @ (kᵀ · √s)``, is read back as ``(q @ kᵀ) · s``: one ``MATMUL`` and one ``SCALE``, as the torch
  frontend decomposes it); ``Transpose`` is ``TRANSPOSE`` (no layer for the identity, a ``RESHAPE`` when only
  size-1 dimensions move); ``LayerNormalization`` (opset 17+) is ``LAYER_NORM`` (below 17 torch decomposes
  ``nn.LayerNorm`` into ReduceMean/Sub/Pow/...: unsupported, the error says to export with opset 17+);
* ``AveragePool``, ``MaxPool`` (a ``MaxPool`` whose single window covers the whole unpadded input is
  ``GLOBAL_MAX_POOL``: torch exports ``AdaptiveMaxPool2d(1)`` that way), ``GlobalAveragePool``, ``GlobalMaxPool``,
  ``ReduceMean`` over (2, 3) (``GLOBAL_AVG_POOL``, then a flatten when ``keepdims=0``);
* ``Flatten``/``Reshape``/``Squeeze``/``Unsqueeze`` as ``FLATTEN`` or ``RESHAPE`` (by the resulting shapes, see
  :func:`~nas_latency.frontends.conversion.view_kind`); ``Reshape(N, g, C/g, H, W)`` → ``Transpose(0, 2, 1, 3, 4)``
  → ``Reshape(N, C, H, W)`` is one ``CHANNEL_SHUFFLE``; ``Identity`` and ``Dropout`` are ``IDENTITY``;
* parts of a tensor (:meth:`~nas_latency.frontends.conversion.IRAssembler.part`): ``Split`` (sizes from its
  ``split`` input or attribute, else equal parts, ``num_outputs`` at opset 18+) is one ``SLICE`` per output, and a
  part read only by a ``Squeeze`` of the split axis one select (torch exports ``unbind`` that way); ``Slice`` with
  constant starts, ends and axes and steps of 1 is one ``SLICE`` (no layer when it takes everything); ``Gather``
  of a network tensor by one constant index is a select (scalar index) or a ``SLICE`` of size 1 (1-D index). A
  part no layer or output reads is no layer. ``Slice`` with other steps or computed bounds, ``Gather`` of several
  indices or of indices computed by the network (an embedding lookup), and the sequence operators torch exports
  ``tensor_split`` with are unsupported, with the reason in the error.

Initializers, ``Constant`` nodes and everything computed from constants and shapes alone (``Shape``, ``Gather`` and
``Slice`` of a shape, ``Concat`` of shape pieces...) are not layers; they are evaluated with numpy where a value is
needed (:mod:`~nas_latency.frontends.onnx_constants`). Any other
operator follows :class:`~nas_latency.frontends.conversion.IRAssembler`'s policy: an
:class:`~nas_latency.errors.UnsupportedOperatorError` naming the node (its name, or ``#index``) and its op type,
or with ``on_unsupported="skip"`` an explicit, reported skip.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from nas_latency.errors import InvalidInputError
from nas_latency.frontends.conversion import (
    Conversion,
    IRAssembler,
    OnUnsupported,
    Pending,
    Symbol,
    TensorRef,
    Unsupported,
    check_on_unsupported,
    is_symbol,
)
from nas_latency.frontends.onnx_constants import UNKNOWN, UnknownConstant, fold_constant, reshape_target
from nas_latency.ir import OpKind, Shape, numel

logger = logging.getLogger(__name__)

OnnxModel = str | Path | bytes | bytearray | memoryview | onnx.ModelProto


_SIMPLE_ACTIVATIONS: dict[str, OpKind] = {
    "Relu": OpKind.RELU,
    "HardSwish": OpKind.HARD_SWISH,
    "Tanh": OpKind.TANH,
    "Gelu": OpKind.GELU,
}


# ---- loading ---------------------------------------------------------------------------------------------------
def load_onnx(model: OnnxModel) -> tuple[onnx.ModelProto, str]:
    """Load and check a model; return a private copy and a description of where it came from (for messages).
    Anything that is not a well-formed ONNX model raises :class:`InvalidInputError`."""
    if isinstance(model, onnx.ModelProto):
        proto = onnx.ModelProto()
        proto.CopyFrom(model)
        source = f"ONNX model {model.graph.name or '(unnamed)'!r}"
    elif isinstance(model, (bytes, bytearray, memoryview)):
        source = "ONNX bytes"
        try:
            proto = onnx.load_model_from_string(bytes(model))
        except Exception as exc:  # protobuf raises DecodeError, RuntimeWarning-like errors, ...
            raise InvalidInputError(f"{source}: not a valid ONNX model ({type(exc).__name__}: {exc})") from None
    elif isinstance(model, (str, Path)):
        path = Path(model)
        source = str(path)
        if not path.is_file():
            raise InvalidInputError(f"{path}: no such ONNX file")
        try:
            proto = onnx.load(str(path))
        except OSError as exc:
            raise InvalidInputError(f"{path}: cannot read ONNX file ({exc.strerror or exc})") from None
        except Exception as exc:
            raise InvalidInputError(f"{path}: not a valid ONNX model ({type(exc).__name__}: {exc})") from None
    else:
        raise InvalidInputError(f"expected a path, bytes or an onnx.ModelProto, got {type(model).__name__}")
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError(f"{source}: not a valid ONNX model ({first})") from None
    if not proto.graph.node:
        raise InvalidInputError(f"{source}: not a valid ONNX model (its graph has no nodes)")
    return proto, source


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in node.attribute:
        value = helper.get_attribute_value(attr)
        out[attr.name] = value.decode() if isinstance(value, bytes) else value
    return out


def _static_shape(value_info: onnx.ValueInfoProto) -> Shape | None:
    if not value_info.type.HasField("tensor_type") or not value_info.type.tensor_type.HasField("shape"):
        return None
    dims = value_info.type.tensor_type.shape.dim
    if not all(d.HasField("dim_value") and d.dim_value > 0 for d in dims):
        return None
    return tuple(int(d.dim_value) for d in dims)


def _same_pads(auto_pad: str, size: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
               dilation: Sequence[int], pads: Sequence[int]) -> tuple[int, int, int, int]:
    """ONNX ``pads`` (begins then ends) or ``auto_pad`` as (top, left, bottom, right)."""
    if auto_pad in ("", "NOTSET"):
        p = [int(v) for v in pads] if pads else [0, 0, 0, 0]
        return (p[0], p[1], p[2], p[3])
    if auto_pad == "VALID":
        return (0, 0, 0, 0)
    begins, ends = [], []
    for n, k, s, d in zip(size, kernel, stride, dilation):
        out = math.ceil(n / s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - n)
        small, big = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else big)
        ends.append(big if auto_pad == "SAME_UPPER" else small)
    return (begins[0], begins[1], ends[0], ends[1])


def _uniform(value: Any) -> float | None:
    if isinstance(value, np.ndarray) and value.size > 0 and value.dtype.kind in "biuf":
        flat = value.reshape(-1)
        if bool(np.all(flat == flat[0])):
            return float(flat[0])
    return None


# ---- constant evaluation (shape computations) ------------------------------------------------------------------


# ---- conversion -------------------------------------------------------------------------------------------------
class _OnnxConverter:
    def __init__(
        self, proto: onnx.ModelProto, source: str, name: str, on_unsupported: OnUnsupported, batch_size: int | None
    ) -> None:
        self.proto = proto
        self.source = source
        self.batch_size = batch_size
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.asm = IRAssembler(name, on_unsupported, source=source)
        self.b = self.asm.builder
        self.values: dict[str, Any] = {}  # tensor name -> Symbol, np.ndarray or UNKNOWN
        self.origin: dict[str, str] = {}  # constant name -> "initializer" | "constant" | "computed"
        self.const_shapes: dict[str, Shape] = {}
        self.shapes: dict[str, Shape] = {}
        self.consumers: dict[str, list[int]] = {}
        self.graph_outputs: set[str] = set()
        self.fused: set[int] = set()
        self._producers: dict[str, int] = {}  # tensor name -> index of the node that outputs it
        self._circular: dict[str, tuple[Pending, tuple[int, int, int, int]]] = {}  # circular-pad concats
        self.pending_scales: dict[str, str] = {}  # output of a Mul by a number read only by a MatMul -> its name
        self.nodes: list[onnx.NodeProto] = []

    # ---- setup ----------------------------------------------------------------------------------------------
    def _inputs(self) -> None:
        graph = self.proto.graph
        initializers = {init.name for init in graph.initializer}
        for init in graph.initializer:
            self.const_shapes[init.name] = tuple(int(d) for d in init.dims)
            self.origin[init.name] = "initializer"
            try:
                self.values[init.name] = numpy_helper.to_array(init)
            except Exception:  # external data that was not loaded: the shape is still known
                self.values[init.name] = UNKNOWN
        for spec in graph.input:
            if spec.name in initializers:
                continue
            where = f"{self.source}: input {spec.name!r}"
            if not spec.type.HasField("tensor_type") or not spec.type.tensor_type.HasField("shape"):
                raise InvalidInputError(f"{where} has no tensor shape")
            dims = spec.type.tensor_type.shape.dim
            shape: list[int] = []
            for k, dim in enumerate(dims):
                if dim.HasField("dim_value") and dim.dim_value > 0:
                    if k == 0 and self.batch_size is not None and dim.dim_value != self.batch_size:
                        raise InvalidInputError(
                            f"{where} has a fixed batch size of {dim.dim_value}, not batch_size={self.batch_size}"
                        )
                    shape.append(int(dim.dim_value))
                elif k == 0:
                    size = self.batch_size if self.batch_size is not None else 1
                    logger.info("%s has a symbolic batch dimension %r; using batch_size=%d", where, dim.dim_param, size)
                    dim.Clear()
                    dim.dim_value = size
                    shape.append(size)
                else:
                    raise InvalidInputError(
                        f"{where} has a symbolic dimension {k} ({dim.dim_param or 'unknown'}); only the batch "
                        "dimension may be symbolic: export the model with static shapes"
                    )
            self.values[spec.name] = self.asm.input(spec.name, shape)

    def _infer_shapes(self) -> None:
        try:
            inferred = shape_inference.infer_shapes(self.proto, check_type=True, strict_mode=True, data_prop=True)
        except Exception as exc:
            logger.warning("%s: strict ONNX shape inference failed (%s); retrying leniently", self.source, exc)
            try:
                inferred = shape_inference.infer_shapes(self.proto, data_prop=True)
            except Exception as exc2:
                raise InvalidInputError(f"{self.source}: ONNX shape inference failed ({exc2})") from None
        graph = inferred.graph
        for info in (*graph.value_info, *graph.input, *graph.output):
            shape = _static_shape(info)
            if shape is not None:
                self.shapes[info.name] = shape
        self.nodes = list(graph.node)
        self.graph_outputs = {o.name for o in graph.output}
        for i, node in enumerate(self.nodes):
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(i)

    def run(self) -> Conversion:
        self._inputs()
        self._infer_shapes()
        for node in self.nodes:  # Constant nodes first: a pattern may read one the exporter placed after its start
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                self._constant(node, [])
        for i, node in enumerate(self.nodes):
            if i not in self.fused:
                self._node(i, node)
        outputs: list[Symbol] = []
        for out in self.proto.graph.output:
            value = self.values.get(out.name)
            if is_symbol(value):
                outputs.append(value)
            else:
                logger.info("%s: output %r does not depend on the input; not in the network", self.source, out.name)
        return self.asm.finish(outputs)

    # ---- per node --------------------------------------------------------------------------------------------
    def _node(self, i: int, node: onnx.NodeProto) -> None:
        ins = [self.values.get(name, UNKNOWN) if name else None for name in node.input]
        symbolic = any(is_symbol(v) for v in ins)
        label = node.name or f"#{i}"
        if not symbolic:
            self._constant(node, ins)
            return
        try:
            if node.domain not in ("", "ai.onnx"):
                raise Unsupported(f"custom operator of domain {node.domain!r}")
            if node.op_type in ("Shape", "Size"):
                self._shape_of(node, ins)
                return
            handler: Callable[[int, onnx.NodeProto, str, list[Any]], Any] | None = getattr(
                self, f"_op_{node.op_type}", None
            )
            if node.op_type in _SIMPLE_ACTIVATIONS:
                handler = self._activation
            if handler is None:
                raise Unsupported(f"the IR has no operator for ONNX {node.op_type}")
            result = handler(i, node, node.name or f"{node.op_type.lower()}_{i}", ins)
            self.values[node.output[0]] = result
        except Unsupported as exc:
            source = next((v for v in ins if is_symbol(v)), None)
            outputs = [o for o in node.output if o]
            shapes = [self.shapes.get(o) for o in outputs]
            deferred = self.asm.unsupported(label, node.op_type, str(exc), source, shapes)
            for name, value in zip(outputs, deferred):
                self.values[name] = value

    def _constant(self, node: onnx.NodeProto, ins: list[Any]) -> None:
        attrs = _attrs(node)
        if node.op_type == "Constant":
            outputs: list[Any] | None = [self._constant_value(node, attrs)]
            origin = "constant"
        else:
            try:
                in_default_domain = node.domain in ("", "ai.onnx")
                outputs = fold_constant(node.op_type, ins, attrs, self.opset) if in_default_domain else None
            except Exception:  # a constant we cannot evaluate is only a problem if a layer needs its value
                outputs = None
            origin = self.origin.get(node.input[0], "computed") if node.op_type == "Identity" else "computed"
        for k, name in enumerate(node.output):
            if name:
                self.values[name] = outputs[k] if outputs is not None and k < len(outputs) else UNKNOWN
                self.origin[name] = origin

    @staticmethod
    def _constant_value(node: onnx.NodeProto, attrs: dict[str, Any]) -> Any:
        if "value" in attrs:
            return numpy_helper.to_array(attrs["value"])
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                           ("value_ints", np.int64)):
            if key in attrs:
                return np.array(attrs[key], dtype=dtype)
        return UNKNOWN

    def _shape_of(self, node: onnx.NodeProto, ins: list[Any]) -> None:
        shape = ins[0].shape
        if shape is None:
            value: Any = UNKNOWN
        elif node.op_type == "Size":
            value = np.array(numel(shape), dtype=np.int64)
        else:
            attrs = _attrs(node)
            value = np.array(shape, dtype=np.int64)[attrs.get("start", 0): attrs.get("end", len(shape))]
        self.values[node.output[0]] = value
        self.origin[node.output[0]] = "computed"

    # ---- helpers ----------------------------------------------------------------------------------------------
    def _src(self, value: Any, what: str = "input") -> TensorRef:
        if not is_symbol(value):
            raise Unsupported(f"its {what} is a constant, not a tensor of the network")
        return self.asm.resolve(value)

    def _const(self, value: Any, what: str) -> np.ndarray:
        if is_symbol(value):
            raise Unsupported(f"its {what} is computed by the network")
        if not isinstance(value, np.ndarray):
            raise Unsupported(f"its {what} is a constant that cannot be evaluated")
        return value

    def _const_shape(self, name: str, value: Any) -> Shape:
        if is_symbol(value):
            raise Unsupported("its weight is computed by the network")
        if isinstance(value, np.ndarray):
            return tuple(int(d) for d in value.shape)
        shape = self.const_shapes.get(name) or self.shapes.get(name)
        if shape is None:
            raise Unsupported("the shape of its weight is unknown")
        return shape

    def _expected(self, node: onnx.NodeProto, index: int = 0) -> Shape | None:
        return self.shapes.get(node.output[index])

    def _sole_consumer(self, name: str) -> tuple[int, onnx.NodeProto] | None:
        users = self.consumers.get(name, [])
        if len(users) != 1 or name in self.graph_outputs:
            return None
        return users[0], self.nodes[users[0]]

    def _used(self, name: str) -> bool:
        return bool(name) and (name in self.graph_outputs or bool(self.consumers.get(name)))

    def _layer(self, name: str, expected: Shape | None, build: Callable[[str], str]) -> TensorRef:
        return self.asm.layer(name, expected, build)

    # ---- operators --------------------------------------------------------------------------------------------
    def _op_Conv(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        x = self._src(ins[0])
        if len(x.shape) != 4:
            raise Unsupported(f"only 2-D convolutions over (N, C, H, W) inputs are representable, got {x.shape}")
        wshape = self._const_shape(node.input[1], ins[1])
        if len(ins) > 2 and is_symbol(ins[2]):
            raise Unsupported("its bias is computed by the network")
        a = _attrs(node)
        kernel = [int(k) for k in a.get("kernel_shape", wshape[2:])]
        stride = [int(s) for s in a.get("strides", [1, 1])]
        dilation = [int(d) for d in a.get("dilations", [1, 1])]
        pads = _same_pads(a.get("auto_pad", "NOTSET"), x.shape[2:], kernel, stride, dilation, a.get("pads", []))
        bias = len(node.input) > 2 and bool(node.input[2])
        return self._layer(
            name, self._expected(node),
            lambda n: self.b.conv(
                x.name, int(wshape[0]), (kernel[0], kernel[1]), stride=(stride[0], stride[1]), padding=pads,
                dilation=(dilation[0], dilation[1]), groups=int(a.get("group", 1)), bias=bias, name=n,
            ),
        )

    def _op_Gemm(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        a = _attrs(node)
        x = self._src(ins[0], "first operand")
        if a.get("transA", 0):
            raise Unsupported("Gemm with a transposed activation (transA=1)")
        wshape = self._const_shape(node.input[1], ins[1])
        if len(ins) > 2 and is_symbol(ins[2]):
            raise Unsupported("its bias is computed by the network")
        out_features = wshape[0] if a.get("transB", 0) else wshape[1]
        bias = len(node.input) > 2 and bool(node.input[2])
        return self._layer(
            name, self._expected(node), lambda n: self.b.linear(x.name, int(out_features), bias=bias, name=n)
        )

    def _op_MatMul(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        """``MatMul`` of two network tensors is ``MATMUL``; by a 2-D constant it is ``LINEAR`` (a following ``Add``
        of a constant bias folded in). torch exports ``F.scaled_dot_product_attention`` with its scale split in two,
        ``(q · √s) @ (kᵀ · √s)``: when both operands are such ``Mul`` by a number, this is read back as
        ``(q @ kᵀ) · s``, one ``MATMUL`` and one ``SCALE``, as the torch frontend decomposes it."""
        pending = [self.pending_scales.pop(operand, None) for operand in node.input]
        if len(ins) == 2 and all(p is not None for p in pending) and all(is_symbol(v) for v in ins):
            a, c = self.asm.resolve(ins[0]), self.asm.resolve(ins[1])
            product = self._matmul(name, a, c, None)
            scale_name = f"{name}.scale"
            return self._layer(scale_name, self._expected(node), lambda n: self.b.scale(product.name, name=n))
        for k, scale_name in enumerate(pending):
            if scale_name is not None:  # a Mul by a number whose result only this MatMul reads: build it now
                src = self.asm.resolve(ins[k])
                ins[k] = self._layer(scale_name, src.shape, lambda n: self.b.scale(src.name, name=n))
        if is_symbol(ins[0]) and is_symbol(ins[1]):
            return self._matmul(name, self.asm.resolve(ins[0]), self.asm.resolve(ins[1]), self._expected(node))
        if not is_symbol(ins[0]):
            raise Unsupported("MatMul of a constant by a network tensor (only x @ W, a linear layer, is representable)")
        return self._linear_matmul(node, name, ins)

    def _matmul(self, name: str, a: TensorRef, c: TensorRef, expected: Shape | None) -> TensorRef:
        if len(a.shape) < 2 or len(c.shape) < 2:
            raise Unsupported(f"MatMul of {a.shape} and {c.shape} (the IR's matmul takes operands of rank 2 or more)")
        return self._layer(name, expected, lambda n: self.b.matmul(a.name, c.name, name=n))

    def _linear_matmul(self, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        x = self.asm.resolve(ins[0])
        wshape = self._const_shape(node.input[1], ins[1])
        if len(wshape) != 2 or wshape[0] != x.shape[-1]:
            raise Unsupported(f"MatMul of {x.shape} by a constant of shape {wshape} is not a linear layer")
        out_features = int(wshape[1])
        bias, out_name = False, node.output[0]
        user = self._sole_consumer(node.output[0])
        if user is not None and user[1].op_type == "Add" and len(user[1].input) == 2:
            other = [n for n in user[1].input if n != node.output[0]]
            value = self.values.get(other[0]) if len(other) == 1 else None
            if isinstance(value, (np.ndarray, UnknownConstant)) and not is_symbol(value):
                bshape = self._const_shape(other[0], value)
                if numel(bshape) == out_features and bshape[-1:] == (out_features,):
                    bias, out_name = True, user[1].output[0]
                    self.fused.add(user[0])
        expected = self.shapes.get(out_name)
        ref = self._layer(name, expected, lambda n: self.b.linear(x.name, out_features, bias=bias, name=n))
        self.values[out_name] = ref
        return ref

    def _op_BatchNormalization(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        x = self._src(ins[0])
        if any(is_symbol(v) for v in ins[1:]):
            raise Unsupported("its scale, bias or statistics are computed by the network")
        scale, shift = ins[1], ins[2]
        literal = all(self.origin.get(n) == "constant" for n in node.input[1:3])
        affine = not (literal and _uniform(scale) == 1.0 and _uniform(shift) == 0.0)
        return self._layer(name, self._expected(node), lambda n: self.b.batch_norm(x.name, affine=affine, name=n))

    def _activation(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any], kind: OpKind | None = None,
                    axis: int | None = None) -> TensorRef:
        x = self._src(ins[0])
        op = kind or _SIMPLE_ACTIVATIONS[node.op_type]
        return self._layer(name, self._expected(node), lambda n: self.b.activation(x.name, op, axis=axis, name=n))

    def _gated(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any], kind: OpKind) -> TensorRef | None:
        """``node`` (an activation of ``x``) read only by ``Mul(x, node(x))``: one ``kind`` layer for both (the Mul is
        fused), or None when the graph is not that pattern."""
        user = self._sole_consumer(node.output[0])
        if user is None or user[1].op_type != "Mul" or sorted(user[1].input) != sorted([node.input[0], node.output[0]]):
            return None
        self.fused.add(user[0])
        ref = self._activation(i, node, name, ins, kind)
        self.values[user[1].output[0]] = ref
        return ref

    def _op_Sigmoid(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        # x * sigmoid(x): one SiLU
        return self._gated(i, node, name, ins, OpKind.SILU) or self._activation(i, node, name, ins, OpKind.SIGMOID)

    def _op_HardSigmoid(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        a = _attrs(node)
        torch_gate = math.isclose(a.get("alpha", 0.2), 1 / 6, rel_tol=1e-6) and a.get("beta", 0.5) == 0.5
        # x * hardsigmoid(x) with torch's constants: one hard swish (torch exports nn.Hardswish so below opset 14)
        gated = self._gated(i, node, name, ins, OpKind.HARD_SWISH) if torch_gate else None
        return gated or self._activation(i, node, name, ins, OpKind.HARD_SIGMOID)

    def _other_constant(self, node: onnx.NodeProto, tensor: str) -> float | None:
        """The uniform value of ``node``'s operand other than ``tensor``, if it is a constant; else None."""
        others = [n for n in node.input if n != tensor]
        if len(node.input) != 2 or len(others) != 1:
            return None
        value = self.values.get(others[0])
        return _uniform(value) if isinstance(value, np.ndarray) else None

    def _op_Div(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        """``x / √2 → Erf → + 1 → · x → · 0.5``, the exact GELU as torch exports ``nn.GELU`` below opset 20, is one
        ``GELU`` layer; any other division is a division by (or of) a constant, see :meth:`_binary`."""
        x = node.input[0]
        chain: list[tuple[int, onnx.NodeProto]] = []
        current = node.output[0]
        for op_type in ("Erf", "Add", "Mul", "Mul"):
            user = self._sole_consumer(current)
            if user is None or user[1].op_type != op_type:
                break
            chain.append(user)
            current = user[1].output[0]
        if len(chain) == 4 and is_symbol(ins[0]):
            divisor = _uniform(ins[1]) if isinstance(ins[1], np.ndarray) else None
            (_, add), (_, gate), (_, half) = chain[1:]
            if (divisor is not None and math.isclose(divisor, math.sqrt(2), rel_tol=1e-5)
                    and self._other_constant(add, chain[0][1].output[0]) == 1.0
                    and sorted(gate.input) == sorted([x, add.output[0]])
                    and self._other_constant(half, gate.output[0]) == 0.5):
                self.fused.update(index for index, _ in chain)
                ref = self._activation(i, node, name, ins, OpKind.GELU)
                self.values[half.output[0]] = ref
                return ref
        return self._binary(node, name, ins, "Div")

    def _op_Transpose(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> Any:
        """``TRANSPOSE``; no layer for the identity permutation, a cost-free reshape when only dimensions of size 1
        move. (The channel-shuffle Reshape/Transpose/Reshape is fused by :meth:`_channel_shuffle` first.)"""
        x = self._src(ins[0])
        perm = _attrs(node).get("perm", range(len(x.shape) - 1, -1, -1))
        return self.asm.permute(name, x, list(perm), self._expected(node))

    def _op_LayerNormalization(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        """``LAYER_NORM`` from ``axis``. A scale that is a literal ``Constant`` of ones is no learned scale, a shift
        that is absent or a literal ``Constant`` of zeros no learned shift (how torch exports
        ``elementwise_affine=False`` and ``bias=False``)."""
        x = self._src(ins[0])
        if any(is_symbol(v) for v in ins[1:]):
            raise Unsupported("its scale or shift is computed by the network")
        if any(self._used(o) for o in node.output[1:]):
            raise Unsupported("LayerNormalization whose mean or inverse standard deviation outputs are used")
        has_bias = len(ins) > 2 and ins[2] is not None
        literal_ones = self.origin.get(node.input[1]) == "constant" and _uniform(ins[1]) == 1.0
        literal_zeros = not has_bias or (self.origin.get(node.input[2]) == "constant" and _uniform(ins[2]) == 0.0)
        axis = int(_attrs(node).get("axis", -1))
        if not -len(x.shape) < axis < len(x.shape) or axis % len(x.shape) == 0:
            raise Unsupported(f"axis {axis} of a {x.shape} input (the batch dimension must not be normalized)")
        return self._layer(
            name, self._expected(node), lambda n: self.b.layer_norm(
                x.name, axis=axis, affine=not literal_ones, bias=not literal_zeros, name=n)
        )

    def _op_Softmax(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        x = self._src(ins[0])
        rank = len(x.shape)
        axis = int(_attrs(node).get("axis", -1 if self.opset >= 13 else 1)) % rank
        if self.opset < 13 and axis != rank - 1:
            raise Unsupported(f"opset-{self.opset} Softmax over the flattened dims from axis {axis}")
        return self._activation(i, node, name, ins, OpKind.SOFTMAX, axis=axis)

    def _op_Clip(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        if self.opset < 11:
            a = _attrs(node)
            low, high = a.get("min"), a.get("max")
        else:
            low = _uniform(self._const(ins[1], "minimum")) if len(ins) > 1 and ins[1] is not None else None
            high = _uniform(self._const(ins[2], "maximum")) if len(ins) > 2 and ins[2] is not None else None
        if low == 0.0 and high is None:
            return self._activation(i, node, name, ins, OpKind.RELU)
        if low == 0.0 and high == 6.0:
            return self._activation(i, node, name, ins, OpKind.RELU6)
        raise Unsupported(f"clipping to [{low}, {high}] (only [0, 6] and [0, inf) are representable)")

    def _binary(self, node: onnx.NodeProto, name: str, ins: list[Any], op: str) -> Any:
        """``Add``/``Sum``/``Mul`` of network tensors: ``ADD``/``MUL`` (``Sub``/``Div`` of two network tensors have no
        IR kind). A network tensor and a constant that does not broadcast it to a larger shape: no layer for
        ``x + 0``, ``x - 0``, ``x * 1``, ``x / 1``, ``ZERO`` for ``x * 0``, else one ``SCALE`` pass (a ``Mul`` by a
        single number feeding a ``MatMul`` may be folded into it, see :meth:`_op_MatMul`)."""
        if all(is_symbol(v) for v in ins):
            srcs = [self.asm.resolve(v) for v in ins]  # an unsupported producer is reported first
            if op in ("Sub", "Div"):
                raise Unsupported(
                    f"ONNX {op} of two network tensors (the IR has Add and Mul of two tensors; {op} only with a "
                    "constant)"
                )
            if len(srcs) == 1:
                return srcs[0]
            build = self.b.add if op in ("Add", "Sum") else self.b.mul
            return self._layer(name, self._expected(node), lambda n: build(*(s.name for s in srcs), name=n))
        if len(ins) != 2:
            raise Unsupported(f"{node.op_type} of network tensors and constants")
        symbol_first = is_symbol(ins[0])
        sym, const = (ins[0], ins[1]) if symbol_first else (ins[1], ins[0])
        const_name = node.input[1 if symbol_first else 0]
        const_shape = const.shape if isinstance(const, np.ndarray) else (
            self.const_shapes.get(const_name) or self.shapes.get(const_name)
        )
        out_shape = self._expected(node)
        if out_shape is None and sym.shape is not None and const_shape is not None:
            out_shape = tuple(int(d) for d in np.broadcast_shapes(sym.shape, const_shape))
        if sym.shape is None or out_shape is None:
            raise Unsupported(f"{op} with a constant: the shape of its input or output is unknown")
        if out_shape != sym.shape:
            raise Unsupported(
                f"{op} with a constant of shape {const_shape} that broadcasts the input of shape {sym.shape} to the "
                f"larger {out_shape}"
            )
        value = _uniform(const) if isinstance(const, np.ndarray) else None
        neutral = 0.0 if op in ("Add", "Sum", "Sub") else 1.0
        if value == neutral and (symbol_first or op in ("Add", "Sum", "Mul")):
            return sym  # x + 0, x - 0, x * 1, x / 1: the input itself
        x = self.asm.resolve(sym)
        if op == "Mul" and value == 0.0:
            return self._layer(name, sym.shape, lambda n: self.b.zero(x.name, name=n))
        user = self._sole_consumer(node.output[0])
        if op == "Mul" and value is not None and user is not None and user[1].op_type == "MatMul":
            self.pending_scales[node.output[0]] = name  # built by the MatMul, or folded into it
            return x
        return self._layer(name, out_shape, lambda n: self.b.scale(x.name, name=n))

    def _op_Add(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> Any:
        return self._binary(node, name, ins, "Add")

    def _op_Sub(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> Any:
        return self._binary(node, name, ins, "Sub")

    def _op_Sum(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> Any:
        return self._binary(node, name, ins, "Sum")

    def _op_Mul(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> Any:
        return self._binary(node, name, ins, "Mul")

    def _unary_scale(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        """``Neg`` (``x · -1``) and ``Reciprocal`` (``1 / x``, how torch exports it): one ``SCALE`` pass, as an
        elementwise operation with a constant."""
        x = self._src(ins[0])
        return self._layer(name, self._expected(node), lambda n: self.b.scale(x.name, name=n))

    _op_Neg = _unary_scale
    _op_Reciprocal = _unary_scale

    def _op_Pad(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> Any:
        """``Pad`` (any mode) of an (N, C, H, W) input in H and W: ``PAD``; the input itself when the pads are all
        0. ``pads`` ``[x1_begin, x2_begin, ..., x1_end, ...]`` is an attribute below opset 11, a constant input from
        11 on (with optional ``axes`` from 18)."""
        x = self._src(ins[0])
        a = _attrs(node)
        mode = a.get("mode", "constant")
        if mode not in ("constant", "reflect", "edge", "wrap"):
            raise Unsupported(f"Pad with mode {mode!r}")
        rank = len(x.shape)
        if self.opset < 11:
            pads = [int(v) for v in a.get("pads", [])]
            axes = list(range(rank))
        else:
            pads = [int(v) for v in self._const(ins[1], "pads").reshape(-1)]
            has_axes = len(ins) > 3 and ins[3] is not None
            axes = [int(v) % rank for v in self._const(ins[3], "axes").reshape(-1)] if has_axes else list(range(rank))
        if len(pads) != 2 * len(axes):
            raise Unsupported(f"Pad with pads {pads} for {len(axes)} axes of a {x.shape} input")
        begins, ends = [0] * rank, [0] * rank
        for k, axis in enumerate(axes):
            begins[axis], ends[axis] = pads[k], pads[k + len(axes)]
        if rank != 4:
            raise Unsupported(f"Pad of a {rank}-D input {x.shape} with pads {pads} (only (N, C, H, W) inputs are "
                              "representable)")
        if min(begins + ends) < 0:
            raise Unsupported(f"Pad with negative pads {pads} (cropping is not representable)")
        if any(begins[:2] + ends[:2]):
            raise Unsupported(f"Pad with pads {pads} pads the batch or channel dimension (only H and W padding is "
                              "representable)")
        padding = (begins[2], begins[3], ends[2], ends[3])
        if max(padding) == 0:
            return ins[0]
        return self._layer(name, self._expected(node), lambda n: self.b.pad(x.name, padding, name=n))

    def _slice_range(self, tensor: str, data: str, axis: int) -> tuple[int, int] | None:
        """The range ``[start, end)`` along ``axis`` that ``tensor`` takes of ``data``, when ``tensor`` is the output
        of a constant ``Slice`` of ``data`` along that axis alone with step 1; else None."""
        k = self._producer(tensor)
        if k is None or self.nodes[k].op_type != "Slice" or self.nodes[k].input[0] != data:
            return None
        node = self.nodes[k]
        shape = self.shapes.get(data) or getattr(self.values.get(data), "shape", None)
        if shape is None:
            return None
        try:
            starts, ends, axes, steps = self._slice_arguments(node, [self.values.get(n) if n else None
                                                                     for n in node.input])
        except Unsupported:  # bounds computed by the network
            return None
        if len(starts) != 1 or [v % len(shape) for v in axes] != [axis] or steps != [1]:
            return None
        taken = range(*slice(int(starts[0]), int(ends[0])).indices(shape[axis]))
        return (taken.start, taken.stop) if len(taken) else None

    def _producer(self, tensor: str) -> int | None:
        if not self._producers:
            self._producers.update({out: k for k, n in enumerate(self.nodes) for out in n.output if out})
        return self._producers.get(tensor)

    def _circular_pad(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> Symbol | None:
        """torch exports a circular pad (``F.pad(mode="circular")``, ``nn.CircularPad2d``, ``Conv2d(padding_mode=
        "circular")``) as, per padded dimension, ``Concat([Slice(x, -b:), x, Slice(x, :a)])`` (either slice may be
        absent). Such a concat of an (N, C, H, W) tensor along H or W is a ``PAD``, built when first read; when
        ``x`` is itself such a pad along the other dimension, read by nothing else, the two are one ``PAD``. None
        when the concat is not this pattern."""
        if len(ins) < 2 or not all(is_symbol(v) for v in ins):
            return None
        data = {self.nodes[k].input[0] for k in map(self._producer, node.input)
                if k is not None and self.nodes[k].op_type == "Slice"}
        if len(data) != 1 or list(node.input).count(next(iter(data))) != 1:
            return None
        source_name = next(iter(data))
        at = list(node.input).index(source_name)
        source = ins[at]
        if source.shape is None or len(source.shape) != 4 or at > 1 or len(ins) - at > 2:
            return None
        axis = int(_attrs(node).get("axis", 0)) % 4
        if axis < 2:
            return None
        ranges = [self._slice_range(t, source_name, axis) for k, t in enumerate(node.input) if k != at]
        if any(r is None for r in ranges):
            return None
        before = ranges[0] if at == 1 else None
        after = ranges[-1] if len(ins) - at == 2 else None
        dim = source.shape[axis]
        if (before is not None and before[1] != dim) or (after is not None and after[0] != 0):
            return None
        padding = [0, 0, 0, 0]
        padding[axis - 2] = before[1] - before[0] if before else 0
        padding[axis] = after[1] - after[0] if after else 0
        inner = self._circular.get(source_name)
        slices = {self._producer(t) for k, t in enumerate(node.input) if k != at}
        if (inner is not None and inner[0].resolved is None and source_name not in self.graph_outputs
                and set(self.consumers.get(source_name, [])) <= slices | {i}
                and inner[1][axis - 2] == inner[1][axis] == 0):
            source = inner[0].source
            padding = [p + q for p, q in zip(padding, inner[1])]
        pad = (padding[0], padding[1], padding[2], padding[3])
        top, left, bottom, right = pad
        n_, c_, h, w = source.shape
        out = (n_, c_, h + top + bottom, w + left + right)
        self._check_shape(node, 0, out)
        pending = self.asm.pending(name, source, out, lambda src: self._layer(
            name, out, lambda n: self.b.pad(src.name, pad, name=n)))
        self._circular[node.output[0]] = (pending, pad)
        return pending

    def _op_Concat(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> Any:
        """``CONCAT``; a concatenation of one tensor is that tensor; torch's export of a circular pad is ``PAD``
        (:meth:`_circular_pad`)."""
        circular = self._circular_pad(i, node, name, ins)
        if circular is not None:
            return circular
        if not all(is_symbol(v) for v in ins):
            raise Unsupported("concatenation with a constant tensor")
        if len(ins) == 1:
            return ins[0]
        srcs = [self.asm.resolve(v) for v in ins]
        axis = int(_attrs(node)["axis"]) % len(srcs[0].shape)
        names = [s.name for s in srcs]
        return self._layer(name, self._expected(node), lambda n: self.b.concat(names, axis=axis, name=n))

    def _pool(self, node: onnx.NodeProto, name: str, ins: list[Any], kind: OpKind) -> TensorRef:
        x = self._src(ins[0])
        if len(x.shape) != 4:
            raise Unsupported(f"only 2-D pooling over (N, C, H, W) inputs is representable, got {x.shape}")
        if any(self._used(o) for o in node.output[1:]):
            raise Unsupported("pooling that also returns indices")
        a = _attrs(node)
        kernel = [int(k) for k in a["kernel_shape"]]
        stride = [int(s) for s in a.get("strides", [1, 1])]
        dilation = [int(d) for d in a.get("dilations", [1, 1])]
        if dilation != [1, 1]:
            raise Unsupported("dilated pooling")
        pads = _same_pads(a.get("auto_pad", "NOTSET"), x.shape[2:], kernel, stride, [1, 1], a.get("pads", []))
        ceil_mode = bool(a.get("ceil_mode", 0))
        expected = self._expected(node)
        if kind is OpKind.MAX_POOL and tuple(kernel) == x.shape[2:] and pads == (0, 0, 0, 0):
            # one window over the whole input: torch exports AdaptiveMaxPool2d(1) this way
            return self._layer(name, expected, lambda n: self.b.global_max_pool(x.name, name=n))
        if kind is OpKind.AVG_POOL:
            include = bool(a.get("count_include_pad", 0))
            return self._layer(
                name, expected,
                lambda n: self.b.avg_pool(
                    x.name, (kernel[0], kernel[1]), stride=(stride[0], stride[1]), padding=pads,
                    count_include_pad=include, ceil_mode=ceil_mode, name=n,
                ),
            )
        return self._layer(
            name, expected,
            lambda n: self.b.max_pool(
                x.name, (kernel[0], kernel[1]), stride=(stride[0], stride[1]), padding=pads, ceil_mode=ceil_mode, name=n
            ),
        )

    def _op_AveragePool(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        return self._pool(node, name, ins, OpKind.AVG_POOL)

    def _op_MaxPool(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        return self._pool(node, name, ins, OpKind.MAX_POOL)

    def _op_GlobalAveragePool(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        x = self._src(ins[0])
        return self._layer(name, self._expected(node), lambda n: self.b.global_avg_pool(x.name, name=n))

    def _op_GlobalMaxPool(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        x = self._src(ins[0])
        return self._layer(name, self._expected(node), lambda n: self.b.global_max_pool(x.name, name=n))

    def _reduce(self, node: onnx.NodeProto, name: str, ins: list[Any], kind: OpKind) -> TensorRef:
        x = self._src(ins[0])
        a = _attrs(node)
        if "axes" in a:
            axes = [int(v) for v in a["axes"]]
        elif len(ins) > 1 and ins[1] is not None:
            axes = [int(v) for v in self._const(ins[1], "axes").reshape(-1)]
        else:
            axes = []
        if len(x.shape) != 4 or sorted(v % 4 for v in axes) != [2, 3]:
            hint = ""
            if kind is OpKind.GLOBAL_AVG_POOL and self.opset < 17 and axes and all(
                v % len(x.shape) != 0 for v in axes
            ):
                hint = ("; torch exports nn.LayerNorm below opset 17 as ReduceMean/Sub/Pow/...: export with "
                        "opset_version >= 17 to get one LayerNormalization")
            raise Unsupported(
                f"{node.op_type} over axes {axes} of a {x.shape} tensor (only over H and W is representable){hint}"
            )
        build = self.b.global_avg_pool if kind is OpKind.GLOBAL_AVG_POOL else self.b.global_max_pool
        pooled = self._layer(name, x.shape[:2] + (1, 1), lambda n: build(x.name, name=n))
        if a.get("keepdims", 1):
            return pooled
        return self.asm.view(f"{name}.flatten", pooled, x.shape[:2])

    def _op_ReduceMean(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        return self._reduce(node, name, ins, OpKind.GLOBAL_AVG_POOL)

    def _op_ReduceMax(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        return self._reduce(node, name, ins, OpKind.GLOBAL_MAX_POOL)

    def _view(self, node: onnx.NodeProto, name: str, x: TensorRef, out_shape: Shape | None) -> TensorRef:
        out_shape = out_shape or self._expected(node)
        if out_shape is None:
            raise Unsupported("its output shape is unknown")
        return self.asm.view(name, x, out_shape)

    def _op_Flatten(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        x = self._src(ins[0])
        axis = int(_attrs(node).get("axis", 1)) % (len(x.shape) + 1)
        return self._view(node, name, x, (numel(x.shape[:axis]), numel(x.shape[axis:])))

    def _reshape_out(self, node: onnx.NodeProto, in_shape: Shape) -> Shape | None:
        target = self.values.get(node.input[1]) if len(node.input) > 1 else None
        if isinstance(target, np.ndarray):
            return reshape_target(in_shape, target, bool(_attrs(node).get("allowzero", 0)))
        return self._expected(node)

    def _op_Reshape(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        x = self._src(ins[0])
        if is_symbol(ins[1]):
            raise Unsupported("a reshape whose target shape is computed by the network")
        out = self._reshape_out(node, x.shape)
        shuffle = self._channel_shuffle(node, name, x, out)
        return shuffle if shuffle is not None else self._view(node, name, x, out)

    def _channel_shuffle(self, node: onnx.NodeProto, name: str, x: TensorRef, out: Shape | None) -> TensorRef | None:
        """Reshape(N, g, C/g, H, W) -> Transpose(0, 2, 1, 3, 4) -> Reshape(N, C, H, W) as one CHANNEL_SHUFFLE."""
        if len(x.shape) != 4 or out is None or len(out) != 5:
            return None
        n, c, h, w = x.shape
        groups = out[1]
        if out != (n, groups, c // groups if groups else 0, h, w) or groups < 2 or c % groups:
            return None
        first = self._sole_consumer(node.output[0])
        perm = list(_attrs(first[1]).get("perm", [])) if first is not None else []
        if first is None or first[1].op_type != "Transpose" or perm != [0, 2, 1, 3, 4]:
            return None
        second = self._sole_consumer(first[1].output[0])
        if second is None or second[1].op_type != "Reshape" or is_symbol(self.values.get(second[1].input[1])):
            return None
        if self._reshape_out(second[1], (n, c // groups, groups, h, w)) != x.shape:
            return None
        self.fused.update({first[0], second[0]})
        layer_name = first[1].name or name
        ref = self._layer(layer_name, self.shapes.get(second[1].output[0]),
                          lambda nm: self.b.channel_shuffle(x.name, groups, name=nm))
        self.values[second[1].output[0]] = ref
        return ref

    def _squeeze_like(self, node: onnx.NodeProto, name: str, ins: list[Any], squeeze: bool) -> TensorRef:
        x = self._src(ins[0])
        a = _attrs(node)
        if "axes" in a:
            axes: list[int] | None = [int(v) for v in a["axes"]]
        elif len(ins) > 1 and ins[1] is not None:
            axes = [int(v) for v in self._const(ins[1], "axes").reshape(-1)]
        else:
            axes = None
        if squeeze:
            if axes is not None:
                drop = {v % len(x.shape) for v in axes}
            else:
                drop = {k for k, d in enumerate(x.shape) if d == 1}
            out = tuple(d for k, d in enumerate(x.shape) if k not in drop)
        else:
            if axes is None:
                raise Unsupported("Unsqueeze without axes")
            rank = len(x.shape) + len(axes)
            dims = list(x.shape)
            for v in sorted(v % rank for v in axes):
                dims.insert(v, 1)
            out = tuple(dims)
        return self._view(node, name, x, out)

    def _op_Squeeze(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        return self._squeeze_like(node, name, ins, True)

    def _op_Unsqueeze(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        return self._squeeze_like(node, name, ins, False)

    # ---- parts of a tensor: Split, Slice, Gather -------------------------------------------------------------
    @staticmethod
    def _part_source(value: Any) -> tuple[Symbol, Shape]:
        """The tensor a slice reads and its shape; the tensor is not resolved: a part nobody reads is no layer
        (see :meth:`IRAssembler.part`)."""
        if not is_symbol(value):
            raise Unsupported("its data is a constant, not a tensor of the network")
        if value.shape is None:
            raise Unsupported("the shape of its input is unknown")
        return value, value.shape

    def _op_Split(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> Any:
        """One ``SLICE`` per output: sizes from ``split`` (an input from opset 13, an attribute before), else equal
        parts (``num_outputs`` at opset 18+: the last part may be smaller). A part no layer reads is no layer."""
        x, shape = self._part_source(ins[0])
        a = _attrs(node)
        rank = len(shape)
        axis = int(a.get("axis", 0))
        if not -rank <= axis < rank:
            raise Unsupported(f"axis {axis} of a {shape} input")
        axis %= rank
        outputs = list(node.output)
        dim = shape[axis]
        if len(ins) > 1 and ins[1] is not None:
            sizes = [int(v) for v in self._const(ins[1], "split").reshape(-1)]
        elif "split" in a:
            sizes = [int(v) for v in a["split"]]
        else:
            parts = int(a.get("num_outputs", len(outputs)))
            step = -(-dim // parts) if parts > 0 else 0
            sizes = [min(step, dim - k * step) for k in range(parts)]
        if len(sizes) != len(outputs) or sum(sizes) != dim or min(sizes, default=0) < 0:
            raise Unsupported(f"split sizes {sizes} into {len(outputs)} outputs of dimension {axis} of {shape}")
        first: Any = None
        for k, (out, size) in enumerate(zip(outputs, sizes)):
            part_shape = shape[:axis] + (size,) + shape[axis + 1:]
            squeeze = self._squeezed(out, axis, rank) if size == 1 else None
            if size == 0:
                value: Any = self.asm.unsupported(
                    f"{name}.{k}", node.op_type, f"an empty part (size 0 along dimension {axis})", x, [part_shape]
                )[0]
            elif squeeze is not None:  # Split then Squeeze of the split axis: a select, as torch exports unbind
                value = self.asm.part(f"{name}.{k}", x, part_shape, drop=(axis,))
                self.fused.add(squeeze[0])
                self.values[squeeze[1].output[0]] = value
            else:
                value = self.asm.part(f"{name}.{k}", x, part_shape)
            self._check_shape(node, k, part_shape)
            self.values[out] = value
            first = value if k == 0 else first
        return first

    def _squeezed(self, tensor: str, axis: int, rank: int) -> tuple[int, onnx.NodeProto] | None:
        """The ``Squeeze`` of dimension ``axis`` (of a rank-``rank`` tensor) that is the only reader of
        ``tensor``, if it is one (its axes an attribute or a literal constant)."""
        user = self._sole_consumer(tensor)
        if user is None or user[1].op_type != "Squeeze" or user[1].input[0] != tensor:
            return None
        attrs = _attrs(user[1])
        if "axes" in attrs:
            axes: Any = attrs["axes"]
        elif len(user[1].input) > 1 and isinstance(self.values.get(user[1].input[1]), np.ndarray):
            axes = self.values[user[1].input[1]].reshape(-1).tolist()
        else:
            return None
        return user if [int(a) % rank for a in axes] == [axis] else None

    def _check_shape(self, node: onnx.NodeProto, index: int, shape: Shape) -> None:
        expected = self._expected(node, index)
        if expected is not None and expected != tuple(shape):
            raise InvalidInputError(
                f"{self.source}: node {node.name or node.op_type!r}: output {index} has shape {tuple(shape)}, ONNX "
                f"shape inference says {expected}"
            )

    def _op_Slice(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> Any:
        """Constant ``starts``/``ends``/``axes`` (inputs from opset 10, attributes before) and steps of 1: one
        ``SLICE``; the input itself when it takes everything."""
        x, shape = self._part_source(ins[0])
        starts, ends, axes, steps = self._slice_arguments(node, ins)
        if any(step != 1 for step in steps):
            raise Unsupported(f"Slice with steps {steps} (only steps of 1 are representable)")
        rank = len(shape)
        sizes = list(shape)
        for start, end, axis in zip(starts, ends, axes):
            if not -rank <= axis < rank:
                raise Unsupported(f"axis {axis} of a {shape} input")
            sizes[axis % rank] = len(range(*slice(start, end).indices(shape[axis % rank])))
        if 0 in sizes:
            raise Unsupported(f"an empty slice {tuple(sizes)} of {shape}")
        self._check_shape(node, 0, tuple(sizes))
        return self.asm.part(name, x, sizes)

    def _slice_arguments(self, node: onnx.NodeProto, ins: list[Any]) -> tuple[list[int], ...]:
        """A ``Slice`` node's ``starts``, ``ends``, ``axes`` and ``steps`` (attributes below opset 10, constant inputs
        from 10 on; ``axes`` default to the first dimensions, ``steps`` to 1); Unsupported when an input is computed
        by the network."""
        if self.opset < 10:
            a = _attrs(node)
            starts, ends = [int(v) for v in a["starts"]], [int(v) for v in a["ends"]]
            axes = [int(v) for v in a["axes"]] if "axes" in a else list(range(len(starts)))
            return starts, ends, axes, [1] * len(starts)
        starts = [int(v) for v in self._const(ins[1], "starts").reshape(-1)]
        ends = [int(v) for v in self._const(ins[2], "ends").reshape(-1)]
        has = [len(ins) > k and ins[k] is not None for k in (3, 4)]
        axes = [int(v) for v in self._const(ins[3], "axes").reshape(-1)] if has[0] else list(range(len(starts)))
        steps = [int(v) for v in self._const(ins[4], "steps").reshape(-1)] if has[1] else [1] * len(starts)
        return starts, ends, axes, steps

    def _op_Gather(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> Any:
        """``Gather`` of a network tensor by one constant index: a scalar index drops the axis (a select, how torch
        exports ``x[:, 0]`` and ``unbind``), a 1-D index of one element keeps it with size 1 (a slice). (A Gather on
        a shape, ``Shape`` → ``Gather``, is shape arithmetic, evaluated as a constant.)"""
        data, indices = ins[0], ins[1]
        if not is_symbol(data):
            raise Unsupported(
                "Gather of a constant table by indices computed by the network (an embedding lookup) has no IR "
                "operator"
            )
        if is_symbol(indices):
            raise Unsupported("Gather with indices computed by the network (the IR has slices of constant ranges only)")
        index = self._const(indices, "indices")
        x, shape = self._part_source(data)
        rank = len(shape)
        axis = int(_attrs(node).get("axis", 0))
        if not -rank <= axis < rank:
            raise Unsupported(f"axis {axis} of a {shape} input")
        axis %= rank
        if index.size != 1 or index.ndim > 1:
            raise Unsupported(
                f"Gather of {index.size} indices of shape {tuple(index.shape)} along axis {axis} (only one constant "
                "index, a select or a slice of size 1, is representable)"
            )
        sizes = shape[:axis] + (1,) + shape[axis + 1:]
        drop = (axis,) if index.ndim == 0 else ()
        self._check_shape(node, 0, tuple(s for d, s in enumerate(sizes) if d not in drop))
        return self.asm.part(name, x, sizes, drop=drop)

    def _op_Identity(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        x = self._src(ins[0])
        return self._layer(name, self._expected(node), lambda n: self.b.identity(x.name, name=n))

    def _op_Dropout(self, i: int, node: onnx.NodeProto, name: str, ins: list[Any]) -> TensorRef:
        if any(self._used(o) for o in node.output[1:]):
            raise Unsupported("Dropout whose mask is used")
        return self._op_Identity(i, node, name, ins[:1])


def onnx_to_ir(
    model: OnnxModel,
    *,
    name: str | None = None,
    on_unsupported: OnUnsupported = "error",
    batch_size: int | None = None,
) -> Conversion:
    """Convert an ONNX model (a path, bytes or a ``ModelProto``) to the IR.

    A symbolic batch dimension of the graph inputs is set to ``batch_size`` (default 1); any other symbolic
    dimension is an error. The network is named ``name``, else the graph's name. A file or bytes that are not a
    valid ONNX model raise :class:`~nas_latency.errors.InvalidInputError`; an unsupported operator raises
    :class:`~nas_latency.errors.UnsupportedOperatorError` naming the node, or with ``on_unsupported="skip"`` is
    skipped explicitly and listed in :attr:`Conversion.skipped`.
    """
    check_on_unsupported(on_unsupported)
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1):
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    proto, source = load_onnx(model)
    net_name = name or proto.graph.name or "onnx_model"
    return _OnnxConverter(proto, source, net_name, on_unsupported, batch_size).run()
