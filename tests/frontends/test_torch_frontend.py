"""torch_to_ir on real torch modules: module and functional forms, the fx and eager tracers, unsupported
operators (error and skip), and bad inputs."""

from __future__ import annotations

import logging
import types
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas_latency.errors import InvalidInputError, UnsupportedOperatorError
from nas_latency.frontends import Conversion, torch_to_ir
from nas_latency.frontends.conversion import UNUSED_REASON
from nas_latency.frontends.torch_fx import TraceMethod
from nas_latency.ir import Network, NetworkBuilder, OpKind, structure_diff, structure_key

METHODS: list[TraceMethod] = ["fx", "eager"]


def _assert_same(expected: Network, got: Network) -> None:
    assert structure_key(got) == structure_key(expected), str(structure_diff(expected, got))
    assert [layer.name for layer in got.layers] == [layer.name for layer in expected.layers]
    assert (got.macs, got.params, len(got)) == (expected.macs, expected.params, len(expected))


# ---- modules convert to the IR the builder gives ------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_module_converts_to_the_expected_ir(module_case: Any, method: TraceMethod) -> None:
    conversion = torch_to_ir(module_case.module, module_case.example, method=method)
    assert isinstance(conversion, Conversion)
    assert conversion.skipped == ()
    _assert_same(module_case.expected, conversion.network)


def test_shapes_include_the_batch_dimension_and_params_match_torch(cases: types.ModuleType) -> None:
    module = cases.chain()
    network = torch_to_ir(module, torch.randn(4, 3, 16, 16)).network
    _assert_same(cases.chain_ir(batch=4), network)
    assert network.inputs[0].shape == (4, 3, 16, 16)
    assert network.layer("fc").output_shape == (4, 10)
    assert network.params == sum(p.numel() for p in module.parameters())
    assert network.macs == 4 * (16 * 16 * 8 * 3 * 9 + 8 * 8 * 16 * 8 * 9 + 16 * 10)


