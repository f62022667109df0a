"""Transformer and attention networks through both frontends: MATMUL, TRANSPOSE, LAYER_NORM and SCALE.

A ViT block (written out by hand, and with ``F.scaled_dot_product_attention``) converts with the right output
shape, parameters, MACs and op kinds on both torch tracers, and its legacy ONNX export converts to the same
features but for one TRANSPOSE: the exporter's peephole pass fuses ``k.transpose(1, 2).transpose(-2, -1)`` into
one ``Transpose(perm=[0, 2, 3, 1])`` (no export argument turns it off), while torch runs, and the torch frontend
records, two transposes; after ``canonicalize`` (which fuses such chains) the features are equal.
"""

from __future__ import annotations

import types
import math
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import helper
from torch import nn

from nas_latency.errors import UnsupportedOperatorError
from nas_latency.frontends import export_onnx, onnx_to_ir, torch_to_ir
from nas_latency.frontends.conversion import UNUSED_REASON
from nas_latency.frontends.torch_fx import TraceMethod
from nas_latency.ir import OpKind, canonicalize
from nas_latency.ir.features import layer_features, network_features

METHODS: list[TraceMethod] = ["fx", "eager"]
OPSETS = [None, 17]  # the exporter's default (20 with torch 2.13) and the first with LayerNormalization
B, T, C, HEADS = 2, 16, 64, 4
D = C // HEADS


class ViTBlock(nn.Module):
    """A timm-style pre-norm ViT block with q, k and v from three nn.Linear layers (timm's single ``qkv`` projection
    followed by ``unbind`` is tested in test_slicing_frontends.py)."""

    def __init__(self, sdpa: bool = False) -> None:
        super().__init__()
        self.sdpa = sdpa
        self.norm1 = nn.LayerNorm(C)
        self.q, self.k, self.v = nn.Linear(C, C), nn.Linear(C, C), nn.Linear(C, C)
        self.proj = nn.Linear(C, C)
        self.norm2 = nn.LayerNorm(C)
        self.fc1, self.act, self.fc2 = nn.Linear(C, 4 * C), nn.GELU(), nn.Linear(4 * C, C)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.reshape(b, t, HEADS, D).permute(0, 2, 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        y = self.norm1(x)
        q, k, v = self._heads(self.q(y)), self._heads(self.k(y)), self._heads(self.v(y))
        if self.sdpa:
            o = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q @ k.transpose(-2, -1)) * D**-0.5
            o = attn.softmax(dim=-1) @ v
        x = x + self.proj(o.transpose(1, 2).reshape(b, t, c))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


def _block(sdpa: bool) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return ViTBlock(sdpa).eval(), torch.randn(B, T, C)


# hand count: q, k, v, proj (T x C x C each), q @ kT and attn @ v (H x T x T x D each), fc1 and fc2 (T x C x 4C)
BLOCK_MACS = B * (4 * T * C * C + 2 * HEADS * T * T * D + 2 * T * C * 4 * C)
BLOCK_KINDS = Counter({
    OpKind.LINEAR: 6, OpKind.LAYER_NORM: 2, OpKind.RESHAPE: 3, OpKind.FLATTEN: 1, OpKind.TRANSPOSE: 5,
    OpKind.MATMUL: 2, OpKind.SCALE: 1, OpKind.SOFTMAX: 1, OpKind.ADD: 2, OpKind.GELU: 1,
})


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("sdpa", [False, True], ids=["by_hand", "sdpa"])
def test_vit_block_converts_with_torch_shapes_params_and_macs(
    cases: types.ModuleType, sdpa: bool, method: TraceMethod,
) -> None:
    module, example = _block(sdpa)
    conversion = torch_to_ir(module, example, method=method)
    network = conversion.network
    assert conversion.skipped == ()
    assert [network.layer(name).output_shape for name in network.outputs] == [tuple(module(example).shape)]
    assert network.params == sum(p.numel() for p in module.parameters())
    assert network.macs == BLOCK_MACS == 1_638_400
    assert cases.op_kinds(network) == BLOCK_KINDS


