"""Fast IR features of many FBNet architectures without building their IR.

IR features are sums over layers (:mod:`nas_latency.ir.features`), so a network's vector is the stem's, plus
the chosen block's at each of the 22 positions, plus the head's. :class:`BlockFeatureTable` builds each piece
once with the very functions :func:`~search_spaces.fbnet.ir_builder.build_ir` uses (198 blocks plus stem and
head, a few milliseconds) and then featurizes any number of architectures with 22 array gathers. Every
feature is an integer far below 2**53, so the float64 sums are exact and equal the generic featurizer's.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np

from nas_latency.ir import NetworkBuilder
from nas_latency.ir.features import IR_FEATURE_NAMES, network_features
from search_spaces.fbnet.codec import BLOCKS, NUM_BLOCKS, NUM_LAYERS
from search_spaces.fbnet.ir_builder import add_block, add_head, add_stem
from search_spaces.fbnet.macro import FINAL_CHANNELS, FINAL_SIZE, INPUT_SHAPE, SLOTS


def _piece_features(name: str, input_shape: tuple[int, ...], build: Callable[[NetworkBuilder, str], str]) -> np.ndarray:
    """IR features of the layers ``build`` appends to a fresh network with one input of ``input_shape``."""
    b = NetworkBuilder(name)
    out = build(b, b.input(input_shape, name="input"))
    return network_features(b.build([out]))


class BlockFeatureTable:
    """Per-(position, block) IR feature vectors and the constant stem + head vector (batch size 1)."""

    def __init__(self) -> None:
        batch = INPUT_SHAPE[0]
        stem = _piece_features("stem", INPUT_SHAPE, add_stem)
        head = _piece_features("head", (batch, FINAL_CHANNELS, FINAL_SIZE, FINAL_SIZE), add_head)
        self.constant: np.ndarray = stem + head
        self.blocks: np.ndarray = np.zeros((NUM_LAYERS, NUM_BLOCKS, len(IR_FEATURE_NAMES)))
        for slot in SLOTS:
            shape = (batch, slot.in_channels, slot.in_size, slot.in_size)
            for code, block in enumerate(BLOCKS):
                self.blocks[slot.index, code] = _piece_features(
                    f"{slot.prefix}={block}", shape, lambda b, x, block=block, slot=slot: add_block(b, x, block, slot)
                )

    def transform(self, codes: np.ndarray) -> np.ndarray:
        """Features ``(n, len(IR_FEATURE_NAMES))`` of architectures given as ``(n, 22)`` block codes."""
        codes = np.asarray(codes)
        out = np.tile(self.constant, (codes.shape[0], 1))
        for position in range(NUM_LAYERS):
            out += self.blocks[position][codes[:, position]]
        return out


@lru_cache(maxsize=1)
def block_feature_table() -> BlockFeatureTable:
    """The table, built on first use and shared."""
    return BlockFeatureTable()
