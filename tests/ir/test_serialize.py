"""JSON layer tables: exact round trip, filled-in input shapes, and errors that name the layer."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from nas_latency.errors import InvalidInputError
from nas_latency.ir import (
    Network,
    load_network_json,
    network_from_dict,
    network_from_json,
    network_to_dict,
    network_to_json,
)


def test_round_trip_is_exact(net: Network) -> None:
    text = network_to_json(net)
    back = network_from_json(text)
    assert back == net
    assert back.layers == net.layers
    assert network_to_json(back) == text
    assert network_from_json(network_to_json(net, indent=2)) == net


def test_round_trip_keeps_non_default_attributes(net: Network) -> None:
    data = network_to_dict(net)
    by_name = {item["name"]: item for item in data["layers"]}
    assert by_name["ap"]["ceil_mode"] is True and "count_include_pad" not in by_name["ap"]  # False is the default
    assert by_name["mp"]["padding"] == [1, 1, 1, 1]
    assert by_name["pw"]["bias"] is True and "bias" not in by_name["dw"]
    assert by_name["dw"]["groups"] == 8 and by_name["dw"]["op"] == "depthwise_conv"
    assert by_name["probs"]["axis"] == 1
    assert data["format"] == "nas-latency/layer-table" and data["version"] == 1
    json.dumps(data)  # plain JSON types only


def test_input_shapes_may_be_omitted(net: Network) -> None:
    data = network_to_dict(net)
    for item in data["layers"]:
        del item["input_shapes"]
    del data["format"], data["version"]  # both optional
    assert network_from_dict(data) == net


def test_minimal_document() -> None:
    text = json.dumps(
        {
            "inputs": [{"name": "input", "shape": [1, 3, 32, 32]}],
            "layers": [
                {"name": "conv1", "op": "conv", "inputs": ["input"], "output_shape": [1, 16, 32, 32],
                 "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1, 1, 1]},
            ],
            "outputs": ["conv1"],
        }
    )
    net = network_from_json(text)
    assert net.name == "network"
    assert net.layer("conv1").input_shapes == ((1, 3, 32, 32),)
    assert net.layer("conv1").dilation is None and net.layer("conv1").groups == 1
    assert net.macs == 16 * 32 * 32 * 3 * 9


def test_load_network_json(tmp_path: Path, net: Network) -> None:
    path = tmp_path / "net.json"
    path.write_text(network_to_json(net))
    assert load_network_json(path) == net
    assert load_network_json(str(path)) == net
    with pytest.raises(InvalidInputError, match=r"missing\.json: cannot read layer table"):
        load_network_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidInputError, match=r"bad\.json: not valid JSON"):
        load_network_json(bad)


def _doc(net: Network) -> dict[str, Any]:
    return copy.deepcopy(network_to_dict(net))


def _mutated(net: Network, path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = _doc(net)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_DELETE = object()

# Layer 0 of the fixture network is 'stem' (a conv); layer 2 is 'stem_act' (a relu).
BAD_LAYER_CASES = [
    (("layers", 0, "kernal"), [3, 3], r"layers\[0\] \('stem'\): unknown keys \['kernal'\]"),
    (("layers", 2, "op"), "relu7", r"layers\[2\] \('stem_act'\): unknown op kind 'relu7'; known kinds: conv,"),
    (("layers", 0, "output_shape"), [1, 8, "16", 16], r"layers\[0\] \('stem'\) output_shape: a shape must be"),
    (("layers", 0, "output_shape"), [], r"layers\[0\] \('stem'\) output_shape: a shape must be a non-empty"),
    (("layers", 0, "output_shape"), [1, True, 16, 16], r"layers\[0\] \('stem'\) output_shape"),
    (("layers", 0, "output_shape"), [1, 8, -16, 16], r"layer 'stem' \(conv\): bad shape \(1, 8, -16, 16\)"),
    (("layers", 0, "input_shapes"), [[1, 3, 0, 16]], r"layer 'stem' \(conv\): bad shape"),
    (("layers", 0, "input_shapes"), [1, 3, 16, 16], r"layers\[0\] \('stem'\): a shape must be"),
    (("layers", 0, "input_shapes"), "oops", r"layers\[0\] \('stem'\): 'input_shapes' must be a list"),
    (("layers", 0, "input_shapes"), [[1, 3, 8, 8]], r"layer 'stem' \(conv\): output shape .* does not follow from input \(1, 3, 8, 8\)"),
    (("layers", 0, "kernel"), [3, 3, 3], r"layers\[0\] \('stem'\) kernel: expected a list of 2 integers"),
    (("layers", 0, "kernel"), [True, 3], r"layers\[0\] \('stem'\) kernel: expected a list of 2 integers"),
    (("layers", 0, "padding"), [1, 1], r"layers\[0\] \('stem'\) padding: expected a list of 4 integers"),
    (("layers", 0, "stride"), [0, 1], r"layer 'stem' \(conv\): kernel .* must be >= 1"),
    (("layers", 0, "kernel"), _DELETE, r"layer 'stem' \(conv\): needs kernel, stride and padding"),
    (("layers", 0, "groups"), 3, r"layer 'stem' \(conv\): groups=3 must divide in_channels=3"),
    (("layers", 0, "groups"), "1", r"layers\[0\] \('stem'\): groups must be an integer"),
    (("layers", 0, "bias"), 1, r"layers\[0\] \('stem'\): bias must be true or false"),
    (("layers", 0, "inputs"), "input", r"layers\[0\] \('stem'\): 'inputs' must be a list of tensor names"),
    (("layers", 0, "op"), _DELETE, r"layers\[0\] \('stem'\): missing 'op'"),
    (("layers", 0, "output_shape"), _DELETE, r"layers\[0\] \('stem'\): missing 'output_shape'"),
    (("layers", 1, "name"), "stem", r"duplicate layer name 'stem'"),
    (("layers", 1), "conv", r"layers\[1\]: expected an object"),
]


@pytest.mark.parametrize(("path", "value", "pattern"), BAD_LAYER_CASES, ids=[c[2][:40] for c in BAD_LAYER_CASES])
def test_bad_layers_name_the_layer(net: Network, path: tuple[Any, ...], value: Any, pattern: str) -> None:
    with pytest.raises(InvalidInputError, match=pattern):
        network_from_dict(_mutated(net, path, value))


def test_unknown_producer_without_input_shapes_names_the_layer(net: Network) -> None:
    data = _doc(net)
    del data["layers"][2]["input_shapes"]
    data["layers"][2]["inputs"] = ["ghost"]
    with pytest.raises(InvalidInputError, match=r"layers\[2\] \('stem_act'\): reads 'ghost', which is not an input"):
        network_from_dict(data)
    data["layers"][2]["input_shapes"] = [[1, 8, 16, 16]]
    with pytest.raises(InvalidInputError, match=r"layer 'stem_act' reads 'ghost'"):
        network_from_dict(data)


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"format": "onnx"}, r"format 'onnx' is not 'nas-latency/layer-table'"),
        ({"version": 2}, r"version 2 is not supported \(expected 1\)"),
        ({"extra": 1}, r"unknown keys \['extra'\]"),
        ({"layers": {}}, r"'layers' must be a list"),
        ({"inputs": None}, r"'inputs' must be a list"),
        ({"outputs": "probs"}, r"'outputs' must be a list"),
        ({"outputs": [1]}, r"'outputs' must be a list of tensor names"),
        ({"outputs": ["nope"]}, r"output 'nope' is not a layer or input"),
        ({"inputs": [{"name": "input"}]}, r"inputs\[0\]: expected \{'name', 'shape'\}"),
        ({"inputs": [{"name": "input", "shape": [1, 3, 16, 16], "dtype": "f32"}]}, r"inputs\[0\]: expected"),
        ({"inputs": [{"name": "input", "shape": [1, 3.5, 16, 16]}]}, r"inputs\[0\]: a shape must be"),
        ({"inputs": [{"name": "input", "shape": [1, 0, 16, 16]}]}, r"input 'input' has bad shape"),
    ],
)
def test_bad_documents(net: Network, change: dict[str, Any], pattern: str) -> None:
    data = _doc(net)
    data.update(change)
    with pytest.raises(InvalidInputError, match=pattern):
        network_from_dict(data, source="upload.json")
    with pytest.raises(InvalidInputError, match=r"^upload\.json: |network 'residual'"):
        network_from_dict(data, source="upload.json")


def test_not_an_object_or_not_json() -> None:
    with pytest.raises(InvalidInputError, match="layer table: expected a JSON object, got list"):
        network_from_json("[]")
    with pytest.raises(InvalidInputError, match="layer table: not valid JSON"):
        network_from_json("{")


def _table(*layers: dict[str, Any], outputs: list[str] | None = None) -> dict[str, Any]:
    """A layer table on one (1, 3, 32, 32) input named x."""
    return {"inputs": [{"name": "x", "shape": [1, 3, 32, 32]}], "layers": list(layers),
            "outputs": outputs if outputs is not None else [layers[-1]["name"]] if layers else ["x"]}


def _layer(name: str, op: str, out: list[int], inputs: tuple[str, ...] = ("x",), **attrs: Any) -> dict[str, Any]:
    return {"name": name, "op": op, "inputs": list(inputs), "output_shape": out, **attrs}


CONV16 = _layer("c", "conv", [1, 16, 32, 32], kernel=[3, 3], stride=[1, 1], padding=[1, 1, 1, 1])
SHAPE_RULE_CASES = [
    (_table(_layer("r", "relu", [1, 64, 64, 64])), r"layers\[0\]: layer 'r' \(relu\): output shape \(1, 64, 64, 64\)"
                                                    r" does not follow from input \(1, 3, 32, 32\)"),
    (_table(CONV16, _layer("a", "add", [1, 999, 7, 7], ("x", "c"))), r"layers\[1\]: .*do not broadcast"),
    (_table(CONV16, _layer("a", "add", [1, 16, 7, 7], ("c", "c"))), r"expected \(1, 16, 32, 32\)"),
    (_table(_layer("a", "add", [1, 3, 32, 32])), r"layer 'a' \(add\): needs at least two inputs"),
    (_table(_layer("b", "batch_norm", [1, 300, 32, 32], affine=True)), r"expected \(1, 3, 32, 32\)"),
    (_table(_layer("g", "global_avg_pool", [1, 3, 32, 32])), r"expected \(1, 3, 1, 1\)"),
    (_table(_layer("k", "concat", [1, 7, 32, 32], ("x", "x"), axis=1)), r"expected \(1, 6, 32, 32\)"),
    (_table(_layer("k", "concat", [1, 6, 32, 32], ("x", "x"), axis=7)), r"axis 7 is outside rank 4"),
    (_table(_layer("f", "flatten", [1, 5], axis=1)), r"expected \(1, 3072\)"),
    (_table(_layer("s", "reshape", [1, 5])), r"layers\[0\] \('s'\): cannot reshape \(1, 3, 32, 32\) \(3072 elements\)"),
    (_table(_layer("r", "relu", [1, 3, 32, 32], ("x", "x"))), r"layer 'r' \(relu\): takes one input, got 2"),
    (_table(_layer("s", "channel_shuffle", [1, 3, 32, 32], groups=7)), r"groups=7 must be >= 2 and divide"),
    (_table(_layer("s", "softmax", [1, 3, 32, 32], axis=9)), r"axis 9 is outside rank 4"),
    (_table(_layer("l", "linear", [1, 3, 32, 10], groups=0)), r"groups does not apply to a linear layer"),
    (_table(_layer("r", "relu", [1, 3, 32, 32], kernel=[9, 9])), r"layers\[0\] \('r'\): kernel does not apply to a "
                                                                  r"relu layer"),
    (_table(_layer("r", "relu", [1, 3, 32, 32]), outputs=["r", "r"]), r"an output is listed twice"),
    (_table(), r"has no layers: there is nothing to predict the latency of"),
]


@pytest.mark.parametrize(("document", "pattern"), SHAPE_RULE_CASES, ids=[c[1][:40] for c in SHAPE_RULE_CASES])
def test_every_kind_s_shape_rule_is_checked_and_the_error_names_the_file(document: dict[str, Any],
                                                                         pattern: str) -> None:
    with pytest.raises(InvalidInputError, match=r"^net\.json: .*" + pattern):
        network_from_dict(document, source="net.json")


def test_defaults_of_attributes_that_do_not_apply_are_accepted() -> None:
    """What older writers put on every layer (groups 1, bias false) is not an error."""
    net = network_from_dict(_table(_layer("r", "relu", [1, 3, 32, 32], groups=1, bias=False, ceil_mode=False)))
    assert [layer.op.value for layer in net.layers] == ["relu"]
