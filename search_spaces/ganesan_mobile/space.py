"""The 118 mobile networks of Ganesan et al. (IISWC 2020) with layer rows, behind ``ganesan_mobile``.

An architecture is a network name from ``ganesan_mobile_networks.csv`` (``mobilegen_007``,
``mobilenet_v2_1.0``, ...); the numeric id as a string (``"7"``) is accepted too and canonicalizes to the
name. Networks 118..121 (EfficientNets) have latencies but no layer rows, so they cannot be built.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix, Network
from search_spaces.base import SearchSpace
from search_spaces.ganesan_mobile.ir_builder import INPUT_SHAPE, build_network
from search_spaces.ganesan_mobile.model_features import MODEL_FEATURE_NAMES, model_feature_values
from search_spaces.ganesan_mobile.table import NetworkEntry, layer_rows_by_network, network_entries

if TYPE_CHECKING:  # pragma: no cover
    import torch


@lru_cache(maxsize=1)
def _index() -> tuple[dict[str, NetworkEntry], dict[int, NetworkEntry]]:
    entries = network_entries()
    by_name = {e.name: e for e in entries}
    # names like "efficientnet_b0?" (inferred identities) are also found without their question mark
    for e in entries:
        by_name.setdefault(e.name.rstrip("?"), e)
    return by_name, {e.network_id: e for e in entries}


def lookup(arch: str) -> NetworkEntry:
    """The catalogue entry of a network name or numeric id string; ``InvalidInputError`` if unknown."""
    if not isinstance(arch, str):
        raise InvalidInputError(f"a Ganesan network must be given by name (a string), got {type(arch).__name__}")
    by_name, by_id = _index()
    if arch in by_name:
        return by_name[arch]
    if arch.isdigit():
        if int(arch) in by_id:
            return by_id[int(arch)]
        raise InvalidInputError(f"no Ganesan network with id {arch}; ids run 0..{max(by_id)}")
    if not arch:
        raise InvalidInputError("empty Ganesan network name")
    close = difflib.get_close_matches(arch, list(by_name), n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    examples = [by_id[i].name for i in sorted(by_id) if i in (0, 1, 99, 100, 104, 113)]
    raise InvalidInputError(
        f"unknown Ganesan network {arch!r}; {hint}names look like {', '.join(examples)} "
        f"({len(by_id)} networks, see ganesan_mobile_networks.csv)"
    )


def _buildable(arch: str) -> NetworkEntry:
    entry = lookup(arch)
    if not entry.has_layers:
        with_layers = sorted(i for i in layer_rows_by_network())
        raise InvalidInputError(
            f"Ganesan network {entry.name!r} (id {entry.network_id}) has measured latencies but no layer rows "
            f"in ganesan_mobile_layers (only ids {with_layers[0]}..{with_layers[-1]} have layers), so it cannot "
            "be built"
        )
    return entry


@lru_cache(maxsize=None)
def network_ir(network_id: int) -> Network:
    """The IR of network ``network_id`` (built once; networks are immutable)."""
    entry = _index()[1][network_id]
    return build_network(entry.name, layer_rows_by_network()[network_id])


class GanesanMobileSpace(SearchSpace):
    """A fixed set of 118 measured mobile networks (100 random MobileNetV2-style nets and 18 public ones)."""

    name = "ganesan_mobile"
    description = "Ganesan et al. mobile networks: 118 networks with layer tables, 224x224, measured on phones"

    def canonical(self, arch: str) -> str:
        return _buildable(arch).name

    def to_ir(self, arch: str) -> Network:
        return network_ir(_buildable(arch).network_id)

    def to_torch(self, arch: str) -> "torch.nn.Module":
        from nas_latency.bench.ir_to_torch import build_torch_module

        return build_torch_module(self.to_ir(arch), seed=0)

    def input_shape(self) -> tuple[int, ...]:
        return INPUT_SHAPE

    def measured_archs(self) -> list[str]:
        """Names of the networks with both layer rows and latencies, in id order."""
        return [e.name for e in network_entries() if e.has_layers and e.has_latency]

    def sample(self, n: int, *, seed: int) -> list[str]:
        """``n`` distinct networks drawn uniformly from :meth:`measured_archs` (the space is finite)."""
        pool = self.measured_archs()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= len(pool):
            raise InvalidInputError(
                f"sample size must be an integer in 0..{len(pool)} (the networks with layers), got {n!r}"
            )
        picks = np.random.default_rng(seed).choice(len(pool), size=int(n), replace=False)
        return [pool[i] for i in picks.tolist()]

    def model_features(self, archs: Sequence[str]) -> FeatureMatrix:
        """The cost-model features of :mod:`search_spaces.ganesan_mobile.model_features` (the research's 17 and the IR
        costs), from the IR."""
        canonical = [self.canonical(a) for a in archs]
        values = model_feature_values([self.to_ir(a) for a in canonical])
        return FeatureMatrix(MODEL_FEATURE_NAMES, values, tuple(canonical))

    accepts_networks = True

    def network_model_features(self, networks: Sequence[Network]) -> FeatureMatrix:
        """The same features for any network: they are computed from the IR alone."""
        return FeatureMatrix(MODEL_FEATURE_NAMES, model_feature_values(list(networks)), tuple(n.name for n in networks))
