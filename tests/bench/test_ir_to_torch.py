"""IR → torch: every op kind runs, parameter counts and output shapes equal the IR's, semantics are right."""

from __future__ import annotations

import io
import random
from typing import Callable

import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from nas_latency.bench.block_items import add_attention, add_glu_mlp, add_mlp, add_packed_attention
from nas_latency.bench.ir_to_torch import (
    SCALE_FACTOR,
    Pad,
    PaddedPool2d,
    Scale,
    Slice,
    SlicePlan,
    Transpose,
    build_torch_module,
    pad_mode,
    slice_plan,
    transpose_permutation,
)
from nas_latency.errors import InvalidInputError
from nas_latency.frontends.torch_modules import ChannelShuffle, Zero
from nas_latency.ir import Network, NetworkBuilder, OpKind
from search_spaces import get_space


def _check_runs(network: Network, seed: int = 0) -> torch.Tensor:
    module = build_torch_module(network, seed=seed)
    assert not module.training
    assert sum(p.numel() for p in module.parameters()) == network.params
    inputs = [torch.randn(spec.shape) for spec in network.inputs]
    with torch.no_grad():
        out = module(*inputs)
    assert tuple(out.shape) == network.layer(network.outputs[0]).output_shape
    return out


def every_op_network() -> Network:
    """One network that uses every op kind of the IR."""
    b = NetworkBuilder("every_op")
    x = b.input((2, 8, 9, 9))
    c = b.conv(x, 12, 3, stride=2, padding=(1, 0, 2, 1), bias=True, name="conv_asym")  # asymmetric padding
    c = b.batch_norm(c, affine=True, name="bn")
    c = b.activation(c, OpKind.RELU6, name="relu6")
    g = b.conv(c, 12, 1, groups=3, name="grouped")
    g = b.channel_shuffle(g, 3, name="shuffle")
    d = b.conv(g, 24, 3, padding=1, groups=12, name="depthwise")  # channel multiplier 2
    d = b.activation(d, OpKind.HARD_SWISH, name="hswish")
    p1 = b.avg_pool(d, 3, stride=1, padding=1, count_include_pad=False, name="avg")
    p2 = b.max_pool(d, 2, stride=2, padding=(0, 0, 1, 1), ceil_mode=True, name="max_asym")
    p3 = b.avg_pool(d, 3, stride=2, padding=(1, 1, 1, 0), count_include_pad=True, name="avg_asym")
    p4 = b.avg_pool(d, 2, stride=2, padding=(0, 0, 1, 1), count_include_pad=False, ceil_mode=True, name="avg_asym_x")
    s = b.add(p2, p3, p4, name="add3")
    s = b.activation(s, OpKind.SILU, name="silu")
    se = b.global_avg_pool(s, name="gap")
    se = b.activation(se, OpKind.HARD_SIGMOID, name="hsig")
    s = b.mul(s, se, name="mul_broadcast")
    gm = b.global_max_pool(b.pad(s, (2, 1, 0, 1), name="pad"), name="gmp")  # reflect: (3, 2) → (5, 4)
    z = b.zero(p1, name="zero")
    i = b.identity(p1, name="identity")
    u = b.add(z, i, name="add2")
    u = b.activation(u, OpKind.SIGMOID, name="sigmoid")
    u = b.max_pool(u, 3, stride=2, padding=1, name="max")
    cat = b.concat([u, s], axis=1, name="cat")
    cat = b.activation(cat, OpKind.TANH, name="tanh")
    f = b.flatten(cat, axis=1, name="flatten")
    r = b.reshape(f, (2, 48, 6), name="reshape")
    r = b.activation(r, OpKind.GELU, name="gelu")
    r = b.batch_norm(r, affine=False, name="bn1d")
    # a small attention: (2, 48, 6) tokens × features
    ln = b.layer_norm(r, name="ln")
    keys = b.transpose(ln, (0, 2, 1), name="transpose")  # (2, 6, 48)
    scores = b.scale(b.matmul(ln, keys, name="matmul"), name="scale")  # (2, 48, 48)
    scores = b.transpose(scores, (0, 2, 1), name="transpose_square")  # output shape = input shape
    attended = b.matmul(scores, ln, name="matmul_v")  # (2, 48, 6)
    attended = b.layer_norm(attended, axis=1, affine=False, bias=False, name="ln_rows")  # over (48, 6), no parameters
    attended = b.layer_norm(attended, affine=False, name="ln_shift")  # a learned shift only
    # chunk(2) of the features and the halves put back together, then a select of the first sample (broadcast)
    halves = b.concat([b.slice(attended, -1, 3, name="narrow"), b.slice(attended, -1, 3, name="narrow_2")], axis=2)
    first = b.select(halves, 0, name="select")  # (48, 6)
    r = b.add(r, halves, first, name="residual")
    r = b.linear(r, 5, bias=False, name="fc1")
    r = b.activation(r, OpKind.RELU, name="relu")
    gm = b.flatten(gm, name="flatten_gm")
    gm = b.linear(gm, 5, bias=True, name="fc2")
    r = b.flatten(r, name="flatten_r")
    r = b.linear(r, 5, name="fc3")
    out = b.add(r, gm, name="logits")
    out = b.activation(out, OpKind.SOFTMAX, name="softmax")
    net = b.build([out])
    assert {layer.op for layer in net} == set(OpKind)
    return net


