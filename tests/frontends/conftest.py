"""Small real torch modules shared by the frontend tests, each with the IR it must convert to, and helpers to
export them and to write ONNX models by hand. Tests reach them through the ``cases`` fixture (this module) and
the parametrized ``module_case`` fixture."""

from __future__ import annotations

import io
import sys
import types
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas_latency.frontends import export_onnx, onnx_to_ir
from nas_latency.frontends.torch_modules import ChannelShuffle, Zero
from nas_latency.ir import Network, NetworkBuilder, OpKind


def chain() -> nn.Module:
    """conv -> bn -> relu, twice, then a pooled linear head."""
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(3, 8, 3, padding=1, bias=False),
            bn1=nn.BatchNorm2d(8),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(8, 16, 3, stride=2, padding=1),
            bn2=nn.BatchNorm2d(16, affine=False),
            relu2=nn.ReLU6(),
            pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(),
            fc=nn.Linear(16, 10),
        )
    ).eval()


def chain_ir(batch: int = 1) -> Network:
    b = NetworkBuilder("chain")
    x = b.input((batch, 3, 16, 16), name="input")
    x = b.relu(b.batch_norm(b.conv(x, 8, 3, padding=1, name="conv1"), name="bn1"), name="relu1")
    x = b.conv(x, 16, 3, stride=2, padding=1, bias=True, name="conv2")
    x = b.activation(b.batch_norm(x, affine=False, name="bn2"), OpKind.RELU6, name="relu2")
    x = b.flatten(b.global_avg_pool(x, name="pool"), name="flatten")
    b.linear(x, 10, name="fc")
    return b.build()


class Residual(nn.Module):
    """A ResNet basic block with a strided 1x1 projection shortcut."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.shortcut = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return self.relu(out)


def residual_ir() -> Network:
    b = NetworkBuilder("residual")
    x = b.input((1, 8, 16, 16), name="x")
    out = b.relu(b.batch_norm(b.conv(x, 16, 3, stride=2, padding=1, name="conv1"), name="bn1"), name="relu")
    out = b.batch_norm(b.conv(out, 16, 3, padding=1, name="conv2"), name="bn2")
    short = b.batch_norm(b.conv(x, 16, 1, stride=2, name="shortcut.0"), name="shortcut.1")
    b.relu(b.add(out, short, name="add"), name="relu_1")
    return b.build()


class ShuffleBlock(nn.Module):
    """Grouped 1x1 conv, channel shuffle, depthwise 3x3, grouped 1x1; an identity branch concatenated; a
    ``none`` (Zero) branch added."""

    def __init__(self) -> None:
        super().__init__()
        self.gconv1 = nn.Conv2d(8, 16, 1, groups=2, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.act1 = nn.ReLU()
        self.shuffle = ChannelShuffle(2)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.gconv2 = nn.Conv2d(16, 8, 1, groups=2, bias=False)
        self.bn3 = nn.BatchNorm2d(8)
        self.skip = nn.Identity()
        self.none = Zero()
        self.pool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn3(self.gconv2(self.bn2(self.dw(self.shuffle(self.act1(self.bn1(self.gconv1(x))))))))
        y = y + self.none(x)
        return self.pool(torch.cat([y, self.skip(x)], dim=1))


def shuffle_ir() -> Network:
    b = NetworkBuilder("shuffle")
    x = b.input((1, 8, 12, 12), name="x")
    y = b.relu(b.batch_norm(b.conv(x, 16, 1, groups=2, name="gconv1"), name="bn1"), name="act1")
    y = b.channel_shuffle(y, 2, name="shuffle")
    y = b.batch_norm(b.conv(y, 16, 3, padding=1, groups=16, name="dw"), name="bn2")
    y = b.batch_norm(b.conv(y, 8, 1, groups=2, name="gconv2"), name="bn3")
    y = b.add(y, b.zero(x, name="none"), name="add")
    cat = b.concat([y, b.identity(x, name="skip")], axis=1, name="cat")
    b.max_pool(cat, 3, stride=2, padding=1, ceil_mode=True, name="pool")
    return b.build()


class Functional(nn.Module):
    """Layers written with functions and tensor methods instead of modules."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(8, 3, 3, 3))
        self.fc_weight = nn.Parameter(torch.randn(5, 16))
        self.fc_bias = nn.Parameter(torch.randn(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(F.conv2d(x, self.weight, padding=1))
        y = y * torch.sigmoid(y.mean((2, 3), keepdim=True)) + 0  # an SE-style gate; "+ 0" is no layer
        z = torch.cat([F.avg_pool2d(y, 2, count_include_pad=False), F.max_pool2d(y, 2)], 1)
        z = z * 0 + F.hardswish(z)
        z = z.mean((2, 3), keepdim=True)
        z = z.view(z.size(0), -1)
        return F.softmax(F.linear(z, self.fc_weight, self.fc_bias), dim=1)


def functional_ir() -> Network:
    b = NetworkBuilder("functional")
    x = b.input((1, 3, 8, 8), name="x")
    y = b.relu(b.conv(x, 8, 3, padding=1, name="conv2d"), name="relu")
    gate = b.activation(b.global_avg_pool(y, name="mean"), OpKind.SIGMOID, name="sigmoid")
    y = b.mul(y, gate, name="mul")
    z = b.concat(
        [b.avg_pool(y, 2, count_include_pad=False, name="avg_pool2d"), b.max_pool(y, 2, name="max_pool2d")], name="cat"
    )
    z = b.add(b.zero(z, name="mul_1"), b.activation(z, OpKind.HARD_SWISH, name="hardswish"), name="add_1")
    z = b.flatten(b.global_avg_pool(z, name="mean_1"), name="view")
    b.activation(b.linear(z, 5, name="linear"), OpKind.SOFTMAX, axis=1, name="softmax")
    return b.build()


#: name -> (module factory, example input shape, expected IR)
MODULE_CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], Callable[[], Network]]] = {
    "chain": (chain, (1, 3, 16, 16), chain_ir),
    "residual": (lambda: Residual().eval(), (1, 8, 16, 16), residual_ir),
    "shuffle": (lambda: ShuffleBlock().eval(), (1, 8, 12, 12), shuffle_ir),
    "functional": (lambda: Functional().eval(), (1, 3, 8, 8), functional_ir),
}


