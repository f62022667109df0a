"""The contract every search space implements, so that ``--space NAME`` resolves everywhere."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
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
    #: whether :meth:`network_model_features` featurizes arbitrary networks (ONNX, layer tables)
    accepts_networks: bool = False

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

    # ---- cost-model features ---------------------------------------------------------------------------
    def degenerate_mask(self, archs: Sequence[str]) -> np.ndarray:
        """``True`` for architectures a device may skip as computing nothing useful (e.g. a NAS-Bench-201 cell
        with no input→output path); none by default."""
        return np.zeros(len(archs), dtype=bool)

    def model_features(self, archs: Sequence[str]) -> FeatureMatrix:
        """Features for the cost models (:mod:`nas_latency.models`): by default ``log1p`` of the IR features,
        the space encoding, ``log_macs`` (natural log of the network's MACs, at least 1) and ``is_degenerate``
        (0/1, from :meth:`degenerate_mask`). No intercept and no standardization: the models add and fit
        those. Spaces override this with the features their cost models were designed on."""
        canonical = [self.canonical(a) for a in archs]
        ir = self.ir_features(canonical)
        macs = ir[:, IR_FEATURE_NAMES.index("total.macs")]
        values = np.hstack(
            [
                np.log1p(ir),
                self.encode(canonical),
                np.log(np.maximum(macs, 1.0))[:, None],
                self.degenerate_mask(canonical).astype(np.float64)[:, None],
            ]
        )
        names = tuple(f"log1p({n})" for n in IR_FEATURE_NAMES) + self.encoding_names() + ("log_macs", "is_degenerate")
        return FeatureMatrix(names, values, tuple(canonical))

    def network_model_features(self, networks: Sequence[Network]) -> FeatureMatrix:
        """Cost-model features of arbitrary networks (ONNX files, layer tables, torch modules), for spaces whose
        model features come from the IR alone. Spaces whose features encode their own architecture strings
        (a cell's edges, a block per layer) cannot featurize an arbitrary network and say so."""
        raise InvalidInputError(
            f"space {self.name!r} predicts only its own architecture ids: its cost-model features encode the "
            "architecture string, so an arbitrary network (ONNX file, layer table) cannot be featurized in it"
        )