def test_every_op_kind_runs_with_ir_params_and_shape() -> None:
    out = _check_runs(every_op_network())
    assert torch.allclose(out.sum(dim=1), torch.ones(2))


def test_submodules_are_named_after_layers_and_fx_traceable() -> None:
    network = every_op_network()
    module = build_torch_module(network)
    assert module.module_names["conv_asym"] == "conv_asym"
    assert isinstance(module.shuffle, ChannelShuffle) and isinstance(module.zero, Zero)
    assert isinstance(module.relu, nn.ReLU) and not module.relu.inplace
    assert isinstance(module.transpose, Transpose) and isinstance(module.scale, Scale)
    assert isinstance(module.ln, nn.LayerNorm) and module.ln.normalized_shape == (6,)
    assert module.ln_rows.normalized_shape == (48, 6) and module.ln_rows.weight is None
    assert [tuple(p.shape) for p in module.ln_shift.parameters()] == [(6,)]
    assert isinstance(module.narrow, Slice) and isinstance(module.select, Slice)
    assert (module.narrow.plan, module.narrow_2.plan, module.select.plan) == (
        SlicePlan(None, 0, ((2, 0, 3),)), SlicePlan(None, 0, ((2, 3, 3),)), SlicePlan(0, 0, ()))
    x = torch.randn(2, 8, 9, 9)
    traced = fx.symbolic_trace(module)
    with torch.no_grad():
        assert torch.equal(traced(x), module(x))


def test_the_slices_of_every_op_network_copy_their_parts() -> None:
    network = every_op_network()
    module = build_torch_module(network)
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name in ("narrow", "narrow_2", "select"):
        getattr(module, name).register_forward_hook(
            lambda _m, args, out, name=name: seen.__setitem__(name, (args[0], out)))
    with torch.no_grad():
        module(torch.randn(2, 8, 9, 9))
    expected = {"narrow": lambda x: x[..., :3], "narrow_2": lambda x: x[..., 3:], "select": lambda x: x[0]}
    for name, (x, out) in seen.items():
        assert tuple(out.shape) == network.layer(name).output_shape, name
        assert torch.equal(out, expected[name](x)) and out.is_contiguous(), name
        assert out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr(), name  # a copy, not a view


def test_the_pad_of_every_op_network_reflects_its_input() -> None:
    network = every_op_network()
    module = build_torch_module(network)
    assert isinstance(module.pad, Pad) and (module.pad.pad, module.pad.mode) == ((1, 1, 2, 0), "reflect")
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    module.pad.register_forward_hook(lambda _m, args, out: seen.append((args[0], out)))
    with torch.no_grad():
        module(torch.randn(2, 8, 9, 9))
    (x, out), = seen
    assert tuple(x.shape) == (2, 24, 3, 2) and tuple(out.shape) == network.layer("pad").output_shape == (2, 24, 5, 4)
    assert torch.equal(out[:, :, 2:, 1:3], x)  # the input, 2 rows down and 1 column right
    assert torch.equal(out[:, :, 0, 1:3], x[:, :, 2]) and torch.equal(out[:, :, 1, 1:3], x[:, :, 1])  # rows reflected
    assert torch.equal(out[:, :, :, 0], out[:, :, :, 2]) and torch.equal(out[:, :, :, 3], out[:, :, :, 1])  # columns


