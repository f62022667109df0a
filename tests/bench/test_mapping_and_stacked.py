"""The mapping model (fusion learned from blocks vs the sum of their layers) and the stacked network model."""

from __future__ import annotations

import numpy as np
import pytest

from nas_latency.bench.kernel_items import KernelSpec, random_kernels
from nas_latency.errors import InvalidInputError
from nas_latency.ir import Network, NetworkBuilder, OpKind
from nas_latency.models.artifacts import artifact_from_bytes
from nas_latency.models.layer_features import LayerFeaturizer, layer_key
from nas_latency.models.layer_mapping import DEFAULT_RULES, BlockObservation, MappingModel, layer_patterns
from nas_latency.models.layer_roofline import RefinedRooflineLayerModel
from nas_latency.models.layer_stacked import StackedNetworkModel
from nas_latency.models.layer_statistical import MixedLayerModel


def conv_bn_relu(c: int, s: int, *, pre_relu: bool = False) -> Network:
    b = NetworkBuilder(f"cbr{c}x{s}{'p' if pre_relu else ''}")
    x = b.input((1, c, s, s))
    if pre_relu:
        x = b.relu(x, name="pre")
    x = b.conv(x, c, 3, padding=1, name="conv")
    x = b.batch_norm(x, name="bn")
    b.relu(x, name="relu")
    return b.build()


def residual(c: int, s: int) -> Network:
    b = NetworkBuilder(f"res{c}x{s}")
    x = b.input((1, c, s, s))
    y = b.conv(x, c, 3, padding=1, name="conv")
    y = b.batch_norm(y, name="bn")
    y = b.add(y, x, name="add")
    b.relu(y, name="relu")
    return b.build()


def standalone_ms(network: Network) -> dict[str, float]:
    """A deterministic 'timer' for single layers: convs cost by MACs, everything else by bytes."""
    out = {}
    for layer in network.layers:
        out[layer_key(layer)] = 1e-3 + (layer.macs / 2e7 if layer.macs else layer.bytes_read() / 4e7)
    return out


def fused_runtime_block_ms(network: Network) -> float:
    """A runtime that folds batch norm and the following ReLU into the convolution: the block costs its conv,
    its pre-activation and its add (nothing else)."""
    times = standalone_ms(network)
    patterns = layer_patterns(network)
    fused = {"conv>batch_norm", "batch_norm>relu"}
    return sum(times[layer_key(l)] for l in network.layers if patterns[l.name] not in fused)


@pytest.fixture(scope="module")
def blocks() -> list[BlockObservation]:
    networks = [conv_bn_relu(c, s) for c, s in ((8, 16), (16, 8), (32, 8), (64, 4))]
    networks += [conv_bn_relu(c, s, pre_relu=True) for c, s in ((8, 8), (32, 4))]
    networks += [residual(c, s) for c, s in ((16, 8), (32, 8))]
    return [BlockObservation(n, fused_runtime_block_ms(n), standalone_ms(n)) for n in networks]


def test_patterns_name_the_producer_only_when_fusion_is_possible() -> None:
    patterns = layer_patterns(residual(8, 4))
    # the conv reads the network input; the add reads bn (single consumer) and the input; relu reads the add
    assert patterns == {"conv": "conv", "bn": "conv>batch_norm", "add": "batch_norm>add", "relu": "add>relu"}
    b = NetworkBuilder("shared")
    x = b.input((1, 4, 4, 4))
    y = b.relu(x, name="r")
    b.add(b.conv(y, 4, 1, name="c1"), b.conv(y, 4, 1, name="c2"), name="a")
    # r has two consumers: neither conv can be fused into it
    assert layer_patterns(b.build())["c1"] == "conv"


def test_fusion_is_detected_on_blocks_that_fuse(blocks: list[BlockObservation]) -> None:
    mapping = MappingModel(runtime="torch").fit(blocks)
    assert mapping.is_fused("conv>batch_norm") and mapping.is_fused("batch_norm>relu")
    assert mapping.weight("conv>batch_norm") < 0.25 and mapping.weight("batch_norm>relu") < 0.25
    assert not mapping.is_fused("relu>conv") and mapping.weight("relu>conv") == pytest.approx(1.0, abs=0.1)
    assert not mapping.is_fused("batch_norm>add") and not mapping.is_fused("conv")
    groups = mapping.groups(conv_bn_relu(16, 8))
    assert [g.members for g in groups] == [("conv", "bn", "relu")]
    # the learned weights explain the blocks; the plain sum of layers does not
    assert mapping.block_rel_errors_.max() < 0.03
    assert mapping.block_rel_errors_sum_.mean() > 0.02
    rules = {r["pattern"]: r for r in mapping.rules()}
    assert rules["conv>batch_norm"]["fused"] and rules["conv>batch_norm"]["blocks"] == 8