class Zoo(nn.Module):
    """One of each remaining kind and attribute the frontend maps."""

    def __init__(self) -> None:
        super().__init__()
        self.same = nn.Conv2d(4, 4, 4, padding="same", dilation=1, bias=False)
        self.dilated = nn.Conv2d(4, 8, 3, padding=2, dilation=2, bias=False)
        self.gelu, self.silu, self.tanh, self.hsig = nn.GELU(), nn.SiLU(), nn.Tanh(), nn.Hardsigmoid()
        self.clip = nn.Hardtanh(0.0, 6.0)
        self.avg = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.adaptive = nn.AdaptiveAvgPool2d(2)
        self.gmax = nn.AdaptiveMaxPool2d((1, 1))
        self.drop = nn.Dropout(0.5)
        self.softmax = nn.Softmax(dim=1)
        self.fc = nn.Linear(8, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dilated(self.same(x))
        y = self.hsig(self.tanh(self.silu(self.gelu(y))))
        y = torch.clamp(self.clip(y), min=0)
        a = self.adaptive(self.avg(y))
        b = F.dropout(self.drop(self.gmax(a)), 0.1, training=False)
        return self.softmax(self.fc(torch.flatten(b, 1)))


def zoo_ir() -> Network:
    b = NetworkBuilder("zoo")
    x = b.input((1, 4, 10, 10), name="x")
    y = b.conv(x, 4, 4, padding=(1, 1, 2, 2), name="same")
    y = b.conv(y, 8, 3, padding=2, dilation=2, name="dilated")
    activations = [(OpKind.GELU, "gelu"), (OpKind.SILU, "silu"), (OpKind.TANH, "tanh"), (OpKind.HARD_SIGMOID, "hsig")]
    for kind, name in activations:
        y = b.activation(y, kind, name=name)
    y = b.relu(b.activation(y, OpKind.RELU6, name="clip"), name="clamp")
    a = b.avg_pool(b.avg_pool(y, 3, stride=2, padding=1, ceil_mode=True, name="avg"), 3, stride=3,
                   count_include_pad=False, name="adaptive")  # 6x6 -> 2x2: even windows of 3
    d = b.identity(b.identity(b.global_max_pool(a, name="gmax"), name="drop"), name="dropout")
    logits = b.linear(b.flatten(d, name="flatten"), 3, bias=False, name="fc")
    b.activation(logits, OpKind.SOFTMAX, axis=1, name="softmax")
    return b.build()


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("method", METHODS)
def test_every_supported_kind_and_attribute(method: TraceMethod) -> None:
    network = torch_to_ir(Zoo().eval(), torch.randn(1, 4, 10, 10), method=method).network
    _assert_same(zoo_ir(), network)
    assert network.layer("same").padding == (1, 1, 2, 2)  # torch puts the odd padding element at the end


class Reuse(nn.Module):
    """An identity whose input is read again later (the NAS-Bench-201 skip edge), a module called twice, an
    in-place op, and two inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.skip = nn.Identity()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.skip(a)
        y = self.conv(a) + s
        y = self.conv(y)
        y.relu_()
        return y, a * b


def reuse_ir() -> Network:
    nb = NetworkBuilder("reuse")
    a, b = nb.input((1, 4, 6, 6), name="a"), nb.input((1, 4, 6, 6), name="b")
    s = nb.identity(a, name="skip")
    y = nb.relu(nb.conv(nb.add(nb.conv(a, 4, 3, padding=1, name="conv"), s, name="add"), 4, 3, padding=1,
                        name="conv_1"), name="relu")
    return nb.build([y, nb.mul(a, b, name="mul")])


@pytest.mark.parametrize("method", METHODS)
def test_identity_reuse_shared_modules_inplace_ops_and_two_inputs(method: TraceMethod) -> None:
    conversion = torch_to_ir(Reuse(), (torch.randn(1, 4, 6, 6), torch.randn(1, 4, 6, 6)), method=method)
    _assert_same(reuse_ir(), conversion.network)
    assert [spec.name for spec in conversion.network.inputs] == ["a", "b"]
    assert len(conversion.network.outputs) == 2


class BatchNormAct2d(nn.BatchNorm2d):
    """timm's pattern: a norm layer subclass whose forward adds an activation."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class LoRALinear(nn.Linear):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__(n_in, n_out)
        self.down = nn.Linear(n_in, 4, bias=False)
        self.up = nn.Linear(4, n_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + self.up(self.down(x))


class PlainConv(nn.Conv2d):
    """A subclass that changes nothing about the computation: still one layer."""


class Subclassed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = PlainConv(3, 16, 3, padding=1)
        self.norm = BatchNormAct2d(16)
        self.head = LoRALinear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.adaptive_avg_pool2d(self.norm(self.conv(x)), 1).flatten(1))


@pytest.mark.parametrize("method", ["auto", "eager"])
def test_a_subclass_of_a_layer_with_its_own_forward_is_traced_into(method: TraceMethod) -> None:
    """Converting BatchNormAct2d as a batch norm and LoRALinear as one linear would drop their extra compute.
    (torch.fx cannot trace batch norm's own forward, which checks the input's rank: ``auto`` falls back to eager.)"""
    module = Subclassed().eval()
    network = torch_to_ir(module, torch.randn(1, 3, 8, 8), method=method).network
    assert [layer.op for layer in network.layers] == [
        OpKind.CONV, OpKind.BATCH_NORM, OpKind.SILU, OpKind.GLOBAL_AVG_POOL, OpKind.FLATTEN,
        OpKind.LINEAR, OpKind.LINEAR, OpKind.LINEAR, OpKind.ADD]
    assert network.params == sum(p.numel() for p in module.parameters())
    assert network.macs == 16 * 8 * 8 * 27 + 16 * 10 + 16 * 4 + 4 * 10


def test_root_leaf_module_converts_on_both_paths() -> None:
    conv = nn.Conv2d(3, 6, 3, stride=2, groups=3)  # fx traces its forward into F.conv2d, eager hooks the module
    keys = {structure_key(torch_to_ir(conv, torch.randn(1, 3, 9, 9), method=m).network) for m in METHODS}
    assert len(keys) == 1
    layer = torch_to_ir(conv, torch.randn(1, 3, 9, 9)).network.layers[0]
    assert (layer.op, layer.groups, layer.stride, layer.bias) == (OpKind.DEPTHWISE_CONV, 3, (2, 2), True)


# ---- the eager fallback ---------------------------------------------------------------------------------------
class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.tanh = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if y.sum() > 0:  # torch.fx cannot trace this
            return self.relu(y)
        return self.tanh(y)


def test_untraceable_module_falls_back_to_the_eager_tracer(caplog: pytest.LogCaptureFixture) -> None:
    module = DataDependent()
    with torch.no_grad():
        module.conv.weight.fill_(0.1)
        module.conv.bias.fill_(0.0)
    with caplog.at_level(logging.INFO, logger="nas_latency.frontends.torch_fx"):
        conversion = torch_to_ir(module, torch.ones(1, 3, 8, 8))
    assert any("falling back to the eager tracer" in r.getMessage() for r in caplog.records)
    layers = [(layer.name, layer.op) for layer in conversion.network.layers]
    assert layers == [("conv", OpKind.CONV), ("relu", OpKind.RELU)]
    # the reduction and comparison that only steer control flow are not layers, and are reported
    assert [(s.node, s.reason) for s in conversion.skipped] == [("sum", UNUSED_REASON), ("gt", UNUSED_REASON)]
    taken = torch_to_ir(module, -torch.ones(1, 3, 8, 8)).network  # the other branch
    assert [layer.op for layer in taken.layers] == [OpKind.CONV, OpKind.TANH]


def test_forcing_fx_on_an_untraceable_module_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match="torch.fx cannot trace"):
        torch_to_ir(DataDependent(), torch.ones(1, 3, 8, 8), method="fx")


