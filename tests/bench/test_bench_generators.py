"""Micro-kernel, block and network generators, classic networks, and the real runtimes on tiny networks."""

from __future__ import annotations

import numpy as np
import pytest

from nas_latency.bench.block_items import BLOCK_LAYER_PREFIX, block_items, with_block_layers
from nas_latency.bench.calibration import calibration_items, call_overhead_ms
from nas_latency.bench.classic import CLASSIC_NETWORKS, classic_network
from nas_latency.bench.kernel_items import (
    SEQUENCE_ONLY_KINDS,
    KernelSpec,
    adaptive_kernels,
    grid_kernels,
    kernel_sweep,
    pad_grid_kernels,
    random_kernels,
    random_pad_kernels,
    random_sequence_kernels,
    random_slice_kernels,
    sequence_grid_kernels,
    spec_from_layer,
)
from nas_latency.bench.protocol import PROTOCOLS
from nas_latency.bench.runners import CudaEventsRunner, OnnxRuntimeRunner, TorchEagerRunner, make_runner
from nas_latency.bench.sweep import run_sweep
from nas_latency.errors import FailedPreconditionError, InvalidInputError, NotFoundError
from nas_latency.ir import Layer, NetworkBuilder, OpKind
from nas_latency.models.layer_features import layer_key


def test_kernel_sweep_is_deduplicated_and_reproducible() -> None:
    first = kernel_sweep("quick", seed=3)
    second = kernel_sweep("quick", seed=3)
    assert [i.key for i in first] == [i.key for i in second]
    assert len({i.key for i in first}) == len(first)
    assert {i.origin for i in first} == {"grid", "random", "prior"}
    assert all(len(i.network.layers) == 1 and i.key == layer_key(i.network.layers[0]) for i in first)
    with pytest.raises(InvalidInputError):
        kernel_sweep("huge")  # type: ignore[arg-type]


def test_full_grid_covers_every_family_of_the_evaluation_networks() -> None:
    ops = {s.op for s in grid_kernels("full")}
    assert {OpKind.CONV, OpKind.DEPTHWISE_CONV, OpKind.GROUPED_CONV, OpKind.LINEAR, OpKind.AVG_POOL,
            OpKind.MAX_POOL, OpKind.GLOBAL_AVG_POOL, OpKind.ADD, OpKind.RELU, OpKind.RELU6, OpKind.BATCH_NORM,
            OpKind.ZERO, OpKind.IDENTITY, OpKind.FLATTEN, OpKind.CHANNEL_SHUFFLE, OpKind.PAD} <= ops
    assert all(s.layer().macs <= 3e8 for s in grid_kernels("full"))
    # the transformer kinds, measured by the quick sweep too
    assert {OpKind.MATMUL, OpKind.LAYER_NORM, OpKind.TRANSPOSE, OpKind.SCALE, OpKind.SLICE} <= ops
    assert {OpKind.MATMUL, OpKind.LAYER_NORM, OpKind.TRANSPOSE, OpKind.SCALE, OpKind.LINEAR, OpKind.SLICE} <= {
        s.op for s in grid_kernels("quick") if s.tokens is not None}
    assert {s.op for s in sequence_grid_kernels("full")} >= {OpKind.SOFTMAX, OpKind.GELU, OpKind.ADD}


def test_random_kernels_respect_the_mac_cap_and_structure() -> None:
    specs = random_kernels(80, np.random.default_rng(0), max_macs=1e7)
    assert len(specs) == 80
    for spec in specs:
        layer = spec.layer()
        assert layer.macs <= 1e7
        if spec.op is OpKind.DEPTHWISE_CONV:
            assert layer.groups == layer.in_channels == layer.out_channels


def test_specs_round_trip_and_neighbours_stay_valid() -> None:
    rng = np.random.default_rng(1)
    for spec in grid_kernels("quick"):
        layer = spec.layer()
        assert spec_from_layer(layer) == spec
    dw = KernelSpec(OpKind.DEPTHWISE_CONV, 64, 64, 16, 3, groups=64)
    for _ in range(20):
        near = dw.perturbed(rng)
        assert near.op is OpKind.DEPTHWISE_CONV and near.cin == near.cout == near.groups
        near.layer()
    worst = [KernelSpec(OpKind.CONV, 32, 64, 16, 3).layer(), KernelSpec(OpKind.RELU, 64, 64, 8).layer()]
    new = adaptive_kernels(worst, 3, rng, exclude={layer_key(l) for l in worst})
    assert 1 <= len(new) <= 6 and not {layer_key(l) for l in new} & {layer_key(l) for l in worst}


