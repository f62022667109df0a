"""onnx_to_ir on real exports of torch modules and on hand-written ONNX graphs; what export_onnx does."""

from __future__ import annotations

import io
import types
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from torch import nn

from nas_latency.errors import InvalidInputError, UnsupportedOperatorError
from nas_latency.frontends import export_onnx, onnx_to_ir, torch_to_ir
from nas_latency.ir import Network, OpKind, canonicalize, structure_diff, structure_key


def _assert_canonically_equal(left: Network, right: Network) -> None:
    a, b = canonicalize(left), canonicalize(right)
    assert structure_key(a) == structure_key(b), str(structure_diff(a, b))
    assert (a.macs, a.params) == (b.macs, b.params)


def _ops(network: Network) -> list[OpKind]:
    return [layer.op for layer in network.layers]


# ---- torch modules through export_onnx ----------------------------------------------------------------------
def test_exported_module_matches_the_torch_frontend(module_case: Any, cases: types.ModuleType) -> None:
    conversion = onnx_to_ir(cases.onnx_bytes(module_case.module, module_case.example))
    assert conversion.skipped == ()
    _assert_canonically_equal(module_case.expected, conversion.network)
    assert conversion.network.inputs[0].shape == tuple(module_case.example.shape)


def test_path_bytes_and_model_proto_give_the_same_network(cases: types.ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "chain.onnx"
    export_onnx(cases.chain(), torch.randn(1, 3, 16, 16), path)
    networks = [onnx_to_ir(source).network for source in (path, str(path), path.read_bytes(), onnx.load(path))]
    assert len({structure_key(n) for n in networks}) == 1
    assert [layer.name for layer in networks[0].layers][:3] == ["/conv1/Conv", "/bn1/BatchNormalization", "/relu1/Relu"]
    _assert_canonically_equal(cases.chain_ir(), networks[0])
    assert onnx_to_ir(path, name="mine").network.name == "mine"


class TwoReLUs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.skip = nn.Identity()
        self.a, self.b = nn.ReLU(), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.skip(self.bn(self.conv(x)))
        return self.a(y) + self.b(y)


def _op_types(data: bytes) -> list[str]:
    return [node.op_type for node in onnx.load_model_from_string(data).graph.node]


def test_what_the_legacy_exporter_does() -> None:
    """The facts export_onnx's docstring reports: BN folding in EVAL mode (avoided), Identity removal and CSE
    (unavoidable, hence canonicalize)."""
    module, x = TwoReLUs().eval(), torch.randn(1, 3, 8, 8)
    default = io.BytesIO()
    with pytest.warns(DeprecationWarning):
        torch.onnx.export(module, (x,), default, dynamo=False)
    assert "BatchNormalization" not in _op_types(default.getvalue())  # folded into the conv
    buffer = io.BytesIO()
    export_onnx(module.train(), x, buffer)
    assert module.training  # restored
    graph = onnx.load_model_from_string(buffer.getvalue()).graph
    kinds = [node.op_type for node in graph.node]
    assert kinds.count("BatchNormalization") == 1 and kinds.count("Relu") == 1  # two ReLUs merged
    # nn.Identity left no node; the Identity nodes there are stand-ins for deduplicated equal initializers
    initializers = {init.name for init in graph.initializer}
    assert all(node.input[0] in initializers for node in graph.node if node.op_type == "Identity")
    from_onnx = onnx_to_ir(buffer.getvalue()).network
    from_torch = torch_to_ir(module, x).network
    assert _ops(from_torch).count(OpKind.RELU) == 2 and OpKind.IDENTITY in _ops(from_torch)
    assert _ops(from_onnx).count(OpKind.RELU) == 1 and OpKind.IDENTITY not in _ops(from_onnx)
    _assert_canonically_equal(from_torch, from_onnx)


def test_batch_norm_affine_round_trips(cases: types.ModuleType) -> None:
    network = onnx_to_ir(cases.onnx_bytes(cases.chain(), torch.randn(1, 3, 16, 16))).network
    norms = [layer for layer in network.layers if layer.op is OpKind.BATCH_NORM]
    assert [layer.affine for layer in norms] == [True, False]


def test_export_of_an_unexportable_operator() -> None:
    with pytest.raises(UnsupportedOperatorError, match="channel_shuffle") as info:
        export_onnx(nn.ChannelShuffle(2), torch.randn(1, 4, 2, 2), io.BytesIO())
    assert info.value.operator == "aten::channel_shuffle"


# ---- hand-written graphs --------------------------------------------------------------------------------------
def _conv_model(cases: types.ModuleType, **attrs: Any) -> onnx.ModelProto:
    w = cases.init("w", np.ones((6, 4, 4, 4), dtype=np.float32))
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)
    return cases.onnx_model([node], [cases.tensor("x", [1, 4, 9, 9])], [cases.tensor("y", list("nchw"))], [w])


