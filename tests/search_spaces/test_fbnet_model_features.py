"""FBNet cost-model features: 265 named columns computed from the IR, vectorized."""

from __future__ import annotations

import time

import numpy as np
import pytest

from nas_latency.errors import InvalidInputError
from nas_latency.ir.features import IR_FEATURE_NAMES, network_features
from search_spaces import get_space
from search_spaces.fbnet.codec import BLOCKS, NUM_LAYERS, parse_arch
from search_spaces.fbnet.macro import SLOTS
from search_spaces.fbnet.fast_features import block_feature_table
from search_spaces.fbnet.model_features import COST_FEATURES, MODEL_FEATURE_NAMES
from search_spaces.fbnet.space import ENCODING_NAMES

SPACE = get_space("fbnet")


@pytest.fixture(scope="module")
def measured():
    archs = SPACE.measured_archs()
    return archs, SPACE.model_features(archs)


def test_shape_names_and_values(measured) -> None:
    archs, features = measured
    assert features.values.shape == (5_000, 265)
    assert features.names == MODEL_FEATURE_NAMES and len(set(features.names)) == 265
    assert features.rows == tuple(archs)
    assert np.isfinite(features.values).all()
    assert features.names[:198] == ENCODING_NAMES
    assert np.array_equal(features.values[:, :198], SPACE.encode(archs))
    counts = features.values[:, [features.names.index(f"count={b}") for b in BLOCKS]]
    assert np.all(counts.sum(axis=1) == NUM_LAYERS)
    assert np.array_equal(features.column("depth"), NUM_LAYERS - features.column("count=skip"))


def test_cost_columns_are_the_ir_features_that_differ_between_archs(measured) -> None:
    archs, features = measured
    columns = [i for i, name in enumerate(features.names) if name.startswith("cost.")]
    assert [features.names[i] for i in columns] == [f"cost.{name}" for name in COST_FEATURES]
    for i in (0, 1, 4_999):  # the generic path: build the IR, sum its layers
        ir = dict(zip(IR_FEATURE_NAMES, network_features(SPACE.to_ir(archs[i]))))
        assert features.values[i, columns].tolist() == [ir[name] for name in COST_FEATURES]
    blocks = block_feature_table().blocks  # (position, block, feature)
    varying = {name for name, differs in zip(IR_FEATURE_NAMES, (np.ptp(blocks, axis=1) > 0).any(axis=0)) if differs}
    assert set(COST_FEATURES) == varying


def test_5000_archs_fast() -> None:
    archs = SPACE.measured_archs()
    SPACE.model_features(archs[:3])
    start = time.perf_counter()
    SPACE.model_features(archs)
    assert time.perf_counter() - start < 2.0


def test_macs_and_params_come_from_the_ir(measured) -> None:
    archs, features = measured
    for i in (0, 1, 4_999):
        network = SPACE.to_ir(archs[i])
        row = dict(zip(features.names, features.values[i]))
        assert row["log_macs"] == pytest.approx(np.log(network.macs), rel=1e-12)
        assert row["log_params"] == pytest.approx(np.log(network.params), rel=1e-12)
        blocks = parse_arch(archs[i])
        for stage in range(7):
            layers = [f"layers.{s.index}" for s in SLOTS if s.stage == stage]
            macs = sum(layer.macs for layer in network.layers
                       if any(layer.name == p or layer.name.startswith(p + ".") for p in layers))
            assert row[f"stage{stage}_macs_m"] == pytest.approx(macs / 1e6, rel=1e-12)
            skips = sum(blocks[s.index] == "skip" for s in SLOTS if s.stage == stage)
            assert row[f"stage{stage}_skip_count"] == skips


def test_any_architecture_not_only_measured_ones() -> None:
    archs = SPACE.sample(50, seed=3)
    features = SPACE.model_features(archs)
    assert features.values.shape == (50, 265) and np.isfinite(features.values).all()
    assert not SPACE.degenerate_mask(archs).any()
    with pytest.raises(InvalidInputError):
        SPACE.model_features(["k3_e1-nope"])
