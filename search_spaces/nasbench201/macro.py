"""The NAS-Bench-201 macro skeleton (CIFAR setting), shared by the IR and torch builders.

``cells`` holds 17 blocks: 5 searched cells at 16 channels, a residual reduction block to 32, 5 cells at 32,
a reduction block to 64, 5 cells at 64 (NAS-Bench-201's ``TinyNetwork`` with C=16, N=5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nas_latency.errors import InvalidInputError

INPUT_CHANNELS = 3
INPUT_SIZE = 32
STEM_CHANNELS = 16
CELLS_PER_STAGE = 5
STAGE_CHANNELS: tuple[int, ...] = (16, 32, 64)
DEFAULT_NUM_CLASSES = 10
DEFAULT_BATCH_SIZE = 1


@dataclass(frozen=True, slots=True)
class Block:
    """One entry of ``cells``: a searched cell (``kind="cell"``) or a residual reduction block."""

    index: int
    kind: Literal["cell", "reduction"]
    stage: int
    in_channels: int
    out_channels: int


def blocks() -> tuple[Block, ...]:
    """The 17 blocks in order, with the stage each one belongs to (a reduction block opens its stage)."""
    out: list[Block] = []
    channels = STEM_CHANNELS
    for stage, stage_channels in enumerate(STAGE_CHANNELS):
        if stage > 0:
            out.append(Block(len(out), "reduction", stage, channels, stage_channels))
            channels = stage_channels
        for _ in range(CELLS_PER_STAGE):
            out.append(Block(len(out), "cell", stage, channels, channels))
    return tuple(out)


BLOCKS: tuple[Block, ...] = blocks()
FINAL_CHANNELS = STAGE_CHANNELS[-1]


def check_positive(value: object, what: str) -> None:
    """``InvalidInputError`` unless ``value`` is a positive ``int`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{what} must be a positive integer, got {value!r}")