@pytest.mark.parametrize(
    ("attrs", "padding"),
    [
        ({"auto_pad": "SAME_UPPER"}, (1, 1, 2, 2)),
        ({"auto_pad": "SAME_LOWER"}, (2, 2, 1, 1)),
        ({"auto_pad": "SAME_UPPER", "strides": [2, 2], "dilations": [2, 2]}, (3, 3, 3, 3)),
        ({"auto_pad": "VALID"}, (0, 0, 0, 0)),
        ({"pads": [0, 1, 2, 3]}, (0, 1, 2, 3)),  # ONNX [top, left, bottom, right]
    ],
)
def test_conv_padding(cases: types.ModuleType, attrs: dict[str, Any], padding: tuple[int, ...]) -> None:
    layer = onnx_to_ir(_conv_model(cases, **attrs)).network.layer("conv")
    assert (layer.op, layer.padding, layer.bias) == (OpKind.CONV, padding, False)


def test_conv_groups_and_bias(cases: types.ModuleType) -> None:
    inits = [cases.init("w", np.ones((8, 1, 3, 3), np.float32)), cases.init("b", np.zeros(8, np.float32)),
             cases.init("w2", np.ones((8, 4, 1, 1), np.float32))]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="dw", group=4, pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["y", "w2"], ["z"], name="gc", group=2)]
    model = cases.onnx_model(nodes, [cases.tensor("x", [2, 4, 5, 5])], [cases.tensor("z", [2, 8, 5, 5])], inits)
    network = onnx_to_ir(model).network
    dw, gc = network.layer("dw"), network.layer("gc")
    assert (dw.op, dw.groups, dw.bias, dw.output_shape) == (OpKind.DEPTHWISE_CONV, 4, True, (2, 8, 5, 5))
    assert (gc.op, gc.groups, gc.bias) == (OpKind.GROUPED_CONV, 2, False)


def test_linear_forms(cases: types.ModuleType) -> None:
    inits = [cases.init("wt", np.ones((3, 8), np.float32)), cases.init("w", np.ones((8, 3), np.float32)),
             cases.init("b", np.ones(3, np.float32))]
    nodes = [
        helper.make_node("Gemm", ["x", "wt", "b"], ["g1"], name="gemm_t", transB=1),
        helper.make_node("Gemm", ["x", "w"], ["g2"], name="gemm"),
        helper.make_node("MatMul", ["x", "w"], ["m"], name="matmul"),
        helper.make_node("Add", ["b", "m"], ["mb"], name="bias_add"),
        helper.make_node("MatMul", ["x", "w"], ["m2"], name="matmul_nobias"),
    ]
    outputs = [cases.tensor(n, [2, 3]) for n in ("g1", "g2", "mb", "m2")]
    network = onnx_to_ir(cases.onnx_model(nodes, [cases.tensor("x", [2, 8])], outputs, inits)).network
    assert [(layer.name, layer.op, layer.bias) for layer in network.layers] == [
        ("gemm_t", OpKind.LINEAR, True), ("gemm", OpKind.LINEAR, False), ("matmul", OpKind.LINEAR, True),
        ("matmul_nobias", OpKind.LINEAR, False),
    ]
    assert network.macs == 4 * 2 * 8 * 3


