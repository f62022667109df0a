"""The FBNet space: IR and torch networks match the published definition and each other; fast features equal
the generic ones; measured architectures, sampling and the encoding."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.fx as fx

from nas_latency.errors import InvalidInputError
from nas_latency.frontends.torch_modules import ChannelShuffle, Zero
from nas_latency.ir import IRFeaturizer, Network, OpKind
from search_spaces import get_space
from search_spaces.fbnet import FBNetSpace
from search_spaces.fbnet.codec import BLOCKS, NUM_LAYERS

SPACE = get_space("fbnet")


def uniform(block: str) -> str:
    return "-".join([block] * NUM_LAYERS)


def layer_outputs(network: Network) -> list[tuple[int, ...]]:
    """Output shape of each of the 22 searchable layers (the last IR layer whose name is in ``layers.K``)."""
    shapes = []
    for k in range(NUM_LAYERS):
        inside = [layer for layer in network if layer.name == f"layers.{k}" or layer.name.startswith(f"layers.{k}.")]
        shapes.append(inside[-1].output_shape)
    return shapes


def test_registry_and_basics() -> None:
    assert isinstance(SPACE, FBNetSpace) and SPACE.name == "fbnet"
    assert SPACE.input_shape() == (1, 3, 32, 32)
    arch = SPACE.sample(1, seed=0)[0]
    assert SPACE.canonical(arch) == arch
    with pytest.raises(InvalidInputError, match="expected 22"):
        SPACE.canonical("k3_e1-k3_e1")


def test_stage_boundaries_follow_the_docs() -> None:
    network = SPACE.to_ir(uniform("k3_e6"))
    expected_channels = [16] + [24] * 4 + [32] * 4 + [64] * 4 + [112] * 4 + [184] * 4 + [352]
    expected_size = [32] * 5 + [16] * 4 + [8] * 8 + [4] * 5
    assert layer_outputs(network) == [(1, c, s, s) for c, s in zip(expected_channels, expected_size)]
    assert network.layer("stem.conv").output_shape == (1, 16, 32, 32)
    assert network.layer("stem.conv").padding == (1, 1, 1, 1) and not network.layer("stem.conv").bias
    assert network.layer("header.conv").output_shape == (1, 1504, 4, 4)
    assert network.layer("avgpool").output_shape == (1, 1504, 1, 1)
    assert network.layer("fc").output_shape == (1, 100) and network.layer("fc").bias
    # layer 5 opens stage 2: 24 -> 32 channels, stride 2 in the depthwise conv, expansion 6
    dw = network.layer("layers.5.conv2")
    assert dw.op is OpKind.DEPTHWISE_CONV and dw.stride == (2, 2) and dw.groups == 144
    assert dw.input_shapes[0] == (1, 144, 32, 32) and dw.output_shape == (1, 144, 16, 16)
    # residual adds exactly where C_in == C_out and stride 1 (layer 0 too: stem 16 -> 16)
    adds = sorted(int(layer.name.split(".")[1]) for layer in network if layer.op is OpKind.ADD)
    assert adds == [0, 2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16, 18, 19, 20]
    assert network.layer("layers.4.add").inputs == ("layers.4.bn3", "layers.3.add")


def test_kernel_5_blocks_pad_2() -> None:
    network = SPACE.to_ir(uniform("k5_e3"))
    conv = network.layer("layers.9.conv2")
    assert conv.kernel == (5, 5) and conv.padding == (2, 2, 2, 2) and conv.output_shape == (1, 96, 8, 8)


def test_grouped_blocks_have_grouped_convs_and_shuffle() -> None:
    for block in ("k3_e1_g2", "k5_e1_g2"):
        network = SPACE.to_ir(uniform(block))
        for k in range(NUM_LAYERS):
            conv1, conv3 = network.layer(f"layers.{k}.conv1"), network.layer(f"layers.{k}.conv3")
            assert conv1.op is OpKind.GROUPED_CONV and conv1.groups == 2
            assert conv3.op is OpKind.GROUPED_CONV and conv3.groups == 2
            shuffle = network.layer(f"layers.{k}.shuffle")
            assert shuffle.op is OpKind.CHANNEL_SHUFFLE and shuffle.groups == 2
            assert shuffle.inputs == (f"layers.{k}.relu1",)


def test_all_skip_network() -> None:
    network = SPACE.to_ir(uniform("skip"))
    assert sum(layer.op is OpKind.IDENTITY for layer in network) == 16
    assert network.layer("layers.1.conv").output_shape == (1, 24, 32, 32)
    assert network.layer("layers.17.conv").stride == (2, 2)
    # stem 464 + the six 1x1 ConvNorm shortcuts + header 532,416 + fc 150,500 (hand count from the docs)
    assert network.params == 464 + (432 + 832 + 2176 + 7392 + 20976 + 65472) + 532416 + 150500


def test_ir_params_equal_torch_params_for_random_archs() -> None:
    archs = SPACE.sample(20, seed=1) + [uniform("k5_e6"), uniform("k3_e1_g2"), uniform("skip")]
    for arch in archs:
        model = SPACE.to_torch(arch)
        assert sum(p.numel() for p in model.parameters()) == SPACE.to_ir(arch).params, arch


def test_torch_forward_shape_and_eval_mode() -> None:
    for arch in [SPACE.sample(1, seed=2)[0], uniform("k5_e1_g2")]:
        model = SPACE.to_torch(arch)
        assert not model.training
        with torch.no_grad():
            assert model(torch.randn(1, 3, 32, 32)).shape == (1, 100)


class _LeafTracer(fx.Tracer):
    def is_leaf_module(self, m: torch.nn.Module, qualname: str) -> bool:
        return isinstance(m, (ChannelShuffle, Zero)) or super().is_leaf_module(m, qualname)


def test_torch_modules_trace_to_the_ir_layers() -> None:
    for arch in SPACE.sample(3, seed=3) + [uniform("skip")]:
        graph = _LeafTracer().trace(SPACE.to_torch(arch))
        modules = [node.target for node in graph.nodes if node.op == "call_module"]
        functions = [node.target.__name__ for node in graph.nodes if node.op == "call_function"]
        network = SPACE.to_ir(arch)
        assert modules == [layer.name for layer in network if layer.op is not OpKind.ADD]
        assert functions == ["add"] * sum(layer.op is OpKind.ADD for layer in network)


def test_fast_ir_features_equal_generic() -> None:
    archs = SPACE.sample(50, seed=4) + [uniform(block) for block in BLOCKS] + SPACE.measured_archs()[:20]
    generic = IRFeaturizer().transform([SPACE.to_ir(a) for a in archs]).values
    fast = SPACE.ir_features(archs)
    assert fast.shape == generic.shape
    assert np.array_equal(fast, generic)


def test_featurize_measured_archs_is_fast() -> None:
    archs = SPACE.measured_archs()
    SPACE.featurize(archs[:1])  # builds the block table
    start = time.perf_counter()
    features = SPACE.featurize(archs)
    elapsed = time.perf_counter() - start
    assert features.values.shape == (5000, len(SPACE.feature_names()))
    assert elapsed < 2.0, f"featurizing 5,000 FBNet archs took {elapsed:.2f}s"


def test_measured_archs() -> None:
    from nas_latency.data import load_table

    archs = SPACE.measured_archs()
    assert len(archs) == 5000 and len(set(archs)) == 5000
    first = load_table("fbnet_latency").sort_values("arch_id").iloc[0]
    assert archs[0] == "-".join(first[f"layer{i:02d}"] for i in range(NUM_LAYERS))
    assert all(SPACE.canonical(a) == a for a in archs[:100])


def test_sample_is_distinct_reproducible_and_uniform() -> None:
    a = SPACE.sample(2000, seed=5)
    assert a == SPACE.sample(2000, seed=5) and a != SPACE.sample(2000, seed=6)
    assert len(set(a)) == 2000 and SPACE.sample(0, seed=5) == []
    codes = np.array([[BLOCKS.index(b) for b in arch.split("-")] for arch in a])
    counts = np.bincount(codes.ravel(), minlength=len(BLOCKS))
    assert counts.min() > 0.9 * codes.size / len(BLOCKS)
    with pytest.raises(InvalidInputError, match="non-negative integer"):
        SPACE.sample(-1, seed=0)


def test_encoding_is_one_hot_per_layer() -> None:
    arch = "-".join(["k5_e6"] * 3 + ["skip"] * 19)
    names = SPACE.encoding_names()
    assert len(names) == NUM_LAYERS * len(BLOCKS) and names[0] == "layer00=k3_e1"
    row = SPACE.encode([arch])[0]
    assert row.sum() == NUM_LAYERS
    assert row[names.index("layer02=k5_e6")] == 1 and row[names.index("layer03=skip")] == 1
    assert row[names.index("layer03=k5_e6")] == 0
    matrix = SPACE.featurize([arch])
    assert matrix.column("layer02=k5_e6")[0] == 1 and matrix.rows == (arch,)
