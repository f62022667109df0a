"""Constant evaluation for the ONNX frontend: the values of nodes computed from initializers, ``Constant``
nodes and shapes alone (``Shape``, ``Gather``/``Slice`` of a shape, ``Concat`` of shape pieces, reshape targets,
the pads and scales torch's exports compute), evaluated with numpy where a layer needs a value. They are not
layers."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
from onnx import helper, numpy_helper

from nas_latency.ir import numel


class UnknownConstant:
    """A constant whose value is not computed (nothing needed it, or it needs an op we do not evaluate)."""

    def __repr__(self) -> str:
        return "<unknown constant>"


UNKNOWN = UnknownConstant()

#: elementwise functions of constants that torch's exports compute scales with (F.scaled_dot_product_attention)
_UNARY_FOLDS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Sqrt": np.sqrt,
    "Reciprocal": np.reciprocal,
    "Neg": np.negative,
}


def fold_constant(op: str, ins: list[Any], attrs: dict[str, Any], opset: int) -> list[Any] | None:
    """Evaluate a node whose inputs are all constants; None when the op is not one we evaluate."""
    if any(v is UNKNOWN for v in ins):
        return None
    arr = [np.asarray(v) if v is not None else None for v in ins]

    def axes_of(index: int) -> list[int] | None:
        if "axes" in attrs:
            return [int(a) for a in attrs["axes"]]
        if len(arr) > index and arr[index] is not None:
            return [int(a) for a in arr[index].reshape(-1)]
        return None

    if op == "Identity":
        return [arr[0]]
    if op == "Shape":
        shape = np.array(arr[0].shape, dtype=np.int64)
        return [shape[attrs.get("start", 0): attrs.get("end", len(shape))]]
    if op == "Size":
        return [np.array(arr[0].size, dtype=np.int64)]
    if op == "Gather":
        return [np.take(arr[0], arr[1], axis=int(attrs.get("axis", 0)))]
    if op == "Unsqueeze":
        axes = axes_of(1) or []
        out = arr[0]
        rank = out.ndim + len(axes)
        for a in sorted(a % rank for a in axes):
            out = np.expand_dims(out, a)
        return [out]
    if op == "Squeeze":
        axes = axes_of(1)
        return [np.squeeze(arr[0], axis=tuple(axes) if axes is not None else None)]
    if op == "Concat":
        return [np.concatenate([a for a in arr if a is not None], axis=int(attrs["axis"]))]
    if op == "Transpose":  # the pads torch computes for Pad (Slice, Transpose, Reshape of a constant)
        perm = attrs.get("perm")
        return [np.transpose(arr[0], [int(p) for p in perm] if perm is not None else None)]
    if op == "Cast":
        return [arr[0].astype(helper.tensor_dtype_to_np_dtype(int(attrs["to"])))]
    if op == "Mod":  # shape arithmetic, e.g. nn.MultiheadAttention's head split
        return [np.fmod(arr[0], arr[1]) if attrs.get("fmod", 0) else np.mod(arr[0], arr[1])]
    if op in ("Add", "Sub", "Mul", "Div"):
        a, b = arr[0], arr[1]
        if op == "Div":
            return [a // b if a.dtype.kind in "iu" and b.dtype.kind in "iu" else a / b]
        return [{"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[op](a, b)]
    if op in _UNARY_FOLDS:
        return [_UNARY_FOLDS[op](arr[0])]
    if op == "Reshape":
        return [arr[0].reshape(reshape_target(arr[0].shape, arr[1], bool(attrs.get("allowzero", 0))))]
    if op == "ConstantOfShape":
        fill = attrs.get("value")
        fill_arr = numpy_helper.to_array(fill) if fill is not None else np.zeros(1, dtype=np.float32)
        return [np.full(tuple(int(d) for d in arr[0]), fill_arr.reshape(-1)[0], dtype=fill_arr.dtype)]
    if op == "Slice":
        data = arr[0]
        if opset < 10:
            starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
        else:
            starts, ends = arr[1].tolist(), arr[2].tolist()
            axes = arr[3].tolist() if len(arr) > 3 and arr[3] is not None else None
            steps = arr[4].tolist() if len(arr) > 4 and arr[4] is not None else None
        axes = axes if axes is not None else list(range(len(starts)))
        steps = steps if steps is not None else [1] * len(starts)
        index = [slice(None)] * data.ndim
        for s, e, a, st in zip(starts, ends, axes, steps):
            index[int(a)] = slice(int(s), int(e), int(st))
        return [data[tuple(index)]]
    return None


def reshape_target(in_shape: Sequence[int], target: Any, allowzero: bool) -> tuple[int, ...]:
    dims = [int(d) for d in np.asarray(target).reshape(-1)]
    out = [in_shape[i] if d == 0 and not allowzero else d for i, d in enumerate(dims)]
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        out[out.index(-1)] = numel(tuple(in_shape)) // known if known else 0
    return tuple(out)
