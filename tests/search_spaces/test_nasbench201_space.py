"""NasBench201Space: the search-space contract, sampling, encoding and fast featurization."""

from __future__ import annotations

import time

import numpy as np
import pytest

from nas_latency.data import load_table
from nas_latency.errors import InvalidInputError
from nas_latency.ir import IR_FEATURE_NAMES, IRFeaturizer
from search_spaces import get_space
from search_spaces.nasbench201 import ENCODING_NAMES, NasBench201Space, format_arch

MIXED = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"


@pytest.fixture(scope="module")
def space() -> NasBench201Space:
    return NasBench201Space()


def test_registry_resolves_the_space() -> None:
    space = get_space("nasbench201")
    assert isinstance(space, NasBench201Space)
    assert space.name == "nasbench201"
    assert "NAS-Bench-201" in space.description
    assert space.input_shape() == (1, 3, 32, 32)


def test_canonical_validates_and_keeps_the_string(space: NasBench201Space) -> None:
    assert space.canonical(MIXED) == MIXED
    with pytest.raises(InvalidInputError, match="unknown operation 'conv'"):
        space.canonical(MIXED.replace("nor_conv_1x1", "conv"))


def test_measured_archs_are_the_table_in_official_order(space: NasBench201Space) -> None:
    table = load_table("nb201_latency").sort_values("arch_index")
    assert space.measured_archs() == table["arch_string"].tolist()
    assert np.array_equal(space.indices(space.measured_archs()[:100]), np.arange(100))
    assert space.archs([3, 1]) == [space.measured_archs()[3], space.measured_archs()[1]]


def test_sample_is_reproducible_distinct_and_bounded(space: NasBench201Space) -> None:
    first = space.sample(100, seed=7)
    assert first == space.sample(100, seed=7)
    assert first != space.sample(100, seed=8)
    assert len(set(first)) == 100
    assert all(space.canonical(a) == a for a in first)
    assert space.sample(0, seed=1) == []
    assert sorted(space.sample(15625, seed=1)) == sorted(space.measured_archs())
    for bad in (-1, 15626):
        with pytest.raises(InvalidInputError, match=r"n must be in 0\.\.15625"):
            space.sample(bad, seed=0)


def test_sample_is_uniform_over_ops(space: NasBench201Space) -> None:
    codes = space.op_codes(space.sample(5000, seed=0))
    freq = np.bincount(codes.ravel(), minlength=5) / codes.size
    assert np.allclose(freq, 0.2, atol=0.02)


def test_encode_is_one_hot_per_edge(space: NasBench201Space) -> None:
    assert space.encoding_names() == ENCODING_NAMES
    assert len(ENCODING_NAMES) == 30
    assert ENCODING_NAMES[:5] == tuple(
        f"edge_0_1={op}" for op in ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    )
    enc = space.encode([MIXED, format_arch(["none"] * 6)])
    assert enc.shape == (2, 30)
    assert set(np.unique(enc)) == {0.0, 1.0}
    assert (enc.sum(axis=1) == 6).all()
    hot = [ENCODING_NAMES[i] for i in np.flatnonzero(enc[0])]
    assert hot == ["edge_0_1=nor_conv_3x3", "edge_0_2=none", "edge_1_2=avg_pool_3x3", "edge_0_3=skip_connect",
                   "edge_1_3=nor_conv_1x1", "edge_2_3=skip_connect"]
    assert space.encode([]).shape == (0, 30)


def test_featurize_matches_the_generic_path(space: NasBench201Space) -> None:
    archs = space.sample(10, seed=3)
    features = space.featurize(archs)
    assert features.names == IR_FEATURE_NAMES + ENCODING_NAMES
    assert features.rows == tuple(archs)
    generic = IRFeaturizer().transform([space.to_ir(a) for a in archs]).values
    assert np.array_equal(features.values[:, : len(IR_FEATURE_NAMES)], generic)
    assert np.array_equal(features.values[:, len(IR_FEATURE_NAMES) :], space.encode(archs))
    with pytest.raises(InvalidInputError, match="nasbench201"):
        space.featurize([archs[0], "|bogus~0|"])


def test_featurize_all_15625_is_fast(space: NasBench201Space) -> None:
    archs = space.measured_archs()
    start = time.perf_counter()
    features = space.featurize(archs)
    elapsed = time.perf_counter() - start
    assert features.values.shape == (15625, len(IR_FEATURE_NAMES) + 30)
    assert elapsed < 2.0, f"featurize(15,625) took {elapsed:.2f} s"
    macs = features.column("total.macs")
    assert macs.max() == 220_119_680  # all-conv3x3
    assert macs.min() == space.to_ir(format_arch(["none"] * 6)).macs
