"""Slicing through both frontends: ``SLICE`` from torch's unbind/split/chunk/narrow/select/indexing and from ONNX
``Split``/``Slice``/``Gather``.

The IR keeps shapes, not offsets, so ``canonicalize`` never merges two slices of one input (the three selects of a
packed qkv stay three); torch and ONNX IR are compared after it.
"""

from __future__ import annotations

import types
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper
from torch import nn

from nas_latency.errors import UnsupportedOperatorError
from nas_latency.frontends import export_onnx, onnx_to_ir, torch_to_ir
from nas_latency.frontends.torch_fx import TraceMethod
from nas_latency.ir import Network, OpKind, canonicalize
from nas_latency.ir.features import network_features

METHODS: list[TraceMethod] = ["fx", "eager"]
OPSETS = [None, 17]  # the exporter's default (20: Split with num_outputs) and one with Split by sizes
B, T, C, HEADS = 2, 16, 64, 4
D = C // HEADS


def _same_features(a: Network, b: Network) -> bool:
    def normal(network: Network) -> np.ndarray:
        return network_features(canonicalize(network))

    return bool(np.array_equal(normal(a), normal(b)))


def _slices(network: Network) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    return [(layer.input_shapes[0], layer.output_shape) for layer in network.layers if layer.op is OpKind.SLICE]


