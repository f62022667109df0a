"""The default cost-model features of a search space (for spaces that do not define their own)."""

from __future__ import annotations

import numpy as np

from nas_latency.ir.features import IR_FEATURE_NAMES
from search_spaces import SearchSpace, get_space


def test_default_model_features_are_log_ir_features_encoding_macs_and_degenerate_flag() -> None:
    space = get_space("fbnet")
    archs = space.measured_archs()[:20]
    features = SearchSpace.model_features(space, archs)  # the base-class default, not FBNet's override
    encoding = space.encoding_names()
    assert features.names == tuple(f"log1p({n})" for n in IR_FEATURE_NAMES) + encoding + ("log_macs", "is_degenerate")
    ir = space.ir_features(archs)
    n_ir = len(IR_FEATURE_NAMES)
    assert np.array_equal(features.values[:, :n_ir], np.log1p(ir))
    assert np.array_equal(features.values[:, n_ir : n_ir + len(encoding)], space.encode(archs))
    assert np.allclose(features.column("log_macs"), np.log(ir[:, IR_FEATURE_NAMES.index("total.macs")]))
    assert not features.column("is_degenerate").any()
    assert np.array_equal(SearchSpace.degenerate_mask(space, archs), np.zeros(20, dtype=bool))


def test_default_features_use_the_space_degenerate_mask() -> None:
    space = get_space("nasbench201")
    archs = space.sample(200, seed=1) + ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"]
    features = SearchSpace.model_features(space, archs)
    assert np.array_equal(features.column("is_degenerate").astype(bool), space.degenerate_mask(archs))
    assert features.column("is_degenerate")[-1] == 1.0
