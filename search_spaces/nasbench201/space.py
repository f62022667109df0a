"""The NAS-Bench-201 search space behind the registry name ``"nasbench201"``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix, Network
from nas_latency.ir.network import DEFAULT_DTYPE_BYTES
from search_spaces.base import SearchSpace
from search_spaces.nasbench201.codec import (
    EDGES,
    NUM_ARCHS,
    NUM_EDGES,
    NUM_OPS,
    OPS,
    all_archs,
    archs_to_indices,
    indices_to_archs,
    ops_array,
    parse_arch,
)
from search_spaces.nasbench201.fast_features import ir_features_from_codes
from search_spaces.nasbench201.ir_builder import build_ir
from search_spaces.nasbench201.macro import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_NUM_CLASSES,
    INPUT_CHANNELS,
    INPUT_SIZE,
    check_positive,
)
from search_spaces.nasbench201.cell_paths import dead_cell_mask
from search_spaces.nasbench201.model_features import MODEL_FEATURE_NAMES, model_feature_values

if TYPE_CHECKING:
    import torch

ENCODING_NAMES: tuple[str, ...] = tuple(f"edge_{i}_{j}={op}" for i, j in EDGES for op in OPS)


class NasBench201Space(SearchSpace):
    """NAS-Bench-201's 15,625 cells in the CIFAR network (C=16, N=5); architectures are official strings.

    The canonical string of an architecture is the string itself once validated (each architecture has exactly
    one valid string); isomorphic cells stay distinct architectures because their measured latencies differ.
    See :mod:`search_spaces.nasbench201.canonical` for isomorphism classes.
    """

    name = "nasbench201"
    description = "NAS-Bench-201: 15,625 cells (6 edges x 5 ops) in the CIFAR-10 ResNet-like skeleton, 32x32 input"

    def __init__(self, *, num_classes: int = DEFAULT_NUM_CLASSES, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        check_positive(num_classes, "num_classes")
        check_positive(batch_size, "batch_size")
        self.num_classes = num_classes
        self.batch_size = batch_size

    # ---- the contract -------------------------------------------------------------------------------------
    def canonical(self, arch: str) -> str:
        parse_arch(arch)  # a dict lookup for valid strings; explains what is wrong otherwise
        return arch

    def to_ir(self, arch: str) -> Network:
        return build_ir(arch, num_classes=self.num_classes, batch_size=self.batch_size)

    def to_torch(self, arch: str, *, seed: int = 0) -> "torch.nn.Module":
        from search_spaces.nasbench201.torch_builder import build_torch

        return build_torch(arch, num_classes=self.num_classes, seed=seed)

    def input_shape(self) -> tuple[int, ...]:
        return (self.batch_size, INPUT_CHANNELS, INPUT_SIZE, INPUT_SIZE)

    def measured_archs(self) -> list[str]:
        """All 15,625 strings, in official NAS-Bench-201 index order (the bundled tables cover every one)."""
        return all_archs()

    def sample(self, n: int, *, seed: int) -> list[str]:
        """``n`` distinct architectures drawn uniformly without replacement (``numpy`` ``default_rng(seed)``)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise InvalidInputError(f"sample size must be an integer, got {n!r}")
        if not 0 <= n <= NUM_ARCHS:
            raise InvalidInputError(
                f"cannot sample {n} distinct nasbench201 architectures: n must be in 0..{NUM_ARCHS}"
            )
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise InvalidInputError(f"seed must be an integer, got {seed!r}")
        rng = np.random.default_rng(int(seed))
        return indices_to_archs(rng.choice(NUM_ARCHS, size=int(n), replace=False))

    def encoding_names(self) -> tuple[str, ...]:
        return ENCODING_NAMES

    def encode(self, archs: Sequence[str]) -> np.ndarray:
        """One-hot op per edge: ``(n, 30)`` floats, column ``edge_i_j=op``."""
        codes = ops_array(archs)
        out = np.zeros((codes.shape[0], NUM_EDGES * NUM_OPS))
        out[np.arange(codes.shape[0])[:, None], np.arange(NUM_EDGES) * NUM_OPS + codes] = 1.0
        return out

    def ir_features(self, archs: Sequence[str]) -> np.ndarray:
        """Vectorized IR features, equal to ``IRFeaturizer().transform([to_ir(a) for a in archs]).values``."""
        return ir_features_from_codes(
            ops_array(archs), num_classes=self.num_classes, batch_size=self.batch_size, dtype_bytes=DEFAULT_DTYPE_BYTES
        )

    def model_features(self, archs: Sequence[str]) -> FeatureMatrix:
        """The 488 cost-model features of :mod:`search_spaces.nasbench201.model_features` (vectorized)."""
        codes = ops_array(archs)  # validates every string
        values = model_feature_values(codes, num_classes=self.num_classes, batch_size=self.batch_size)
        return FeatureMatrix(MODEL_FEATURE_NAMES, values, tuple(archs))

    def degenerate_mask(self, archs: Sequence[str]) -> np.ndarray:
        """Dead cells (no input→output path; :func:`canonical.is_dead_cell`), vectorized."""
        return dead_cell_mask(ops_array(archs))

    # ---- fast array helpers -------------------------------------------------------------------------------
    def op_codes(self, archs: Sequence[str]) -> np.ndarray:
        """``(n, 6)`` op indices (positions in ``OPS``), edges in string order."""
        return ops_array(archs)

    def indices(self, archs: Sequence[str]) -> np.ndarray:
        """Official NAS-Bench-201 indices of ``archs`` as ``int64``."""
        return archs_to_indices(archs)

    def archs(self, indices: Sequence[int] | np.ndarray) -> list[str]:
        """Strings of official indices."""
        return indices_to_archs(indices)
