"""Which layers a runtime that prunes unread values still runs.

A ``zero`` layer (NAS-Bench-201's ``none`` op, ``x.mul(0.)``) needs its input's shape, not its values. A graph
compiler that simplifies ``x · 0`` and then removes dead code drops every layer whose values reach the outputs
only through zero layers: in a NAS-Bench-201 cell whose edge 2→3 is ``none``, node 2 and the convolutions
into it compute nothing that is read. :func:`needed_layers` is that set, computed backwards from the outputs
(a layer is needed when a needed layer other than a zero layer reads it); :func:`pruned_features` sums the IR
features (:mod:`nas_latency.ir.features`) over it, the costs such a runtime pays.

Only the reading side is pruned: a layer that computes from zeros (a convolution after a ``none`` edge) still
counts, as a runtime without constant folding runs it.
"""

from __future__ import annotations

import numpy as np

from nas_latency.ir.features import layers_features
from nas_latency.ir.network import DEFAULT_DTYPE_BYTES, Network
from nas_latency.ir.ops import OpKind

#: layers whose output depends on the shape of their inputs only, not on their values
SHAPE_ONLY_KINDS: frozenset[OpKind] = frozenset({OpKind.ZERO})


def needed_layers(network: Network) -> frozenset[str]:
    """Names of the layers whose values the network's outputs depend on (zero layers read no values)."""
    needed: set[str] = set(network.outputs)
    for layer in reversed(network.layers):
        if layer.name in needed and layer.op not in SHAPE_ONLY_KINDS:
            needed.update(layer.inputs)
    names = {layer.name for layer in network.layers}
    return frozenset(needed & names)


def pruned_features(network: Network, dtype_bytes: int = DEFAULT_DTYPE_BYTES) -> np.ndarray:
    """IR features (:data:`~nas_latency.ir.features.IR_FEATURE_NAMES`) of the needed layers only."""
    needed = needed_layers(network)
    return layers_features((layer for layer in network.layers if layer.name in needed), dtype_bytes)


__all__ = ["SHAPE_ONLY_KINDS", "needed_layers", "pruned_features"]
