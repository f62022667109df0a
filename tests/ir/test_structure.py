"""structure_key: invariant to layer names and topological order, sensitive to anything that changes the
computation; structure_diff: lists what differs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from nas_latency.ir import Layer, Network, NetworkBuilder, OpKind, structure_diff, structure_key
from nas_latency.ir.network import TensorSpec


def _rename(net: Network, prefix: str) -> Network:
    inputs = {spec.name for spec in net.inputs}
    new = {layer.name: f"{prefix}{i}" for i, layer in enumerate(net.layers)}

    def ref(name: str) -> str:
        return name if name in inputs else new[name]

    layers = tuple(replace(layer, name=new[layer.name], inputs=tuple(ref(s) for s in layer.inputs)) for layer in net)
    return Network(net.name, net.inputs, layers, tuple(ref(o) for o in net.outputs))


def _other_topological_order(net: Network) -> Network:
    """Kahn's algorithm, always taking the *last* ready layer (the builder emitted them first-ready-first)."""
    pending = {layer.name: set(layer.inputs) - {s.name for s in net.inputs} for layer in net}
    order: list[Layer] = []
    ready = [layer for layer in net if not pending[layer.name]]
    while ready:
        layer = ready.pop()
        order.append(layer)
        for other in net:
            deps = pending[other.name]
            if layer.name in deps:
                deps.discard(layer.name)
                if not deps:
                    ready.append(other)
    assert len(order) == len(net)
    return Network(net.name, net.inputs, tuple(order), net.outputs)


def test_invariant_to_renaming_and_order(net: Network) -> None:
    key = structure_key(net)
    renamed = _rename(net, "node")
    reordered = _other_topological_order(renamed)
    assert [layer.name for layer in reordered] != [layer.name for layer in renamed]  # the test does reorder
    assert structure_key(renamed) == key
    assert structure_key(reordered) == key
    assert structure_diff(net, reordered).equal
    assert str(structure_diff(net, reordered)) == "networks are structurally equal"


def test_network_name_and_input_name_do_not_matter(net: Network) -> None:
    spec = net.inputs[0]
    renamed_input = TensorSpec("image", spec.shape)
    layers = tuple(
        replace(layer, inputs=tuple("image" if s == spec.name else s for s in layer.inputs)) for layer in net
    )
    other = Network("other", (renamed_input,), layers, net.outputs)
    assert structure_key(other) == structure_key(net)


def test_commutative_operands_may_be_swapped_but_concat_operands_may_not() -> None:
    def build(swap_add: bool, swap_cat: bool) -> Network:
        b = NetworkBuilder("c")
        x = b.input((1, 4, 8, 8))
        r = b.relu(x)
        s = b.activation(x, OpKind.SIGMOID)
        a = b.add(*((s, r) if swap_add else (r, s)))
        b.concat([a, r] if not swap_cat else [r, a])
        return b.build()

    base = structure_key(build(False, False))
    assert structure_key(build(True, False)) == base
    assert structure_key(build(False, True)) != base


@pytest.mark.parametrize(
    ("layer_name", "change"),
    [
        ("stem", {"kernel": (5, 5), "padding": (2, 2, 2, 2)}),  # same output shape, different conv
        ("stem", {"stride": (1, 1), "padding": (0, 1, 2, 1)}),  # asymmetric padding, same shape
        ("pw", {"bias": False}),
        ("ap", {"count_include_pad": True}),
        ("ap", {"ceil_mode": False}),
        ("stem_act", {"op": OpKind.RELU6}),
        ("dw", {"dilation": (2, 2), "padding": (2, 2, 2, 2)}),
    ],
)
def test_sensitive_to_attribute_changes(net: Network, layer_name: str, change: dict[str, object]) -> None:
    layers = tuple(replace(layer, **change) if layer.name == layer_name else layer for layer in net)  # type: ignore[arg-type]
    changed = Network(net.name, net.inputs, layers, net.outputs)
    assert structure_key(changed) != structure_key(net)
    diff = structure_diff(net, changed)
    assert not diff.equal
    assert any(line.startswith(f"{layer_name}: ") for line in diff.only_left)
    assert any(line.startswith(f"{layer_name}: ") for line in diff.only_right)


def test_sensitive_to_wiring() -> None:
    def build(rewire: bool) -> Network:
        b = NetworkBuilder("w")
        x = b.input((1, 4, 8, 8))
        r1 = b.relu(x)
        r2 = b.activation(r1, OpKind.SIGMOID)
        b.add(r1, x if rewire else r2)
        return b.build()

    assert structure_key(build(False)) != structure_key(build(True))


def test_sensitive_to_outputs(net: Network) -> None:
    more = Network(net.name, net.inputs, net.layers, (*net.outputs, "stem"))
    assert structure_key(more) != structure_key(net)


def test_structure_diff_lists_differences(net: Network) -> None:
    b = NetworkBuilder("small")
    x = b.input((1, 3, 16, 16))
    b.relu(b.batch_norm(b.conv(x, 8, 3, padding=1, name="stem"), name="bn"), name="stem_act")
    b.conv("stem_act", 4, 1, name="extra")
    small = b.build()
    diff = structure_diff(net, small)
    assert not diff.equal
    assert diff.only_right == ["extra: conv [(1, 8, 16, 16)] -> (1, 4, 16, 16)"]
    assert len(diff.only_left) == len(net) - 3  # every layer but the shared stem/bn/act
    text = str(diff)
    assert text.startswith(f"{len(net) - 3} layers only in the left network, 1 only in the right")
    assert "  + extra: conv" in text
    assert len(text.splitlines()) == 1 + 10 + 1  # at most 10 lines per side


def test_duplicate_layers_are_counted() -> None:
    def build(copies: int) -> Network:
        b = NetworkBuilder("d")
        x = b.input((1, 4, 8, 8))
        return b.build([b.conv(x, 4, 1) for _ in range(copies)])

    diff = structure_diff(build(3), build(2))
    assert len(diff.only_left) == 1 and diff.only_right == []
    assert structure_key(build(3)) != structure_key(build(2))
