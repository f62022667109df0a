"""What one measurement is: a :class:`BenchItem` (an IR network stored under a key, of a kind), the sweep
levels, and a single layer as a network of its own (:func:`kernel_network`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from nas_latency.ir import Layer, Network, TensorSpec
from nas_latency.models.layer_features import layer_key

ItemKind = Literal["kernel", "block", "network", "calibration"]
Level = Literal["quick", "full"]
LEVELS: tuple[Level, ...] = ("quick", "full")


@dataclass(frozen=True)
class BenchItem:
    """One thing to measure: ``key`` is the arch string it is stored under; ``copies`` > 1 runs that many copies
    of the network in turn (cold weights, see :func:`~nas_latency.bench.memory_items.cold_kernel_items`)."""

    key: str
    kind: ItemKind
    network: Network
    origin: str
    copies: int = 1


def kernel_network(layer: Layer) -> Network:
    """A network running only ``layer`` (one network input per layer input), named by its key."""
    inputs = tuple(TensorSpec(f"x{i}", shape) for i, shape in enumerate(layer.input_shapes))
    single = replace(layer, name="kernel", inputs=tuple(spec.name for spec in inputs))
    return Network(layer_key(layer), inputs, (single,), ("kernel",))


def kernel_item(layer: Layer, origin: str) -> BenchItem:
    return BenchItem(layer_key(layer), "kernel", kernel_network(layer), origin)
