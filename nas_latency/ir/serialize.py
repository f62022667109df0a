"""JSON round trip of the IR: the "layer table" format users send for arbitrary networks.

```json
{"format": "nas-latency/layer-table", "version": 1, "name": "net",
 "inputs": [{"name": "input", "shape": [1, 3, 32, 32]}],
 "layers": [{"name": "conv1", "op": "conv", "inputs": ["input"], "output_shape": [1, 16, 32, 32],
             "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1, 1, 1]}],
 "outputs": ["conv1"]}
```
A layer's ``input_shapes`` may be omitted (they are taken from the producers); attributes left out take their
defaults. Unknown keys are errors, so a typo is never silently ignored.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from nas_latency.errors import InvalidInputError
from nas_latency.ir.network import Layer, Network, Shape, TensorSpec, numel
from nas_latency.ir.ops import CONV_KINDS, WINDOW_POOL_KINDS, OpKind, parse_op_kind

FORMAT_NAME = "nas-latency/layer-table"
FORMAT_VERSION = 1

_LAYER_DEFAULTS = {f.name: f.default for f in fields(Layer) if f.name not in {"name", "op", "inputs", "input_shapes", "output_shape"}}
_TUPLE_ATTRS = {"kernel", "stride", "padding", "dilation"}
_WINDOW_KINDS = CONV_KINDS | WINDOW_POOL_KINDS
#: the op kinds each attribute applies to (elsewhere it must be left at its default)
_APPLIES_TO: dict[str, frozenset[OpKind]] = {
    "kernel": _WINDOW_KINDS, "stride": _WINDOW_KINDS, "dilation": _WINDOW_KINDS,
    "padding": _WINDOW_KINDS | {OpKind.PAD},
    "groups": CONV_KINDS | {OpKind.CHANNEL_SHUFFLE},
    "bias": CONV_KINDS | {OpKind.LINEAR, OpKind.LAYER_NORM},
    "affine": frozenset({OpKind.BATCH_NORM, OpKind.LAYER_NORM}),
    "count_include_pad": frozenset({OpKind.AVG_POOL}),
    "ceil_mode": WINDOW_POOL_KINDS,
    "axis": frozenset({OpKind.CONCAT, OpKind.SOFTMAX, OpKind.FLATTEN, OpKind.LAYER_NORM}),
}


def network_to_dict(network: Network) -> dict[str, Any]:
    layers = []
    for layer in network.layers:
        item: dict[str, Any] = {
            "name": layer.name,
            "op": layer.op.value,
            "inputs": list(layer.inputs),
            "input_shapes": [list(s) for s in layer.input_shapes],
            "output_shape": list(layer.output_shape),
        }
        for key, default in _LAYER_DEFAULTS.items():
            value = getattr(layer, key)
            if value != default:
                item[key] = list(value) if isinstance(value, tuple) else value
        layers.append(item)
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "name": network.name,
        "inputs": [{"name": s.name, "shape": list(s.shape)} for s in network.inputs],
        "layers": layers,
        "outputs": list(network.outputs),
    }


def network_to_json(network: Network, *, indent: int | None = None) -> str:
    return json.dumps(network_to_dict(network), indent=indent)


def _shape(value: Any, *, where: str) -> Shape:
    if not isinstance(value, list) or not value or not all(isinstance(d, int) and not isinstance(d, bool) for d in value):
        raise InvalidInputError(f"{where}: a shape must be a non-empty list of integers, got {value!r}")
    return tuple(value)


def _int_tuple(value: Any, length: int, *, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) != length or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in value
    ):
        raise InvalidInputError(f"{where}: expected a list of {length} integers, got {value!r}")
    return tuple(value)


def network_from_dict(data: Any, *, source: str = "layer table") -> Network:
    if not isinstance(data, dict):
        raise InvalidInputError(f"{source}: expected a JSON object, got {type(data).__name__}")
    if data.get("format", FORMAT_NAME) != FORMAT_NAME:
        raise InvalidInputError(f"{source}: format {data.get('format')!r} is not {FORMAT_NAME!r}")
    if data.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise InvalidInputError(f"{source}: version {data.get('version')!r} is not supported (expected {FORMAT_VERSION})")
    unknown = set(data) - {"format", "version", "name", "inputs", "layers", "outputs"}
    if unknown:
        raise InvalidInputError(f"{source}: unknown keys {sorted(unknown)}")
    for key in ("inputs", "layers", "outputs"):
        if not isinstance(data.get(key), list):
            raise InvalidInputError(f"{source}: {key!r} must be a list")
    name = str(data.get("name", "network"))
    inputs = []
    shapes: dict[str, Shape] = {}
    for i, spec in enumerate(data["inputs"]):
        where = f"{source}: inputs[{i}]"
        if not isinstance(spec, dict) or set(spec) != {"name", "shape"}:
            raise InvalidInputError(f"{where}: expected {{'name', 'shape'}}, got {spec!r}")
        inputs.append(TensorSpec(str(spec["name"]), _shape(spec["shape"], where=where)))
        shapes[str(spec["name"])] = inputs[-1].shape
    layers = []
    allowed = {"name", "op", "inputs", "input_shapes", "output_shape", *_LAYER_DEFAULTS}
    for i, item in enumerate(data["layers"]):
        where = f"{source}: layers[{i}]"
        if not isinstance(item, dict):
            raise InvalidInputError(f"{where}: expected an object, got {item!r}")
        where = f"{source}: layers[{i}] ({item.get('name', '?')!r})"
        unknown = set(item) - allowed
        if unknown:
            raise InvalidInputError(f"{where}: unknown keys {sorted(unknown)}")
        for key in ("name", "op", "inputs", "output_shape"):
            if key not in item:
                raise InvalidInputError(f"{where}: missing {key!r}")
        srcs = item["inputs"]
        if not isinstance(srcs, list) or not all(isinstance(s, str) for s in srcs):
            raise InvalidInputError(f"{where}: 'inputs' must be a list of tensor names")
        if "input_shapes" in item:
            if not isinstance(item["input_shapes"], list):
                raise InvalidInputError(f"{where}: 'input_shapes' must be a list of shapes")
            in_shapes = tuple(_shape(s, where=where) for s in item["input_shapes"])
        else:
            missing = [s for s in srcs if s not in shapes]
            if missing:
                raise InvalidInputError(f"{where}: reads {missing[0]!r}, which is not an input or an earlier layer")
            in_shapes = tuple(shapes[s] for s in srcs)
        attrs: dict[str, Any] = {}
        for key in _LAYER_DEFAULTS:
            if key not in item:
                continue
            value = item[key]
            if key in _TUPLE_ATTRS:
                attrs[key] = _int_tuple(value, 4 if key == "padding" else 2, where=f"{where} {key}")
            elif key in {"groups", "axis"}:
                if not isinstance(value, int) or isinstance(value, bool):
                    raise InvalidInputError(f"{where}: {key} must be an integer, got {value!r}")
                attrs[key] = value
            else:
                if not isinstance(value, bool):
                    raise InvalidInputError(f"{where}: {key} must be true or false, got {value!r}")
                attrs[key] = value
        op = parse_op_kind(str(item["op"]), where=where)
        stray = sorted(key for key, value in attrs.items()
                       if op not in _APPLIES_TO[key] and value != _LAYER_DEFAULTS[key])
        if stray:
            raise InvalidInputError(f"{where}: {', '.join(stray)} {'does' if len(stray) == 1 else 'do'} not apply to "
                                    f"a {op.value} layer")
        layer = Layer(
            name=str(item["name"]),
            op=op,
            inputs=tuple(srcs),
            input_shapes=in_shapes,
            output_shape=_shape(item["output_shape"], where=f"{where} output_shape"),
            **attrs,
        )
        try:
            layer.check()
        except InvalidInputError as exc:
            raise InvalidInputError(f"{source}: layers[{i}]: {exc.message}") from None
        if layer.op is OpKind.RESHAPE and numel(layer.output_shape) != numel(in_shapes[0]):
            raise InvalidInputError(f"{where}: cannot reshape {in_shapes[0]} ({numel(in_shapes[0])} elements) to "
                                    f"{layer.output_shape} ({numel(layer.output_shape)})")
        layers.append(layer)
        shapes[layer.name] = layer.output_shape
    if not layers:
        raise InvalidInputError(f"{source}: has no layers: there is nothing to predict the latency of")
    outputs = data["outputs"]
    if not all(isinstance(o, str) for o in outputs):
        raise InvalidInputError(f"{source}: 'outputs' must be a list of tensor names")
    if len(set(outputs)) != len(outputs):
        raise InvalidInputError(f"{source}: an output is listed twice in {outputs}")
    try:
        return Network(name, tuple(inputs), tuple(layers), tuple(outputs))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{source}: {exc.message}") from None


def network_from_json(text: str, *, source: str = "layer table") -> Network:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{source}: not valid JSON ({exc})") from None
    return network_from_dict(data, source=source)


def load_network_json(path: str | Path) -> Network:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read layer table ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: not a layer table (the file is not UTF-8 text)") from None
    return network_from_json(text, source=str(path))
