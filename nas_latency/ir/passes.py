"""Graph passes over the IR. Each returns a new :class:`Network`; inputs are never mutated."""

from __future__ import annotations

from dataclasses import replace

from nas_latency.ir.network import Layer, Network
from nas_latency.ir.ops import COMMUTATIVE_KINDS, WEIGHTED_KINDS, OpKind
from nas_latency.ir.structure import _layer_signature


def _rewire(network: Network, keep: list[Layer], alias: dict[str, str]) -> Network:
    def resolve(name: str) -> str:
        while name in alias:
            name = alias[name]
        return name

    layers = tuple(replace(layer, inputs=tuple(resolve(s) for s in layer.inputs)) for layer in keep)
    outputs = tuple(resolve(o) for o in network.outputs)
    return Network(network.name, network.inputs, layers, outputs)


def remove_identities(network: Network) -> Network:
    """Drop identity layers (they launch no kernel), wiring their consumers to their input."""
    alias = {layer.name: layer.inputs[0] for layer in network.layers if layer.op is OpKind.IDENTITY}
    if not alias:
        return network
    return _rewire(network, [layer for layer in network.layers if layer.op is not OpKind.IDENTITY], alias)


def eliminate_common_subexpressions(network: Network) -> Network:
    """Merge weight-free layers that apply the same op with the same attributes to the same inputs (as ONNX
    exporters and inference runtimes do). Layers with weights are never merged: they are distinct
    computations even on the same input."""
    alias: dict[str, str] = {}
    seen: dict[tuple[str, tuple[str, ...]], str] = {}
    keep: list[Layer] = []
    for layer in network.layers:
        srcs = tuple(alias.get(s, s) for s in layer.inputs)
        if layer.op not in WEIGHTED_KINDS:
            key = (_layer_signature(layer), tuple(sorted(srcs)) if layer.op in COMMUTATIVE_KINDS else srcs)
            if key in seen:
                alias[layer.name] = seen[key]
                continue
            seen[key] = layer.name
        keep.append(layer)
    if not alias:
        return network
    return _rewire(network, keep, alias)


def canonicalize(network: Network) -> Network:
    """The normal form used to compare IR from different producers: no identities, no duplicate pure ops."""
    return eliminate_common_subexpressions(remove_identities(network))