def test_no_fusion_is_found_where_blocks_cost_the_sum_of_their_layers() -> None:
    networks = [conv_bn_relu(c, s) for c, s in ((8, 16), (16, 8), (32, 8))] + [residual(16, 8)]
    observations = [BlockObservation(n, sum(standalone_ms(n).values()), standalone_ms(n)) for n in networks]
    mapping = MappingModel(runtime="torch").fit(observations)
    assert not any(r["fused"] for r in mapping.rules())
    assert [g.members for g in mapping.groups(networks[0])] == [("conv",), ("bn",), ("relu",)]


def test_default_rules_apply_where_no_block_showed_a_pattern() -> None:
    torch_mapping = MappingModel(runtime="torch").fit([])
    ort_mapping = MappingModel(runtime="onnxruntime").fit([])
    assert not torch_mapping.is_fused("conv>batch_norm") and torch_mapping.weight("conv>relu") == 1.0
    assert ort_mapping.is_fused("conv>batch_norm") and ort_mapping.is_fused("batch_norm>relu")
    assert [g.members for g in ort_mapping.groups(conv_bn_relu(8, 4))] == [("conv", "bn", "relu")]
    assert DEFAULT_RULES["onnxruntime"]["depthwise_conv>batch_norm"] == 0.0
    with pytest.raises(InvalidInputError, match="unknown runtime"):
        MappingModel(runtime="tpu").fit([])


def test_a_block_without_standalone_layer_times_is_refused() -> None:
    network = conv_bn_relu(8, 4)
    with pytest.raises(InvalidInputError, match="no standalone time"):
        MappingModel().fit([BlockObservation(network, 1.0, {})])


@pytest.fixture(scope="module")
def layer_model() -> MixedLayerModel:
    rng = np.random.default_rng(0)
    layers = [s.layer() for s in random_kernels(120, rng, max_macs=2e7)]
    layers += [conv_bn_relu(c, s).layers[i] for c, s in ((8, 16), (16, 8), (32, 8)) for i in range(3)]
    y = np.array([1e-3 + (l.macs / 2e7 if l.macs else l.bytes_read() / 4e7) for l in layers])
    return MixedLayerModel(n_estimators=30).fit(LayerFeaturizer().transform(layers), y)


def test_the_stacked_model_sums_the_layer_model_over_the_mapping(blocks: list[BlockObservation],
                                                                 layer_model: MixedLayerModel) -> None:
    mapping = MappingModel(runtime="torch").fit(blocks)
    overhead = 0.004
    stacked = StackedNetworkModel.from_parts(layer_model, mapping, overhead_ms=overhead, layer_name="mixed")
    network = residual(16, 8)
    features = LayerFeaturizer().transform(list(network.layers))
    per_layer = dict(zip(features.rows, layer_model.predict(features)))
    patterns = layer_patterns(network)
    expected = overhead + sum(mapping.weight(patterns[l.name]) * per_layer[layer_key(l)] for l in network.layers)
    assert stacked.predict_networks([network])[0] == pytest.approx(expected, rel=1e-12)
    breakdown = stacked.breakdown(network)
    assert overhead + sum(g.ms for g in breakdown) == pytest.approx(expected, rel=1e-12)
    # conv, bn and relu of the block are one fused kernel; the add and relu that follow are their own kernels
    assert [g.members for g in breakdown] == [("conv", "bn"), ("add",), ("relu",)]
    # ANNETTE's discrete rule: a fused group costs exactly its main layer
    discrete = StackedNetworkModel.from_parts(layer_model, mapping, overhead_ms=overhead, weighting="discrete")
    mains = sum(per_layer[layer_key(network.layer(g.main))] for g in breakdown)
    assert discrete.predict_networks([network])[0] == pytest.approx(overhead + mains, rel=1e-12)
    # without fusion every layer counts once
    plain = StackedNetworkModel.from_parts(layer_model, MappingModel().fit([]), overhead_ms=overhead)
    assert plain.predict_networks([network])[0] == pytest.approx(overhead + sum(per_layer[layer_key(l)]
                                                                                 for l in network.layers))
    # several networks at once give the same as one by one
    nets = [network, conv_bn_relu(8, 16), conv_bn_relu(32, 8, pre_relu=True)]
    np.testing.assert_allclose(stacked.predict_networks(nets),
                               [stacked.predict_networks([n])[0] for n in nets], rtol=1e-12)


