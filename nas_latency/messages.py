"""Conversions between the library's values and the gRPC messages, shared by the client and the server:
measurements as parallel lists, layer tables (the JSON format of :func:`nas_latency.ir.network_to_dict`) as
``LayerTable`` messages and back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from nas_latency.errors import InvalidInputError

if TYPE_CHECKING:
    from nas_latency.v1 import resources_pb2

_LAYER_TUPLES = ("kernel", "stride", "padding", "dilation")
_LAYER_OPTIONAL = ("groups", "bias", "affine", "count_include_pad", "ceil_mode", "axis")


def measurement_lists(measurements: Mapping[str, float] | Any) -> tuple[list[str], list[float]]:
    """``(archs, latency_ms)`` of a mapping arch → ms or a :class:`~nas_latency.measurements.MeasuredArchs`."""
    if hasattr(measurements, "archs") and hasattr(measurements, "latency_ms"):
        return list(measurements.archs), [float(v) for v in measurements.latency_ms]
    if isinstance(measurements, Mapping):
        archs = list(measurements.keys())
        values = []
        for arch in archs:
            try:
                values.append(float(measurements[arch]))
            except (TypeError, ValueError):
                raise InvalidInputError(f"measurement of {arch!r}: latency_ms {measurements[arch]!r} is not a number") from None
        return archs, values
    raise InvalidInputError(f"measurements must be a mapping arch -> latency_ms, got {type(measurements).__name__}")


def layer_table_message(table: Mapping[str, Any]) -> "resources_pb2.LayerTable":
    """A layer-table dict (the JSON format, e.g. :func:`nas_latency.ir.network_to_dict`) as a message."""
    from nas_latency.v1 import resources_pb2 as r

    try:
        message = r.LayerTable(
            name=str(table.get("name", "")),
            inputs=[r.TensorSpec(name=str(s["name"]), shape=list(s["shape"])) for s in table.get("inputs", [])],
            outputs=list(table.get("outputs", [])),
        )
        for item in table.get("layers", []):
            layer = message.layers.add(name=str(item["name"]), op=str(item["op"]), inputs=list(item["inputs"]),
                                       output_shape=list(item["output_shape"]))
            for shape in item.get("input_shapes", []):
                layer.input_shapes.add(dims=list(shape))
            for key in _LAYER_TUPLES:
                if item.get(key) is not None:
                    getattr(layer, key).extend(item[key])
            for key in _LAYER_OPTIONAL:
                if item.get(key) is not None:
                    setattr(layer, key, item[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"layer table {table.get('name', '')!r} cannot be sent: {exc!r}") from None
    return message


def layer_table_dict(message: "resources_pb2.LayerTable") -> dict[str, Any]:
    """A layer-table message as the dict :func:`nas_latency.ir.network_from_dict` validates."""
    layers = []
    for layer in message.layers:
        item: dict[str, Any] = {"name": layer.name, "op": layer.op, "inputs": list(layer.inputs),
                                "output_shape": list(layer.output_shape)}
        if len(layer.input_shapes):
            item["input_shapes"] = [list(s.dims) for s in layer.input_shapes]
        for key in _LAYER_TUPLES:
            values = getattr(layer, key)
            if len(values):
                item[key] = list(values)
        for key in _LAYER_OPTIONAL:
            if layer.HasField(key):
                item[key] = getattr(layer, key)
        layers.append(item)
    return {
        "name": message.name or "network",
        "inputs": [{"name": s.name, "shape": list(s.shape)} for s in message.inputs],
        "layers": layers,
        "outputs": list(message.outputs),
    }


__all__ = ["layer_table_dict", "layer_table_message", "measurement_lists"]
