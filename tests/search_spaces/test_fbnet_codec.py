"""FBNet architecture strings: parsing, formatting and the errors for bad strings."""

from __future__ import annotations

import numpy as np
import pytest

from nas_latency.errors import InvalidInputError
from search_spaces.fbnet.codec import (
    BLOCKS,
    NUM_LAYERS,
    archs_from_codes,
    block_codes,
    codes_array,
    format_arch,
    is_valid_arch,
    parse_arch,
)

ARCH = "-".join(BLOCKS[i % len(BLOCKS)] for i in range(NUM_LAYERS))


def test_blocks_are_the_published_nine() -> None:
    assert BLOCKS == ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
    assert all("-" not in block for block in BLOCKS)


def test_parse_and_format_round_trip() -> None:
    blocks = parse_arch(ARCH)
    assert len(blocks) == NUM_LAYERS and blocks[1] == "k3_e1_g2" and blocks[8] == "skip"
    assert format_arch(blocks) == ARCH
    assert block_codes(ARCH) == tuple(i % len(BLOCKS) for i in range(NUM_LAYERS))


def test_codes_array_round_trip() -> None:
    archs = [ARCH, "-".join(["skip"] * NUM_LAYERS)]
    codes = codes_array(archs)
    assert codes.shape == (2, NUM_LAYERS) and codes.dtype == np.int64
    assert archs_from_codes(codes) == archs
    assert codes_array([]).shape == (0, NUM_LAYERS)
    with pytest.raises(InvalidInputError, match="codes must lie in 0..8"):
        archs_from_codes(np.full((1, NUM_LAYERS), 9))
    with pytest.raises(InvalidInputError, match="shape"):
        archs_from_codes(np.zeros((1, 21), dtype=int))


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("", "empty FBNet architecture string"),
        ("-".join(["k3_e1"] * 21), "has 21 block\\(s\\) separated by '-', expected 22"),
        ("-".join(["k3_e1"] * 23), "has 23 block\\(s\\)"),
        ("k3-e1" + "-k3_e1" * 21, "has 23 block"),  # a '-' inside a block name
        ("-".join(["k3_e1"] * 5 + ["k7_e6"] + ["k3_e1"] * 16), "position 5 \\(layer05\\) has unknown block 'k7_e6'"),
        ("-".join(["k3_e1"] * 21 + ["K3_E1"]), "position 21 \\(layer21\\) has unknown block 'K3_E1'"),
        ("k3_e1--" + "-".join(["k3_e1"] * 20), "position 1 \\(layer01\\) has an empty block name"),
        (" " + ARCH, "whitespace at character 0"),
        (ARCH + "\n", "whitespace at character"),
    ],
)
def test_invalid_strings_say_what_is_wrong(arch: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_arch(arch)
    assert not is_valid_arch(arch)


def test_unknown_block_lists_known_blocks() -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_arch("-".join(["k3_e2"] * NUM_LAYERS))
    assert "known blocks: " + ", ".join(BLOCKS) in str(info.value)


def test_non_string_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="must be a string, got list"):
        parse_arch(["k3_e1"] * NUM_LAYERS)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="has 22 blocks, got 3 blocks"):
        format_arch(["k3_e1"] * 3)
    with pytest.raises(InvalidInputError, match="position 2 \\(layer02\\): unknown block 'x'"):
        format_arch(["k3_e1", "skip", "x"] + ["skip"] * 19)