# ---- unsupported operators ------------------------------------------------------------------------------------
class WithSort(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.sort(self.conv(x), dim=1).values  # same shape as its input
        return self.relu(y[:, ::2])  # slicing with step 2 is unsupported, and changes the shape


class WithLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.rnn = nn.LSTM(4, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.fc(x))
        return out


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("module", "shape", "node", "operator"),
    [(WithSort, (1, 3, 5, 5), "sort", "sort"), (WithLSTM, (7, 2, 4), "rnn", "LSTM")],
)
def test_unsupported_operator_error_names_the_node(
    module: type[nn.Module], shape: tuple[int, ...], node: str, operator: str, method: TraceMethod
) -> None:
    with pytest.raises(UnsupportedOperatorError) as info:
        torch_to_ir(module(), torch.randn(*shape), method=method)
    assert (info.value.node, info.value.operator) == (node, operator)
    assert repr(node) in info.value.message and "on_unsupported='skip'" in info.value.message
    assert info.value.reason == "UNSUPPORTED_OPERATOR"


@pytest.mark.parametrize("method", METHODS)
def test_skip_mode_counts_and_reports_each_skipped_node(method: TraceMethod) -> None:
    conversion = torch_to_ir(WithSort(), torch.randn(1, 3, 5, 5), on_unsupported="skip", method=method)
    network = conversion.network
    assert [s.node for s in conversion.skipped] == ["sort", "getitem"]
    assert "readers take its input" in conversion.skipped[0].reason
    assert "slicing with step 2" in conversion.skipped[1].reason
    assert "reshape (1, 4, 5, 5) -> (1, 2, 5, 5)" in conversion.skipped[1].reason
    assert [(layer.name, layer.op) for layer in network.layers] == [
        ("conv", OpKind.CONV), ("getitem", OpKind.RESHAPE), ("relu", OpKind.RELU)
    ]
    assert network.layer("getitem").inputs == ("conv",)  # the sort is gone: the slice reads the conv
    assert network.layer("relu").input_shapes == ((1, 2, 5, 5),)


def test_skip_mode_module_with_several_outputs_becomes_a_reshape() -> None:
    conversion = torch_to_ir(WithLSTM(), torch.randn(7, 2, 4), on_unsupported="skip")
    assert [(s.node, s.operator) for s in conversion.skipped] == [("rnn", "LSTM")]
    last = conversion.network.layers[-1]
    assert (last.op, last.input_shapes, last.output_shape) == (OpKind.RESHAPE, ((7, 2, 4),), (7, 2, 6))
    assert conversion.network.macs == 7 * 2 * 4 * 4  # the linear layer only: the LSTM is not costed


class Chain(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x.exp().log())


class DeadSort(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.sort(x)  # computed, never read
        return F.relu(x)


def test_error_names_the_first_unsupported_node_of_a_chain() -> None:
    with pytest.raises(UnsupportedOperatorError) as info:
        torch_to_ir(Chain(), torch.randn(1, 2, 3, 3))
    assert info.value.node == "exp"


def test_unused_unsupported_node_is_reported_not_raised() -> None:
    conversion = torch_to_ir(DeadSort(), torch.randn(1, 2, 3, 3))
    assert [layer.op for layer in conversion.network.layers] == [OpKind.RELU]
    assert [(s.node, s.reason) for s in conversion.skipped] == [("sort", UNUSED_REASON)]


# ---- bad inputs ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["auto", "eager"])
def test_example_input_of_the_wrong_shape(cases: types.ModuleType, method: TraceMethod) -> None:
    with pytest.raises(InvalidInputError, match=r"example input of shape \[\(1, 4, 16, 16\)\] failed.*3 channels"):
        torch_to_ir(cases.chain(), torch.randn(1, 4, 16, 16), method=method)


def test_example_input_without_a_batch_dimension(cases: types.ModuleType) -> None:
    with pytest.raises(InvalidInputError, match="no batch dimension") as info:
        torch_to_ir(cases.chain(), torch.randn(3, 16, 16))
    assert not isinstance(info.value, UnsupportedOperatorError)


@pytest.mark.parametrize(
    ("module", "example", "kwargs", "message"),
    [
        (nn.ReLU(), [[1.0, 2.0]], {}, "example_input must be a tensor"),
        (nn.ReLU(), (), {}, "example_input must be a tensor"),
        ("not a module", torch.ones(1, 3, 4, 4), {}, "expected a torch.nn.Module"),
        (nn.ReLU(), torch.ones(1, 3, 4, 4), {"on_unsupported": "ignore"}, "on_unsupported must be one of"),
        (nn.ReLU(), torch.ones(1, 3, 4, 4), {"method": "jit"}, "method must be"),
    ],
)
def test_bad_arguments(module: object, example: object, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        torch_to_ir(module, example, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", METHODS)
def test_module_state_is_left_as_it_was(cases: types.ModuleType, method: TraceMethod) -> None:
    module = cases.chain().train()
    module.relu1.train(False)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    torch_to_ir(module, torch.randn(2, 3, 16, 16), method=method)
    assert module.training and module.bn1.training and not module.relu1.training
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # batch-norm statistics untouched
