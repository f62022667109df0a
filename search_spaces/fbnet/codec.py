"""FBNet architecture strings: 22 block names joined by ``-``, one per searchable layer, in layer order::

    k3_e1-k3_e6-skip-k5_e1_g2-...   (22 names)

Block names contain ``_`` but never ``-``, so splitting on ``-`` is unambiguous. A valid string is already
canonical (there is exactly one way to write each architecture). Parsing is cached, so validating the same
strings again (featurizing thousands of architectures) costs a dictionary lookup each.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError

#: block choices in the order of the HW-NAS-Bench / HELP tables; a block's position here is its code
BLOCKS: tuple[str, ...] = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
BLOCK_INDEX: dict[str, int] = {name: i for i, name in enumerate(BLOCKS)}
NUM_BLOCKS = len(BLOCKS)
NUM_LAYERS = 22
SEPARATOR = "-"


@dataclass(frozen=True, slots=True)
class BlockSpec:
    """What a non-skip block name means: ``k{kernel}_e{expansion}`` plus ``_g2`` for grouped 1×1 convs."""

    kernel: int
    expansion: int
    groups: int


#: the inverted-residual blocks (``skip`` is the tenth choice and has no spec)
BLOCK_SPECS: dict[str, BlockSpec] = {
    "k3_e1": BlockSpec(3, 1, 1),
    "k3_e1_g2": BlockSpec(3, 1, 2),
    "k3_e3": BlockSpec(3, 3, 1),
    "k3_e6": BlockSpec(3, 6, 1),
    "k5_e1": BlockSpec(5, 1, 1),
    "k5_e1_g2": BlockSpec(5, 1, 2),
    "k5_e3": BlockSpec(5, 3, 1),
    "k5_e6": BlockSpec(5, 6, 1),
}
assert set(BLOCK_SPECS) | {"skip"} == set(BLOCKS)

Codes = tuple[int, ...]


def layer_label(position: int) -> str:
    """``layer03``: the name of a searchable layer (as in the ``fbnet_latency`` table columns)."""
    return f"layer{position:02d}"


def format_arch(blocks: Sequence[str]) -> str:
    """The string of the architecture with these 22 blocks; ``InvalidInputError`` if they are not valid."""
    if isinstance(blocks, str) or len(blocks) != NUM_LAYERS:
        count = "a string" if isinstance(blocks, str) else f"{len(blocks)} blocks"
        raise InvalidInputError(f"an FBNet architecture has {NUM_LAYERS} blocks, got {count}")
    for position, block in enumerate(blocks):
        if block not in BLOCK_INDEX:
            raise InvalidInputError(
                f"position {position} ({layer_label(position)}): unknown block {block!r}; "
                f"known blocks: {', '.join(BLOCKS)}"
            )
    return SEPARATOR.join(blocks)


def parse_arch(arch: str) -> tuple[str, ...]:
    """The 22 block names of ``arch``; ``InvalidInputError`` saying what is wrong and where."""
    return tuple(BLOCKS[i] for i in block_codes(arch))


def block_codes(arch: str) -> Codes:
    """The block code (index into :data:`BLOCKS`) of each of the 22 layers of ``arch``."""
    if not isinstance(arch, str):
        raise InvalidInputError(f"an FBNet architecture must be a string, got {type(arch).__name__}")
    return _codes(arch)


@lru_cache(maxsize=1 << 16)
def _codes(arch: str) -> Codes:
    parts = arch.split(SEPARATOR)
    codes = tuple(BLOCK_INDEX.get(part, -1) for part in parts)
    if len(codes) == NUM_LAYERS and min(codes) >= 0:
        return codes
    _explain_invalid(arch)
    raise AssertionError(f"unreachable: {arch!r} is invalid but no error was raised")  # pragma: no cover


def is_valid_arch(arch: object) -> bool:
    try:
        block_codes(arch)  # type: ignore[arg-type]
    except InvalidInputError:
        return False
    return True


def codes_array(archs: Iterable[str]) -> np.ndarray:
    """Block codes of many architectures as an ``(n, 22)`` ``int64`` array (validating each)."""
    rows = [block_codes(arch) for arch in archs]
    if not rows:
        return np.zeros((0, NUM_LAYERS), dtype=np.int64)
    return np.asarray(rows, dtype=np.int64)


def archs_from_codes(codes: np.ndarray) -> list[str]:
    """Inverse of :func:`codes_array`: strings from an ``(n, 22)`` array of block codes."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] != NUM_LAYERS:
        raise InvalidInputError(f"block-code array must have shape (n, {NUM_LAYERS}), got {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= NUM_BLOCKS):
        raise InvalidInputError(f"block codes must lie in 0..{NUM_BLOCKS - 1}, got {codes.min()}..{codes.max()}")
    return [SEPARATOR.join(BLOCKS[i] for i in row) for row in codes.tolist()]


def _explain_invalid(arch: str) -> None:
    """Raise ``InvalidInputError`` describing the first problem found in ``arch``."""
    example = SEPARATOR.join(("k3_e1",) * 3) + SEPARATOR + "..."
    if not arch:
        raise InvalidInputError(
            f"empty FBNet architecture string; expected {NUM_LAYERS} block names joined by '-', like {example}"
        )
    where = f"FBNet architecture {arch!r}"
    if any(ch.isspace() for ch in arch):
        pos = next(i for i, ch in enumerate(arch) if ch.isspace())
        raise InvalidInputError(f"{where}: whitespace at character {pos}; the string must contain no spaces")
    parts = arch.split(SEPARATOR)
    if len(parts) != NUM_LAYERS:
        raise InvalidInputError(
            f"{where}: has {len(parts)} block(s) separated by '-', expected {NUM_LAYERS} "
            f"(block names use '_' inside, e.g. k5_e1_g2, and '-' only between blocks)"
        )
    for position, part in enumerate(parts):
        if part not in BLOCK_INDEX:
            what = "an empty block name" if not part else f"unknown block {part!r}"
            raise InvalidInputError(
                f"{where}: position {position} ({layer_label(position)}) has {what}; known blocks: {', '.join(BLOCKS)}"
            )
    raise InvalidInputError(f"{where}: not a valid FBNet architecture string")  # pragma: no cover