def test_sequence_kernels_have_transformer_shapes() -> None:
    by_op = {}
    for spec in sequence_grid_kernels("quick"):
        by_op.setdefault(spec.op, []).append(spec.layer())
    linear = by_op[OpKind.LINEAR][0]
    assert linear.input_shapes == ((1, 64, 128),) and linear.output_shape == (1, 64, 128)
    assert [l.input_shapes for l in by_op[OpKind.MATMUL]] == [((1, 4, 64, 32), (1, 4, 32, 64)),
                                                              ((1, 4, 64, 64), (1, 4, 64, 32))]
    assert [(l.input_shapes[0], l.output_shape) for l in by_op[OpKind.TRANSPOSE]] == [
        ((1, 64, 128), (1, 128, 64)), ((1, 64, 4, 32), (1, 4, 64, 32))]
    norm = by_op[OpKind.LAYER_NORM][0]
    assert norm.input_shapes == ((1, 64, 128),) and norm.norm_axis == 2 and norm.affine and norm.params == 256
    assert by_op[OpKind.SCALE][0].input_shapes == ((1, 4, 64, 64),)
    # half of a GLU's features; one of q, k, v of a packed (3, B, H, T, d) tensor
    assert [(l.input_shapes[0], l.output_shape) for l in by_op[OpKind.SLICE]] == [
        ((1, 64, 256), (1, 64, 128)), ((3, 1, 4, 64, 32), (1, 4, 64, 32))]
    assert all(l.bytes_read() == l.bytes_written() == 4 * 64 * 128 for l in by_op[OpKind.SLICE])


def test_kernel_specs_refuse_layouts_they_cannot_express() -> None:
    for op in SEQUENCE_ONLY_KINDS:
        with pytest.raises(InvalidInputError, match="sequence layout"):
            KernelSpec(op, 64, 64, 1)
    with pytest.raises(InvalidInputError, match="not conv"):
        KernelSpec(OpKind.CONV, 16, 16, 1, tokens=8)
    with pytest.raises(InvalidInputError, match="heads"):
        KernelSpec(OpKind.RELU, 16, 16, 4, heads=2)
    with pytest.raises(InvalidInputError, match="size, kernel"):
        KernelSpec(OpKind.LAYER_NORM, 16, 16, 4, tokens=8)
    with pytest.raises(InvalidInputError, match="cout must equal cin"):
        KernelSpec(OpKind.SCALE, 16, 32, 1, tokens=8)
    with pytest.raises(InvalidInputError, match="tokens must be"):
        KernelSpec(OpKind.SCALE, 16, 16, 1, tokens=0)
    with pytest.raises(InvalidInputError, match="parts apply to slice kernels only"):
        KernelSpec(OpKind.TRANSPOSE, 16, 16, 1, tokens=8, parts=3)
    with pytest.raises(InvalidInputError, match="parts must be a positive integer"):
        KernelSpec(OpKind.SLICE, 16, 16, 1, tokens=8, parts=0)
    with pytest.raises(InvalidInputError, match=r"cout must be in 1..16"):
        KernelSpec(OpKind.SLICE, 16, 32, 1, tokens=8)
    with pytest.raises(InvalidInputError, match="cout must equal cin"):  # a select keeps the features
        KernelSpec(OpKind.SLICE, 16, 8, 1, tokens=8, parts=3)


def test_every_generated_kernel_maps_back_to_its_spec_and_sequence_neighbours_stay_valid() -> None:
    rng = np.random.default_rng(5)
    specs = (grid_kernels("full") + random_sequence_kernels(120, rng) + random_slice_kernels(40, rng)
             + random_pad_kernels(40, rng))
    assert sum(s.tokens is not None for s in specs) > 250
    for spec in specs:
        assert spec_from_layer(spec.layer()) == spec, spec
    for spec in sequence_grid_kernels("quick"):
        for _ in range(5):
            near = spec.perturbed(rng)
            assert (near.op, near.heads, near.batch, near.parts) == (spec.op, spec.heads, spec.batch, spec.parts)
            assert near.tokens
            if near.op is OpKind.SLICE:  # a slice keeps its share of the features
                assert near.cout / near.cin == pytest.approx(spec.cout / spec.cin, abs=0.1)
            else:
                assert near.op in (OpKind.LINEAR, OpKind.MATMUL) or near.cout == near.cin
            near.layer()
    # adaptive resampling finds neighbours of transformer kernels
    worst = [s.layer() for s in sequence_grid_kernels("quick")]
    new = adaptive_kernels(worst, 2, rng, exclude={layer_key(l) for l in worst})
    assert {l.op for l in new} == {s.op for s in sequence_grid_kernels("quick")}
    # a softmax on attention scores maps to the sequence layout (its scores need not be square)
    scores = KernelSpec(OpKind.SOFTMAX, 64, 64, 1, tokens=32, heads=4)
    assert spec_from_layer(scores.layer()) == scores


