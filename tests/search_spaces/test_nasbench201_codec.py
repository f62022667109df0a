"""NAS-Bench-201 strings: parsing, formatting, validation messages, and the official index."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nas_latency.data import load_table
from nas_latency.errors import InvalidInputError
from search_spaces.nasbench201.codec import (
    EDGES,
    NUM_ARCHS,
    OPS,
    all_archs,
    all_archs_array,
    arch_to_index,
    archs_from_ops_array,
    archs_to_indices,
    format_arch,
    index_to_arch,
    indices_to_archs,
    is_valid_arch,
    op_indices,
    ops_array,
    parse_arch,
)

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
MIXED = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|none~2|"


def test_ops_and_edges_are_in_nb201_order() -> None:
    assert OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert EDGES == ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


def test_parse_gives_ops_in_edge_order_and_format_inverts_it() -> None:
    ops = parse_arch(MIXED)
    assert ops == ("avg_pool_3x3", "nor_conv_1x1", "skip_connect", "nor_conv_1x1", "skip_connect", "none")
    assert format_arch(ops) == MIXED
    assert op_indices(MIXED) == (4, 2, 1, 2, 1, 0)


def test_every_op_product_round_trips() -> None:
    strings = [format_arch(ops) for ops in itertools.product(OPS, repeat=6)]
    assert len(set(strings)) == NUM_ARCHS == 15625
    assert all(format_arch(parse_arch(s)) == s for s in strings)
    codes = ops_array(strings)
    assert codes.shape == (NUM_ARCHS, 6) and codes.dtype == np.int64
    assert archs_from_ops_array(codes) == strings


def test_official_index_matches_both_bundled_tables() -> None:
    latency = load_table("nb201_latency").sort_values("arch_index")
    accuracy = load_table("nb201_cifar10_accuracy").sort_values("arch_index")
    expected = latency["arch_string"].tolist()
    assert accuracy["arch_string"].tolist() == expected
    assert all_archs() == expected
    assert all_archs_array().tolist() == expected
    assert [index_to_arch(i) for i in range(NUM_ARCHS)] == expected
    assert all(arch_to_index(s) == i for i, s in enumerate(expected))
    assert indices_to_archs(np.arange(NUM_ARCHS)) == expected
    assert np.array_equal(archs_to_indices(expected), np.arange(NUM_ARCHS))


def test_official_index_is_not_the_product_order() -> None:
    # Index 0 of NAS-Bench-201 is this cell, so the index cannot be a closed formula of the ops (hence the table).
    first = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    assert index_to_arch(0) == first
    product_order = [format_arch(ops) for ops in itertools.product(OPS, repeat=6)]
    assert all_archs() != product_order and sorted(all_archs()) == sorted(product_order)


@pytest.mark.parametrize("index", [-1, NUM_ARCHS, 10**9])
def test_out_of_range_index_is_an_error(index: int) -> None:
    with pytest.raises(InvalidInputError, match=r"out of range 0\.\.15624"):
        index_to_arch(index)
    with pytest.raises(InvalidInputError, match="out of range"):
        indices_to_archs([0, index])


@pytest.mark.parametrize("index", [1.0, "3", True])
def test_non_integer_index_is_an_error(index: object) -> None:
    with pytest.raises(InvalidInputError, match="must be an integer"):
        index_to_arch(index)  # type: ignore[arg-type]


GOOD_TAIL = "+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.mark.parametrize(
    "arch, needle",
    [
        ("", "empty nasbench201 architecture string"),
        ("|nor_conv_3x3~0|+|", "has 2 node(s) separated by '+', expected 3"),
        ("|none~0|" + GOOD_TAIL + "+|none~0|", "has 4 node(s)"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|", "node 3 ('|none~0|none~1|'): has 2 incoming edge(s), expected 3"),
        ("|none~0|none~0|" + GOOD_TAIL, "node 1 ('|none~0|none~0|'): has 2 incoming edge(s), expected 1"),
        ("|none~1|" + GOOD_TAIL, "edge 'none~1' has source '1', expected 0"),
        ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "edge 'none~0' has source '0', expected 1"),
        ("|none~|" + GOOD_TAIL, "edge 'none~' is missing its source node index"),
        ("|none|" + GOOD_TAIL, "edge 'none' must be op~source"),
        ("|conv_3x3~0|" + GOOD_TAIL, "unknown operation 'conv_3x3' on edge 0->1; known operations: none, skip_connect, "
         "nor_conv_1x1, nor_conv_3x3, avg_pool_3x3"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|max_pool_3x3~2|", "unknown operation 'max_pool_3x3' on edge 2->3"),
        ("none~0|" + GOOD_TAIL, "must start and end with '|'"),
        ("|none~0" + GOOD_TAIL, "must start and end with '|'"),
        ("|none~0|+|none~0||none~1|+|none~0|none~1|none~2|", "empty edge between '|' bars"),
        (" |none~0|" + GOOD_TAIL, "whitespace at character 0"),
        ("|none~0|" + GOOD_TAIL + "\n", "whitespace at character 47"),
        ("|none~0| +|none~0|none~1|+|none~0|none~1|none~2|", "whitespace at character 8"),
    ],
)
def test_invalid_strings_say_what_is_wrong(arch: str, needle: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_arch(arch)
    assert needle in str(info.value)
    assert "nasbench201" in str(info.value)
    assert not is_valid_arch(arch)


def test_non_string_arch_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match="must be a string, got int"):
        parse_arch(3)  # type: ignore[arg-type]


def test_format_rejects_bad_op_lists() -> None:
    with pytest.raises(InvalidInputError, match="has 6 edge ops"):
        format_arch(["none"] * 5)
    with pytest.raises(InvalidInputError, match="edge 1->2: unknown operation 'conv'"):
        format_arch(["none", "none", "conv", "none", "none", "none"])


def test_bad_op_index_arrays_are_errors() -> None:
    with pytest.raises(InvalidInputError, match=r"shape \(n, 6\)"):
        archs_from_ops_array(np.zeros((2, 5), dtype=int))
    with pytest.raises(InvalidInputError, match=r"0\.\.4"):
        archs_from_ops_array(np.full((1, 6), 5))
