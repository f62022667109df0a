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


#: kinds whose IR omits what tells two of them on the same input apart (a slice's offsets, a transpose's
#: permutation): q, k and v selected from one packed tensor are three computations with one shape
_UNMERGEABLE_KINDS = WEIGHTED_KINDS | {OpKind.SLICE, OpKind.TRANSPOSE}


def eliminate_common_subexpressions(network: Network) -> Network:
    """Merge weight-free layers that apply the same op with the same attributes to the same inputs (as ONNX
    exporters and inference runtimes do). Layers with weights are never merged: they are distinct
    computations even on the same input; nor are slices and transposes, whose offsets and permutations the IR
    does not keep."""
    alias: dict[str, str] = {}
    seen: dict[tuple[str, tuple[str, ...]], str] = {}
    keep: list[Layer] = []
    for layer in network.layers:
        srcs = tuple(alias.get(s, s) for s in layer.inputs)
        if layer.op not in _UNMERGEABLE_KINDS:
            key = (_layer_signature(layer), tuple(sorted(srcs)) if layer.op in COMMUTATIVE_KINDS else srcs)
            if key in seen:
                alias[layer.name] = seen[key]
                continue
            seen[key] = layer.name
        keep.append(layer)
    if not alias:
        return network
    return _rewire(network, keep, alias)


def fuse_transposes(network: Network) -> Network:
    """One transpose for each chain of transposes where every link but the last is read only by the next (and is
    not an output): ONNX exporters and runtimes fold such chains into one data movement. The IR keeps shapes, not
    permutations, so the fused layer is a transpose from the chain's input to its output shape."""
    readers: dict[str, int] = {}
    for layer in network.layers:
        for src in layer.inputs:
            readers[src] = readers.get(src, 0) + 1
    by_name = {layer.name: layer for layer in network.layers}
    fused: dict[str, Layer] = {}  # a transpose -> the same transpose reading from its chain's input
    dropped: set[str] = set()
    for layer in network.layers:
        if layer.op is not OpKind.TRANSPOSE:
            continue
        source = fused.get(layer.inputs[0], by_name.get(layer.inputs[0]))
        if (source is None or source.op is not OpKind.TRANSPOSE or readers.get(source.name, 0) != 1
                or source.name in network.outputs):
            continue
        fused[layer.name] = replace(layer, inputs=source.inputs, input_shapes=source.input_shapes)
        dropped.add(source.name)
    if not dropped:
        return network
    keep = [fused.get(layer.name, layer) for layer in network.layers if layer.name not in dropped]
    return Network(network.name, network.inputs, tuple(keep), network.outputs)


def canonicalize(network: Network) -> Network:
    """The normal form used to compare IR from different producers: no identities, chains of transposes fused,
    no duplicate pure ops."""
    return eliminate_common_subexpressions(fuse_transposes(remove_identities(network)))