def test_stacked_and_mapping_artifacts_round_trip(blocks: list[BlockObservation], layer_model: MixedLayerModel) -> None:
    mapping = MappingModel(runtime="onnxruntime").fit(blocks)
    stacked = StackedNetworkModel.from_parts(layer_model, mapping, overhead_ms=0.003)
    restored = StackedNetworkModel.from_artifact(artifact_from_bytes(stacked.to_artifact().to_bytes()))
    nets = [residual(16, 8), conv_bn_relu(8, 16)]
    np.testing.assert_array_equal(restored.predict_networks(nets), stacked.predict_networks(nets))
    assert restored.mapping_.rules() == mapping.rules() and restored.mapping_.runtime == "onnxruntime"
    again = MappingModel.from_artifact(artifact_from_bytes(mapping.to_artifact().to_bytes()))
    assert again.weight("conv>batch_norm") == mapping.weight("conv>batch_norm")
    assert again.weight("never_seen>relu") == mapping.weight("never_seen>relu")


def test_the_stacked_model_fits_its_parts_itself(blocks: list[BlockObservation]) -> None:
    rng = np.random.default_rng(3)
    layers = [s.layer() for s in random_kernels(60, rng, max_macs=2e7)]
    layers.append(KernelSpec(OpKind.CONV, 16, 16, 8, 3).layer())
    y = np.array([1e-3 + (l.macs / 2e7 if l.macs else l.bytes_read() / 4e7) for l in layers])
    model = StackedNetworkModel(layer_model="refined_roofline").fit(LayerFeaturizer().transform(layers), y, blocks,
                                                                    overhead_ms=0.002)
    assert model.mapping_.is_fused("conv>batch_norm")
    assert model.predict_networks([conv_bn_relu(16, 8)])[0] > 0.002
    with pytest.raises(InvalidInputError, match="weighting"):
        StackedNetworkModel(weighting="fuzzy").fit(LayerFeaturizer().transform(layers), y, blocks, overhead_ms=0.0)


# ---- cold weights and the footprint curve -------------------------------------------------------------------
def test_footprint_curve_is_monotone_clipped_and_has_a_default() -> None:
    from nas_latency.models.layer_footprint import DEFAULT_CACHE_BYTES, FootprintModel

    mb = 2**20
    model = FootprintModel().fit([1 * mb, 8 * mb, 64 * mb, 128 * mb], [0.05, -0.1, 0.9, 1.2])
    phi = model.phi(np.array([0.5 * mb, 1 * mb, 8 * mb, 32 * mb, 64 * mb, 500 * mb]))
    assert np.all(np.diff(phi) >= 0) and phi.min() >= 0 and phi.max() <= 1
    assert phi[0] == phi[1] == pytest.approx(0.025) and phi[-1] == 1.0
    default = FootprintModel().fit([], [])
    assert default.phi(DEFAULT_CACHE_BYTES / 2) == 0.0 and default.phi(2 * DEFAULT_CACHE_BYTES) == 1.0
    assert default.phi(DEFAULT_CACHE_BYTES) == pytest.approx(0.5)
    restored = FootprintModel.from_artifact(artifact_from_bytes(model.to_artifact().to_bytes()))
    np.testing.assert_array_equal(restored.phi(np.array([3 * mb, 90 * mb])), model.phi(np.array([3 * mb, 90 * mb])))
    with pytest.raises(InvalidInputError):
        FootprintModel().fit([1.0, 2.0], [0.5])