@pytest.mark.parametrize(("size", "padding", "mode"), [
    ((8, 8), (3, 3, 3, 3), "reflect"),  # CycleGAN's ReflectionPad2d(3) before a 7x7 conv
    ((4, 4), (3, 3, 3, 3), "reflect"),  # each pad < its dimension: reflect still possible
    ((3, 8), (3, 1, 0, 1), "replicate"),  # a pad of 3 rows on 3 rows: reflect impossible
    ((8, 2), (1, 0, 1, 2), "replicate"),
    ((1, 1), (1, 1, 1, 1), "replicate"),
])
def test_a_pad_reflects_where_it_can_and_replicates_elsewhere(size: tuple[int, int],
                                                               padding: tuple[int, int, int, int], mode: str) -> None:
    b = NetworkBuilder("pad")
    network = b.build([b.pad(b.input((1, 3, *size)), padding, name="pad")])
    assert pad_mode((1, 3, *size), padding) == mode
    module = build_torch_module(network)
    assert module.pad.mode == mode
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        out = module(x)
    top, left, bottom, right = padding
    assert tuple(out.shape) == network.layer("pad").output_shape
    assert torch.equal(out, F.pad(x, (left, right, top, bottom), mode=mode))
    assert torch.equal(out[:, :, top:top + size[0], left:left + size[1]], x)
    if mode == "replicate":  # the nearest edge element, however far out
        assert torch.equal(out[:, :, 0, left:left + size[1]], x[:, :, 0]) and torch.equal(out[:, :, :, -1],
                                                                                            out[:, :, :, -1 - right])


def test_names_are_sanitized_and_unique() -> None:
    b = NetworkBuilder("names")
    x = b.input((1, 3, 4, 4))
    x = b.relu(x, name="a.b")
    x = b.relu(x, name="a_b")
    x = b.relu(x, name="0.x")
    x = b.relu(x, name="forward")
    module = build_torch_module(b.build([x]))
    assert list(module.module_names.values()) == ["a_b", "a_b_2", "l_0_x", "forward_2"]
    assert module(torch.ones(1, 3, 4, 4)).shape == (1, 3, 4, 4)


def test_seeded_init_is_reproducible_and_leaves_global_rng_alone() -> None:
    net = every_op_network()
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_torch_module(net, seed=7)
    assert torch.equal(torch.rand(1), before)
    b = build_torch_module(net, seed=7)
    c = build_torch_module(net, seed=8)
    assert torch.equal(a.conv_asym.conv.weight, b.conv_asym.conv.weight)
    assert not torch.equal(a.conv_asym.conv.weight, c.conv_asym.conv.weight)


def test_asymmetric_conv_padding_matches_explicit_pad() -> None:
    b = NetworkBuilder("pad")
    x = b.input((1, 2, 7, 6))
    y = b.conv(x, 3, (3, 2), stride=(2, 1), padding=(0, 1, 2, 0), bias=True, name="conv")
    module = build_torch_module(b.build([y]))
    inp = torch.randn(1, 2, 7, 6)
    conv = module.conv.conv
    expected = F.conv2d(F.pad(inp, (1, 0, 0, 2)), conv.weight, conv.bias, stride=(2, 1))
    with torch.no_grad():
        assert torch.allclose(module(inp), expected)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("ceil_mode", [True, False])
def test_padded_avg_pool_equals_native_pool(count_include_pad: bool, ceil_mode: bool) -> None:
    x = torch.randn(1, 3, 8, 7)
    native = nn.AvgPool2d(3, 2, 1, ceil_mode=ceil_mode, count_include_pad=count_include_pad)(x)
    padded = PaddedPool2d(
        "avg", (3, 3), (2, 2), (1, 1, 1, 1), tuple(native.shape[2:]),
        ceil_mode=ceil_mode, count_include_pad=count_include_pad,
    )(x)
    assert torch.allclose(native, padded)