def test_random_slices_are_narrows_and_selects_of_sequence_tensors() -> None:
    specs = random_slice_kernels(60, np.random.default_rng(2))
    assert specs == random_slice_kernels(60, np.random.default_rng(2)) and len(specs) == 60
    selects = [s for s in specs if s.parts > 1]
    assert 15 < len(selects) < 45 and {s.parts for s in selects} == {2, 3} and {s.heads for s in selects} > {1}
    for spec in specs:
        layer = spec.layer()
        assert layer.op is OpKind.SLICE and layer.bytes_read() == layer.bytes_written() == 4 * (
            spec.batch * spec.heads * spec.tokens * spec.cout)
        if spec.parts == 1:
            assert spec.cin // spec.cout in (2, 3, 4) and layer.input_shapes[0][:-1] == layer.output_shape[:-1]
        else:
            assert layer.input_shapes[0] == (spec.parts, *layer.output_shape)
    # a select that drops another dimension than a packed leading one is not a generated shape
    b = NetworkBuilder("k")
    b.select(b.input((1, 16, 3, 32)), 2)
    assert spec_from_layer(b.build().layers[0]) is None


def test_the_quick_sweep_measures_transformer_kernels() -> None:
    items = kernel_sweep("quick", seed=0)
    ops = {(i.network.layers[0].op, i.origin) for i in items}
    assert {(OpKind.MATMUL, "grid"), (OpKind.LAYER_NORM, "grid"), (OpKind.TRANSPOSE, "grid"),
            (OpKind.SCALE, "grid"), (OpKind.SLICE, "grid"), (OpKind.SLICE, "random")} <= ops
    # the random slice is drawn after the others, so the earlier draws of a seed are what they were before slices
    # existed; then the random pad, drawn last for the same reason
    assert [(i.network.layers[0].op, i.origin) for i in items[-2:]] == [
        (OpKind.SLICE, "random"), (OpKind.PAD, "random")]


    def in_sequence_layout(layer: Layer) -> bool:  # random image kernels are (N, C, H, W), or (N, F) linear layers
        return len(layer.input_shapes[0]) == 3 or layer.op in SEQUENCE_ONLY_KINDS or layer.op is OpKind.SOFTMAX

    assert sum(i.origin == "random" and in_sequence_layout(i.network.layers[0]) for i in items) == 2 + 1  # + slice


def test_pad_kernels_are_the_explicit_padding_of_odd_windows() -> None:
    # CycleGAN's ReflectionPad2d(3) of the 256x256 image before its 7x7 stem, and a pad of 1 before a 3x3 conv
    stem, block = KernelSpec(OpKind.PAD, 3, 3, 256, 7).layer(), KernelSpec(OpKind.PAD, 256, 256, 64, 3).layer()
    assert (stem.input_shapes, stem.output_shape, stem.padding) == (((1, 3, 256, 256),), (1, 3, 262, 262), (3,) * 4)
    assert (block.output_shape, block.padding, block.macs) == ((1, 256, 66, 66), (1,) * 4, 0)
    assert block.bytes_read() == 4 * 256 * 64 * 64 and block.bytes_written() == 4 * 256 * 66 * 66
    assert {spec.kernel for spec in pad_grid_kernels("full")} == {3, 5, 7}
    assert [s.layer().padding for s in pad_grid_kernels("quick")] == [(1,) * 4, (3,) * 4]
    specs = random_pad_kernels(60, np.random.default_rng(4))
    assert specs == random_pad_kernels(60, np.random.default_rng(4)) and len(specs) == 60
    assert {s.kernel for s in specs} == {3, 5, 7} and 3 in {s.cin for s in specs}
    assert all(s.op is OpKind.PAD and s.cin == s.cout and s.size > s.kernel // 2 for s in specs)  # reflect possible
    for bad in (dict(kernel=1), dict(kernel=4), dict(cout=32), dict(kernel=3, stride=2)):
        with pytest.raises(InvalidInputError, match="a pad kernel pads"):
            KernelSpec(**{"op": OpKind.PAD, "cin": 16, "cout": 16, "size": 8, **bad})  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="sequence layout applies to"):
        KernelSpec(OpKind.PAD, 16, 16, 1, 3, tokens=8)
    # an asymmetric or uneven pad maps to no spec; a neighbour stays a pad of the same amount
    b = NetworkBuilder("k")
    b.pad(b.input((1, 16, 8, 8)), (1, 2, 1, 2))
    b.pad(b.input((1, 16, 8, 6), name="x1"), 1)
    assert [spec_from_layer(layer) for layer in b.build().layers] == [None, None]
    near = KernelSpec(OpKind.PAD, 64, 64, 16, 5).perturbed(np.random.default_rng(0))
    assert (near.op, near.kernel, near.cin == near.cout) == (OpKind.PAD, 5, True)
    assert spec_from_layer(near.layer()) == near


