"""Shape arithmetic shared by the builder (inference) and layer validation (checking)."""

from __future__ import annotations

import math
from typing import Sequence

from nas_latency.errors import InvalidInputError

Shape = tuple[int, ...]


def window_output_size(
    size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int = 1, ceil_mode: bool = False
) -> int:
    """Output length of a convolution or pooling window along one axis (PyTorch/ONNX semantics)."""
    span = size + pad_begin + pad_end - dilation * (kernel - 1) - 1
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_begin:
        out -= 1  # the last window must start inside the input or the leading padding
    return out


def broadcast_shape(shapes: Sequence[Shape]) -> Shape | None:
    """The shape ``shapes`` broadcast to (NumPy/PyTorch rules), or ``None`` if they do not broadcast."""
    rank = max(len(s) for s in shapes)
    out: list[int] = []
    for i in range(rank):
        dims = {s[i - rank + len(s)] for s in shapes if i - rank + len(s) >= 0} - {1}
        if len(dims) > 1:
            return None
        out.append(dims.pop() if dims else 1)
    return tuple(out)


# ---- output-shape rules --------------------------------------------------------------------------------------------
# One rule per kind, used both to infer a shape (NetworkBuilder) and to check a given one (Layer.check). Each takes
# ``where``, the caller's description of the layer, and raises InvalidInputError(f"{where}: <what is wrong>").
def normalized_axis(axis: int, rank: int, *, where: str) -> int:
    """``axis`` in ``0..rank-1`` (a negative axis counts from the end)."""
    if not -rank <= axis < rank:
        raise InvalidInputError(f"{where}: axis {axis} is outside rank {rank}")
    return axis % rank


def elementwise_output_shape(shapes: Sequence[Shape], *, where: str) -> Shape:
    """An elementwise binary op (add, mul): two or more inputs broadcast together."""
    if len(shapes) < 2:
        raise InvalidInputError(f"{where}: needs at least two inputs, got {len(shapes)}")
    out = broadcast_shape(shapes)
    if out is None:
        raise InvalidInputError(f"{where}: input shapes {list(shapes)} do not broadcast")
    return out


def concat_output_shape(shapes: Sequence[Shape], axis: int, *, where: str) -> Shape:
    """Inputs of one rank, equal outside ``axis``; the output's ``axis`` is the sum of theirs."""
    source = shapes[0]
    ax = normalized_axis(axis, len(source), where=where)
    if any(len(s) != len(source) or any(a != b for i, (a, b) in enumerate(zip(s, source)) if i != ax)
           for s in shapes[1:]):
        raise InvalidInputError(f"{where}: inputs {list(shapes)} differ outside axis {ax}")
    return tuple(sum(s[ax] for s in shapes) if i == ax else d for i, d in enumerate(source))


def flatten_output_shape(shape: Shape, axis: int, *, where: str) -> Shape:
    """The dimensions from ``axis`` on, multiplied into one."""
    ax = normalized_axis(axis, len(shape), where=where)
    return (*shape[:ax], math.prod(shape[ax:]))


def global_pool_output_shape(shape: Shape, *, where: str) -> Shape:
    """``(N, C, H, W) -> (N, C, 1, 1)``."""
    if len(shape) != 4:
        raise InvalidInputError(f"{where}: expects an (N, C, H, W) input, got {shape}")
    return (*shape[:2], 1, 1)


def channel_shuffle_output_shape(shape: Shape, groups: int, *, where: str) -> Shape:
    """The input's shape; ``groups`` (at least 2) divides the channels of an ``(N, C, H, W)`` input."""
    if len(shape) != 4:
        raise InvalidInputError(f"{where}: expects an (N, C, H, W) input, got {shape}")
    if groups < 2 or shape[1] % groups:
        raise InvalidInputError(f"{where}: groups={groups} must be >= 2 and divide {shape[1]}, the channels of {shape}")
    return shape


def matmul_output_shape(left: Shape, right: Shape, *, where: str) -> Shape:
    """``(..., M, K) @ (..., K, N) -> (..., M, N)``, the leading (batch) dimensions broadcast (torch.matmul and
    ONNX MatMul on operands of rank 2 or more)."""
    if len(left) < 2 or len(right) < 2:
        raise InvalidInputError(f"{where}: needs operands of rank 2 or more, got {left} and {right}")
    if left[-1] != right[-2]:
        raise InvalidInputError(f"{where}: inner dimensions differ: {left} @ {right}")
    batch = broadcast_shape([left[:-2] or (1,), right[:-2] or (1,)])
    if batch is None:
        raise InvalidInputError(f"{where}: batch dimensions of {left} and {right} do not broadcast")
    lead = batch if len(left) > 2 or len(right) > 2 else ()
    return (*lead, left[-2], right[-1])


def check_transpose(source: Shape, out: Shape, *, where: str) -> None:
    """A transpose's output has the input's dimensions in some order (the IR keeps shapes, not the order)."""
    if sorted(source) != sorted(out):
        raise InvalidInputError(f"{where}: output shape {out} is not a permutation of input {source}")


def check_layer_norm(source: Shape, axis: int, *, where: str) -> int:
    """A layer norm normalizes the dimensions from ``axis`` on (default the last); the batch dimension is not
    one of them. Returns the axis in ``1..rank-1``."""
    ax = normalized_axis(axis, len(source), where=where)
    if ax == 0:
        raise InvalidInputError(f"{where}: axis {axis} would normalize across the batch dimension of {source}")
    return ax


def check_slice(source: Shape, out: Shape, *, where: str) -> None:
    """A slice's output is a part of its input: the same rank, no dimension larger than the input's (a narrow,
    one of a split's or chunk's parts), or the input without one dimension (a select, one of an unbind's parts)."""
    if len(out) == len(source) and all(o <= s for o, s in zip(out, source)):
        return
    if len(out) == len(source) - 1 and any(
            all(o <= s for o, s in zip(out, source[:axis] + source[axis + 1:])) for axis in range(len(source))):
        return
    raise InvalidInputError(f"{where}: output shape {out} is not a part of input {source} (a slice keeps the rank "
                            "and shrinks dimensions, or drops one dimension)")


def pad_output_shape(source: Shape, padding: tuple[int, int, int, int] | None, *, where: str) -> Shape:
    """An explicit pad of an ``(N, C, H, W)`` input by ``(top, left, bottom, right)`` elements (reflect, replicate
    or constant: the IR keeps the shape, not the mode)."""
    if len(source) != 4:
        raise InvalidInputError(f"{where}: expects an (N, C, H, W) input, got {source}")
    if padding is None or len(padding) != 4 or min(padding) < 0 or max(padding) == 0:
        raise InvalidInputError(f"{where}: padding {padding} must be (top, left, bottom, right), each >= 0, not all 0")
    top, left, bottom, right = padding
    return (*source[:2], source[2] + top + bottom, source[3] + left + right)
