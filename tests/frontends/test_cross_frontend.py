"""Cross-frontend equality on the shipped search spaces, for seeded random architectures of each:

* the fast path (``space.to_ir(arch)``, no torch) equals the torch frontend on ``space.to_torch(arch)`` exactly:
  same structure key, MACs, parameters and layer count, with nothing skipped, on the fx path and on the eager
  fallback alike;
* it equals the ONNX frontend on the legacy export of that module after ``canonicalize`` of both sides (the
  exporter drops identities and merges duplicate pure operations), with the same MACs and parameters.
"""

from __future__ import annotations

import io
from pathlib import Path
from functools import lru_cache

import pytest
import torch

from nas_latency.frontends import export_onnx, onnx_to_ir, torch_to_ir
from nas_latency.ir import Network, OpKind, canonicalize, structure_diff, structure_key
from search_spaces import get_space

SPACES = ["nasbench201", "fbnet", "ganesan_mobile"]
N_ARCHS = 4
SEED = 2024


@lru_cache(maxsize=None)
def _archs(space_name: str) -> tuple[str, ...]:
    return tuple(get_space(space_name).sample(N_ARCHS, seed=SEED))


def _case(space_name: str, index: int) -> tuple[str, Network, torch.nn.Module, torch.Tensor]:
    space = get_space(space_name)
    arch = _archs(space_name)[index]
    torch.manual_seed(index)
    return arch, space.to_ir(arch), space.to_torch(arch), torch.randn(*space.input_shape())


def _assert_equal(arch: str, expected: Network, got: Network) -> None:
    assert structure_key(got) == structure_key(expected), f"{arch}:\n{structure_diff(expected, got)}"
    assert (got.macs, got.params) == (expected.macs, expected.params), arch


@pytest.mark.parametrize("index", range(N_ARCHS))
@pytest.mark.parametrize("space_name", SPACES)
def test_torch_frontend_equals_the_fast_path(space_name: str, index: int) -> None:
    arch, fast, module, example = _case(space_name, index)
    conversion = torch_to_ir(module, example, method="fx")
    assert conversion.skipped == ()
    _assert_equal(arch, fast, conversion.network)
    assert len(conversion.network) == len(fast)
    assert conversion.network.inputs[0].shape == fast.inputs[0].shape


@pytest.mark.parametrize("space_name", SPACES)
def test_eager_tracer_equals_the_fast_path(space_name: str) -> None:
    arch, fast, module, example = _case(space_name, 0)
    conversion = torch_to_ir(module, example, method="eager")
    assert conversion.skipped == ()
    _assert_equal(arch, fast, conversion.network)
    assert len(conversion.network) == len(fast)


@pytest.mark.parametrize("index", range(N_ARCHS))
@pytest.mark.parametrize("space_name", SPACES)
def test_onnx_frontend_equals_the_fast_path_after_canonicalize(space_name: str, index: int) -> None:
    arch, fast, module, example = _case(space_name, index)
    buffer = io.BytesIO()
    export_onnx(module, example, buffer)
    conversion = onnx_to_ir(buffer.getvalue())
    assert conversion.skipped == ()
    _assert_equal(arch, canonicalize(fast), canonicalize(conversion.network))
    assert conversion.network.macs == fast.macs


def test_a_max_pool_over_the_whole_input_is_global_in_both_frontends(tmp_path: Path) -> None:
    """torch's MaxPool2d(7) on a 7×7 map and its ONNX export land in the same IR kind."""
    from torch import nn

    module = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.MaxPool2d(7)).eval()
    example = torch.randn(1, 3, 7, 7)
    from_torch = torch_to_ir(module, example).network
    path = tmp_path / "pool.onnx"
    export_onnx(module, example, path)
    from_onnx = onnx_to_ir(path).network
    assert [layer.op for layer in from_torch.layers] == [OpKind.CONV, OpKind.GLOBAL_MAX_POOL]
    assert structure_key(canonicalize(from_torch)) == structure_key(canonicalize(from_onnx))


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("activation", ["gelu", "hardswish", "hardsigmoid"])
def test_activations_torch_decomposes_on_export_are_one_layer(activation: str, opset: int) -> None:
    """Below opset 20 torch writes nn.GELU as Div/Erf/Add/Mul/Mul, and below 14 nn.Hardswish as HardSigmoid·x:
    the ONNX frontend reads them back as the one layer the torch frontend sees."""
    from torch import nn

    layer = {"gelu": nn.GELU(), "hardswish": nn.Hardswish(), "hardsigmoid": nn.Hardsigmoid()}[activation]
    module = nn.Sequential(nn.Conv2d(3, 4, 1), layer, nn.Conv2d(4, 4, 1)).eval()
    example = torch.randn(1, 3, 8, 8)
    buffer = io.BytesIO()
    export_onnx(module, example, buffer, opset_version=opset)
    from_onnx = onnx_to_ir(buffer.getvalue()).network
    expected = {"gelu": OpKind.GELU, "hardswish": OpKind.HARD_SWISH, "hardsigmoid": OpKind.HARD_SIGMOID}[activation]
    assert [layer.op for layer in from_onnx.layers] == [OpKind.CONV, expected, OpKind.CONV]
    assert structure_key(canonicalize(from_onnx)) == structure_key(canonicalize(torch_to_ir(module, example).network))