def test_sdpa_is_decomposed_into_distinctly_named_layers() -> None:
    module, example = _block(sdpa=True)
    network = torch_to_ir(module, example).network
    sdpa = [(layer.name, layer.op) for layer in network.layers if layer.name.startswith("scaled_dot_product")]
    assert sdpa == [
        ("scaled_dot_product_attention.key_t", OpKind.TRANSPOSE),
        ("scaled_dot_product_attention.qk", OpKind.MATMUL),
        ("scaled_dot_product_attention.scale", OpKind.SCALE),
        ("scaled_dot_product_attention.softmax", OpKind.SOFTMAX),
        ("scaled_dot_product_attention.av", OpKind.MATMUL),
    ]
    assert network.layer("scaled_dot_product_attention.softmax").axis == 3


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("sdpa", [False, True], ids=["by_hand", "sdpa"])
def test_vit_block_onnx_features_equal_torch_but_one_fused_transpose(
    cases: types.ModuleType, sdpa: bool, opset: int | None, tmp_path: Path
) -> None:
    module, example = _block(sdpa)
    from_torch = torch_to_ir(module, example).network
    from_onnx = cases.exported_ir(module, example, tmp_path, opset)
    # the exporter fuses k's head transpose and its kT transpose into one Transpose(perm=[0, 2, 3, 1])
    key_t = from_torch.layer("scaled_dot_product_attention.key_t" if sdpa else "transpose")
    assert (key_t.op, key_t.input_shapes, key_t.output_shape) == (
        OpKind.TRANSPOSE, ((B, HEADS, T, D),), (B, HEADS, D, T)
    )
    assert np.array_equal(network_features(from_onnx), network_features(from_torch) - layer_features(key_t))
    assert cases.op_kinds(from_onnx) == BLOCK_KINDS - Counter({OpKind.TRANSPOSE: 1})
    assert (from_onnx.macs, from_onnx.params) == (from_torch.macs, from_torch.params)
    assert cases.output_shape(from_onnx) == cases.output_shape(from_torch)
    # canonicalize fuses the torch side's two transposes into one, as the exporter does: equal features
    assert np.array_equal(network_features(canonicalize(from_onnx)), network_features(canonicalize(from_torch)))


def test_onnx_reads_the_split_sdpa_scale_back_as_one_scale_after_the_product(
    cases: types.ModuleType, tmp_path: Path,
) -> None:
    """torch exports SDPA as (q · √s) @ (kᵀ · √s); the ONNX frontend reads it as (q @ kᵀ) · s, like the torch one."""
    module, example = _block(sdpa=True)
    network = cases.exported_ir(module, example, tmp_path, None)
    product = network.layer("/MatMul")
    scale = [layer for layer in network.layers if layer.op is OpKind.SCALE]
    assert [(s.inputs, s.output_shape) for s in scale] == [(("/MatMul",), (B, HEADS, T, T))]
    assert product.input_shapes == ((B, HEADS, T, D), (B, HEADS, D, T))


def test_layer_norm_below_opset_17_is_unsupported_with_a_hint(tmp_path: Path) -> None:
    module, example = _block(sdpa=False)
    path = tmp_path / "opset14.onnx"
    export_onnx(module, example, path, opset_version=14)
    with pytest.raises(UnsupportedOperatorError, match=r"ReduceMean.*export with opset_version >= 17") as info:
        onnx_to_ir(path)
    assert info.value.operator == "ReduceMean"


