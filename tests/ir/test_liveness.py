"""Which layers a runtime that prunes unread values runs: a zero layer reads its input's shape, not its values."""

from __future__ import annotations

import numpy as np

from nas_latency.ir import NetworkBuilder, needed_layers, network_features, pruned_features
from nas_latency.ir.features import IR_FEATURE_NAMES, layers_features


def test_layers_read_only_through_a_zero_layer_are_not_needed() -> None:
    b = NetworkBuilder("cell")
    x = b.input((1, 8, 16, 16))
    a = b.relu(x, name="a")
    c = b.conv(a, 8, 3, padding=1, name="c")  # read only by the zero layer: dropped
    z = b.zero(c, name="z")
    d = b.conv(x, 8, 1, name="d")
    out = b.add(d, z, name="out")
    network = b.build([out])
    assert needed_layers(network) == {"d", "z", "out"}
    kept = [layer for layer in network.layers if layer.name in {"d", "z", "out"}]
    assert np.array_equal(pruned_features(network), layers_features(kept))
    conv_count = IR_FEATURE_NAMES.index("conv.count")
    assert (pruned_features(network)[conv_count], network_features(network)[conv_count]) == (1.0, 2.0)


def test_an_output_that_reads_only_zeros_needs_nothing_before_them() -> None:
    b = NetworkBuilder("dead")
    x = b.input((1, 4, 8, 8))
    c = b.conv(x, 4, 3, padding=1, name="c")
    out = b.add(b.zero(c, name="z1"), b.zero(x, name="z2"), name="out")
    assert needed_layers(b.build([out])) == {"z1", "z2", "out"}


def test_a_network_without_zero_layers_needs_every_layer_that_reaches_an_output() -> None:
    b = NetworkBuilder("plain")
    x = b.input((1, 4, 8, 8))
    c = b.conv(x, 4, 3, padding=1, name="c")
    b.relu(x, name="unused")  # reaches no output
    network = b.build([b.relu(c, name="r")])
    assert needed_layers(network) == {"c", "r"}
    assert np.array_equal(pruned_features(network), layers_features(layer for layer in network.layers
                                                                      if layer.name != "unused"))
