"""NAS-Bench-201 cost-model features: 488 named columns, equal to the cell structure and the IR they describe,
vectorized over the whole space."""

from __future__ import annotations

import time

import numpy as np
import pytest

from nas_latency.errors import InvalidInputError
from nas_latency.ir.features import IR_FEATURE_NAMES, network_features, schema_hash
from nas_latency.ir.liveness import pruned_features
from nas_latency.ir.network import DEFAULT_DTYPE_BYTES
from search_spaces import get_space
from search_spaces.nasbench201.canonical import is_dead_cell, live_edges
from search_spaces.nasbench201.codec import EDGES, all_archs, parse_arch
from search_spaces.nasbench201.fast_features import ir_features_from_codes
from search_spaces.nasbench201.model_features import COST_FEATURES, MODEL_FEATURE_NAMES
from search_spaces.nasbench201.space import ENCODING_NAMES

SPACE = get_space("nasbench201")


@pytest.fixture(scope="module")
def everything():
    archs = all_archs()
    return archs, SPACE.model_features(archs)


def test_shape_names_and_values(everything) -> None:
    archs, features = everything
    assert features.values.shape == (15_625, 488)
    assert features.names == MODEL_FEATURE_NAMES and len(set(features.names)) == 488
    assert features.rows == tuple(archs)
    assert features.schema_hash == schema_hash(MODEL_FEATURE_NAMES)
    assert np.isfinite(features.values).all()
    assert features.names[:30] == ENCODING_NAMES
    assert np.array_equal(features.values[:, :30], SPACE.encode(archs))
    pairs = features.values[:, 30:405]
    assert np.all(pairs.reshape(-1, 15, 25).sum(axis=2) == 1)  # one op pair per edge pair
    counts = features.values[:, 405:428]
    assert np.all(counts.sum(axis=1) == 4)  # four one-hot count groups
    assert len(np.unique(features.values, axis=0)) == 15_625  # every architecture is distinguishable


def test_all_archs_in_well_under_a_second() -> None:
    archs = all_archs()
    SPACE.model_features(archs[:10])  # warm the IR tables
    start = time.perf_counter()
    SPACE.model_features(archs)
    assert time.perf_counter() - start < 2.0


def test_degenerate_mask_is_the_dead_cell_rule(everything) -> None:
    archs, features = everything
    mask = SPACE.degenerate_mask(archs)
    assert mask.dtype == bool and mask.sum() == 341
    assert np.array_equal(mask, np.array([is_dead_cell(a) for a in archs]))
    assert np.array_equal(features.column("is_degenerate"), mask.astype(float))


def test_structure_scalars_match_the_cell(everything) -> None:
    archs, features = everything
    rng = np.random.default_rng(0)
    for i in rng.choice(len(archs), 300, replace=False):
        arch = archs[i]
        ops = dict(zip(EDGES, parse_arch(arch)))
        live = live_edges(arch)
        row = dict(zip(features.names, features.values[i]))
        assert row["live_edge_count"] == len(live)
        for name, op in (("live_skip_count", "skip_connect"), ("live_conv1x1_count", "nor_conv_1x1"),
                         ("live_conv3x3_count", "nor_conv_3x3"), ("live_pool_count", "avg_pool_3x3")):
            assert row[name] == sum(ops[e] == op for e in live)
        paths = [p for p in ((0, 3), (0, 1, 3), (0, 2, 3), (0, 1, 2, 3))
                 if all(ops[(p[k], p[k + 1])] != "none" for k in range(len(p) - 1))]
        assert row["n_paths"] == len(paths) and row[f"n_paths={len(paths)}"] == 1
        assert row["longest_path"] == max((len(p) - 1 for p in paths), default=0)
        convs = [sum(ops[(p[k], p[k + 1])] in ("nor_conv_1x1", "nor_conv_3x3") for k in range(len(p) - 1))
                 for p in paths]
        assert row["max_convs_on_path"] == max(convs, default=0)
        assert row[f"{'edge_0_1'}={ops[(0, 1)]}&edge_2_3={ops[(2, 3)]}"] == 1


def test_macs_columns_come_from_the_ir(everything) -> None:
    archs, features = everything
    for i in (0, 1, 777, 15_624):
        network = SPACE.to_ir(archs[i])
        assert features.column("log_macs")[i] == pytest.approx(np.log(network.macs), rel=1e-12)
        cell_conv_macs = sum(layer.macs for layer in network.layers if layer.name.startswith("cells.")
                             and ".edge_" in layer.name)
        assert features.column("log1p_conv_macs_m")[i] == pytest.approx(np.log1p(cell_conv_macs / 1e6), rel=1e-12)


def test_cost_columns_are_the_ir_features_that_differ_between_cells(everything) -> None:
    archs, features = everything
    columns = [i for i, name in enumerate(features.names) if name.startswith("cost.")]
    assert [features.names[i] for i in columns] == [f"cost.{name}" for name in COST_FEATURES]
    for i in (0, 1, 777, 15_624):  # the generic path: build the IR, sum its layers
        ir = dict(zip(IR_FEATURE_NAMES, network_features(SPACE.to_ir(archs[i]))))
        assert features.values[i, columns].tolist() == [ir[name] for name in COST_FEATURES]
    varying = {name for name, spread in zip(IR_FEATURE_NAMES, np.ptp(ir_features_from_codes(
        SPACE.op_codes(archs), num_classes=SPACE.num_classes, batch_size=SPACE.batch_size,
        dtype_bytes=DEFAULT_DTYPE_BYTES), axis=0)) if spread > 0}
    assert set(COST_FEATURES) == varying


def test_pruned_cost_columns_are_the_ir_features_of_the_layers_whose_values_are_read(everything) -> None:
    archs, features = everything
    columns = [i for i, name in enumerate(features.names) if name.startswith("pruned_cost.")]
    assert [features.names[i] for i in columns] == [f"pruned_cost.{name}" for name in COST_FEATURES]
    full = features.values[:, [features.names.index(f"cost.{name}") for name in COST_FEATURES]]
    pruned = features.values[:, columns]
    assert np.all(pruned <= full) and (pruned < full).any(axis=1).sum() > 3_000
    dead = np.flatnonzero(SPACE.degenerate_mask(archs))
    rng = np.random.default_rng(1)
    # the generic pass over the built IR, on live cells and on dead ones (where nothing before the last cell is read)
    for i in [*rng.choice(len(archs), 150, replace=False), *rng.choice(dead, 50, replace=False), 0, 15_624]:
        ir = dict(zip(IR_FEATURE_NAMES, pruned_features(SPACE.to_ir(archs[i]))))
        assert pruned[i].tolist() == [ir[name] for name in COST_FEATURES], archs[i]
    # with edge 2->3 none, the ops into node 2 are never read: two cells that differ only there cost the same pruned
    row = archs.index("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|skip_connect~1|none~2|")
    same = archs.index("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|skip_connect~1|none~2|")
    assert np.array_equal(pruned[row], pruned[same]) and not np.array_equal(full[row], full[same])


def test_invalid_architectures_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="nasbench201"):
        SPACE.model_features(["|nor_conv_3x3~0|+|bogus~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"])
    assert SPACE.model_features([]).values.shape == (0, 488)