# ---- nn.MultiheadAttention ---------------------------------------------------------------------------------------
class SelfAttention(nn.Module):
    def __init__(self, batch_first: bool, need_weights: bool = False, return_weights: bool = False) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(C, HEADS, batch_first=batch_first)
        self.need_weights, self.return_weights = need_weights, return_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        out, weights = self.attn(x, x, x, need_weights=self.need_weights)
        return (out, weights) if self.return_weights else out


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_attention_is_decomposed(cases: types.ModuleType, batch_first: bool, method: TraceMethod) -> None:
    torch.manual_seed(0)
    module = SelfAttention(batch_first).eval()
    example = torch.randn(B, T, C)  # (N, L, E) with batch_first, else (L, N, E): L = B, N = T
    conversion = torch_to_ir(module, example, method=method)
    network = conversion.network
    assert conversion.skipped == ()
    assert cases.output_shape(network) == tuple(module(example).shape)
    assert network.params == sum(p.numel() for p in module.parameters())  # packed in_proj = three linears
    batch, seq = (B, T) if batch_first else (T, B)
    assert network.macs == 4 * batch * seq * C * C + 2 * batch * HEADS * seq * seq * D
    # what torch runs: a packed in-projection (one linear to 3E; views to (L, N, 3, E) and (1, L, N, 3, E), a
    # transpose, a view to (3, L, N, E)) split by three selects, each viewed and transposed to heads and viewed again;
    # a transpose and a view to merge the heads; out_proj and a view; batch first: a transpose in and one out
    assert cases.op_kinds(network) == Counter({
        OpKind.LINEAR: 2, OpKind.SLICE: 3, OpKind.RESHAPE: 2 + 2 * 3 + 2, OpKind.FLATTEN: 1,
        OpKind.TRANSPOSE: 6 + (2 if batch_first else 0), OpKind.MATMUL: 2, OpKind.SCALE: 1, OpKind.SOFTMAX: 1,
    })
    assert network.layer("attn.in_proj").output_shape == (seq, batch, 3 * C)
    assert network.layer("attn.qk").output_shape == (batch, HEADS, seq, seq)


def test_multihead_attention_weights_unread_are_reported_and_read_are_an_error() -> None:
    torch.manual_seed(0)
    example = torch.randn(B, T, C)
    conversion = torch_to_ir(SelfAttention(True, need_weights=True).eval(), example)
    assert [(s.node, s.operator, s.reason) for s in conversion.skipped] == [
        ("attn.attn_output_weights", "MultiheadAttention", UNUSED_REASON)
    ]
    assert conversion.network.macs == 4 * B * T * C * C + 2 * B * HEADS * T * T * D
    with pytest.raises(UnsupportedOperatorError, match=r"'attn.attn_output_weights'.*pass need_weights=False"):
        torch_to_ir(SelfAttention(True, need_weights=True, return_weights=True).eval(), example)


class MaskedAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(C, HEADS, batch_first=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, attn_mask=mask, need_weights=False)[0]


def test_multihead_attention_with_a_network_mask_is_unsupported() -> None:
    example = (torch.randn(B, T, C), torch.zeros(T, T))
    with pytest.raises(UnsupportedOperatorError, match=r"nn.MultiheadAttention with a mask computed by the network"):
        torch_to_ir(MaskedAttention().eval(), example)


# ---- scaled_dot_product_attention details --------------------------------------------------------------------------
class Sdpa(nn.Module):
    def __init__(self, **options: object) -> None:
        super().__init__()
        self.options = options

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, **self.options)  # type: ignore[arg-type]


class MaskedSdpa(nn.Module):
    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, mask)


def _qkv(*mask_shape: int) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(0)
    tensors = (torch.randn(B, HEADS, T, D), torch.randn(B, HEADS, 8, D), torch.randn(B, HEADS, 8, 32))
    return tensors + ((torch.zeros(*mask_shape),) if mask_shape else ())


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("options", "mask_shape", "mask_kind"),
    [({}, (), None), ({"is_causal": True}, (), OpKind.SCALE), ({}, (T, 8), OpKind.ADD),
     ({"attn_mask": torch.ones(T, 8, dtype=torch.bool)}, (), OpKind.SCALE), ({"scale": 1.0}, (), None)],
    ids=["plain", "causal", "network_mask", "constant_mask", "scale_1"],
)
def test_sdpa_masks_and_scales(
    cases: types.ModuleType, options: dict[str, object], mask_shape: tuple[int, ...], mask_kind: OpKind | None,
    method: TraceMethod,
) -> None:
    inputs = _qkv(*mask_shape)
    module = MaskedSdpa() if mask_shape else Sdpa(**options)
    network = torch_to_ir(module, inputs, method=method).network
    names = {layer.name: layer.op for layer in network.layers}
    assert names.get("scaled_dot_product_attention.mask") is mask_kind
    assert ("scaled_dot_product_attention.scale" in names) is ("scale" not in options)
    assert cases.output_shape(network) == (B, HEADS, T, 32)
    assert network.macs == B * HEADS * T * 8 * (D + 32)  # q @ kT, then attn @ v


