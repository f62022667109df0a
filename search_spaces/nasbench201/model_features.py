"""Cost-model features of NAS-Bench-201 cells (the research's 439 "full" features, ``log_macs`` and 2 × 24 IR
costs).

No intercept (the models add their own) and no standardization (the models fit it). Columns, in order:

* ``edge_i_j=op`` (30): one-hot op per edge, as :data:`~search_spaces.nasbench201.space.ENCODING_NAMES`;
* ``edge_i_j=a&edge_k_l=b`` (375): one-hot op pair for each of the 15 edge pairs;
* one-hots of ``live_conv3x3_count=k`` (k = 0..6), ``live_conv1x1_count=k`` (0..6), ``n_paths=k`` (0..4),
  ``max_convs_on_path=k`` (0..3) (23);
* scalars (11): ``is_degenerate`` (dead cell: no input→output path through non-``none`` edges), ``n_paths``,
  ``longest_path``, ``max_convs_on_path``, ``live_skip_count``, ``live_conv1x1_count``, ``live_conv3x3_count``,
  ``live_pool_count``, ``live_edge_count``, ``log1p_live_conv_macs_m`` and ``log1p_conv_macs_m`` (log(1 + MACs
  in millions) of the cell convolutions on live edges / on all edges, over the 15 cells, from the IR);
* ``log_macs``: natural log of the whole network's MACs (IR, stem to classifier);
* ``cost.<group>.<quantity>`` (24): the whole network's IR features (:mod:`nas_latency.ir.features`: count,
  MACs, parameters, bytes read and written per op group, and their totals) that differ between cells, every
  edge counted (a dead edge's op still runs). A network's latency on a device that runs its layers one after
  another is close to a non-negative price per unit of each (:mod:`nas_latency.models.cost_nnls`);
* ``pruned_cost.<group>.<quantity>`` (24): the same costs of the layers a runtime that prunes unread values runs
  (:mod:`nas_latency.ir.liveness`: an edge into a node whose values reach the output only through ``none`` edges
  is dropped, and a dead cell reads nothing before the last cell), for ``pruned_cost_nnls``.

An edge is live when it lies on a path from node 0 to node 3 through non-``none`` edges; the four paths are
0→3, 0→1→3, 0→2→3, 0→1→2→3. Everything is computed on the ``(n, 6)`` op-index array, vectorized.
"""

from __future__ import annotations

import itertools

import numpy as np

from nas_latency.ir.features import IR_FEATURE_NAMES
from nas_latency.ir.network import DEFAULT_DTYPE_BYTES
from search_spaces.nasbench201.cell_paths import PATH_LENGTHS, PATH_MATRIX, path_mask
from search_spaces.nasbench201.codec import EDGES, NUM_EDGES, NUM_OPS, OP_INDEX, OPS
from search_spaces.nasbench201.fast_features import (
    feature_tables,
    ir_features_from_codes,
    pruned_ir_features_from_codes,
)

_SKIP = OP_INDEX["skip_connect"]
_CONV1 = OP_INDEX["nor_conv_1x1"]
_CONV3 = OP_INDEX["nor_conv_3x3"]
_POOL = OP_INDEX["avg_pool_3x3"]

_PAIRS = tuple(itertools.combinations(range(NUM_EDGES), 2))

_EDGE_NAMES = tuple(f"edge_{i}_{j}" for i, j in EDGES)
ONE_HOT_NAMES = tuple(f"{edge}={op}" for edge in _EDGE_NAMES for op in OPS)
PAIR_NAMES = tuple(
    f"{_EDGE_NAMES[a]}={OPS[oa]}&{_EDGE_NAMES[b]}={OPS[ob]}" for a, b in _PAIRS for oa in range(NUM_OPS)
    for ob in range(NUM_OPS)
)
#: (scalar, largest category) of the one-hot count features
_COUNT_ONE_HOTS = (("live_conv3x3_count", 6), ("live_conv1x1_count", 6), ("n_paths", 4), ("max_convs_on_path", 3))
COUNT_NAMES = tuple(f"{name}={k}" for name, top in _COUNT_ONE_HOTS for k in range(top + 1))
SCALAR_NAMES = (
    "is_degenerate",
    "n_paths",
    "longest_path",
    "max_convs_on_path",
    "live_skip_count",
    "live_conv1x1_count",
    "live_conv3x3_count",
    "live_pool_count",
    "live_edge_count",
    "log1p_live_conv_macs_m",
    "log1p_conv_macs_m",
)
#: the IR features that differ between cells (the others are the stem's, reductions' and head's constants)
COST_FEATURES: tuple[str, ...] = (
    "conv.count", "conv.macs", "conv.params", "conv.bytes_read", "conv.bytes_written",
    "pool.count", "pool.bytes_read", "pool.bytes_written",
    "elementwise.count", "elementwise.bytes_read", "elementwise.bytes_written",
    "activation.count", "activation.bytes_read", "activation.bytes_written",
    "batch_norm.count", "batch_norm.params", "batch_norm.bytes_read", "batch_norm.bytes_written",
    "view.count",
    "total.count", "total.macs", "total.params", "total.bytes_read", "total.bytes_written",
)
_COST_COLUMNS = np.array([IR_FEATURE_NAMES.index(name) for name in COST_FEATURES])
MODEL_FEATURE_NAMES: tuple[str, ...] = (
    ONE_HOT_NAMES + PAIR_NAMES + COUNT_NAMES + SCALAR_NAMES + ("log_macs",)
    + tuple(f"cost.{name}" for name in COST_FEATURES) + tuple(f"pruned_cost.{name}" for name in COST_FEATURES)
)
assert len(MODEL_FEATURE_NAMES) == 488 and len(set(MODEL_FEATURE_NAMES)) == 488

