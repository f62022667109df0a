"""The bundled Ganesan et al. tables, read once: which networks exist, which have layer rows and latencies,
and the typed layer rows of each network.

``ganesan_mobile_networks.csv`` names 122 networks (ids 0..121); ``ganesan_mobile_layers.parquet`` has layer
rows for ids 0..117 only; ``ganesan_mobile_latency.csv`` has latencies for all 122.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from nas_latency.errors import InvalidInputError

OP_TYPES: tuple[str, ...] = ("conv", "dwconv", "add", "relu", "pool")
_INT_COLUMNS = ("in_hw", "out_hw", "in_channels", "out_channels", "kernel", "stride", "padding", "macs")


@dataclass(frozen=True, slots=True)
class NetworkEntry:
    """One network of ``ganesan_mobile_networks.csv``."""

    network_id: int
    name: str
    has_layers: bool
    has_latency: bool


@dataclass(frozen=True, slots=True)
class LayerRow:
    """One row of ``ganesan_mobile_layers.parquet``. ``macs`` is multiply-accumulates for conv/dwconv and the
    number of output elements for relu/add/pool."""

    network_id: int
    layer_index: int
    op_type: str
    in_hw: int
    out_hw: int
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int
    macs: int

    @property
    def where(self) -> str:
        """``layer_index 12 (dwconv)``, for error messages."""
        return f"layer_index {self.layer_index} ({self.op_type})"


def _as_int(value: object, *, column: str, network_id: int, layer_index: int) -> int:
    number = float(value)  # type: ignore[arg-type]
    if math.isnan(number) or number != int(number):
        raise InvalidInputError(
            f"ganesan_mobile_layers: network {network_id}, layer_index {layer_index}: column {column!r} "
            f"is {value!r}, expected a whole number"
        )
    return int(number)


@lru_cache(maxsize=1)
def layer_rows_by_network() -> dict[int, tuple[LayerRow, ...]]:
    """Typed layer rows of every network that has any, in ``layer_index`` order (checked to be 0..n-1)."""
    from nas_latency.data import load_table

    frame = load_table("ganesan_mobile_layers").sort_values(["network_id", "layer_index"])
    out: dict[int, list[LayerRow]] = {}
    for record in frame.to_dict("records"):
        network_id, layer_index = int(record["network_id"]), int(record["layer_index"])
        values = {c: _as_int(record[c], column=c, network_id=network_id, layer_index=layer_index) for c in _INT_COLUMNS}
        rows = out.setdefault(network_id, [])
        if layer_index != len(rows):
            raise InvalidInputError(
                f"ganesan_mobile_layers: network {network_id} has layer_index {layer_index} where "
                f"{len(rows)} was expected (layer indices must run 0, 1, 2, ... without gaps)"
            )
        rows.append(LayerRow(network_id, layer_index, str(record["op_type"]), **values))
    return {network_id: tuple(rows) for network_id, rows in out.items()}


@lru_cache(maxsize=1)
def network_entries() -> tuple[NetworkEntry, ...]:
    """Every network of the catalogue in id order, with whether it has layer rows and latencies."""
    from nas_latency.data import device_columns, load_table

    networks = load_table("ganesan_mobile_networks").sort_values("network_id")
    latency = load_table("ganesan_mobile_latency")
    devices = device_columns("ganesan_mobile_latency")
    measured = set(latency.loc[latency[devices].notna().any(axis=1), "network_id"].astype(int).tolist())
    with_layers = set(layer_rows_by_network())
    entries = tuple(
        NetworkEntry(int(i), str(name), int(i) in with_layers, int(i) in measured)
        for i, name in zip(networks["network_id"], networks["network_name"])
    )
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise InvalidInputError("ganesan_mobile_networks: network_name values are not distinct")
    return entries