def test_reductions_activations_and_elementwise(cases: types.ModuleType) -> None:
    f32 = np.float32
    inits = [cases.init("zero", np.zeros((1,), f32)), cases.init("zeros", np.zeros((1, 4, 1, 1), f32)),
             cases.init("six", np.array(6.0, f32)), cases.init("lo", np.array(0.0, f32)),
             cases.init("axes", np.array([2, 3], np.int64))]
    nodes = [
        helper.make_node("Clip", ["x", "lo", "six"], ["r6"], name="relu6"),
        helper.make_node("Clip", ["x", "lo"], ["r"], name="relu"),
        helper.make_node("Sigmoid", ["r"], ["s"], name="silu"),
        helper.make_node("Mul", ["r", "s"], ["silu_out"], name="silu_mul"),
        helper.make_node("Sum", ["r6", "silu_out", "x"], ["sum"], name="sum"),
        helper.make_node("Mul", ["sum", "zero"], ["z"], name="zero"),
        helper.make_node("Add", ["z", "zeros"], ["z2"], name="plus_zero"),  # no layer
        helper.make_node("Dropout", ["z2"], ["d"], name="drop"),
        helper.make_node("ReduceMean", ["d", "axes"], ["gap"], name="gap", keepdims=0),
        helper.make_node("Softmax", ["gap"], ["p"], name="softmax"),
        helper.make_node("MaxPool", ["x"], ["gmp"], name="gmp", kernel_shape=[6, 6]),
        helper.make_node("Flatten", ["x"], ["flat2"], name="flat_axis2", axis=2),
    ]
    outputs = [cases.tensor("p", [1, 4]), cases.tensor("gmp", [1, 4, 1, 1]), cases.tensor("flat2", [4, 36])]
    model = cases.onnx_model(nodes, [cases.tensor("x", [1, 4, 6, 6])], outputs, inits, opset=18)
    network = onnx_to_ir(model).network
    assert [(layer.name, layer.op) for layer in network.layers] == [
        ("relu6", OpKind.RELU6), ("relu", OpKind.RELU), ("silu", OpKind.SILU), ("sum", OpKind.ADD),
        ("zero", OpKind.ZERO), ("drop", OpKind.IDENTITY), ("gap", OpKind.GLOBAL_AVG_POOL),
        ("gap.flatten", OpKind.FLATTEN), ("softmax", OpKind.SOFTMAX), ("gmp", OpKind.GLOBAL_MAX_POOL),
        ("flat_axis2", OpKind.RESHAPE),  # ONNX Flatten(axis=2) makes (N*C, H*W): not an IR flatten
    ]
    assert network.layer("sum").inputs == ("relu6", "silu", "x")
    assert network.layer("drop").inputs == ("zero",)
    assert network.layer("softmax").axis == 1