# ---- timm's packed qkv -------------------------------------------------------------------------------------------
class PackedQkv(nn.Module):
    """timm's attention: one qkv projection, split with unbind."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, HEADS, D).permute(2, 0, 3, 1, 4).unbind(0)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, c))


PACKED_KINDS = Counter({
    OpKind.LINEAR: 2, OpKind.RESHAPE: 1, OpKind.TRANSPOSE: 3, OpKind.SLICE: 3, OpKind.MATMUL: 2, OpKind.SCALE: 1,
    OpKind.SOFTMAX: 1, OpKind.FLATTEN: 1,
})


@pytest.mark.parametrize("method", METHODS)
def test_unbind_of_a_packed_qkv_is_three_selects(cases: types.ModuleType, method: TraceMethod) -> None:
    torch.manual_seed(0)
    module, example = PackedQkv().eval(), torch.randn(B, T, C)
    conversion = torch_to_ir(module, example, method=method)
    network = conversion.network
    assert conversion.skipped == ()
    assert cases.output_shape(network) == tuple(module(example).shape)
    assert network.params == sum(p.numel() for p in module.parameters())
    assert network.macs == B * T * C * 3 * C + 2 * B * HEADS * T * T * D + B * T * C * C
    assert cases.op_kinds(network) == PACKED_KINDS
    assert [(layer.name, layer.input_shapes, layer.output_shape) for layer in network.layers
            if layer.op is OpKind.SLICE] == [
        (f"unbind.{i}", ((3, B, HEADS, T, D),), (B, HEADS, T, D)) for i in range(3)
    ]
    assert network.layer("unbind.0").bytes_read() == B * HEADS * T * D * 4  # only the part it copies


@pytest.mark.parametrize("opset", OPSETS)
def test_packed_qkv_onnx_split_and_squeeze_are_the_same_selects(
    cases: types.ModuleType, opset: int | None, tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    module, example = PackedQkv().eval(), torch.randn(B, T, C)
    from_torch = torch_to_ir(module, example).network
    from_onnx = cases.exported_ir(module, example, tmp_path, opset)
    assert _slices(from_onnx) == _slices(from_torch)
    assert (from_onnx.macs, from_onnx.params) == (from_torch.macs, from_torch.params)
    # the exporter fuses nothing here: the kinds are equal before the transposes are fused
    assert cases.op_kinds(from_onnx) == cases.op_kinds(from_torch) == PACKED_KINDS
    assert _same_features(from_onnx, from_torch)


# ---- nn.MultiheadAttention through ONNX ----------------------------------------------------------------------------
class SelfAttention(nn.Module):
    def __init__(self, batch_first: bool) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(C, HEADS, batch_first=batch_first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # the exporter tracing torch's shape checks
@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_attention_onnx_equals_torch(
    cases: types.ModuleType, batch_first: bool, opset: int | None, tmp_path: Path,
) -> None:
    """Both frontends record what torch runs: the packed in-projection (one linear to 3E) and three selects."""
    torch.manual_seed(0)
    module, example = SelfAttention(batch_first).eval(), torch.randn(B, T, C)
    from_torch = torch_to_ir(module, example).network
    from_onnx = cases.exported_ir(module, example, tmp_path, opset)
    batch, seq = (B, T) if batch_first else (T, B)
    assert cases.output_shape(from_onnx) == cases.output_shape(from_torch) == tuple(module(example).shape)
    assert from_onnx.params == from_torch.params == sum(p.numel() for p in module.parameters())
    assert from_onnx.macs == from_torch.macs == 4 * batch * seq * C * C + 2 * batch * HEADS * seq * seq * D
    assert cases.op_kinds(from_onnx) == cases.op_kinds(from_torch)
    assert _slices(from_torch) == [((3, seq, batch, C), (seq, batch, C))] * 3
    assert _same_features(from_onnx, from_torch)


# ---- a ViT head and a SwiGLU MLP -----------------------------------------------------------------------------------
class ClassTokenHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm, self.head = nn.LayerNorm(C), nn.Linear(C, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(x)[:, 0])


class SwiGLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(C, 4 * C), nn.Linear(2 * C, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.fc1(x).chunk(2, -1)
        return self.fc2(a * F.silu(b))


class HalfUnused(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, _ = torch.chunk(x, 2, dim=-1)
        return F.relu(a)


BLOCKS: dict[str, tuple[Callable[[], nn.Module], Counter[OpKind], list[tuple[tuple[int, ...], tuple[int, ...]]]]] = {
    "cls_token": (ClassTokenHead, Counter({OpKind.LAYER_NORM: 1, OpKind.SLICE: 1, OpKind.LINEAR: 1}),
                  [((B, T, C), (B, C))]),
    "swiglu": (SwiGLU, Counter({OpKind.LINEAR: 2, OpKind.SLICE: 2, OpKind.SILU: 1, OpKind.MUL: 1}),
               [((B, T, 4 * C), (B, T, 2 * C))] * 2),
    "half_unused": (HalfUnused, Counter({OpKind.SLICE: 1, OpKind.RELU: 1}), [((B, T, C), (B, T, C // 2))]),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(BLOCKS))
def test_blocks_with_slices_convert(cases: types.ModuleType, case: str, method: TraceMethod) -> None:
    make, kinds, slices = BLOCKS[case]
    torch.manual_seed(0)
    module, example = make().eval(), torch.randn(B, T, C)
    conversion = torch_to_ir(module, example, method=method)
    network = conversion.network
    assert conversion.skipped == ()  # the unread half of a chunk is no layer, and nothing is left out
    assert cases.output_shape(network) == tuple(module(example).shape)
    assert network.params == sum(p.numel() for p in module.parameters())
    assert network.macs == sum(layer.macs for layer in network.layers if layer.op is OpKind.LINEAR)
    assert cases.op_kinds(network) == kinds
    assert _slices(network) == slices


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("case", list(BLOCKS))
def test_blocks_with_slices_agree_across_frontends(
    cases: types.ModuleType, case: str, opset: int | None, tmp_path: Path,
) -> None:
    make, kinds, slices = BLOCKS[case]
    torch.manual_seed(0)
    module, example = make().eval(), torch.randn(B, T, C)
    from_torch = torch_to_ir(module, example).network
    from_onnx = cases.exported_ir(module, example, tmp_path, opset)
    assert cases.op_kinds(from_onnx) == kinds
    assert _slices(from_onnx) == slices
    assert (from_onnx.macs, from_onnx.params) == (from_torch.macs, from_torch.params)
    assert _same_features(from_onnx, from_torch)


# ---- every spelling of a part ------------------------------------------------------------------------------------
def _lambda(fn: Callable[[torch.Tensor], torch.Tensor]) -> nn.Module:
    class Fn(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.relu(fn(x))

    return Fn()


X = (3, 4, 8)
#: name -> (function, [(layer kind, input shape, output shape)] before the relu)
PARTS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor],
                       list[tuple[OpKind, tuple[int, ...], tuple[int, ...]]]]] = {
    "all": (lambda x: x[:], []),
    "all_ellipsis": (lambda x: x[..., 0:8], []),
    "first_row": (lambda x: x[0], [(OpKind.SLICE, X, (4, 8))]),
    "column": (lambda x: x[:, 0], [(OpKind.SLICE, X, (3, 8))]),
    "range": (lambda x: x[:, 1:3], [(OpKind.SLICE, X, (3, 2, 8))]),
    "tail": (lambda x: x[..., :5], [(OpKind.SLICE, X, (3, 4, 5))]),
    "two_ranges": (lambda x: x[1:, :2], [(OpKind.SLICE, X, (2, 2, 8))]),  # one copy, not two
    "int_and_range": (lambda x: x[:, 1, 2:6], [(OpKind.SLICE, X, (3, 4))]),
    "two_ints": (lambda x: x[0, 1], [(OpKind.SLICE, X, (1, 1, 8)), (OpKind.RESHAPE, (1, 1, 8), (8,))]),
    "negative": (lambda x: x[-1, -2:], [(OpKind.SLICE, X, (2, 8))]),
    "narrow": (lambda x: x.narrow(2, 1, 3), [(OpKind.SLICE, X, (3, 4, 3))]),
    "select": (lambda x: torch.select(x, 1, 2), [(OpKind.SLICE, X, (3, 8))]),
    "split": (lambda x: torch.cat(x.split([2, 6], dim=2), 2), [(OpKind.SLICE, X, (3, 4, 2)),
                                                               (OpKind.SLICE, X, (3, 4, 6))]),
    "split_with_sizes": (lambda x: torch.cat(x.split_with_sizes([1, 3], 1), 1), [(OpKind.SLICE, X, (3, 1, 8)),
                                                                   (OpKind.SLICE, X, (3, 3, 8))]),
    "tensor_split": (lambda x: torch.cat(torch.tensor_split(x, [3], dim=-1), -1), [(OpKind.SLICE, X, (3, 4, 3)),
                                                                   (OpKind.SLICE, X, (3, 4, 5))]),
    "chunk_1": (lambda x: x.chunk(1, 0)[0], []),
    "unbind_last": (lambda x: x.unbind(-1)[3], [(OpKind.SLICE, X, (3, 4))]),  # the 7 other parts: no layers
    "size_1": (lambda x: x[:1][0], [(OpKind.SLICE, X, (1, 4, 8)), (OpKind.RESHAPE, (1, 4, 8), (4, 8))]),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(PARTS))
def test_parts(cases: types.ModuleType, case: str, method: TraceMethod) -> None:
    fn, expected = PARTS[case]
    module, example = _lambda(fn), torch.randn(*X)
    conversion = torch_to_ir(module, example, method=method)
    network = conversion.network
    assert conversion.skipped == ()
    layers = [(layer.op, layer.input_shapes[0], layer.output_shape) for layer in network.layers
              if layer.op not in (OpKind.RELU, OpKind.CONCAT)]
    assert layers == expected
    assert cases.output_shape(network) == tuple(module(example).shape)


@pytest.mark.parametrize("case", ["column", "range", "tail", "narrow", "select", "split", "unbind_last"])
def test_parts_agree_across_frontends(cases: types.ModuleType, case: str, tmp_path: Path) -> None:
    module, example = _lambda(PARTS[case][0]), torch.randn(*X)
    from_torch = torch_to_ir(module, example).network
    from_onnx = cases.exported_ir(module, example, tmp_path, None)
    assert _slices(from_onnx) == _slices(from_torch)
    assert _same_features(from_onnx, from_torch)


@pytest.mark.parametrize("case", ["two_ranges", "int_and_range"])
def test_onnx_indexing_of_two_dimensions_is_two_slices(cases: types.ModuleType, case: str, tmp_path: Path) -> None:
    """The exporter writes one Slice or Gather per indexed dimension, which the ONNX frontend keeps: two copies
    where the torch frontend records the one torch makes."""
    module, example = _lambda(PARTS[case][0]), torch.randn(*X)
    from_onnx = cases.exported_ir(module, example, tmp_path, None)
    (_, source, final), = PARTS[case][1]
    slices = _slices(from_onnx)
    assert len(slices) == 2 and slices[0][0] == source and slices[1] == (slices[0][1], final)


def test_onnx_tensor_split_is_a_sequence_and_unsupported(tmp_path: Path) -> None:
    """The exporter writes ``tensor_split`` with sequence operators, which the IR has no kind for."""
    path = tmp_path / "tensor_split.onnx"
    export_onnx(_lambda(PARTS["tensor_split"][0]), torch.randn(*X), path)
    with pytest.raises(UnsupportedOperatorError, match=r"the IR has no operator for ONNX Sequence"):
        onnx_to_ir(path)


# ---- what stays unsupported ----------------------------------------------------------------------------------------
UNSUPPORTED: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], str]] = {
    "step_2": (lambda x: x[:, ::2], r"node 'getitem' \(getitem\).*slicing with step 2 \(only steps of 1"),
    "constant_tensor": (lambda x: x[:, torch.tensor([0, 2])], r"indexing with a constant tensor of shape \(2,\)"),
    "list": (lambda x: x[:, [0, 2]], r"indexing with the list \[0, 2\]"),
    "none": (lambda x: x[:, None], r"indexing with None \(a new axis"),
    "network_tensor": (lambda x: x[x > 0], r"indexing with a tensor computed by the network"),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(UNSUPPORTED))
def test_unsupported_indexing_says_what_was_used(case: str, method: TraceMethod) -> None:
    fn, message = UNSUPPORTED[case]
    with pytest.raises(UnsupportedOperatorError, match=message):
        torch_to_ir(_lambda(fn), torch.randn(*X), method=method)


def _gather_model(indices: onnx.TensorProto | None, out_shape: tuple[int, ...], table: bool = False) -> onnx.ModelProto:
    """Gather(x, idx) along axis 1; ``idx`` a constant (``indices``) or a graph input; ``table``: the data is a
    constant and the indices the network's input (an embedding lookup)."""
    inputs = [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(X))]
    inits: list[onnx.TensorProto] = []
    if table:
        inputs = [helper.make_tensor_value_info("idx", onnx.TensorProto.INT64, [2])]
        inits = [numpy_helper.from_array(np.ones((10, 8), dtype=np.float32), "x")]
        out = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, list(out_shape))
        node = helper.make_node("Gather", ["x", "idx"], ["y"], name="lookup", axis=0)
    else:
        if indices is None:
            inputs.append(helper.make_tensor_value_info("idx", onnx.TensorProto.INT64, [2]))
        else:
            inits = [indices]
        out = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, list(out_shape))
        node = helper.make_node("Gather", ["x", "idx"], ["y"], name="pick", axis=1)
    graph = helper.make_graph([node], "gather", inputs, [out], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(("index", "shape"), [(np.array(2), (3, 8)), (np.array([-1]), (3, 1, 8))])
def test_onnx_gather_of_one_constant_index_is_a_select_or_a_slice(index: np.ndarray, shape: tuple[int, ...]) -> None:
    network = onnx_to_ir(_gather_model(numpy_helper.from_array(index.astype(np.int64), "idx"), shape)).network
    assert [(layer.name, layer.op, layer.output_shape) for layer in network.layers] == [
        ("pick", OpKind.SLICE, shape)
    ]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (lambda: _gather_model(None, (3, 2, 8)), r"node 'pick' \(Gather\).*indices computed by the network"),
        (lambda: _gather_model(numpy_helper.from_array(np.array([0, 2], dtype=np.int64), "idx"), (3, 2, 8)),
         r"Gather of 2 indices of shape \(2,\) along axis 1"),
        (lambda: _gather_model(None, (2, 8), table=True), r"node 'lookup' \(Gather\).*an embedding lookup"),
    ],
    ids=["network_indices", "two_indices", "embedding"],
)
def test_onnx_other_gathers_are_unsupported(model: Callable[[], onnx.ModelProto], message: str) -> None:
    with pytest.raises(UnsupportedOperatorError, match=message):
        onnx_to_ir(model())


def test_onnx_slice_with_step_2_is_unsupported() -> None:
    consts = {name: numpy_helper.from_array(np.array(v, dtype=np.int64), name)
              for name, v in (("starts", [0]), ("ends", [8]), ("axes", [2]), ("steps", [2]))}
    node = helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"], name="every_other")
    graph = helper.make_graph(
        [node], "slice", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(X))],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [3, 4, 4])], initializer=list(consts.values()),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(UnsupportedOperatorError, match=r"node 'every_other' \(Slice\).*steps \[2\] \(only steps of 1"):
        onnx_to_ir(model)


def test_onnx_gather_on_a_shape_is_still_folded() -> None:
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape: shape arithmetic, one reshape layer and no slice."""
    consts = [numpy_helper.from_array(np.array(v, dtype=np.int64), name)
              for name, v in (("zero", 0), ("axis0", [0]), ("minus1", [-1]))]
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axis0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="flat"),
    ]
    graph = helper.make_graph(
        nodes, "shape", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(X))],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [3, 32])], initializer=consts,
    )
    network = onnx_to_ir(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])).network
    assert [(layer.name, layer.op, layer.output_shape) for layer in network.layers] == [
        ("flat", OpKind.FLATTEN, (3, 32))
    ]