def test_blocks_and_their_layers_come_together() -> None:
    blocks = block_items("quick")
    assert {b.origin for b in blocks} >= {"block:conv_bn_relu", "block:nb201_cell", "block:fbnet_block", "block:head",
                                          "block:attention"}
    attention = next(b.network for b in blocks if b.origin == "block:attention")
    assert {OpKind.LAYER_NORM, OpKind.LINEAR, OpKind.TRANSPOSE, OpKind.MATMUL, OpKind.SCALE, OpKind.SOFTMAX,
            OpKind.ADD} <= {layer.op for layer in attention}
    assert {b.origin for b in block_items("full")} >= {"block:attention", "block:mlp", "block:packed_attention",
                                                       "block:glu_mlp"}
    packed = next(b.network for b in blocks if b.origin == "block:packed_attention")
    assert [(l.input_shapes[0], l.output_shape) for l in packed if l.op is OpKind.SLICE] == [
        ((3, 1, 4, 32, 16), (1, 4, 32, 16))] * 3
    assert all(spec_from_layer(l) == KernelSpec(OpKind.SLICE, 16, 16, 1, tokens=32, heads=4, parts=3)
               for l in packed if l.op is OpKind.SLICE)
    glu = next(b.network for b in block_items("full") if b.origin == "block:glu_mlp")
    assert [(l.input_shapes[0], l.output_shape) for l in glu if l.op is OpKind.SLICE] == [
        ((1, 16, 256), (1, 16, 128))] * 2
    items = with_block_layers(blocks)
    assert items[0] is blocks[0]
    first_layers = items[1 : 1 + len(blocks[0].network.layers)]
    assert [i.key for i in first_layers] == [BLOCK_LAYER_PREFIX + layer_key(l) for l in blocks[0].network.layers]
    assert len({i.key for i in items}) == len(items)
    assert len(block_items("full")) > 50


def test_calibration_chains_and_the_call_overhead() -> None:
    items = calibration_items()
    assert [len(i.network.layers) for i in items] == [1, 3, 9, 27]
    assert call_overhead_ms([1, 3, 9, 27], [0.003 + 0.002 * n for n in (1, 3, 9, 27)]) == pytest.approx(0.003)
    assert call_overhead_ms([1, 9], [0.001, 0.1]) == 0.0  # never negative
    # the longest chain slowed twofold by interference: a least-squares line would cross zero below 0 (−0.0058)
    slowed = [0.003 + 0.002 * n for n in (1, 3, 9)] + [2 * (0.003 + 0.002 * 27)]
    assert call_overhead_ms([1, 3, 9, 27], slowed) == pytest.approx(0.003)
    with pytest.raises(InvalidInputError):
        call_overhead_ms([1], [0.1])
    with pytest.raises(InvalidInputError, match="must differ"):
        call_overhead_ms([1, 1, 3], [0.1, 0.1, 0.2])


def test_classic_networks_match_their_published_sizes() -> None:
    assert classic_network("resnet18").params == 11_689_512
    assert classic_network("mobilenet_v2").params == 3_504_872
    assert classic_network("resnet18").macs == pytest.approx(1.814e9, rel=0.01)
    assert classic_network("mobilenet_v2").macs == pytest.approx(0.30e9, rel=0.02)
    assert classic_network("vgg16_bn_cifar").macs == pytest.approx(0.313e9, rel=0.02)
    assert classic_network("resnet18", 64).name == "resnet18@64"
    assert set(CLASSIC_NETWORKS) >= {"resnet18", "mobilenet_v2", "vgg11_bn_cifar"}
    with pytest.raises(NotFoundError):
        classic_network("alexnet")