def test_the_stacked_model_pays_the_cold_penalty_by_footprint(blocks: list[BlockObservation]) -> None:
    from nas_latency.models.layer_footprint import FootprintModel
    from nas_latency.models.layer_stacked import network_footprint_bytes

    rng = np.random.default_rng(4)
    layers = [s.layer() for s in random_kernels(80, rng, max_macs=2e7)]
    layers += [l for n in (conv_bn_relu(8, 16), residual(64, 8)) for l in n.layers]
    features = LayerFeaturizer().transform(layers)
    hot_y = np.array([1e-3 + (l.macs / 2e7 if l.macs else l.bytes_read() / 4e7) for l in layers])
    cold_y = hot_y + np.array([l.weight_bytes() / 1e7 for l in layers])  # weights read at 10 GB/s
    hot = MixedLayerModel(n_estimators=20).fit(features, hot_y)
    cold = MixedLayerModel(n_estimators=20).fit(features, cold_y)
    small, big = conv_bn_relu(8, 16), residual(64, 8)
    footprint = FootprintModel().fit([network_footprint_bytes(small), network_footprint_bytes(big)], [0.0, 1.0])
    mapping = MappingModel().fit([])
    stacked = StackedNetworkModel.from_parts(hot, mapping, overhead_ms=0.001, cold_model=cold, footprint=footprint)
    hot_only = StackedNetworkModel.from_parts(hot, mapping, overhead_ms=0.001)
    assert stacked.phi(small) == 0.0 and stacked.phi(big) == 1.0 and hot_only.phi(big) == 0.0
    predicted = stacked.predict_networks([small, big])
    assert predicted[0] == pytest.approx(hot_only.predict_networks([small])[0], rel=1e-12)
    big_features = LayerFeaturizer().transform(list(big.layers))
    h, c = hot.predict(big_features), cold.predict(big_features)
    assert predicted[1] == pytest.approx(0.001 + float(np.sum(h + np.maximum(c - h, 0.0))), rel=1e-12)
    assert predicted[1] > hot_only.predict_networks([big])[0]
    assert 0.001 + sum(g.ms for g in stacked.breakdown(big)) == pytest.approx(predicted[1], rel=1e-12)
    restored = StackedNetworkModel.from_artifact(artifact_from_bytes(stacked.to_artifact().to_bytes()))
    np.testing.assert_array_equal(restored.predict_networks([small, big]), predicted)
    with pytest.raises(InvalidInputError, match="same kind"):
        StackedNetworkModel.from_parts(hot, mapping, overhead_ms=0.0,
                                       cold_model=RefinedRooflineLayerModel().fit(features, cold_y))


def test_the_context_curve_charges_activation_traffic_in_a_large_network(layer_model: MixedLayerModel) -> None:
    from nas_latency.models.layer_footprint import FootprintModel
    from nas_latency.models.layer_stacked import activation_mb, network_footprint_bytes

    small, big = conv_bn_relu(8, 16), residual(64, 8)
    context = FootprintModel(upper=1.0, default_curve="flat").fit(
        [network_footprint_bytes(small), network_footprint_bytes(big)], [0.0, 0.05])
    assert FootprintModel(default_curve="flat").fit([], []).phi(1e12) == 0.0
    mapping = MappingModel().fit([])
    plain = StackedNetworkModel.from_parts(layer_model, mapping, overhead_ms=0.002)
    slowed = StackedNetworkModel.from_parts(layer_model, mapping, overhead_ms=0.002, context=context)
    assert slowed.kappa(small) == 0.0 and slowed.kappa(big) == pytest.approx(0.05)
    extra = 0.05 * sum(activation_mb(l) for l in big.layers)
    np.testing.assert_allclose(slowed.predict_networks([small, big]),
                               plain.predict_networks([small, big]) + np.array([0.0, extra]), rtol=1e-12)
    restored = StackedNetworkModel.from_artifact(artifact_from_bytes(slowed.to_artifact().to_bytes()))
    assert restored.kappa(big) == pytest.approx(0.05)


# ---- transformer networks -----------------------------------------------------------------------------------------
def transformer_block(tokens: int = 16, width: int = 32, heads: int = 4, *, packed: bool = False) -> Network:
    """layer norm, linear, transpose, matmul, scale, softmax, matmul, add (and the reshapes of the head split);
    ``packed``: one q/k/v projection unbound into three by selects (slices)."""
    from nas_latency.bench.block_items import add_attention, add_packed_attention

    b = NetworkBuilder(f"transformer;t={tokens};d={width};h={heads}{';packed' if packed else ''}")
    x = b.input((1, tokens, width), name="x0")
    return b.build([(add_packed_attention if packed else add_attention)(b, x, heads)])


