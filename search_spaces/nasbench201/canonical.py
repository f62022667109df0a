"""Dead edges, dead cells and isomorphism classes of NAS-Bench-201 cells.

Two notions of "the same computation" are provided, because they differ:

* :func:`cell_key` / :func:`canonical_cell` — the NAS-Bench-201 convention (``CellStructure.to_unique_str``
  with ``consider_zero=True`` in the official code), which yields the **6,466** unique cells quoted by the
  paper. Each node is the sorted ``+``-join of its incoming terms; ``skip_connect`` passes the source's
  expression through, a ``none`` edge (or any edge leaving a node that *is* the zero ``#``) becomes the term
  ``#``, any other op wraps its source as ``(src)@op``. The convention keeps ``#`` summands (``x`` and
  ``x + 0`` are different keys) and treats an op applied to a node that is a *sum* of zeros (``#+#``) as live.
* :func:`computation_key` — the exact reduction: zero terms and dead edges dropped, sums flattened through
  skips as commutative multisets, and each conv/pool application a distinct vertex of a DAG (so a shared
  sub-result and two separate applications of the same op differ). Keys are equal exactly when the cells'
  computation DAGs are isomorphic; this gives **5,425** classes.

``dead_edges`` and ``is_dead_cell`` use plain reachability: an edge is live when it lies on a path from node 0
(the cell input) to node 3 (the output) through non-``none`` edges. 341 of the 15,625 cells are dead (no such
path: the cell computes zeros, whatever its dead ops cost to run).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from functools import lru_cache

from search_spaces.nasbench201.codec import EDGES, NUM_OPS, OP_INDEX, OPS, Ops, _format, op_indices, parse_arch

_NONE = OP_INDEX["none"]
_SKIP = OP_INDEX["skip_connect"]


# ---- reachability -----------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _live_mask(codes: tuple[int, ...]) -> tuple[bool, ...]:
    forward = {0}
    for (src, dst), code in zip(EDGES, codes):  # EDGES is topologically ordered by source
        if code != _NONE and src in forward:
            forward.add(dst)
    backward = {3}
    for (src, dst), code in reversed(list(zip(EDGES, codes))):
        if code != _NONE and dst in backward:
            backward.add(src)
    return tuple(code != _NONE and src in forward and dst in backward for (src, dst), code in zip(EDGES, codes))


def live_edges(arch: str) -> tuple[tuple[int, int], ...]:
    """Edges ``(i, j)`` on some path from node 0 to node 3 through non-``none`` edges, in edge order."""
    return tuple(edge for edge, live in zip(EDGES, _live_mask(op_indices(arch))) if live)


def dead_edges(arch: str) -> tuple[tuple[int, int], ...]:
    """Edges ``(i, j)`` whose op is not ``none`` but that lie on no path from node 0 to node 3 through
    non-``none`` edges: the op runs but cannot affect the cell output. ``none`` edges are not listed."""
    codes = op_indices(arch)
    return tuple(
        edge for edge, code, live in zip(EDGES, codes, _live_mask(codes)) if code != _NONE and not live
    )


def is_dead_cell(arch: str) -> bool:
    """True when no path of non-``none`` edges joins the cell input to its output (the cell computes zeros)."""
    return not any(_live_mask(op_indices(arch)))


def prune_dead(arch: str) -> str:
    """``arch`` with every dead edge replaced by ``none`` (same output, fewer ops)."""
    codes = op_indices(arch)
    return _format(tuple(OPS[c] if live else "none" for c, live in zip(codes, _live_mask(codes))))


# ---- identical networks under two strings -------------------------------------------------------------------
#: edges swapped by :func:`branch_swap_twin`: (0,1) with (0,2), and (1,3) with (2,3)
_SWAPPED_EDGES: tuple[int, ...] = (1, 0, 2, 3, 5, 4)


def branch_swap_twin(arch: str) -> str | None:
    """The *other* string of the identical network, or None when there is none of this kind.

    When edge 1→2 is ``none``, nodes 1 and 2 both read the cell input alone, so exchanging their branches (the op of
    0→1 with that of 0→2, and the op of 1→3 with that of 2→3) runs exactly the same operations on the same tensors,
    dead ones included: only the names of the two nodes change. Returns None when edge 1→2 is not ``none`` or
    when the exchange gives ``arch`` itself (equal branches). 1,500 pairs of the 15,625 cells are twins; a latency
    table measures each of them twice, so they show how closely a measurement is reproduced.
    """
    codes = op_indices(arch)
    if codes[EDGES.index((1, 2))] != _NONE:
        return None
    swapped = tuple(codes[i] for i in _SWAPPED_EDGES)
    return None if swapped == codes else _format(tuple(OPS[c] for c in swapped))


# ---- the NAS-Bench-201 convention (6,466 classes) -------------------------------------------------------
def _nb201_unique_str(ops: Ops) -> str:
    nodes = {0: "0"}
    for target in (1, 2, 3):
        terms: list[str] = []
        for (source, dst), op in zip(EDGES, ops):
            if dst != target:
                continue
            if op == "none" or nodes[source] == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(nodes[source])
            else:
                terms.append(f"({nodes[source]})@{op}")
        nodes[target] = "+".join(sorted(terms))
    return nodes[3]


def cell_key(arch: str) -> str:
    """NAS-Bench-201's isomorphism key of the cell (``to_unique_str(consider_zero=True)``); 6,466 values."""
    return _nb201_unique_str(parse_arch(arch))