def test_the_classic_vit_is_what_the_torch_frontend_makes_of_the_same_vit_in_torch() -> None:
    """vit_tiny_cifar, written as IR, against the same network written in torch the way timm writes it (packed qkv
    unbound into q, k, v; a learned positional embedding) and converted by the torch frontend."""
    import torch
    from torch import nn

    from nas_latency.frontends import torch_to_ir
    from nas_latency.ir import canonicalize, network_features

    class Block(nn.Module):
        def __init__(self, width: int = 192, heads: int = 3, mlp: int = 768) -> None:
            super().__init__()
            self.heads = heads
            self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
            self.fc1, self.act, self.fc2 = nn.Linear(width, mlp), nn.GELU(), nn.Linear(mlp, width)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n, t, c = x.shape
            q, k, v = self.qkv(self.norm1(x)).reshape(n, t, 3, self.heads, c // self.heads).permute(
                2, 0, 3, 1, 4).unbind(0)
            attention = ((q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5).softmax(dim=-1)
            x = x + self.proj((attention @ v).transpose(1, 2).reshape(n, t, c))
            return x + self.fc2(self.act(self.fc1(self.norm2(x))))

    class ViT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.patch_embed = nn.Conv2d(3, 192, 4, stride=4)
            self.pos_embed = nn.Parameter(0.02 * torch.randn(1, 64, 192))  # (zeros would be x + 0: no layer)
            self.blocks = nn.Sequential(*(Block() for _ in range(6)))
            self.norm, self.pool, self.fc = nn.LayerNorm(192), nn.AdaptiveAvgPool2d(1), nn.Linear(192, 100)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
            x = self.norm(self.blocks(x))
            return self.fc(self.pool(x.transpose(1, 2).reshape(x.shape[0], 192, 64, 1)).flatten(1))

    torch.manual_seed(0)
    module = ViT().eval()
    ours = classic_network("vit_tiny_cifar")
    converted = torch_to_ir(module, torch.randn(1, 3, 32, 32)).network
    assert ours.params == sum(p.numel() for p in module.parameters()) - module.pos_embed.numel()
    assert ours.macs == converted.macs and ours.params == converted.params
    np.testing.assert_array_equal(network_features(canonicalize(ours)), network_features(canonicalize(converted)))


def test_the_torch_runner_times_a_classic_network_end_to_end() -> None:
    import torch

    from nas_latency.bench.ir_to_torch import build_torch_module

    network = classic_network("resnet18_cifar", 16)
    with torch.inference_mode():
        out = build_torch_module(network)(torch.randn(network.inputs[0].shape))
    assert tuple(out.shape) == network.layer(network.outputs[0]).output_shape
    result = run_sweep(calibration_items()[:2], TorchEagerRunner(), PROTOCOLS["quick"], rounds=2)
    assert len(result.measured) == 2 and not result.failed
    assert all(m.stats.median_ms > 0 and len(m.stats.round_medians_ms) == 2 for m in result.measured)


def test_the_onnxruntime_runner_times_a_tiny_network() -> None:
    pytest.importorskip("onnxruntime")
    block = block_items("quick")[0]
    wall, cpu = OnnxRuntimeRunner().sampler(block.network, copies=2)(3)
    assert wall > 0 and cpu > 0
    assert make_runner("onnxruntime").info()["provider"] == "CPUExecutionProvider"


@pytest.mark.parametrize("origin", ["block:attention", "block:packed_attention"])
def test_the_onnxruntime_runner_times_an_attention_block(origin: str) -> None:
    pytest.importorskip("onnxruntime")
    block = next(b for b in block_items("quick") if b.origin == origin)
    wall, cpu = OnnxRuntimeRunner().sampler(block.network)(3)
    assert wall > 0 and cpu > 0


def test_the_runtimes_time_the_quick_pad_kernels() -> None:
    pytest.importorskip("onnxruntime")
    pads = [i for i in kernel_sweep("quick") if i.network.layers[0].op is OpKind.PAD]
    assert len(pads) == 3  # two from the grid, one drawn
    for item in pads:
        for runner in (TorchEagerRunner(), OnnxRuntimeRunner()):
            wall, cpu = runner.sampler(item.network)(2)
            assert wall > 0 and cpu > 0, (item.key, runner)


def test_the_cuda_runner_refuses_without_a_gpu_and_unknown_runtimes_are_refused() -> None:
    import torch

    if torch.cuda.is_available():  # pragma: no cover - no GPU where these tests run
        pytest.skip("a GPU is present; the refusal path is not reachable")
    with pytest.raises(FailedPreconditionError, match="GPU"):
        CudaEventsRunner().sampler(calibration_items()[0].network)
    with pytest.raises(InvalidInputError, match="unknown runtime"):
        make_runner("tpu")
    with pytest.raises(InvalidInputError):
        make_runner("torch", threads=0)
