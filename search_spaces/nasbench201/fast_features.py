"""Vectorized IR features of NAS-Bench-201 networks, equal to the generic IR path.

IR features are sums over layers (:mod:`nas_latency.ir.features`). In a NAS-Bench-201 network everything but
the cell edges is the same for every architecture (stem, reduction blocks, head, and the node adds, which
exist whatever the ops are), and an edge's layers depend only on its op and its stage's tensor shape. So

    features(arch) = constant + sum over the 6 edges of per_op[op of the edge]

where ``per_op[op]`` sums the features of one edge applying ``op`` over the 15 searched cells. Both tables are
computed once, with the same builder functions as :func:`build_ir`: ``per_op`` from single-edge IR pieces,
``constant`` as the all-``none`` network minus its ``none`` edges. All quantities are integers far below
2**53, so float64 sums are exact and the result equals the generic path bit for bit.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from nas_latency.ir import NetworkBuilder, network_features
from nas_latency.ir.features import IR_FEATURE_NAMES
from search_spaces.nasbench201.codec import NUM_EDGES, NUM_OPS, OPS, format_arch
from search_spaces.nasbench201.ir_builder import add_edge, build_ir
from search_spaces.nasbench201.macro import BLOCKS, INPUT_SIZE


def _edge_piece(op: str, shape: tuple[int, int, int, int], dtype_bytes: int) -> np.ndarray:
    b = NetworkBuilder(f"edge:{op}")
    x = b.input(shape, name="input")
    return network_features(b.build([add_edge(b, x, op, "edge")]), dtype_bytes)


@lru_cache(maxsize=None)
def feature_tables(num_classes: int, batch_size: int, dtype_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(constant, per_op)``: the architecture-independent feature vector and a ``(5, n_features)`` table of
    the summed features of one edge per op over all searched cells. Read-only arrays."""
    per_op = np.zeros((NUM_OPS, len(IR_FEATURE_NAMES)))
    for block in BLOCKS:
        if block.kind == "reduction":
            continue
        size = INPUT_SIZE // 2**block.stage
        shape = (batch_size, block.out_channels, size, size)
        for code, op in enumerate(OPS):
            per_op[code] += _edge_piece(op, shape, dtype_bytes)
    all_none = build_ir(format_arch(("none",) * NUM_EDGES), num_classes=num_classes, batch_size=batch_size)
    constant = network_features(all_none, dtype_bytes) - NUM_EDGES * per_op[OPS.index("none")]
    constant.setflags(write=False)
    per_op.setflags(write=False)
    return constant, per_op


def ir_features_from_codes(
    codes: np.ndarray, *, num_classes: int, batch_size: int, dtype_bytes: int
) -> np.ndarray:
    """IR features for an ``(n, 6)`` array of op indices, one row per architecture."""
    constant, per_op = feature_tables(num_classes, batch_size, dtype_bytes)
    counts = (codes[:, :, None] == np.arange(NUM_OPS)).sum(axis=1).astype(np.float64)
    return constant + counts @ per_op
