"""The contract every search space implements, so that ``--space NAME`` resolves everywhere."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Sequence

import numpy as np

from nas_latency.ir import FeatureMatrix, Network
from nas_latency.ir.features import IR_FEATURE_NAMES, IRFeaturizer

if TYPE_CHECKING:  # torch is imported lazily, only by the callers that build modules
    import torch


class SearchSpace(ABC):
    """A family of networks addressed by canonical strings (architecture ids)."""

    #: registry name, e.g. ``"nasbench201"``
    name: str
    #: one line for ``nas-latency spaces``
    description: str

    @abstractmethod
    def canonical(self, arch: str) -> str:
        """Validate ``arch`` and return its canonical string; raise ``InvalidInputError`` saying what is wrong."""

    @abstractmethod
    def to_ir(self, arch: str) -> Network:
        """The network of ``arch`` as IR, built straight from the string (no torch)."""

    @abstractmethod
    def to_torch(self, arch: str) -> "torch.nn.Module":
        """A torch module computing ``arch`` (in eval mode)."""

    @abstractmethod
    def input_shape(self) -> tuple[int, ...]:
        """Shape of the example input, batch dimension included."""

    @abstractmethod
    def measured_archs(self) -> list[str]:
        """The canonical strings of the architectures with measured latencies in the bundled data."""

    @abstractmethod
    def sample(self, n: int, *, seed: int) -> list[str]:
        """``n`` distinct architectures drawn uniformly from the space, reproducibly for a seed."""

    def encoding_names(self) -> tuple[str, ...]:
        """Names of the space-specific encoding features (e.g. a one-hot op per edge); none by default."""
        return ()

    def encode(self, archs: Sequence[str]) -> np.ndarray:
        """Space-specific encoding, one row per arch, columns named by :meth:`encoding_names`."""
        return np.zeros((len(archs), 0))

    def ir_features(self, archs: Sequence[str]) -> np.ndarray:
        """IR features (:data:`IR_FEATURE_NAMES`) of each arch. Spaces override this with a fast path that
        must agree with the generic one below."""
        return IRFeaturizer().transform([self.to_ir(a) for a in archs]).values

    def feature_names(self) -> tuple[str, ...]:
        return IR_FEATURE_NAMES + self.encoding_names()

    def featurize(self, archs: Sequence[str]) -> FeatureMatrix:
        """Per-network features: the IR features followed by the space encoding."""
        canonical = [self.canonical(a) for a in archs]
        values = np.hstack([self.ir_features(canonical), self.encode(canonical)])
        return FeatureMatrix(self.feature_names(), values, tuple(canonical))