@lru_cache(maxsize=1)
def _classes() -> dict[str, str]:
    """cell key -> representative string: the member with the smallest op-index code (edge 0→1 most
    significant, ops in :data:`OPS` order), so dead and redundant edges prefer ``none``."""
    best: dict[str, tuple[tuple[int, ...], str]] = {}
    for codes in itertools.product(range(NUM_OPS), repeat=len(EDGES)):
        ops = tuple(OPS[c] for c in codes)
        key = _nb201_unique_str(ops)
        if key not in best or codes < best[key][0]:
            best[key] = (codes, _format(ops))
    return {key: rep for key, (_, rep) in best.items()}


def canonical_cell(arch: str) -> str:
    """The representative architecture string of ``arch``'s NAS-Bench-201 isomorphism class (one of 6,466):
    every member of a class maps to the same valid string, which can be built like any other."""
    return _classes()[cell_key(arch)]


def isomorphism_classes() -> dict[str, list[str]]:
    """Representative string -> all member strings (in op-index order), for the 6,466 classes."""
    members: dict[str, list[str]] = defaultdict(list)
    for codes in itertools.product(range(NUM_OPS), repeat=len(EDGES)):
        arch = _format(tuple(OPS[c] for c in codes))
        members[canonical_cell(arch)].append(arch)
    return dict(members)


# ---- the exact computation DAG (5,425 classes) ---------------------------------------------------------
def _tree(vertex: object, apps: dict[object, tuple[str, tuple[object, ...]]]) -> str:
    if vertex == "in":
        return "x"
    op, inputs = apps[vertex]
    return f"{op}({'+'.join(sorted(_tree(v, apps) for v in inputs))})"


@lru_cache(maxsize=None)
def _computation_key(codes: tuple[int, ...]) -> str:
    live = _live_mask(codes)
    nodes: dict[int, list[object]] = {0: ["in"]}
    apps: dict[object, tuple[str, tuple[object, ...]]] = {}
    for target in (1, 2, 3):
        terms: list[object] = []
        for edge, ((source, dst), code, is_live) in enumerate(zip(EDGES, codes, live)):
            if dst != target or not is_live:
                continue
            if code == _SKIP:
                terms.extend(nodes[source])
            else:
                apps[edge] = (OPS[code], tuple(nodes[source]))
                terms.append(edge)
        nodes[target] = terms
    if not nodes[3]:
        return "0"
    # Label vertices by their expanded expression; permute labels only among vertices whose expressions tie
    # (at most three), and keep the smallest encoding: a complete isomorphism invariant of the DAG.
    trees = {v: _tree(v, apps) for v in apps}
    groups = [sorted(g) for _, g in itertools.groupby(sorted(apps, key=lambda v: trees[v]), key=lambda v: trees[v])]
    best: str | None = None
    for choice in itertools.product(*(itertools.permutations(g) for g in groups)):
        label: dict[object, int] = {"in": -1}
        for vertex in itertools.chain.from_iterable(choice):
            label[vertex] = len(label) - 1
        parts = sorted(
            f"{label[v]}={apps[v][0]}({','.join(str(i) for i in sorted(label[u] for u in apps[v][1]))})" for v in apps
        )
        encoding = ";".join(parts) + "->" + ",".join(str(i) for i in sorted(label[v] for v in nodes[3]))
        if best is None or encoding < best:
            best = encoding
    assert best is not None
    return best


def computation_key(arch: str) -> str:
    """A key equal for two cells exactly when their computation DAGs are isomorphic (zero terms and dead edges
    dropped, skips flattened, sums as multisets, every conv/pool application its own vertex); ``"0"`` for a
    dead cell. 5,425 distinct values over the space."""
    return _computation_key(op_indices(arch))
