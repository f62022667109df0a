"""NAS-Bench-201 architecture strings: parse, format, validate, and map to the official benchmark index.

An architecture is six operations, one per cell edge, in the order of :data:`EDGES`
(0→1, 0→2, 1→2, 0→3, 1→3, 2→3). Its string lists, node by node, each incoming edge as ``op~source``::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|

The official index (0..15,624) is the order of the NAS-Bench-201 benchmark file. It is not a closed formula
of the ops (index 0 is an arbitrary-looking cell), so it is read from the bundled latency table.

Parsing is cached: every valid string is looked up in a dict of all 15,625 strings, so validating and parsing
thousands of architectures costs a dict lookup each; only invalid strings go through the slow parser that
explains what is wrong.
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError

#: operations in NAS-Bench-201 order; an op's position here is its op index
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: cell edges (source, target) in string order
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NUM_EDGES = len(EDGES)
NUM_OPS = len(OPS)
NUM_NODES = 4
NUM_ARCHS = NUM_OPS**NUM_EDGES  # 15,625
OP_INDEX: dict[str, int] = {op: i for i, op in enumerate(OPS)}

Ops = tuple[str, ...]


def format_arch(ops: Sequence[str]) -> str:
    """The string of an architecture given its six ops in edge order; ``InvalidInputError`` if they are not."""
    if isinstance(ops, str) or len(ops) != NUM_EDGES:
        raise InvalidInputError(f"a nasbench201 cell has {NUM_EDGES} edge ops, got {ops!r}")
    for (src, dst), op in zip(EDGES, ops):
        if op not in OP_INDEX:
            raise InvalidInputError(
                f"nasbench201 edge {src}->{dst}: unknown operation {op!r}; known operations: {', '.join(OPS)}"
            )
    return _format(tuple(ops))


def _format(ops: Ops) -> str:
    return f"|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|"


@lru_cache(maxsize=1)
def _lookup() -> dict[str, tuple[Ops, tuple[int, ...]]]:
    """Every valid string -> (ops, op indices). Built once from the product of ops (about 20 ms)."""
    table: dict[str, tuple[Ops, tuple[int, ...]]] = {}
    for idx in itertools.product(range(NUM_OPS), repeat=NUM_EDGES):
        ops = tuple(OPS[i] for i in idx)
        table[_format(ops)] = (ops, idx)
    return table


def parse_arch(arch: str) -> Ops:
    """The six ops of ``arch`` in edge order; ``InvalidInputError`` saying what is wrong and where."""
    hit = _lookup().get(arch) if isinstance(arch, str) else None
    if hit is not None:
        return hit[0]
    _explain_invalid(arch)
    raise AssertionError(f"unreachable: {arch!r} parsed but is not in the table")  # pragma: no cover


def op_indices(arch: str) -> tuple[int, ...]:
    """The op index (position in :data:`OPS`) of each edge of ``arch``."""
    hit = _lookup().get(arch) if isinstance(arch, str) else None
    if hit is not None:
        return hit[1]
    _explain_invalid(arch)
    raise AssertionError(f"unreachable: {arch!r} parsed but is not in the table")  # pragma: no cover


def is_valid_arch(arch: object) -> bool:
    return isinstance(arch, str) and arch in _lookup()


def ops_array(archs: Iterable[str]) -> np.ndarray:
    """Op indices of many architectures as an ``(n, 6)`` ``int64`` array (validating each)."""
    table = _lookup()
    rows: list[tuple[int, ...]] = []
    for arch in archs:
        hit = table.get(arch) if isinstance(arch, str) else None
        rows.append(hit[1] if hit is not None else op_indices(arch))
    if not rows:
        return np.zeros((0, NUM_EDGES), dtype=np.int64)
    return np.asarray(rows, dtype=np.int64)


def archs_from_ops_array(codes: np.ndarray) -> list[str]:
    """Inverse of :func:`ops_array`: strings from an ``(n, 6)`` array of op indices."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] != NUM_EDGES:
        raise InvalidInputError(f"op-index array must have shape (n, {NUM_EDGES}), got {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= NUM_OPS):
        raise InvalidInputError(f"op indices must lie in 0..{NUM_OPS - 1}, got {codes.min()}..{codes.max()}")
    return [_format(tuple(OPS[i] for i in row)) for row in codes.tolist()]


# ---- the official index ---------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _official() -> tuple[tuple[str, ...], dict[str, int]]:
    from nas_latency.data import load_table

    frame = load_table("nb201_latency")[["arch_index", "arch_string"]].sort_values("arch_index")
    indices = frame["arch_index"].to_numpy()
    if not np.array_equal(indices, np.arange(NUM_ARCHS)):
        raise InvalidInputError("bundled nb201_latency table: arch_index is not exactly 0..15624")
    strings = tuple(str(s) for s in frame["arch_string"])
    table = _lookup()
    for i, s in enumerate(strings):
        if s not in table:
            raise InvalidInputError(f"bundled nb201_latency table: row {i} has an invalid arch_string {s!r}")
    position = {s: i for i, s in enumerate(strings)}
    if len(position) != NUM_ARCHS:
        raise InvalidInputError("bundled nb201_latency table: arch_string values are not distinct")
    return strings, position


def all_archs() -> list[str]:
    """The 15,625 architecture strings in official index order."""
    return list(_official()[0])


def all_archs_array() -> np.ndarray:
    """The 15,625 strings in official index order as a numpy object array (a fresh copy)."""
    return np.array(_official()[0], dtype=object)


def index_to_arch(index: int) -> str:
    """The string of the architecture with official index ``index``."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise InvalidInputError(f"a nasbench201 index must be an integer, got {index!r}")
    if not 0 <= int(index) < NUM_ARCHS:
        raise InvalidInputError(f"nasbench201 index {index} is out of range 0..{NUM_ARCHS - 1}")
    return _official()[0][int(index)]


def arch_to_index(arch: str) -> int:
    """The official index of ``arch`` (validating it first)."""
    parse_arch(arch)
    return _official()[1][arch]


def indices_to_archs(indices: Sequence[int] | np.ndarray) -> list[str]:
    """Strings for many official indices (vectorized range check)."""
    idx = np.asarray(indices)
    if idx.size == 0:
        return []
    if idx.dtype.kind not in "iu":
        raise InvalidInputError(f"nasbench201 indices must be integers, got dtype {idx.dtype}")
    bad = (idx < 0) | (idx >= NUM_ARCHS)
    if bad.any():
        raise InvalidInputError(
            f"nasbench201 index {int(idx[bad][0])} is out of range 0..{NUM_ARCHS - 1}"
        )
    strings = _official()[0]
    return [strings[i] for i in idx.ravel().tolist()]


def archs_to_indices(archs: Iterable[str]) -> np.ndarray:
    """Official indices of many architectures as an ``int64`` array (validating each)."""
    position = _official()[1]
    out: list[int] = []
    for arch in archs:
        hit = position.get(arch) if isinstance(arch, str) else None
        out.append(hit if hit is not None else arch_to_index(arch))
    return np.asarray(out, dtype=np.int64)


# ---- explaining invalid strings ---------------------------------------------------------------------------
def _explain_invalid(arch: object) -> None:
    """Raise ``InvalidInputError`` describing the first problem found in ``arch``."""
    example = _format(("nor_conv_3x3",) * NUM_EDGES)
    if not isinstance(arch, str):
        raise InvalidInputError(f"a nasbench201 architecture must be a string, got {type(arch).__name__}")
    where = f"nasbench201 architecture {arch!r}"
    if not arch:
        raise InvalidInputError(f"empty nasbench201 architecture string; expected the form {example}")
    if any(ch.isspace() for ch in arch):
        pos = next(i for i, ch in enumerate(arch) if ch.isspace())
        raise InvalidInputError(f"{where}: whitespace at character {pos}; the string must contain no spaces")
    nodes = arch.split("+")
    if len(nodes) != NUM_NODES - 1:
        raise InvalidInputError(
            f"{where}: has {len(nodes)} node(s) separated by '+', expected {NUM_NODES - 1} "
            f"(nodes 1, 2, 3); expected the form {example}"
        )
    for target, node in enumerate(nodes, start=1):
        node_where = f"{where}, node {target} ({node!r})"
        if not (len(node) >= 2 and node.startswith("|") and node.endswith("|")):
            raise InvalidInputError(f"{node_where}: must start and end with '|', like |op~0|")
        entries = node[1:-1].split("|")
        if "" in entries:
            raise InvalidInputError(f"{node_where}: empty edge between '|' bars (a doubled or missing bar?)")
        if len(entries) != target:
            raise InvalidInputError(
                f"{node_where}: has {len(entries)} incoming edge(s), expected {target} (one from each of "
                f"nodes {', '.join(str(s) for s in range(target))})"
            )
        for expected_source, entry in enumerate(entries):
            if entry.count("~") != 1:
                raise InvalidInputError(
                    f"{node_where}: edge {entry!r} must be op~source (one '~'), e.g. nor_conv_3x3~{expected_source}"
                )
            op, source = entry.split("~")
            if not source:
                raise InvalidInputError(f"{node_where}: edge {entry!r} is missing its source node index")
            if source != str(expected_source):
                raise InvalidInputError(
                    f"{node_where}: edge {entry!r} has source {source!r}, expected {expected_source} "
                    f"(edges into node {target} are listed from sources 0..{target - 1} in order)"
                )
            if op not in OP_INDEX:
                raise InvalidInputError(
                    f"{node_where}: unknown operation {op!r} on edge {expected_source}->{target}; "
                    f"known operations: {', '.join(OPS)}"
                )
    raise InvalidInputError(f"{where}: not a valid architecture string; expected the form {example}")