_MACS = IR_FEATURE_NAMES.index("total.macs")


def model_feature_values(
    codes: np.ndarray, *, num_classes: int, batch_size: int, dtype_bytes: int = DEFAULT_DTYPE_BYTES
) -> np.ndarray:
    """``(n, 488)`` features (:data:`MODEL_FEATURE_NAMES`) of cells given as ``(n, 6)`` op indices."""
    codes = np.asarray(codes, dtype=np.int64)
    n = codes.shape[0]
    rows = np.arange(n)[:, None]
    out = np.zeros((n, len(MODEL_FEATURE_NAMES)))
    # one-hot op per edge, then one-hot op pair per edge pair
    out[rows, np.arange(NUM_EDGES) * NUM_OPS + codes] = 1.0
    first = np.array([a for a, _ in _PAIRS])
    second = np.array([b for _, b in _PAIRS])
    pair_offsets = len(ONE_HOT_NAMES) + np.arange(len(_PAIRS)) * NUM_OPS**2
    out[rows, pair_offsets + codes[:, first] * NUM_OPS + codes[:, second]] = 1.0

    # cell structure
    paths = path_mask(codes)
    n_paths = paths.sum(axis=1)
    live = (paths.astype(np.int64) @ PATH_MATRIX) > 0
    is_conv = ((codes == _CONV1) | (codes == _CONV3)).astype(np.int64)
    longest = (paths * PATH_LENGTHS).max(axis=1)
    max_convs = (paths * (is_conv @ PATH_MATRIX.T)).max(axis=1)
    live_count = {op: (live & (codes == op)).sum(axis=1) for op in (_SKIP, _CONV1, _CONV3, _POOL)}

    column = len(ONE_HOT_NAMES) + len(PAIR_NAMES)
    for values, top in zip((live_count[_CONV3], live_count[_CONV1], n_paths, max_convs), (6, 6, 4, 3)):
        out[rows[:, 0], column + np.minimum(values, top)] = 1.0
        column += top + 1

    constant, per_op = feature_tables(num_classes, batch_size, dtype_bytes)
    edge_macs = per_op[:, _MACS][codes]  # (n, 6): MACs of each edge's op summed over the 15 cells
    edge_conv_macs = edge_macs * is_conv
    scalars = np.column_stack(
        [
            ~paths.any(axis=1),
            n_paths,
            longest,
            max_convs,
            live_count[_SKIP],
            live_count[_CONV1],
            live_count[_CONV3],
            live_count[_POOL],
            live.sum(axis=1),
            np.log1p((edge_conv_macs * live).sum(axis=1) / 1e6),
            np.log1p(edge_conv_macs.sum(axis=1) / 1e6),
            np.log(constant[_MACS] + edge_macs.sum(axis=1)),
        ]
    )
    out[:, column : column + scalars.shape[1]] = scalars
    column += scalars.shape[1]
    ir = ir_features_from_codes(codes, num_classes=num_classes, batch_size=batch_size, dtype_bytes=dtype_bytes)
    out[:, column : column + len(COST_FEATURES)] = ir[:, _COST_COLUMNS]
    column += len(COST_FEATURES)
    pruned = pruned_ir_features_from_codes(codes, num_classes=num_classes, batch_size=batch_size,
                                           dtype_bytes=dtype_bytes)
    out[:, column:] = pruned[:, _COST_COLUMNS]
    return out