def test_padded_max_pool_equals_native_pool() -> None:
    x = torch.randn(1, 3, 8, 7) - 10.0  # all negative: padding must not win the max
    native = nn.MaxPool2d(3, 2, 1, ceil_mode=True)(x)
    padded = PaddedPool2d("max", (3, 3), (2, 2), (1, 1, 1, 1), tuple(native.shape[2:]), ceil_mode=True)(x)
    assert torch.equal(native, padded)


def _reference_pool(
    x: torch.Tensor, kind: str, kernel: int, stride: int, pad: tuple[int, int, int, int], out_hw: tuple[int, int],
    count_include_pad: bool,
) -> torch.Tensor:
    """Window pooling by brute force: windows start at ``i * stride - pad_begin``; padded cells count for
    ``count_include_pad`` only within the padded extent."""
    top, left, bottom, right = pad
    _, _, h, w = x.shape
    out = torch.empty(x.shape[0], x.shape[1], *out_hw)
    for i in range(out_hw[0]):
        for j in range(out_hw[1]):
            r0, c0 = i * stride - top, j * stride - left
            rows = range(max(r0, 0), min(r0 + kernel, h))
            cols = range(max(c0, 0), min(c0 + kernel, w))
            window = x[:, :, rows.start : rows.stop, cols.start : cols.stop]
            if kind == "max":
                out[:, :, i, j] = window.amax(dim=(2, 3))
                continue
            if count_include_pad:
                n = (min(r0 + kernel, h + bottom) - max(r0, -top)) * (min(c0 + kernel, w + right) - max(c0, -left))
            else:
                n = len(rows) * len(cols)
            out[:, :, i, j] = window.sum(dim=(2, 3)) / n
    return out


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("ceil_mode", [True, False])
def test_asymmetric_pools_match_brute_force(kind: str, count_include_pad: bool, ceil_mode: bool) -> None:
    b = NetworkBuilder("pool")
    x = b.input((1, 2, 7, 8))
    pad = (1, 0, 2, 1)
    if kind == "avg":
        y = b.avg_pool(x, 3, stride=2, padding=pad, count_include_pad=count_include_pad, ceil_mode=ceil_mode, name="p")
    else:
        y = b.max_pool(x, 3, stride=2, padding=pad, ceil_mode=ceil_mode, name="p")
    network = b.build([y])
    out_hw = network.layer("p").output_shape[2:]
    inp = torch.randn(1, 2, 7, 8)
    with torch.no_grad():
        got = build_torch_module(network)(inp)
    expected = _reference_pool(inp, kind, 3, 2, pad, out_hw, count_include_pad)
    assert torch.allclose(got, expected, atol=1e-6)


def test_multi_input_multi_output_network() -> None:
    b = NetworkBuilder("two")
    x = b.input((1, 4), name="x")
    y = b.input((1, 4), name="y")
    s = b.add(x, y, name="sum")
    p = b.mul(x, y, s, name="product")
    module = build_torch_module(b.build([s, p]))
    u, v = torch.randn(1, 4), torch.randn(1, 4)
    out_s, out_p = module(u, v)
    assert torch.allclose(out_s, u + v) and torch.allclose(out_p, u * v * (u + v))
    with pytest.raises(TypeError, match="takes 2 inputs"):
        module(u)


