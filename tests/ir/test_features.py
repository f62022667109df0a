"""IR features: additive over layers, totals equal the sum of the groups, FeatureMatrix shape checks."""

from __future__ import annotations

import numpy as np
import pytest

from nas_latency.ir import IR_FEATURE_NAMES, FeatureMatrix, IRFeaturizer, Network, OpKind, network_features
from nas_latency.ir.features import (
    GROUP_OF,
    OP_GROUPS,
    QUANTITIES,
    layer_features,
    layers_features,
    schema_hash,
)


def test_schema() -> None:
    assert len(IR_FEATURE_NAMES) == (len(OP_GROUPS) + 1) * len(QUANTITIES)
    assert len(set(IR_FEATURE_NAMES)) == len(IR_FEATURE_NAMES)
    assert IR_FEATURE_NAMES[-len(QUANTITIES) :] == tuple(f"total.{q}" for q in QUANTITIES)
    assert set(GROUP_OF) == set(OpKind)
    assert len(schema_hash(IR_FEATURE_NAMES)) == 16
    assert schema_hash(IR_FEATURE_NAMES) != schema_hash(tuple(reversed(IR_FEATURE_NAMES)))


@pytest.mark.parametrize("dtype_bytes", [4, 2])
def test_layer_features_sum_to_network_features(net: Network, dtype_bytes: int) -> None:
    total = network_features(net, dtype_bytes)
    summed = np.sum([layer_features(layer, dtype_bytes) for layer in net], axis=0)
    np.testing.assert_array_equal(total, summed)
    # blocks of a network add up too (what the search spaces rely on)
    half = len(net) // 2
    np.testing.assert_array_equal(layers_features(net.layers[:half], dtype_bytes) + layers_features(
        net.layers[half:], dtype_bytes), total)


@pytest.mark.parametrize("dtype_bytes", [4, 2])
def test_totals_equal_sum_of_groups_and_network_quantities(net: Network, dtype_bytes: int) -> None:
    vec = network_features(net, dtype_bytes)
    named = dict(zip(IR_FEATURE_NAMES, vec))
    for q in QUANTITIES:
        assert named[f"total.{q}"] == sum(named[f"{g}.{q}"] for g in OP_GROUPS)
    assert named["total.count"] == len(net)
    assert named["total.macs"] == net.macs
    assert named["total.params"] == net.params
    assert named["total.bytes_read"] == net.bytes_read(dtype_bytes)
    assert named["total.bytes_written"] == net.bytes_written(dtype_bytes)


def test_each_layer_lands_in_its_group(net: Network) -> None:
    for layer in net:
        vec = dict(zip(IR_FEATURE_NAMES, layer_features(layer)))
        group = GROUP_OF[layer.op]
        assert vec[f"{group}.count"] == 1.0
        assert vec[f"{group}.macs"] == layer.macs
        assert vec[f"{group}.params"] == layer.params
        assert vec[f"{group}.bytes_read"] == layer.bytes_read()
        assert vec[f"{group}.bytes_written"] == layer.bytes_written()
        others = [v for k, v in vec.items() if not k.startswith((f"{group}.", "total."))]
        assert not any(others)


def test_fixture_covers_every_group(net: Network) -> None:
    named = dict(zip(IR_FEATURE_NAMES, network_features(net)))
    assert all(named[f"{g}.count"] > 0 for g in OP_GROUPS)
    assert named["depthwise_conv.count"] == 1 and named["grouped_conv.count"] == 1
    assert named["view.bytes_read"] == 0 and named["view.bytes_written"] == 0


def test_featurizer_transform(net: Network) -> None:
    featurizer = IRFeaturizer(dtype_bytes=2)
    assert featurizer.feature_names == IR_FEATURE_NAMES
    matrix = featurizer.transform([net, net])
    assert matrix.values.shape == (2, len(IR_FEATURE_NAMES))
    assert matrix.rows == ("residual", "residual")
    np.testing.assert_array_equal(matrix.values[0], network_features(net, 2))
    np.testing.assert_array_equal(matrix.column("total.macs"), [net.macs, net.macs])
    assert matrix.schema_hash == schema_hash(IR_FEATURE_NAMES)
    with pytest.raises(KeyError, match="no feature named 'flops'"):
        matrix.column("flops")
    empty = featurizer.transform([])
    assert empty.values.shape == (0, len(IR_FEATURE_NAMES))


def test_feature_matrix_shape_checks() -> None:
    FeatureMatrix(("a", "b"), np.zeros((3, 2)), ("r0", "r1", "r2"))
    with pytest.raises(ValueError, match=r"shape \(3, 2\) does not match 2 rows x 2 names"):
        FeatureMatrix(("a", "b"), np.zeros((3, 2)), ("r0", "r1"))
    with pytest.raises(ValueError, match=r"does not match 3 rows x 3 names"):
        FeatureMatrix(("a", "b", "c"), np.zeros((3, 2)), ("r0", "r1", "r2"))
    with pytest.raises(ValueError, match="does not match"):
        FeatureMatrix(("a", "b"), np.zeros(2), ("r0",))
