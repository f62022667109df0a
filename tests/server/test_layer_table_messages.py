"""Layer tables travel to the server as messages (messages.layer_table_message / layer_table_dict) and come back
as the same network: every attribute of every op kind, transformer kinds included."""

from __future__ import annotations

import pytest

from nas_latency.bench.classic import classic_network
from nas_latency.ir import NetworkBuilder, OpKind, network_from_dict, network_to_dict
from nas_latency.messages import layer_table_dict, layer_table_message
from nas_latency.v1 import resources_pb2


def _odd_layer_norms():  # type: ignore[no-untyped-def]
    b = NetworkBuilder("norms")
    x = b.input((2, 4, 8, 16))
    x = b.layer_norm(x, axis=2, affine=True, bias=False, name="scale_only")
    x = b.layer_norm(x, axis=-1, affine=False, bias=True, name="shift_only")
    x = b.layer_norm(x, affine=False, bias=False, name="plain")
    return b.build([b.slice(b.select(x, 1, name="head"), 0, 1, name="first")])


@pytest.mark.parametrize("network", [classic_network("vit_tiny_cifar"), classic_network("mobilenet_v2"),
                                     _odd_layer_norms()], ids=["vit", "mobilenet_v2", "layer_norms"])
def test_a_layer_table_survives_the_wire(network) -> None:  # type: ignore[no-untyped-def]
    message = layer_table_message(network_to_dict(network))
    wire = resources_pb2.LayerTable.FromString(message.SerializeToString())
    back = network_from_dict(layer_table_dict(wire), source="message")
    assert back == network
    kinds = {layer.op for layer in network.layers}
    if network.name == "vit_tiny_cifar":
        assert {OpKind.MATMUL, OpKind.TRANSPOSE, OpKind.LAYER_NORM, OpKind.SCALE, OpKind.SLICE} <= kinds
