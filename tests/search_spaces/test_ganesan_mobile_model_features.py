"""Ganesan mobile-network cost-model features: the research's 17 columns and the IR costs (``cost.*``), from the
IR alone, for all 118 networks and for any other network built as IR."""

from __future__ import annotations

import numpy as np
import pytest

from nas_latency.data import load_table
from nas_latency.ir import NetworkBuilder, OpKind
from search_spaces import get_space
from nas_latency.ir.features import IR_FEATURE_NAMES, network_features
from search_spaces.ganesan_mobile.model_features import (MODEL_FEATURE_NAMES, RESEARCH_FEATURE_COUNT,
                                                         network_model_features)

SPACE = get_space("ganesan_mobile")


@pytest.fixture(scope="module")
def everything():
    archs = SPACE.measured_archs()
    return archs, SPACE.model_features(archs)


def test_all_118_networks(everything) -> None:
    archs, features = everything
    assert len(archs) == 118
    assert features.values.shape == (118, 17 + len(IR_FEATURE_NAMES)) and features.names == MODEL_FEATURE_NAMES
    assert RESEARCH_FEATURE_COUNT == 17 and len(set(MODEL_FEATURE_NAMES)) == len(MODEL_FEATURE_NAMES)
    assert np.isfinite(features.values).all()
    assert features.rows == tuple(archs)
    assert len(np.unique(features.values, axis=0)) == 118
    assert not SPACE.degenerate_mask(archs).any()


def test_counts_and_work_agree_with_the_layer_table(everything) -> None:
    archs, features = everything
    layers = load_table("ganesan_mobile_layers")
    names = load_table("ganesan_mobile_networks").set_index("network_name")["network_id"]
    for i, arch in enumerate(archs):
        rows = layers[layers.network_id == names[arch]]
        row = dict(zip(features.names, features.values[i]))
        for op in ("conv", "dwconv", "add", "relu", "pool"):
            table = rows[rows.op_type == op]
            assert row[f"{op}_count"] == len(table), (arch, op)
            if op != "pool":  # a pool of concatenated SqueezeNet branches: the table counts one branch only
                assert row[f"log1p_{op}_work_m"] == pytest.approx(np.log1p(table.macs.sum() / 1e6), abs=1e-12)
        network = SPACE.to_ir(arch)
        assert row["log_macs"] == pytest.approx(np.log(network.macs), rel=1e-12)


def test_cost_columns_are_the_networks_ir_costs(everything) -> None:
    archs, features = everything
    costs = features.values[:, RESEARCH_FEATURE_COUNT:]
    assert features.names[RESEARCH_FEATURE_COUNT:] == tuple(f"cost.{name}" for name in IR_FEATURE_NAMES)
    for i in (0, 57, 100, 117):
        network = SPACE.to_ir(archs[i])
        np.testing.assert_array_equal(costs[i], network_features(network))
        assert costs[i, IR_FEATURE_NAMES.index("total.macs")] == network.macs
    assert (costs >= 0).all()
    # they tell the networks apart in the ways a price list needs: convolution work, depthwise work, memory traffic
    spread = dict(zip(IR_FEATURE_NAMES, costs.std(axis=0)))
    assert min(spread["conv.macs"], spread["depthwise_conv.macs"], spread["total.bytes_read"]) > 0


def test_any_ir_network_is_featurized() -> None:
    b = NetworkBuilder("tiny_mobile")
    x = b.input((1, 3, 224, 224))
    x = b.activation(b.batch_norm(b.conv(x, 16, 3, stride=2, padding=1)), OpKind.HARD_SWISH)  # 112x112
    y = b.relu(b.conv(x, 16, 3, padding=1, groups=16))
    x = b.add(x, b.conv(y, 16, 1))
    head = b.linear(b.flatten(b.global_avg_pool(x)), 10)
    values = dict(zip(MODEL_FEATURE_NAMES, network_model_features(b.build([head]))))
    assert values["conv_count"] == 3 and values["dwconv_count"] == 1  # conv 3x3, conv 1x1, linear
    assert values["relu_count"] == 2 and values["add_count"] == 1 and values["pool_count"] == 1
    stem = 16 * 112 * 112 * 27
    assert values["log1p_work_m_hw112"] > np.log1p(stem / 1e6)
    assert values["log1p_work_m_hw7"] == 0.0
    assert values["cost.depthwise_conv.count"] == 1 and values["cost.linear.count"] == 1
    assert values["cost.conv.macs"] == 16 * 112 * 112 * 27 + 16 * 112 * 112 * 16