def _nb201_like(rng: random.Random) -> Network:
    """A NAS-Bench-201-like network: stem, cells of random edge ops, residual reduction, head."""
    ops = [rng.choice(["none", "skip", "conv1", "conv3", "pool"]) for _ in range(6)]
    b = NetworkBuilder("nb201_like")
    x = b.input((1, 3, 16, 16))
    x = b.batch_norm(b.conv(x, 8, 3, padding=1))

    def edge(src: str, op: str) -> str:
        if op == "none":
            return b.zero(src)
        if op == "skip":
            return b.identity(src)
        if op == "pool":
            return b.avg_pool(src, 3, stride=1, padding=1, count_include_pad=False)
        k = 1 if op == "conv1" else 3
        return b.batch_norm(b.conv(b.relu(src), b.shape(src)[1], k, padding=(k - 1) // 2))

    for stage in range(2):
        if stage:
            main = b.batch_norm(b.conv(b.relu(x), 16, 3, stride=2, padding=1))
            short = b.conv(b.avg_pool(x, 2, stride=2), 16, 1)
            x = b.add(short, main)
        nodes = [x]
        k = 0
        for target in (1, 2, 3):
            terms = []
            for source in range(target):
                terms.append(edge(nodes[source], ops[k]))
                k += 1
            nodes.append(b.add(*terms) if len(terms) > 1 else terms[0])
        x = nodes[3]
    x = b.flatten(b.global_avg_pool(b.relu(b.batch_norm(x))))
    return b.build([b.linear(x, 10)])


def test_random_nb201_like_networks() -> None:
    rng = random.Random(0)
    for _ in range(6):
        _check_runs(_nb201_like(rng))


def test_random_fbnet_networks() -> None:
    space = get_space("fbnet")
    for arch in space.sample(3, seed=11):
        out = _check_runs(space.to_ir(arch))
        assert out.shape == (1, 100)


def test_every_ganesan_network_has_ir_params() -> None:
    space = get_space("ganesan_mobile")
    for arch in space.measured_archs():
        module = build_torch_module(space.to_ir(arch))
        assert sum(p.numel() for p in module.parameters()) == space.to_ir(arch).params, arch


@pytest.mark.parametrize("arch", ["squeezenet1_1", "mobilenet_v2_0.25", "mobilegen_001"])
def test_ganesan_networks_run(arch: str) -> None:
    _check_runs(get_space("ganesan_mobile").to_ir(arch))


# ---- transformer kinds --------------------------------------------------------------------------------------------
def test_transpose_permutation_is_stable_and_never_the_identity_where_dimensions_repeat() -> None:
    assert transpose_permutation((2, 3, 5), (2, 5, 3), where="t") == (0, 2, 1)
    assert transpose_permutation((1, 32, 4, 16), (1, 4, 32, 16), where="t") == (0, 2, 1, 3)  # head split
    assert transpose_permutation((1, 4, 16, 32), (1, 4, 32, 16), where="t") == (0, 1, 3, 2)  # K^T
    # equal sizes keep their order: (1, 8, 8, 64) -> (1, 8, 64, 8) moves the second 8, not the first
    assert transpose_permutation((1, 8, 8, 64), (1, 8, 64, 8), where="t") == (0, 1, 3, 2)
    # output shape = input shape: the last pair of equal dimensions is swapped (K^T with head size = tokens)
    assert transpose_permutation((1, 4, 16, 16), (1, 4, 16, 16), where="t") == (0, 1, 3, 2)
    assert transpose_permutation((1, 8, 8, 64), (1, 8, 8, 64), where="t") == (0, 2, 1, 3)
    assert transpose_permutation((2, 3, 5), (2, 3, 5), where="t") == (0, 1, 2)  # nothing to swap
    with pytest.raises(InvalidInputError, match="layer 'x'.*not a permutation"):
        transpose_permutation((2, 3, 5), (2, 3, 4), where="layer 'x'")


def _single_layer(shape: tuple[int, ...], build: Callable[[NetworkBuilder, str], str]
                  ) -> tuple[torch.nn.Module, torch.Tensor]:
    b = NetworkBuilder("one")
    x = b.input(shape)
    network = b.build([build(b, x)])
    module = build_torch_module(network)
    assert sum(p.numel() for p in module.parameters()) == network.params
    return module, torch.randn(shape)


def test_a_transpose_moves_its_data_even_to_the_same_shape() -> None:
    module, x = _single_layer((2, 5, 5), lambda b, x: b.transpose(x, (0, 2, 1)))
    with torch.no_grad():
        out = module(x)
    assert torch.equal(out, x.transpose(1, 2)) and out.is_contiguous() and out.data_ptr() != x.data_ptr()
    # only size-1 dimensions move: the permuted view is already contiguous, and still the data is copied
    module, x = _single_layer((1, 3, 4), lambda b, x: b.transpose(x, (1, 0, 2)))
    with torch.no_grad():
        out = module(x)
    assert tuple(out.shape) == (3, 1, 4) and torch.equal(out, x.permute(1, 0, 2))
    assert out.data_ptr() != x.data_ptr()
    # no two dimensions alike, transposed to itself: a plain copy
    module, x = _single_layer((2, 3, 5), lambda b, x: b.transpose(x, (0, 1, 2)))
    with torch.no_grad():
        out = module(x)
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()


def test_scale_layer_norm_and_matmul_compute_what_the_ir_says() -> None:
    module, x = _single_layer((2, 3, 8), lambda b, x: b.scale(x))
    with torch.no_grad():
        assert torch.equal(module(x), x * SCALE_FACTOR) and SCALE_FACTOR != 1.0
    module, x = _single_layer((2, 3, 8), lambda b, x: b.layer_norm(x, axis=1))
    with torch.no_grad():
        assert torch.allclose(module(x), F.layer_norm(x, (3, 8)), atol=1e-6)  # fresh affine: weight 1, bias 0
    b = NetworkBuilder("mm")
    left, right = b.input((2, 4, 3, 5), name="a"), b.input((5, 7), name="w")  # batch dims broadcast
    network = b.build([b.matmul(left, right)])
    u, v = torch.randn(2, 4, 3, 5), torch.randn(5, 7)
    with torch.no_grad():
        out = build_torch_module(network)(u, v)
    assert tuple(out.shape) == network.layers[0].output_shape == (2, 4, 3, 7)
    assert torch.allclose(out, torch.matmul(u, v))


def tiny_transformer(tokens: int = 16, width: int = 32, heads: int = 4, blocks: int = 2) -> Network:
    """A small pre-norm transformer encoder on ``(1, tokens, width)``: attention and MLP blocks."""
    b = NetworkBuilder("tiny_transformer")
    x = b.input((1, tokens, width))
    for _ in range(blocks):
        x = add_mlp(b, add_attention(b, x, heads))
    return b.build([b.layer_norm(x)])


def test_a_transformer_network_runs_with_ir_params_and_is_fx_traceable() -> None:
    network = tiny_transformer()
    assert {OpKind.LAYER_NORM, OpKind.LINEAR, OpKind.TRANSPOSE, OpKind.MATMUL, OpKind.SCALE, OpKind.SOFTMAX,
            OpKind.ADD, OpKind.GELU, OpKind.RESHAPE} == {layer.op for layer in network}
    out = _check_runs(network)
    assert torch.isfinite(out).all()
    module = build_torch_module(network)
    x = torch.randn(1, 16, 32)
    with torch.no_grad():
        assert torch.equal(fx.symbolic_trace(module)(x), module(x))


# ---- slices -------------------------------------------------------------------------------------------------------
def test_slice_plans_follow_the_documented_rule() -> None:
    packed = (3, 1, 4, 16, 8)  # q, k, v: (3, batch, heads, tokens, head size)
    assert slice_plan(packed, (1, 4, 16, 8), where="s") == SlicePlan(0, 0, ())
    assert [slice_plan(packed, (1, 4, 16, 8), where="s", part=k).index for k in range(5)] == [0, 1, 2, 0, 1]
    # a dimension whose removal needs no narrowing wins over the first that fits
    assert slice_plan((4, 6, 4), (4, 4), where="s") == SlicePlan(1, 0, ())
    assert slice_plan((3, 3, 4), (3, 4), where="s") == SlicePlan(0, 0, ())  # a run of equal sizes: the first
    assert slice_plan((2, 5, 7), (4, 7), where="s") == SlicePlan(0, 0, ((0, 0, 4),))  # select, then narrow
    # narrows: the k-th run of the first narrowed dimension, the leading elements of the others
    assert [slice_plan((2, 48, 6), (2, 48, 3), where="s", part=k).narrows for k in range(3)] == [
        ((2, 0, 3),), ((2, 3, 3),), ((2, 0, 3),)]
    assert slice_plan((2, 48, 6), (2, 48, 4), where="s", part=1).narrows == ((2, 0, 4),)  # one part fits
    assert slice_plan((4, 6, 8), (2, 6, 4), where="s", part=1).narrows == ((0, 2, 2), (2, 0, 4))
    assert slice_plan((2, 3), (2, 3), where="s", part=1) == SlicePlan(None, 0, ())  # the whole input: a copy
    for target in ((2, 4), (5,), (2, 3, 1)):
        with pytest.raises(InvalidInputError, match=r"layer 'x'.*is not a part of input \(2, 3\)"):
            slice_plan((2, 3), target, where="layer 'x'")


def test_a_slice_copies_its_part_even_where_the_view_is_contiguous() -> None:
    cases: list[tuple[tuple[int, ...], Callable[[NetworkBuilder, str], str], Callable[[torch.Tensor], torch.Tensor]]]
    cases = [
        ((3, 2, 5), lambda b, x: b.select(x, 0), lambda x: x[0]),  # outermost: a contiguous view
        ((4, 6, 4), lambda b, x: b.select(x, 1), lambda x: x[:, 0]),  # strided
        ((2, 5, 7), lambda b, x: b.slice(x, -1, 3), lambda x: x[..., :3]),
        ((4, 5), lambda b, x: b.slice(x, 0, 2), lambda x: x[:2]),  # leading rows: a contiguous view
        ((2, 5), lambda b, x: b.slice(x, 1, 5), lambda x: x),  # all of it: a plain copy
    ]
    for shape, build, expected in cases:
        module, x = _single_layer(shape, build)
        with torch.no_grad():
            out = module(x)
        assert torch.equal(out, expected(x)) and out.is_contiguous(), shape
        assert out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr(), shape


def test_a_packed_attention_block_unbinds_q_k_v_and_runs() -> None:
    b = NetworkBuilder("packed")
    x = b.input((1, 16, 32))
    network = b.build([add_packed_attention(b, x, 4)])
    selects = [l for l in network if l.op is OpKind.SLICE]
    assert [(l.input_shapes[0], l.output_shape) for l in selects] == [((3, 1, 4, 16, 8), (1, 4, 16, 8))] * 3
    assert {l.op for l in network} == {OpKind.LAYER_NORM, OpKind.LINEAR, OpKind.RESHAPE, OpKind.TRANSPOSE,
                                       OpKind.SLICE, OpKind.MATMUL, OpKind.SCALE, OpKind.SOFTMAX, OpKind.ADD}
    assert torch.isfinite(_check_runs(network)).all()
    module = build_torch_module(network)
    assert [getattr(module, module.module_names[l.name]).plan.index for l in selects] == [0, 1, 2]  # q, k, v
    inp = torch.randn(1, 16, 32)
    with torch.no_grad():
        assert torch.equal(fx.symbolic_trace(module)(inp), module(inp))


def test_the_two_halves_of_a_glu_are_its_two_halves() -> None:
    b = NetworkBuilder("glu")
    x = b.input((2, 5, 8))
    network = b.build([add_glu_mlp(b, x, 6)])
    module = build_torch_module(network)
    norm, up, down = (getattr(module, module.module_names[l.name]) for l in network
                      if l.op in (OpKind.LAYER_NORM, OpKind.LINEAR))
    inp = torch.randn(2, 5, 8)
    with torch.no_grad():
        value, gate = up(norm(inp)).chunk(2, dim=-1)
        assert torch.allclose(module(inp), down(value * F.silu(gate)) + inp, atol=1e-6)


def test_the_onnx_export_keeps_every_slice() -> None:
    """Three selects of one tensor copying one part each would be merged into one node by the exporter."""
    onnx = pytest.importorskip("onnx")
    from nas_latency.frontends import export_onnx

    b = NetworkBuilder("packed")
    x = b.input((1, 16, 32))
    network = b.build([add_glu_mlp(b, add_packed_attention(b, x, 4), 24)])
    buffer = io.BytesIO()
    export_onnx(build_torch_module(network), (torch.randn(1, 16, 32),), buffer)
    ops = [node.op_type for node in onnx.load_from_string(buffer.getvalue()).graph.node]
    assert (ops.count("Gather"), ops.count("Slice")) == (3, 2)