def test_sdpa_with_dropout_is_unsupported() -> None:
    with pytest.raises(UnsupportedOperatorError, match=r"dropout_p=0.1 drops attention weights at random"):
        torch_to_ir(Sdpa(dropout_p=0.1), _qkv())


# ---- elementwise passes with a constant ----------------------------------------------------------------------------
class Positional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.randn(1, T, C))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos


def _lambda(fn: Callable[[torch.Tensor], torch.Tensor]) -> nn.Module:
    class Fn(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.relu(fn(x))

    return Fn()


SCALES: dict[str, tuple[Callable[[], nn.Module], OpKind | None]] = {
    "x*2": (lambda: _lambda(lambda x: x * 2), OpKind.SCALE),
    "x/8": (lambda: _lambda(lambda x: x / 8), OpKind.SCALE),
    "div": (lambda: _lambda(lambda x: torch.div(x, 3.0)), OpKind.SCALE),
    "x-1": (lambda: _lambda(lambda x: x - 1), OpKind.SCALE),
    "2-x": (lambda: _lambda(lambda x: 2 - x), OpKind.SCALE),
    "0-x": (lambda: _lambda(lambda x: 0 - x), OpKind.SCALE),  # not x: the reflected operand order is kept
    "1/x": (lambda: _lambda(lambda x: 1 / x), OpKind.SCALE),  # not x / 1
    "reciprocal": (lambda: _lambda(lambda x: x.reciprocal()), OpKind.SCALE),
    "rsub": (lambda: _lambda(lambda x: torch.rsub(x, 1.0)), OpKind.SCALE),
    "alpha": (lambda: _lambda(lambda x: torch.add(x, torch.ones(C), alpha=2)), OpKind.SCALE),
    "neg": (lambda: _lambda(lambda x: -x), OpKind.SCALE),
    "vector": (lambda: _lambda(lambda x: x * torch.linspace(0, 1, C)), OpKind.SCALE),
    "pos_embed": (Positional, None),
    "x*1": (lambda: _lambda(lambda x: x * 1), None),
    "x/1": (lambda: _lambda(lambda x: x / 1), None),
    "x-0": (lambda: _lambda(lambda x: x - 0), None),
    "floor_div_1": (lambda: _lambda(lambda x: torch.div(x, 1, rounding_mode="floor")), OpKind.SCALE),  # rounds
    "x*0": (lambda: _lambda(lambda x: x * 0), OpKind.ZERO),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(SCALES))
def test_constant_operands_are_one_scale_pass(case: str, method: TraceMethod) -> None:
    make, kind = SCALES[case]
    torch.manual_seed(0)
    network = torch_to_ir(make().eval(), torch.randn(B, T, C), method=method).network
    if case == "pos_embed":
        assert [layer.op for layer in network.layers] == [OpKind.SCALE]
        assert network.params == 0  # the IR does not count a constant operand as a parameter
        return
    expected = [kind, OpKind.RELU] if kind is not None else [OpKind.RELU]
    assert [layer.op for layer in network.layers] == expected
    assert network.layers[-1].inputs == ((network.layers[0].name,) if kind is not None else ("x",))


@pytest.mark.parametrize(
    "case", ["x*2", "x/8", "x-1", "2-x", "1/x", "reciprocal", "neg", "vector", "pos_embed", "x*0", "x*1"]
)
def test_constant_operands_agree_across_frontends(cases: types.ModuleType, case: str, tmp_path: Path) -> None:
    make, _ = SCALES[case]
    torch.manual_seed(0)
    module, example = make().eval(), torch.randn(B, T, C)
    from_torch = torch_to_ir(module, example).network
    from_onnx = cases.exported_ir(module, example, tmp_path, None)
    assert [layer.op for layer in from_onnx.layers] == [layer.op for layer in from_torch.layers]


class Broadcasting(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x * torch.full((B, T, C), 2.0))


class TwoTensors(nn.Module):
    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = op

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.relu(x - y if self.op == "sub" else x / y)


@pytest.mark.parametrize("method", METHODS)
def test_constant_that_broadcasts_the_input_to_a_larger_shape_is_unsupported(
    method: TraceMethod, tmp_path: Path
) -> None:
    module, example = Broadcasting(), torch.randn(B, 1, C)
    message = (r"mul with a constant of shape \(2, 16, 64\) that broadcasts the input of shape \(2, 1, 64\) "
               r"to the larger \(2, 16, 64\)")
    with pytest.raises(UnsupportedOperatorError, match=message):
        torch_to_ir(module, example, method=method)
    path = tmp_path / "broadcast.onnx"
    export_onnx(module, example, path)
    with pytest.raises(UnsupportedOperatorError, match=r"Mul with a constant of shape \(2, 16, 64\) that broadcasts"):
        onnx_to_ir(path)


@pytest.mark.parametrize("op", ["sub", "div"])
def test_sub_and_div_of_two_network_tensors_are_unsupported(op: str, tmp_path: Path) -> None:
    example = (torch.randn(B, T, C), torch.rand(B, T, C) + 1)
    with pytest.raises(UnsupportedOperatorError, match=rf"node '{op}' \({op}\).*{op} of two network tensors") as info:
        torch_to_ir(TwoTensors(op), example)
    assert info.value.operator == op
    path = tmp_path / f"{op}.onnx"
    export_onnx(TwoTensors(op), example, path)
    onnx_op = op.capitalize()
    with pytest.raises(UnsupportedOperatorError, match=rf"ONNX {onnx_op} of two network tensors"):
        onnx_to_ir(path)


# ---- matmul, transpose, layer norm ---------------------------------------------------------------------------------
class Products(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(C, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gram = torch.bmm(x, x.mT)  # (B, T, T)
        mixed = gram.matmul(x)  # (B, T, C)
        return torch.matmul(mixed, self.w)  # a linear layer without bias


@pytest.mark.parametrize("method", METHODS)
def test_matmul_of_activations_and_by_a_weight(method: TraceMethod) -> None:
    module, example = Products(), torch.randn(B, T, C)
    network = torch_to_ir(module, example, method=method).network
    assert [layer.op for layer in network.layers] == [OpKind.TRANSPOSE, OpKind.MATMUL, OpKind.MATMUL, OpKind.LINEAR]
    assert network.layers[-1].bias is False and network.params == C * 8
    assert network.macs == 2 * B * T * T * C + B * T * C * 8


class LeftConstant(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones(T, T) @ x


def test_matmul_with_a_constant_left_operand_is_unsupported() -> None:
    with pytest.raises(UnsupportedOperatorError, match=r"constant left operand of shape \(16, 16\)"):
        torch_to_ir(LeftConstant(), torch.randn(B, T, C))


TRANSPOSES: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], OpKind | None]] = {
    "transpose": (lambda x: x.transpose(1, 2), OpKind.TRANSPOSE),
    "swapaxes": (lambda x: x.swapaxes(0, 2), OpKind.TRANSPOSE),
    "swapdims": (lambda x: torch.swapdims(x, -1, -2), OpKind.TRANSPOSE),
    "permute": (lambda x: x.permute(2, 0, 1), OpKind.TRANSPOSE),
    "mT": (lambda x: x.mT, OpKind.TRANSPOSE),
    "identity": (lambda x: x.permute(0, 1, 2), None),
    "size_1": (lambda x: x.unsqueeze(1).transpose(1, 2), OpKind.RESHAPE),  # only a size-1 dimension moves
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(TRANSPOSES))
def test_transposes(cases: types.ModuleType, case: str, method: TraceMethod) -> None:
    fn, kind = TRANSPOSES[case]
    network = torch_to_ir(_lambda(fn), torch.randn(B, T, C), method=method).network
    ops = [layer.op for layer in network.layers]
    if case == "size_1":
        assert ops == [OpKind.RESHAPE, OpKind.RESHAPE, OpKind.RELU]
    else:
        assert ops == ([kind] if kind is not None else []) + [OpKind.RELU]
    assert cases.output_shape(network) == tuple(fn(torch.randn(B, T, C)).shape)


@pytest.mark.parametrize("method", METHODS)
def test_t_reverses_a_matrix(method: TraceMethod) -> None:
    network = torch_to_ir(_lambda(lambda x: x.t()), torch.randn(T, C), method=method).network
    assert [(layer.op, layer.output_shape) for layer in network.layers] == [
        (OpKind.TRANSPOSE, (C, T)), (OpKind.RELU, (C, T))
    ]


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("case", ["transpose", "swapaxes", "permute", "identity", "size_1"])  # no ONNX for mT
def test_transposes_agree_across_frontends(
    cases: types.ModuleType, case: str, opset: int | None, tmp_path: Path,
) -> None:
    module, example = _lambda(TRANSPOSES[case][0]), torch.randn(B, T, C)
    from_torch = torch_to_ir(module, example).network
    from_onnx = cases.exported_ir(module, example, tmp_path, opset)
    assert np.array_equal(network_features(from_onnx), network_features(from_torch))


LAYER_NORMS: dict[str, Callable[[], nn.Module]] = {
    "last": lambda: nn.LayerNorm(C),
    "two_dims": lambda: nn.LayerNorm((T, C)),
    "no_affine": lambda: nn.LayerNorm(C, elementwise_affine=False),
    "functional": lambda: _lambda(lambda x: F.layer_norm(x, (C,), torch.ones(C), torch.zeros(C))),
}


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("case", list(LAYER_NORMS))
def test_layer_norm_in_both_frontends(cases: types.ModuleType, case: str, opset: int | None, tmp_path: Path) -> None:
    module, example = LAYER_NORMS[case]().eval(), torch.randn(B, T, C)
    from_torch = torch_to_ir(module, example).network
    norm = from_torch.layers[0]
    axis = 1 if case == "two_dims" else 2
    assert (norm.op, norm.axis, norm.affine) == (OpKind.LAYER_NORM, axis, case != "no_affine")
    if case != "functional":  # F.layer_norm with constant weights: torch counts no parameters, the IR counts 2 * C
        assert from_torch.params == sum(p.numel() for p in module.parameters())
    from_onnx = cases.exported_ir(module, example, tmp_path, opset)
    if case == "functional":  # exported with literal Constant ones and zeros: not affine in ONNX
        return
    assert np.array_equal(network_features(from_onnx), network_features(from_torch))


def test_layer_norm_without_bias_has_a_scale_and_no_shift_in_both_frontends(tmp_path: Path) -> None:
    module, example = nn.LayerNorm(C, bias=False), torch.randn(B, T, C)
    from_torch = torch_to_ir(module, example).network
    path = tmp_path / "ln.onnx"
    export_onnx(module, example, path)
    from_onnx = onnx_to_ir(path).network
    for network in (from_torch, from_onnx):
        (norm,) = network.layers
        assert (norm.op, norm.affine, norm.bias) == (OpKind.LAYER_NORM, True, False)
        assert norm.params == C == sum(p.numel() for p in module.parameters())


# ---- ONNX by hand ---------------------------------------------------------------------------------------------------
def _model(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto], output: onnx.ValueInfoProto,
           initializers: list[onnx.TensorProto] | None = None, opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "hand", inputs, [output], initializer=initializers or [])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _tensor(name: str, shape: list[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape)


@pytest.mark.parametrize("shape", [[2, 5, 7], [2, 3, 5, 7]])
def test_onnx_matmul_of_activations_and_softmax_on_the_last_axis(shape: list[int]) -> None:
    perm = list(range(len(shape)))
    perm[-2:] = perm[-2:][::-1]
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], name="t", perm=perm),
        helper.make_node("MatMul", ["x", "xt"], ["g"], name="gram"),
        helper.make_node("Softmax", ["g"], ["y"], name="softmax", axis=-1),
    ]
    out = [*shape[:-1], shape[-2]]
    network = onnx_to_ir(_model(nodes, [_tensor("x", shape)], _tensor("y", out))).network
    assert [(layer.op, layer.output_shape) for layer in network.layers] == [
        (OpKind.TRANSPOSE, tuple(shape[:-2]) + (shape[-1], shape[-2])), (OpKind.MATMUL, tuple(out)),
        (OpKind.SOFTMAX, tuple(out)),
    ]
    assert network.layer("softmax").axis == len(shape) - 1
    assert network.macs == math.prod(out) * shape[-1]


