"""Explicit pads (``F.pad``, the ``nn.*Pad2d`` modules, ``nn.Conv2d(padding_mode=...)``) through the torch frontend
(both tracers) and through ONNX (torch's export at the default opset and 17): one ``PAD`` layer with the padding
as (top, left, bottom, right), shapes, parameters and MACs as torch's, and equal features from both frontends."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas_latency.errors import UnsupportedOperatorError
from nas_latency.frontends import export_onnx, onnx_to_ir, torch_to_ir
from nas_latency.ir import Network, OpKind, canonicalize, network_features

INPUT_SHAPE = (1, 3, 8, 8)


class FunctionalPad(nn.Module):
    """``F.pad(x, pad, mode)`` then a scale, so that the pad is not the network output itself."""

    def __init__(self, pad: tuple[int, ...], mode: str = "constant") -> None:
        super().__init__()
        self.pad, self.mode = pad, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pad, mode=self.mode) * 2


def _conv_after(pad: nn.Module) -> nn.Module:
    return nn.Sequential(pad, nn.Conv2d(3, 4, 3)).eval()


#: name -> (module factory, the IR's (top, left, bottom, right))
CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, int, int, int]]] = {
    "f_pad_constant": (lambda: FunctionalPad((1, 2, 3, 0)), (3, 1, 0, 2)),
    "f_pad_reflect": (lambda: FunctionalPad((1, 2, 3, 0), "reflect"), (3, 1, 0, 2)),
    "f_pad_replicate": (lambda: FunctionalPad((1, 2, 3, 0), "replicate"), (3, 1, 0, 2)),
    "f_pad_circular": (lambda: FunctionalPad((1, 2, 3, 0), "circular"), (3, 1, 0, 2)),
    "f_pad_circular_h_only": (lambda: FunctionalPad((0, 0, 1, 2), "circular"), (1, 0, 2, 0)),
    "f_pad_w_only": (lambda: FunctionalPad((2, 1)), (0, 2, 0, 1)),
    "f_pad_zero_channel_pad": (lambda: FunctionalPad((1, 1, 0, 0, 0, 0)), (0, 1, 0, 1)),
    "reflection_pad2d": (lambda: _conv_after(nn.ReflectionPad2d((1, 0, 2, 1))), (2, 1, 1, 0)),
    "replication_pad2d": (lambda: _conv_after(nn.ReplicationPad2d(1)), (1, 1, 1, 1)),
    "zero_pad2d": (lambda: _conv_after(nn.ZeroPad2d((0, 1, 0, 1))), (0, 0, 1, 1)),
    "constant_pad2d": (lambda: _conv_after(nn.ConstantPad2d((2, 2, 1, 1), 0.5)), (1, 2, 1, 2)),
    "circular_pad2d": (lambda: _conv_after(nn.CircularPad2d((1, 2, 0, 1))), (0, 1, 1, 2)),
}


def _example() -> torch.Tensor:
    return torch.randn(INPUT_SHAPE, generator=torch.Generator().manual_seed(0))


def _make(case: str) -> tuple[nn.Module, tuple[int, int, int, int]]:
    torch.manual_seed(0)
    factory, padding = CASES[case]
    return factory().eval(), padding


def _via_onnx(module: nn.Module, tmp_path: Path, opset: int | None) -> Network:
    path = tmp_path / f"model_{opset}.onnx"
    export_onnx(module, _example(), path, opset_version=opset)
    return onnx_to_ir(path).network


def _pads(network: Network) -> list[tuple[int, int, int, int] | None]:
    return [layer.padding for layer in network.layers if layer.op is OpKind.PAD]


def _check(network: Network, module: nn.Module, padding: tuple[int, int, int, int]) -> None:
    with torch.no_grad():
        expected = tuple(module(_example()).shape)
    assert [network.layer(name).output_shape for name in network.outputs] == [expected]
    assert _pads(network) == [padding]
    assert network.params == sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("method", ["fx", "eager"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_torch_pad_is_one_pad_layer(case: str, method: str) -> None:
    module, padding = _make(case)
    _check(torch_to_ir(module, _example(), method=method).network, module, padding)


@pytest.mark.parametrize("opset", [None, 17])
@pytest.mark.parametrize("case", sorted(CASES))
def test_onnx_pad_is_one_pad_layer_with_the_torch_features(case: str, opset: int | None, tmp_path: Path) -> None:
    module, padding = _make(case)
    from_onnx = _via_onnx(module, tmp_path, opset)
    _check(from_onnx, module, padding)
    from_torch = torch_to_ir(module, _example()).network
    assert (from_onnx.macs, from_onnx.params) == (from_torch.macs, from_torch.params)
    assert np.array_equal(network_features(canonicalize(from_onnx)), network_features(canonicalize(from_torch)))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv_padding_mode_is_a_pad_then_an_unpadded_conv(mode: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 4, 3, padding=(1, 2), padding_mode=mode)).eval()
    out_h, out_w = INPUT_SHAPE[2], INPUT_SHAPE[3] + 2
    torch_macs = 4 * out_h * out_w * 3 * 3 * 3
    networks = {method: torch_to_ir(module, _example(), method=method).network for method in ("fx", "eager")}
    for method, network in networks.items():
        assert [layer.name for layer in network.layers] == ["0.pad", "0"], method
        pad, conv = network.layers
        assert pad.padding == (1, 2, 1, 2) and conv.padding == (0, 0, 0, 0), method
        assert conv.output_shape == (1, 4, out_h, out_w) and network.macs == torch_macs, method
    for opset in (None, 17):
        from_onnx = _via_onnx(module, tmp_path, opset)
        assert [layer.op for layer in from_onnx.layers] == [OpKind.PAD, OpKind.CONV], opset
        assert from_onnx.macs == torch_macs
        assert np.array_equal(network_features(canonicalize(from_onnx)),
                              network_features(canonicalize(networks["fx"])))


def test_zero_padding_mode_stays_in_the_conv() -> None:
    module = nn.Sequential(nn.Conv2d(3, 4, 3, padding="same")).eval()
    network = torch_to_ir(module, _example()).network
    assert [(layer.op, layer.padding) for layer in network.layers] == [(OpKind.CONV, (1, 1, 1, 1))]


@pytest.mark.parametrize("method", ["fx", "eager"])
def test_all_zero_pad_is_the_input_itself(method: str, tmp_path: Path) -> None:
    module = nn.Sequential(nn.ZeroPad2d(0), nn.ReLU()).eval()
    assert [layer.op for layer in torch_to_ir(module, _example(), method=method).network.layers] == [OpKind.RELU]
    functional = FunctionalPad((0, 0, 0, 0), "reflect")
    assert [layer.op for layer in torch_to_ir(functional, _example(), method=method).network.layers] == [OpKind.SCALE]
    assert [layer.op for layer in _via_onnx(functional, tmp_path, None).layers] == [OpKind.SCALE]


@pytest.mark.parametrize("method", ["fx", "eager"])
@pytest.mark.parametrize(
    ("pad", "match"),
    [
        ((1, 1, -1, 0), r"F\.pad with negative elements in pad \(1, 1, -1, 0\)"),
        ((0, 0, 0, 0, 1, 0), r"pad \(0, 0, 0, 0, 1, 0\) pads the channel or batch dimension"),
        ((0, 0, 0, 0, 0, 0, 1, 1), r"pad \(0, 0, 0, 0, 0, 0, 1, 1\) pads the channel or batch dimension"),
    ],
)
def test_torch_unrepresentable_pads_are_errors(pad: tuple[int, ...], match: str, method: str) -> None:
    with pytest.raises(UnsupportedOperatorError, match=match):
        torch_to_ir(FunctionalPad(pad), _example(), method=method)


def test_torch_pad_of_a_non_4d_input_is_an_error() -> None:
    with pytest.raises(UnsupportedOperatorError, match=r"F\.pad of a 3-D input with pad \(1, 1\)"):
        torch_to_ir(FunctionalPad((1, 1)), torch.randn(1, 3, 8))


@pytest.mark.parametrize(
    ("pad", "match"),
    [
        ((1, 1, -1, 0), r"Pad with negative pads \[0, 0, -1, 1, 0, 0, 0, 1\]"),
        ((0, 0, 0, 0, 1, 0), r"Pad with pads \[0, 1, 0, 0, 0, 0, 0, 0\] pads the batch or channel dimension"),
    ],
)
def test_onnx_unrepresentable_pads_are_errors(pad: tuple[int, ...], match: str) -> None:
    buffer = io.BytesIO()
    export_onnx(FunctionalPad(pad), _example(), buffer)
    with pytest.raises(UnsupportedOperatorError, match=match):
        onnx_to_ir(buffer.getvalue())
