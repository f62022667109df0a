"""Structural identity of networks: equal keys mean the same DAG of the same layers, whatever the layer names
and whatever topological order the producer chose. Used to compare the IR produced by different frontends."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

from nas_latency.ir.network import Layer, Network
from nas_latency.ir.ops import COMMUTATIVE_KINDS


def _layer_signature(layer: Layer) -> str:
    return "|".join(
        str(x)
        for x in (
            layer.op.value, layer.output_shape, layer.input_shapes if layer.op not in COMMUTATIVE_KINDS
            else sorted(layer.input_shapes), layer.kernel, layer.stride, layer.padding, layer.dilation, layer.groups,
            layer.bias, layer.affine, layer.count_include_pad, layer.ceil_mode, layer.axis,
        )
    )


def layer_hashes(network: Network) -> dict[str, str]:
    """A Merkle hash per tensor: a layer's own signature and the hashes of what it reads (sorted for
    commutative ops)."""
    hashes: dict[str, str] = {spec.name: f"input{i}:{spec.shape}" for i, spec in enumerate(network.inputs)}
    for layer in network.layers:
        parents = [hashes[src] for src in layer.inputs]
        if layer.op in COMMUTATIVE_KINDS:
            parents.sort()
        digest = hashlib.blake2b(digest_size=12)
        digest.update(_layer_signature(layer).encode())
        for parent in parents:
            digest.update(parent.encode())
        hashes[layer.name] = digest.hexdigest()
    return hashes


def structure_key(network: Network) -> str:
    """One digest of the whole DAG, independent of layer names and topological order."""
    hashes = layer_hashes(network)
    digest = hashlib.blake2b(digest_size=16)
    for h in sorted(hashes[layer.name] for layer in network.layers):
        digest.update(h.encode())
    for out in network.outputs:
        digest.update(b"out:" + hashes[out].encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class StructureDiff:
    """What differs between two networks, for error messages and test failures."""

    only_left: list[str]
    only_right: list[str]

    @property
    def equal(self) -> bool:
        return not self.only_left and not self.only_right

    def __str__(self) -> str:
        if self.equal:
            return "networks are structurally equal"
        lines = [f"{len(self.only_left)} layers only in the left network, {len(self.only_right)} only in the right"]
        lines += [f"  - {s}" for s in self.only_left[:10]]
        lines += [f"  + {s}" for s in self.only_right[:10]]
        return "\n".join(lines)


def structure_diff(left: Network, right: Network) -> StructureDiff:
    """Layers (described by name, op and shapes) whose Merkle hash has no partner in the other network."""

    def index(network: Network) -> tuple[Counter[str], dict[str, Layer]]:
        hashes = layer_hashes(network)
        by_hash = {hashes[layer.name]: layer for layer in network.layers}
        return Counter(hashes[layer.name] for layer in network.layers), by_hash

    def describe(layer: Layer) -> str:
        return f"{layer.name}: {layer.op.value} {list(layer.input_shapes)} -> {layer.output_shape}"

    (lc, lby), (rc, rby) = index(left), index(right)
    return StructureDiff(
        only_left=[describe(lby[h]) for h in (lc - rc).elements()],
        only_right=[describe(rby[h]) for h in (rc - lc).elements()],
    )