def test_onnxruntime_folds_the_scaling_of_attention_scores_into_their_matmul() -> None:
    network = transformer_block()
    patterns = layer_patterns(network)
    scale = next(l.name for l in network.layers if l.op is OpKind.SCALE)
    matmul = next(l.name for l in network.layers if l.op is OpKind.MATMUL)
    assert patterns[scale] == "matmul>scale" and DEFAULT_RULES["onnxruntime"]["matmul>scale"] == 0.0
    ort_groups = [g.members for g in MappingModel(runtime="onnxruntime").fit([]).groups(network)]
    assert (matmul, scale) in ort_groups
    torch_groups = MappingModel(runtime="torch").fit([]).groups(network)
    assert [g.members for g in torch_groups] == [(l.name,) for l in network.layers]  # torch eager fuses nothing


def test_the_selects_of_packed_q_k_v_are_kernels_of_their_own() -> None:
    """A packed tensor read by three selects is fused into none of them (as a transpose's output read twice)."""
    network = transformer_block(packed=True)
    patterns = layer_patterns(network)
    selects = [l.name for l in network.layers if l.op is OpKind.SLICE]
    assert [patterns[name] for name in selects] == ["slice"] * 3
    assert patterns[network.consumers()[selects[1]][0]] == "slice>transpose"  # K^T
    for runtime in ("torch", "onnxruntime"):
        groups = [g.members for g in MappingModel(runtime=runtime).fit([]).groups(network)]
        assert all((name,) in groups for name in selects), runtime


@pytest.mark.parametrize("packed", [False, True])
def test_a_transformer_network_is_predicted_from_real_micro_kernel_measurements(packed: bool) -> None:
    """Real torch measurements (quick protocol): the transformer micro-kernels of the quick grid and the block's
    own layers fit the layer model; the block itself fits the mapping; every layer gets a positive time."""
    from nas_latency.bench.block_items import with_block_layers
    from nas_latency.bench.device import block_observations, in_network_ms, kernel_dataset
    from nas_latency.bench.items import BenchItem, kernel_item
    from nas_latency.bench.kernel_items import sequence_grid_kernels
    from nas_latency.bench.protocol import PROTOCOLS
    from nas_latency.bench.runners import TorchEagerRunner
    from nas_latency.bench.sweep import latency_of, run_sweep
    from nas_latency.models.layer_features import families_of

    network = transformer_block(packed=packed)
    block = BenchItem(f"block;{network.name}", "block", network, "block:transformer")
    items = with_block_layers([block]) + [kernel_item(s.layer(), "grid") for s in sequence_grid_kernels("quick")]
    result = run_sweep(items, TorchEagerRunner(), PROTOCOLS["quick"], rounds=2)
    assert not result.failed and len(result.measured) == len(items)
    kernels = [m for m in result.measured if m.item.kind == "kernel"]
    features, y, _ = kernel_dataset(kernels, overhead_ms=0.0)
    assert set(families_of(features)) >= {"matmul", "layer_norm", "transpose", "scale", "linear", "softmax", "add",
                                          "slice"}
    assert np.all(y > 0)
    local = {layer_key(m.item.network.layers[0]): in_network_ms(latency_of(m.stats, "fastest_round"), 0.0)
             for m in kernels if m.item.origin == "block_layer"}
    measured_block = [m for m in result.measured if m.item.kind == "block"]
    observations = block_observations(measured_block, local, 0.0)
    assert len(observations) == 1
    model = StackedNetworkModel(layer_model="refined_roofline").fit(features, y, observations, overhead_ms=0.0)
    breakdown = model.breakdown(network)
    assert sorted(n for g in breakdown for n in g.members) == sorted(l.name for l in network.layers)
    assert all(t > 0 for g in breakdown for t in g.layer_ms)  # no layer predicted as free
    predicted = float(model.predict_networks([network])[0])
    measured = observations[0].block_ms
    assert np.isfinite(predicted) and 0.2 * measured < predicted < 5.0 * measured