def onnx_bytes(module: nn.Module, example: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    export_onnx(module, example, buffer)
    return buffer.getvalue()


def exported_ir(module: nn.Module, example: torch.Tensor, folder: Path, opset: int | None) -> Network:
    """``module`` exported to ONNX (``opset``: None for the exporter's default) in ``folder`` and converted back,
    with nothing skipped."""
    path = folder / f"model_{opset}.onnx"
    export_onnx(module, example, path, opset_version=opset)
    conversion = onnx_to_ir(path)
    assert conversion.skipped == ()
    return conversion.network


def op_kinds(network: Network) -> Counter[OpKind]:
    """How many layers of each kind ``network`` has."""
    return Counter(layer.op for layer in network.layers)


def output_shape(network: Network) -> tuple[int, ...]:
    """The shape of ``network``'s first output."""
    return network.layer(network.outputs[0]).output_shape


def onnx_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[onnx.ValueInfoProto],
    initializers: Sequence[onnx.TensorProto] = (),
    opset: int = 17,
) -> onnx.ModelProto:
    """A hand-written ONNX model, for what the torch exporter never emits."""
    graph = onnx.helper.make_graph(list(nodes), "hand", list(inputs), list(outputs), list(initializers))
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])


def tensor(name: str, shape: Sequence[int | str]) -> onnx.ValueInfoProto:
    """A float tensor's value info (strings are symbolic dimensions)."""
    return onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, list(shape))


def init(name: str, values: np.ndarray) -> onnx.TensorProto:
    return onnx.numpy_helper.from_array(np.asarray(values), name)


@dataclass(frozen=True)
class ModuleCase:
    name: str
    module: nn.Module
    example: torch.Tensor
    expected: Network


@pytest.fixture(params=sorted(MODULE_CASES))
def module_case(request: pytest.FixtureRequest) -> ModuleCase:
    """Each shared module, freshly built with seeded weights, with its example input and expected IR."""
    make, shape, expected = MODULE_CASES[request.param]
    torch.manual_seed(0)
    return ModuleCase(request.param, make(), torch.randn(*shape), expected())


@pytest.fixture
def cases() -> types.ModuleType:
    """This module: the shared test modules and ONNX helpers."""
    return sys.modules[__name__]
