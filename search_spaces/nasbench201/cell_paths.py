"""The paths of a NAS-Bench-201 cell, vectorized over ``(n, 6)`` op-index arrays.

Node 0 is the cell input, node 3 its output; the four input→output paths are 0→3, 0→1→3, 0→2→3 and 0→1→2→3. A
path runs when none of its edges is ``none``; a cell where none runs is dead (it computes nothing from its input).
Shared by the cost-model features (:mod:`~search_spaces.nasbench201.model_features`) and the pruned IR costs
(:mod:`~search_spaces.nasbench201.fast_features`).
"""

from __future__ import annotations

import numpy as np

from search_spaces.nasbench201.codec import EDGES, NUM_EDGES, OP_INDEX

#: edge (source, target) -> its column in an op-index array
EDGE_INDEX: dict[tuple[int, int], int] = {edge: i for i, edge in enumerate(EDGES)}
PATHS: tuple[tuple[int, ...], ...] = ((0, 3), (0, 1, 3), (0, 2, 3), (0, 1, 2, 3))
#: (n_paths x n_edges) 0/1: which edges each path uses
PATH_MATRIX = np.zeros((len(PATHS), NUM_EDGES), dtype=np.int64)
for _j, _path in enumerate(PATHS):
    PATH_MATRIX[_j, [EDGE_INDEX[(_path[k], _path[k + 1])] for k in range(len(_path) - 1)]] = 1
PATH_LENGTHS = PATH_MATRIX.sum(axis=1)
PATH_MATRIX.setflags(write=False)
PATH_LENGTHS.setflags(write=False)


def path_mask(codes: np.ndarray) -> np.ndarray:
    """``(n, 4)`` bool: which of :data:`PATHS` run through non-``none`` edges only."""
    alive = (np.asarray(codes) != OP_INDEX["none"]).astype(np.int64)
    return (alive @ PATH_MATRIX.T) == PATH_LENGTHS


def dead_cell_mask(codes: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: cells with no input→output path (same as :func:`canonical.is_dead_cell`, vectorized)."""
    return ~path_mask(codes).any(axis=1)


__all__ = ["EDGE_INDEX", "PATHS", "PATH_LENGTHS", "PATH_MATRIX", "dead_cell_mask", "path_mask"]