def test_onnx_matmul_of_a_constant_by_an_activation_is_unsupported() -> None:
    weight = helper.make_tensor("w", onnx.TensorProto.FLOAT, [3, 5], [0.5] * 15)
    nodes = [helper.make_node("MatMul", ["w", "x"], ["y"], name="left")]
    model = _model(nodes, [_tensor("x", [2, 5, 7])], _tensor("y", [2, 3, 7]), [weight])
    with pytest.raises(UnsupportedOperatorError, match=r"node 'left' \(MatMul\).*constant by a network tensor"):
        onnx_to_ir(model)


def test_onnx_transpose_without_perm_reverses_the_dimensions() -> None:
    nodes = [helper.make_node("Transpose", ["x"], ["y"], name="t")]
    network = onnx_to_ir(_model(nodes, [_tensor("x", [2, 3, 5])], _tensor("y", [5, 3, 2]))).network
    assert [(layer.op, layer.output_shape) for layer in network.layers] == [(OpKind.TRANSPOSE, (5, 3, 2))]


# ---- torch's own transformer modules ------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_first, activation", [(False, "relu"), (True, "gelu")])
def test_transformer_encoder_layers_convert_as_the_layers_they_run(
    cases: types.ModuleType, norm_first: bool, activation: str,
) -> None:
    """nn.TransformerEncoder(Layer) in eval mode would run torch's fused fast-path kernel; the frontend turns the
    fast path off while converting (and back on after), so the IR has the attention and MLP layers, with the
    parameters torch counts and the MACs of the same block written out by hand (BLOCK_MACS, a 4·C MLP)."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(C, HEADS, 4 * C, batch_first=True, norm_first=norm_first,
                                       activation=activation)
    encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    assert torch.backends.mha.get_fastpath_enabled()
    conversion = torch_to_ir(encoder, torch.randn(B, T, C))
    assert torch.backends.mha.get_fastpath_enabled()  # restored
    network = conversion.network
    assert conversion.skipped == ()
    assert network.params == sum(p.numel() for p in encoder.parameters())
    assert network.macs == 2 * BLOCK_MACS
    assert cases.output_shape(network) == (B, T, C)
    kinds = cases.op_kinds(network)
    assert kinds[OpKind.LAYER_NORM] == 4 and kinds[OpKind.MATMUL] == 4 and kinds[OpKind.SOFTMAX] == 2
    assert kinds[OpKind.RELU if activation == "relu" else OpKind.GELU] == 2


def test_a_transformer_decoder_layer_converts_with_its_cross_attention(cases: types.ModuleType) -> None:
    torch.manual_seed(0)
    decoder = nn.TransformerDecoderLayer(C, HEADS, 4 * C, batch_first=True).eval()
    network = torch_to_ir(decoder, (torch.randn(B, T, C), torch.randn(B, 10, C))).network
    assert network.params == sum(p.numel() for p in decoder.parameters())
    assert cases.op_kinds(network)[OpKind.SOFTMAX] == 2  # self-attention and attention over the memory
    assert cases.output_shape(network) == (B, T, C)


def test_overlapping_conversions_leave_torch_s_fast_path_as_they_found_it() -> None:
    """Two conversions on two threads overlap, the first to start finishing first: the flag stays off until the
    last one leaves, then is what it was. (Whole conversions are not run concurrently here: torch.fx's tracer is
    not thread-safe.)"""
    import threading

    from nas_latency.frontends.torch_fx import _no_attention_fastpath

    entered, release_first, first_done = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def first() -> None:
        with _no_attention_fastpath():
            entered.set()
            release_first.wait(10)
        first_done.set()

    thread = threading.Thread(target=first)
    thread.start()
    assert entered.wait(10)
    with _no_attention_fastpath():
        release_first.set()
        assert first_done.wait(10)
        seen["after the first left"] = torch.backends.mha.get_fastpath_enabled()
    thread.join(10)
    assert seen == {"after the first left": False}
    assert torch.backends.mha.get_fastpath_enabled()
