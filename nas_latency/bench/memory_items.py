"""What the caches do to a layer inside a network: cold-weight twins of the micro-kernels
(:func:`cold_kernel_items`), chains of 1×1 convolutions of growing weight footprint (:func:`footprint_items`)
and chains of batch norm + ReLU of growing activation footprint (:func:`context_items`)."""

from __future__ import annotations

import math
from typing import Sequence

from nas_latency.bench.items import BenchItem, Level
from nas_latency.ir import NetworkBuilder
from nas_latency.models.layer_features import layer_key

# ---- cold weights -------------------------------------------------------------------------------------------
COLD_PREFIX = "cold;"
#: Cycle through at least this many bytes of weights (twice a 32 MB last-level cache) in a cold measurement.
COLD_TARGET_BYTES = 64 * 2**20
#: Only layers with at least this many bytes of weights get a cold measurement (below, cold ≈ hot).
COLD_MIN_WEIGHT_BYTES = 32 * 2**10
COLD_MAX_COPIES = 64


def cold_copies(weight_bytes: int, *, target_bytes: int = COLD_TARGET_BYTES, max_copies: int = COLD_MAX_COPIES) -> int:
    """How many copies of a layer cycle through ``target_bytes`` of weights (at least 2, at most ``max_copies``)."""
    if weight_bytes <= 0:
        return 1
    return int(min(max_copies, max(2, math.ceil(target_bytes / weight_bytes))))


def cold_kernel_items(kernels: Sequence[BenchItem], *, min_weight_bytes: int = COLD_MIN_WEIGHT_BYTES,
                      target_bytes: int = COLD_TARGET_BYTES) -> list[BenchItem]:
    """Cold-weight twins (key ``cold;<layer key>``) of the kernels with at least ``min_weight_bytes`` of weights.

    Inside a network, a layer's weights were last read one inference ago, and the rest of the network has been
    through the caches since: a large network reads them from memory, while a micro-kernel timed in a loop finds
    them in cache. The twin runs several copies in turn (tens of MB of weights in all) to measure the cold case;
    the stacked model mixes hot and cold by the network's footprint (:func:`footprint_items`).
    """
    out = []
    seen: set[str] = set()
    for item in kernels:
        layer = item.network.layers[0]
        weight = layer.weight_bytes()
        key = COLD_PREFIX + layer_key(layer)
        if weight >= min_weight_bytes and key not in seen:
            seen.add(key)
            out.append(BenchItem(key, "kernel", item.network, "cold",
                                 cold_copies(weight, target_bytes=target_bytes)))
    return out


FOOTPRINT_PREFIX = "footprint;"


def footprint_items(level: Level) -> list[BenchItem]:
    """Chains of identical 1×1 convolutions whose weights total from under a MB to over a hundred MB: timed in a
    loop, each layer's weights come back after the whole chain has been through the caches, as in a network of
    that footprint. Compared with the chain's layer measured hot and cold, they give how much of the cold penalty a
    network of a given footprint pays (:class:`~nas_latency.models.layer_footprint.FootprintModel`)."""
    settings = ([(128, 8, 4), (512, 4, 4), (512, 4, 64)] if level == "quick" else
                [(128, 8, n) for n in (4, 16, 64)] + [(512, 4, n) for n in (2, 4, 8, 16, 32, 64, 128)]
                + [(256, 8, n) for n in (8, 32, 128)])
    out = []
    for c, s, n in settings:
        b = NetworkBuilder(f"{FOOTPRINT_PREFIX}conv1x1;c={c};s={s};n={n}")
        x = b.input((1, c, s, s), name="x0")
        for _ in range(n):
            x = b.conv(x, c, 1)
        network = b.build()
        out.append(BenchItem(network.name, "block", network, "footprint"))
    return out


CONTEXT_PREFIX = "context;"


def context_items(level: Level) -> list[BenchItem]:
    """Chains of batch norm + ReLU (no weights) whose outputs total from under a MB to tens of MB: every output
    stays alive until the end of the call, as in an IR module, so a long chain writes to memory that is not in cache
    any more. Compared with the sum of their layers they give the context cost ``κ`` (ms per MB of activations) of
    a network of that footprint."""
    settings = ([(144, 32, 2), (144, 32, 16)] if level == "quick" else
                [(144, 32, n) for n in (1, 4, 8, 12, 16, 20, 24, 28, 32, 48, 64)] + [(384, 8, n) for n in (4, 16, 64)]
                + [(32, 32, n) for n in (16, 64)])
    out = []
    for c, s, n in settings:
        b = NetworkBuilder(f"{CONTEXT_PREFIX}bn_relu;c={c};s={s};n={n}")
        x = b.input((1, c, s, s), name="x0")
        for _ in range(n):
            x = b.relu(b.batch_norm(x))
        network = b.build()
        out.append(BenchItem(network.name, "block", network, "context"))
    return out
