"""The Ganesan et al. mobile networks: every layer table becomes IR that reproduces the table's shapes and
MACs, residual adds and SqueezeNet concats are inferred correctly, names and errors."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest
import torch

from nas_latency.data import load_table
from nas_latency.errors import InvalidInputError
from nas_latency.ir import Network, OpKind
from search_spaces import get_space
from search_spaces.ganesan_mobile import GanesanMobileSpace, build_network
from search_spaces.ganesan_mobile.table import LayerRow, layer_rows_by_network

SPACE = get_space("ganesan_mobile")
NETWORKS = load_table("ganesan_mobile_networks").set_index("network_id")
LAYERS = load_table("ganesan_mobile_layers")


@pytest.fixture(scope="module")
def built() -> dict[int, Network]:
    return {i: SPACE.to_ir(NETWORKS.loc[i, "network_name"]) for i in range(118)}


def test_registry_and_measured_archs() -> None:
    assert isinstance(SPACE, GanesanMobileSpace) and SPACE.name == "ganesan_mobile"
    assert SPACE.input_shape() == (1, 3, 224, 224)
    archs = SPACE.measured_archs()
    assert archs == [NETWORKS.loc[i, "network_name"] for i in range(118)]
    assert archs[0] == "mobilegen_000" and archs[-1] == "mobilenet_v2_0.25"


def test_every_network_builds_and_reproduces_the_table(built: dict[int, Network]) -> None:
    for network_id, frame in LAYERS.groupby("network_id"):
        network = built[int(network_id)]
        assert network.inputs[0].shape == (1, 3, 224, 224)
        assert network.layer(network.outputs[0]).output_shape == (1, 1000, 1, 1)
        for row in frame.itertuples(index=False):
            layer = network.layer(f"layer{row.layer_index:03d}_{row.op_type}")
            _, c, h, w = layer.output_shape
            assert (h, w) == (row.out_hw, row.out_hw), (network.name, row.layer_index)
            if row.op_type in ("conv", "dwconv"):
                assert layer.macs == row.macs, (network.name, row.layer_index)
                assert c == row.out_channels and layer.input_shapes[0][1:] == (row.in_channels, row.in_hw, row.in_hw)
                assert layer.op is (OpKind.DEPTHWISE_CONV if row.op_type == "dwconv" else OpKind.CONV)
                assert layer.padding == (row.padding,) * 4 and layer.stride == (row.stride, row.stride)
            elif row.op_type == "pool" and layer.inputs[0].endswith("_input_concat"):
                # SqueezeNet: the row records only the last concatenated branch
                assert row.macs == row.out_channels * h * w and c > row.out_channels
            else:
                assert row.macs == c * h * w and c == row.out_channels, (network.name, row.layer_index)


def test_total_macs_agree_with_networks_csv(built: dict[int, Network]) -> None:
    table_sum = LAYERS.groupby("network_id")["macs"].sum()
    for network_id, network in built.items():
        entry = NETWORKS.loc[network_id]
        # ir MACs count conv/dwconv only; the table's macs column also counts relu/add/pool output elements
        assert math.isclose(table_sum[network_id] / 1e6, entry["onnxemb_macs_sum_M"], rel_tol=1e-9)
        if not pd.isna(entry["macs_M"]):  # the 100 MobileGen networks
            assert math.isclose(network.macs / 1e6, entry["macs_M"], rel_tol=1e-9), network.name
            assert math.isclose(entry["fullemb_macs_sum_M"], entry["onnxemb_macs_sum_M"], rel_tol=1e-9)


def test_adds_join_same_shaped_block_input(built: dict[int, Network]) -> None:
    for network_id, network in built.items():
        adds = [layer for layer in network if layer.op is OpKind.ADD]
        for add in adds:
            assert add.input_shapes[0] == add.input_shapes[1] == add.output_shape
            projection, block_input = (network.layer(n) for n in add.inputs)
            assert projection.op is OpKind.CONV and projection.kernel == (1, 1)
            # the block input is read by the block's first layer: an expansion conv 1x1 or the dwconv
            first = [c for c in network.consumers()[block_input.name] if c != add.name]
            assert len(first) == 1 and network.layer(first[0]).op in (OpKind.CONV, OpKind.DEPTHWISE_CONV)
        if network_id < 100:
            assert len(adds) == NETWORKS.loc[network_id, "n_skips"], network.name


def test_expansion_one_block_adds_the_block_input(built: dict[int, Network]) -> None:
    fbnet_c = built[int(NETWORKS.index[NETWORKS["network_name"] == "fbnetc_100"][0])]
    # conv 3x3 stem -> relu -> [conv 1x1 16->16 -> relu -> dw -> relu -> conv 1x1] + stem output
    assert fbnet_c.layer("layer007_add").inputs == ("layer006_conv", "layer001_relu")
    mbv2 = built[117]  # mobilenet_v2_0.25: first block has no expansion conv
    assert mbv2.layer("layer005_add").inputs == ("layer004_conv", "layer001_relu")


def test_squeezenet_fire_modules_concatenate(built: dict[int, Network]) -> None:
    published_params = {113: 1_248_424, 114: 1_235_496}  # torchvision squeezenet1_0 / 1_1
    for network_id, params in published_params.items():
        network = built[network_id]
        concats = [layer for layer in network if layer.op is OpKind.CONCAT]
        assert len(concats) == 8
        assert network.params == params
        pools = [layer for layer in network if layer.op is OpKind.MAX_POOL]
        assert len(pools) == 3 and all(p.kernel == (3, 3) and p.stride == (2, 2) for p in pools)
    fire = built[113]
    assert fire.layer("layer007_conv").inputs == ("layer004_relu",)  # expand 3x3 reads the squeeze output
    assert fire.layer("layer009_input_concat").inputs == ("layer006_relu", "layer008_relu")
    assert fire.layer("layer021_pool").input_shapes[0] == (1, 256, 54, 54)
    assert fire.layer("layer021_pool").output_shape == (1, 256, 27, 27)  # needs ceil_mode
    assert fire.layer("layer055_pool").op is OpKind.GLOBAL_AVG_POOL


def test_canonical_names_and_ids() -> None:
    assert SPACE.canonical("mobilenet_v2_1.0") == "mobilenet_v2_1.0"
    assert SPACE.canonical("7") == "mobilegen_007"
    assert SPACE.canonical("113") == "squeezenet1_0"
    assert SPACE.to_ir("7").name == "mobilegen_007"


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("mobilenet_v3", "unknown Ganesan network 'mobilenet_v3'; did you mean .*names look like mobilegen_000"),
        ("resnet50", "unknown Ganesan network 'resnet50'.*names look like"),
        ("", "empty Ganesan network name"),
        ("999", "no Ganesan network with id 999; ids run 0..121"),
        ("efficientnet_b0?", "'efficientnet_b0\\?' \\(id 118\\) has measured latencies but no layer rows"),
        ("efficientnet_b3", "\\(id 121\\) has measured latencies but no layer rows"),
        ("119", "\\(id 119\\) has measured latencies but no layer rows"),
    ],
)
def test_bad_names_say_what_is_wrong(arch: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        SPACE.canonical(arch)
    with pytest.raises(InvalidInputError, match=message):
        SPACE.to_ir(arch)


def test_sample() -> None:
    a = SPACE.sample(30, seed=1)
    assert a == SPACE.sample(30, seed=1) and len(set(a)) == 30
    assert set(a) <= set(SPACE.measured_archs())
    assert sorted(SPACE.sample(118, seed=2)) == sorted(SPACE.measured_archs())
    with pytest.raises(InvalidInputError, match="0..118"):
        SPACE.sample(119, seed=0)


def test_to_torch_runs() -> None:
    model = SPACE.to_torch("mobilegen_005")
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == SPACE.to_ir("mobilegen_005").params
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000, 1, 1)


def test_generic_features_work() -> None:
    features = SPACE.featurize(["mobilegen_000", "squeezenet1_1"])
    assert features.values.shape == (2, len(SPACE.feature_names()))
    assert features.column("total.macs")[1] == SPACE.to_ir("squeezenet1_1").macs


# ---- rows that cannot be interpreted ----------------------------------------------------------------------
ROWS = layer_rows_by_network()


def _with(network_id: int, index: int, **changes: object) -> list:
    rows = list(ROWS[network_id])
    rows[index] = dataclasses.replace(rows[index], **changes)
    return rows


def test_unknown_op_type_names_network_and_layer() -> None:
    message = "'bad' \\(id 0\\), layer_index 4 \\(softmax\\): unknown op_type 'softmax'"
    with pytest.raises(InvalidInputError, match=message):
        build_network("bad", _with(0, 4, op_type="softmax"))


def test_wrong_macs_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match="layer_index 3 \\(dwconv\\): table macs 1, the IR layer has 903168"):
        build_network("bad", _with(0, 3, macs=1))
    with pytest.raises(InvalidInputError, match="layer_index 2 \\(relu\\): table macs 5 is not the number"):
        build_network("bad", _with(0, 2, macs=5))


def test_wrong_shapes_are_errors() -> None:
    with pytest.raises(InvalidInputError, match="layer_index 3 \\(dwconv\\): table output 32x57x57"):
        build_network("bad", _with(0, 3, out_hw=57))
    with pytest.raises(InvalidInputError, match="layer_index 5 \\(conv\\): reads 31x56x56"):
        build_network("bad", _with(0, 5, in_channels=31))


def test_add_outside_a_residual_block_is_an_error() -> None:
    rows = list(ROWS[0])
    relu = rows[2]
    rows.insert(3, dataclasses.replace(relu, op_type="add"))
    rows = [dataclasses.replace(r, layer_index=i) for i, r in enumerate(rows)]
    with pytest.raises(InvalidInputError, match="layer_index 3 \\(add\\): an add must follow dwconv, relu, conv 1x1"):
        build_network("bad", rows)


def test_dangling_branch_is_an_error() -> None:
    def row(i: int, op: str, cin: int, cout: int, hw_in: int, hw_out: int, k: int, s: int, p: int) -> LayerRow:
        macs = hw_out * hw_out * cout * (1 if op == "dwconv" else cin) * k * k if k else hw_out * hw_out * cout
        return LayerRow(1000, i, op, hw_in, hw_out, cin, cout, k, s, p, macs)

    rows = [
        row(0, "conv", 3, 8, 224, 112, 3, 2, 1),
        row(1, "relu", 8, 8, 112, 112, 0, 0, 0),
        row(2, "conv", 8, 16, 112, 112, 1, 1, 0),  # a branch nobody reads...
        row(3, "conv", 8, 16, 112, 112, 3, 1, 1),  # ...because this conv reads the relu again
    ]
    with pytest.raises(InvalidInputError, match="tensors \\['layer002_conv'\\] are never read"):
        build_network("bad", rows)
    # concatenating the two branches makes it a valid fire-like module
    rows.append(row(4, "conv", 32, 10, 112, 112, 1, 1, 0))
    network = build_network("fire", rows)
    assert network.layer("layer004_input_concat").inputs == ("layer002_conv", "layer003_conv")