def test_channel_shuffle_pattern(cases: types.ModuleType) -> None:
    nodes = [
        helper.make_node("Reshape", ["x", "s5"], ["r"], name="/cs/Reshape"),
        helper.make_node("Transpose", ["r"], ["t"], name="/cs/Transpose", perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", ["t", "s4"], ["y"], name="/cs/Reshape_1"),
    ]
    inits = [cases.init("s5", np.array([1, 3, 2, 5, 5], np.int64)), cases.init("s4", np.array([1, 6, 5, 5], np.int64))]
    model = cases.onnx_model(nodes, [cases.tensor("x", [1, 6, 5, 5])], [cases.tensor("y", [1, 6, 5, 5])], inits)
    (layer,) = onnx_to_ir(model).network.layers
    assert (layer.op, layer.groups, layer.name) == (OpKind.CHANNEL_SHUFFLE, 3, "/cs/Transpose")


def _relu_model(cases: types.ModuleType, batch: int | str) -> onnx.ModelProto:
    node = helper.make_node("Relu", ["x"], ["y"], name="relu")
    return cases.onnx_model([node], [cases.tensor("x", [batch, 3, 4, 4])], [cases.tensor("y", [batch, 3, 4, 4])])


def test_symbolic_batch_dimension(cases: types.ModuleType) -> None:
    model = _relu_model(cases, "N")
    assert onnx_to_ir(model).network.layer("relu").output_shape == (1, 3, 4, 4)
    assert onnx_to_ir(model, batch_size=8).network.inputs[0].shape == (8, 3, 4, 4)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"  # the caller's model is untouched
    assert onnx_to_ir(_relu_model(cases, 2)).network.batch_size == 2
    with pytest.raises(InvalidInputError, match="fixed batch size of 2"):
        onnx_to_ir(_relu_model(cases, 2), batch_size=4)
    with pytest.raises(InvalidInputError, match="batch_size must be a positive integer"):
        onnx_to_ir(model, batch_size=0)
    spatial = cases.onnx_model(
        [helper.make_node("Relu", ["x"], ["y"])], [cases.tensor("x", [1, 3, "H", 4])], [cases.tensor("y", list("nchw"))]
    )
    with pytest.raises(InvalidInputError, match="symbolic dimension 2"):
        onnx_to_ir(spatial)


# ---- unsupported operators --------------------------------------------------------------------------------------
def _unsupported_model(cases: types.ModuleType, name: str = "act") -> onnx.ModelProto:
    nodes = [
        helper.make_node("LeakyRelu", ["x"], ["a"], name=name),
        helper.make_node("Einsum", ["a"], ["t"], equation="nchw->ncwh"),  # unnamed; a transpose with no IR kind
        helper.make_node("Relu", ["t"], ["y"], name="relu"),
    ]
    return cases.onnx_model(nodes, [cases.tensor("x", [1, 2, 3, 5])], [cases.tensor("y", [1, 2, 5, 3])])


def test_unsupported_operator_error_names_the_node(cases: types.ModuleType) -> None:
    with pytest.raises(UnsupportedOperatorError, match="node 'act' \\(LeakyRelu\\)") as info:
        onnx_to_ir(_unsupported_model(cases))
    assert (info.value.node, info.value.operator) == ("act", "LeakyRelu")
    with pytest.raises(UnsupportedOperatorError) as info:
        onnx_to_ir(_unsupported_model(cases, name=""))
    assert (info.value.node, info.value.operator) == ("#0", "LeakyRelu")  # unnamed: its index


def test_skip_mode_reports_each_skipped_node(cases: types.ModuleType) -> None:
    conversion = onnx_to_ir(_unsupported_model(cases), on_unsupported="skip")
    assert [(s.node, s.operator) for s in conversion.skipped] == [("act", "LeakyRelu"), ("#1", "Einsum")]
    assert "readers take its input" in conversion.skipped[0].reason
    assert "reshape (1, 2, 3, 5) -> (1, 2, 5, 3)" in conversion.skipped[1].reason
    network = conversion.network
    assert [(layer.op, layer.inputs) for layer in network.layers] == [(OpKind.RESHAPE, ("x",)), (OpKind.RELU, ("#1",))]


def test_custom_domain_operator_is_unsupported(cases: types.ModuleType) -> None:
    node = helper.make_node("Fancy", ["x"], ["y"], name="fancy", domain="com.example")
    graph = helper.make_graph([node], "g", [cases.tensor("x", [1, 2, 3, 3])], [cases.tensor("y", [1, 2, 3, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    with pytest.raises(UnsupportedOperatorError, match="custom operator") as info:
        onnx_to_ir(model)
    assert info.value.node == "fancy"


def test_shape_arithmetic_with_mod_is_folded() -> None:
    """nn.MultiheadAttention's export computes reshape targets with Mod (integer mod, or C's fmod)."""
    import numpy as np

    from nas_latency.frontends.onnx_constants import fold_constant

    a, b = np.array([7, -7], dtype=np.int64), np.array([3, 3], dtype=np.int64)
    assert fold_constant("Mod", [a, b], {}, 17)[0].tolist() == [1, 2]
    assert fold_constant("Mod", [a, b], {"fmod": 1}, 17)[0].tolist() == [1, -1]
