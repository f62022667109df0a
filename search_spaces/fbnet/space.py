"""The FBNet search space (HW-NAS-Bench / HELP, CIFAR-100 setting) behind the ``fbnet`` registry name."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix, Network
from search_spaces.base import SearchSpace
from search_spaces.fbnet.codec import (
    BLOCKS,
    NUM_BLOCKS,
    NUM_LAYERS,
    archs_from_codes,
    block_codes,
    codes_array,
    format_arch,
    layer_label,
)
from search_spaces.fbnet.fast_features import block_feature_table
from search_spaces.fbnet.ir_builder import build_ir
from search_spaces.fbnet.macro import INPUT_SHAPE
from search_spaces.fbnet.model_features import MODEL_FEATURE_NAMES, model_feature_values

if TYPE_CHECKING:  # pragma: no cover
    import torch

ENCODING_NAMES: tuple[str, ...] = tuple(f"{layer_label(p)}={block}" for p in range(NUM_LAYERS) for block in BLOCKS)


@lru_cache(maxsize=1)
def _measured() -> tuple[str, ...]:
    """Architecture strings of the bundled ``fbnet_latency`` table, in ``arch_id`` order."""
    from nas_latency.data import FBNET_ID_COLUMNS, load_table

    columns = list(FBNET_ID_COLUMNS[1:])
    frame = load_table("fbnet_latency").sort_values("arch_id")
    archs: list[str] = []
    for arch_id, row in zip(frame["arch_id"].tolist(), frame[columns].itertuples(index=False)):
        try:
            archs.append(format_arch([str(v) for v in row]))
        except InvalidInputError as exc:
            raise InvalidInputError(f"bundled fbnet_latency table, arch_id {arch_id}: {exc}") from None
    return tuple(archs)


class FBNetSpace(SearchSpace):
    """22 searchable layers, each one of 9 blocks (9**22 architectures); strings are block names joined by
    ``-``. The bundled table measures 5,000 of them (all distinct)."""

    name = "fbnet"
    description = "FBNet (HW-NAS-Bench/HELP, CIFAR-100): 22 layers x 9 blocks, 5,000 measured architectures"

    def canonical(self, arch: str) -> str:
        block_codes(arch)  # validates (cached)
        return arch

    def to_ir(self, arch: str) -> Network:
        return build_ir(arch)

    def to_torch(self, arch: str) -> "torch.nn.Module":
        from search_spaces.fbnet.torch_builder import build_torch

        return build_torch(arch)

    def input_shape(self) -> tuple[int, ...]:
        return INPUT_SHAPE

    def measured_archs(self) -> list[str]:
        return list(_measured())

    def sample(self, n: int, *, seed: int) -> list[str]:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise InvalidInputError(f"sample size must be a non-negative integer, got {n!r}")
        rng = np.random.default_rng(seed)
        seen: set[tuple[int, ...]] = set()
        rows: list[tuple[int, ...]] = []
        while len(rows) < n:  # duplicates among 9**22 strings are (almost) impossible; redraw if any
            for row in map(tuple, rng.integers(0, NUM_BLOCKS, size=(n - len(rows), NUM_LAYERS)).tolist()):
                if row not in seen:
                    seen.add(row)
                    rows.append(row)
        return archs_from_codes(np.asarray(rows, dtype=np.int64).reshape(-1, NUM_LAYERS))

    def encoding_names(self) -> tuple[str, ...]:
        return ENCODING_NAMES

    def encode(self, archs: Sequence[str]) -> np.ndarray:
        """One-hot block per layer: column ``layer03=k5_e6`` is 1 when layer 3 is ``k5_e6``."""
        codes = codes_array(archs)
        out = np.zeros((len(codes), len(ENCODING_NAMES)))
        rows = np.arange(len(codes))
        for position in range(NUM_LAYERS):
            out[rows, position * NUM_BLOCKS + codes[:, position]] = 1.0
        return out

    def ir_features(self, archs: Sequence[str]) -> np.ndarray:
        """IR features by summing precomputed per-block vectors; equal to the generic path exactly."""
        return block_feature_table().transform(codes_array(archs))

    def model_features(self, archs: Sequence[str]) -> FeatureMatrix:
        """The 265 cost-model features of :mod:`search_spaces.fbnet.model_features` (vectorized)."""
        return FeatureMatrix(MODEL_FEATURE_NAMES, model_feature_values(codes_array(archs)), tuple(archs))
