"""Vectorized IR features of NAS-Bench-201 networks, equal to the generic IR path.

IR features are sums over layers (:mod:`nas_latency.ir.features`). In a NAS-Bench-201 network everything but
the cell edges is the same for every architecture (stem, reduction blocks, head, and the node adds, which
exist whatever the ops are), and an edge's layers depend only on its op and its stage's tensor shape. So

    features(arch) = constant + sum over the 6 edges of per_op[op of the edge]

where ``per_op[op]`` sums the features of one edge applying ``op`` over the 15 searched cells. Both tables are
computed once, with the same builder functions as :func:`build_ir`: ``per_op`` from single-edge IR pieces,
``constant`` as the all-``none`` network minus its ``none`` edges. All quantities are integers far below
2**53, so float64 sums are exact and the result equals the generic path bit for bit.

The *pruned* features (:func:`nas_latency.ir.liveness.pruned_features`: the layers whose values reach the output
other than through a ``none`` edge) follow the same way. Node 3 is read; node 2 is read when edge 2→3 is not
``none``; node 1 when edge 1→3 is not, or edge 1→2 is not and node 2 is read. An edge runs when its target node
is read, and node 2's add when node 2 is, so

    pruned(arch) = constant − (node 2 unread) · node2_add + sum over the edges into read nodes of per_op[op]

with ``node2_add`` the features of node 2's add over the 15 cells. A dead cell (no path of non-``none`` edges from
its input to its output) reads no values of its input, so nothing before the last cell is read: such a network
prunes to the head, node 3's adds and the read edges (node 2's add when node 2 is read) of the last cell alone
(:func:`pruned_tables`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from nas_latency.ir import NetworkBuilder, network_features
from nas_latency.ir.features import IR_FEATURE_NAMES
from nas_latency.ir.liveness import pruned_features
from search_spaces.nasbench201.cell_paths import EDGE_INDEX, dead_cell_mask
from search_spaces.nasbench201.codec import NUM_EDGES, NUM_OPS, OP_INDEX, OPS, format_arch
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


def _add_piece(shape: tuple[int, int, int, int], dtype_bytes: int) -> np.ndarray:
    b = NetworkBuilder("node_add")
    x = b.input(shape, name="input")
    return network_features(b.build([b.add(x, x, name="add")]), dtype_bytes)


@lru_cache(maxsize=None)
def pruned_tables(num_classes: int, batch_size: int, dtype_bytes: int) -> dict[str, np.ndarray]:
    """The tables of :func:`pruned_ir_features_from_codes` (read-only arrays):

    * ``node2_add``: node 2's add summed over the 15 cells;
    * ``last_per_op`` (5 x features), ``last_add``: one edge per op, one add, in the last cell only;
    * ``head``: what follows the last cell (batch norm, ReLU, pooling, classifier), from the all-``none``
      network, which prunes to its last cell's three ``none`` edges, node 3's two adds and the head.
    """
    node2_add = np.zeros(len(IR_FEATURE_NAMES))
    last_shape: tuple[int, int, int, int] | None = None
    for block in BLOCKS:
        if block.kind == "reduction":
            continue
        size = INPUT_SIZE // 2**block.stage
        last_shape = (batch_size, block.out_channels, size, size)
        node2_add += _add_piece(last_shape, dtype_bytes)
    assert last_shape is not None
    last_per_op = np.stack([_edge_piece(op, last_shape, dtype_bytes) for op in OPS])
    last_add = _add_piece(last_shape, dtype_bytes)
    all_none = build_ir(format_arch(("none",) * NUM_EDGES), num_classes=num_classes, batch_size=batch_size)
    head = pruned_features(all_none, dtype_bytes) - 3 * last_per_op[OPS.index("none")] - 2 * last_add
    tables = {"node2_add": node2_add, "last_per_op": last_per_op, "last_add": last_add, "head": head}
    for table in tables.values():
        table.setflags(write=False)
    return tables


def read_edge_mask(codes: np.ndarray) -> np.ndarray:
    """``(n, 6)`` bool: the edges whose target node's values reach the cell output (other than through
    ``none``), i.e. the edges a runtime that prunes unread values runs."""
    codes = np.asarray(codes)
    real = codes != OP_INDEX["none"]
    node2 = node2_read(codes)
    node1 = real[:, EDGE_INDEX[(1, 3)]] | (real[:, EDGE_INDEX[(1, 2)]] & node2)
    mask = np.ones(codes.shape, dtype=bool)
    mask[:, EDGE_INDEX[(0, 1)]] = node1
    mask[:, EDGE_INDEX[(0, 2)]] = node2
    mask[:, EDGE_INDEX[(1, 2)]] = node2
    return mask


def node2_read(codes: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: node 2's values reach the cell output (edge 2→3 is not ``none``)."""
    return np.asarray(codes)[:, EDGE_INDEX[(2, 3)]] != OP_INDEX["none"]


def pruned_ir_features_from_codes(
    codes: np.ndarray, *, num_classes: int, batch_size: int, dtype_bytes: int
) -> np.ndarray:
    """:func:`~nas_latency.ir.liveness.pruned_features` for an ``(n, 6)`` array of op indices (see the module
    docstring), one row per architecture."""
    codes = np.asarray(codes)
    constant, per_op = feature_tables(num_classes, batch_size, dtype_bytes)
    tables = pruned_tables(num_classes, batch_size, dtype_bytes)
    read = read_edge_mask(codes)
    node2 = node2_read(codes).astype(np.float64)[:, None]
    counts = ((codes[:, :, None] == np.arange(NUM_OPS)) & read[:, :, None]).sum(axis=1).astype(np.float64)
    out = constant - (1.0 - node2) * tables["node2_add"] + counts @ per_op
    dead = dead_cell_mask(codes)
    if dead.any():
        out[dead] = (tables["head"] + (2.0 + node2[dead]) * tables["last_add"]
                     + counts[dead] @ tables["last_per_op"])
    return out

