"""Simulated accelerators: devices unlike every bundled one, for ``nas-latency evaluate --simulated-devices N``.

The bundled devices are GPUs, CPUs and phones. An accelerator whose latency is a sum over the layers it runs, as
a per-layer simulator (an Eyeriss- or FPGA-style cost model) or a runtime that runs layer after layer computes
it, is another kind of hardware, and one whose compiler prunes what is not read (:mod:`nas_latency.ir.liveness`)
another still. A :class:`SimulatedAccelerator` is such a device, drawn at random:

    latency_ms(network) = Σ over the layers it runs of  overhead_ms[g] + max(MACs / (macs_per_ms · efficiency[g]),
                                                                            bytes moved / bytes_per_ms)

with ``g`` the layer's op group (:data:`nas_latency.ir.features.OP_GROUPS`; ``view`` layers, reshapes and
identities, cost nothing), a roofline per layer: the layer is bound by compute or by memory, whichever is slower,
and pays a fixed launch overhead. A pruning accelerator runs only the layers whose values its outputs read
(:func:`~nas_latency.ir.liveness.needed_layers`), so it also runs a NAS-Bench-201 cell with no input→output path
in almost no time. Each latency carries log-normal timing noise (σ = :data:`NOISE_SIGMA`).

The parameters are drawn log-uniformly from :data:`PARAMETER_RANGES` (every second device prunes); they are not
fitted to any device: the point is a family of devices the models were not built on, not a replica of one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final, Mapping, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.evaluate.device_draws import device_rng
from nas_latency.evaluate.scoring_sets import HELP_QUERY_RANGE, HELP_SPACES
from nas_latency.ir.features import GROUP_OF, OP_GROUPS
from nas_latency.ir.liveness import needed_layers
from nas_latency.ir.network import DEFAULT_DTYPE_BYTES, Network

#: the hold-out group every simulated device belongs to: held out together, never trained on
SIMULATED_GROUP: Final = "simulated"
#: the ``kind`` fact of a simulated device
SIMULATED_KIND: Final = "simulated accelerator"
#: log-uniform ranges of the drawn parameters: peak MACs per ms (10 GMAC/s to 10 TMAC/s), bytes per ms
#: (1 to 100 GB/s), the share of the peak each op group reaches, and each op group's per-layer overhead in ms
PARAMETER_RANGES: Final[Mapping[str, tuple[float, float]]] = {
    "macs_per_ms": (1e7, 1e10),
    "bytes_per_ms": (1e6, 1e8),
    "efficiency": (0.1, 1.0),
    "overhead_ms": (1e-4, 1e-1),
}
#: log standard deviation of each simulated latency's timing noise (about ±1 %)
NOISE_SIGMA: Final = 0.01
#: op groups whose layers cost nothing (reshapes, identities)
FREE_GROUPS: Final = frozenset({"view"})
#: architectures simulated per device besides the query set and the signature archs (see :func:`simulated_rows`)
DEFAULT_SAMPLE: Final = 2000


@dataclass(frozen=True)
class SimulatedAccelerator:
    """One simulated device (see the module docstring)."""

    name: str
    macs_per_ms: float
    bytes_per_ms: float
    efficiency: Mapping[str, float]
    overhead_ms: Mapping[str, float]
    prunes: bool
    noise_sigma: float = NOISE_SIGMA

    def facts(self) -> dict[str, Any]:
        """What the evaluation reports about the device (its ``info`` entry)."""
        return {"kind": SIMULATED_KIND, "prunes": self.prunes, "macs_per_ms": self.macs_per_ms,
                "bytes_per_ms": self.bytes_per_ms, "efficiency": dict(self.efficiency),
                "overhead_ms": dict(self.overhead_ms), "noise_sigma": self.noise_sigma}


def draw_accelerators(n: int, *, seed: int = 0) -> list[SimulatedAccelerator]:
    """``n`` accelerators with parameters drawn log-uniformly from :data:`PARAMETER_RANGES`, deterministically for
    ``seed``; the odd-numbered ones prune (``sim<i>_runs_all``, ``sim<i>_prunes``)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InvalidInputError(f"the number of simulated devices must be a positive integer, got {n!r}")
    rng = np.random.default_rng([int(seed), 0x51A])

    def draw(key: str) -> float:
        low, high = PARAMETER_RANGES[key]
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))

    groups = [g for g in OP_GROUPS if g not in FREE_GROUPS]
    devices = []
    for i in range(int(n)):
        prunes = i % 2 == 1
        devices.append(SimulatedAccelerator(
            name=f"sim{i}_{'prunes' if prunes else 'runs_all'}",
            macs_per_ms=draw("macs_per_ms"),
            bytes_per_ms=draw("bytes_per_ms"),
            efficiency={g: draw("efficiency") for g in groups},
            overhead_ms={g: draw("overhead_ms") for g in groups},
            prunes=prunes,
        ))
    return devices


@dataclass(frozen=True)
class LayerTable:
    """The layers of some networks, one entry per layer: which network, its op group, MACs, bytes moved and
    whether a pruning runtime runs it."""

    network: np.ndarray
    group: np.ndarray
    macs: np.ndarray
    bytes_moved: np.ndarray
    needed: np.ndarray
    n_networks: int
    groups: tuple[str, ...]


def layer_table(networks: Sequence[Network], dtype_bytes: int = DEFAULT_DTYPE_BYTES) -> LayerTable:
    """The :class:`LayerTable` of ``networks`` (free layers left out)."""
    groups = tuple(g for g in OP_GROUPS if g not in FREE_GROUPS)
    index = {g: i for i, g in enumerate(groups)}
    network, group, macs, moved, needed = [], [], [], [], []
    for n, net in enumerate(networks):
        read = needed_layers(net)
        for layer in net.layers:
            g = GROUP_OF[layer.op]
            if g in FREE_GROUPS:
                continue
            network.append(n)
            group.append(index[g])
            macs.append(float(layer.macs))
            moved.append(float(layer.bytes_read(dtype_bytes) + layer.bytes_written(dtype_bytes)))
            needed.append(layer.name in read)
    return LayerTable(np.array(network, dtype=np.intp), np.array(group, dtype=np.intp), np.array(macs),
                      np.array(moved), np.array(needed, dtype=bool), len(networks), groups)


def simulated_latency_ms(table: LayerTable, device: SimulatedAccelerator, *, noise_seed: int | None = 0) -> np.ndarray:
    """Each network's latency on ``device`` (module docstring), with its timing noise drawn from ``noise_seed``
    (None: without noise)."""
    efficiency = np.array([device.efficiency[g] for g in table.groups])
    overhead = np.array([device.overhead_ms[g] for g in table.groups])
    per_layer = overhead[table.group] + np.maximum(table.macs / (device.macs_per_ms * efficiency[table.group]),
                                                   table.bytes_moved / device.bytes_per_ms)
    if device.prunes:
        per_layer = np.where(table.needed, per_layer, 0.0)
    latency = np.bincount(table.network, weights=per_layer, minlength=table.n_networks)
    if noise_seed is not None:
        noise = device_rng(noise_seed, device.name).standard_normal(latency.shape)
        latency = latency * np.exp(device.noise_sigma * noise)
    return latency


def simulated_rows(dataset: Any, required_archs: Sequence[str], *, sample: int = DEFAULT_SAMPLE,
                   seed: int = 0) -> np.ndarray:
    """The dataset rows a simulated device is measured on: the required architectures (the signature archs the
    runs will ask for), HELP's query range in spaces that have one, and a seeded sample of ``sample`` others.
    Simulating every architecture costs one IR network each (15,625 on NAS-Bench-201); the rest stay unmeasured."""
    rows = np.unique(dataset.arch_indices(list(required_archs)))
    if dataset.space in HELP_SPACES:
        low, high = HELP_QUERY_RANGE
        rows = np.union1d(rows, np.flatnonzero((dataset.arch_ids >= low) & (dataset.arch_ids < high)))
    rest = np.setdiff1d(np.arange(len(dataset.archs)), rows)
    rng = np.random.default_rng([int(seed), 0x5A3])
    return np.union1d(rows, rng.choice(rest, size=min(int(sample), rest.size), replace=False)).astype(np.intp)


def with_simulated_devices(dataset: Any, devices: Sequence[SimulatedAccelerator], rows: np.ndarray,
                           networks: Sequence[Network]) -> Any:
    """``dataset`` with one more column per simulated device, measured at ``rows`` (``networks``: the IR of those
    rows' architectures, in the same order) and unmeasured (NaN) elsewhere, all in :data:`SIMULATED_GROUP`."""
    if len(networks) != len(rows):
        raise InvalidInputError(f"with_simulated_devices: {len(networks)} networks for {len(rows)} rows")
    clash = sorted(set(dataset.devices) & {d.name for d in devices})
    if clash:
        raise InvalidInputError(f"with_simulated_devices: the dataset already has a device named {clash[0]!r}")
    table = layer_table(networks)
    columns = np.full((len(dataset.archs), len(devices)), np.nan)
    for j, device in enumerate(devices):
        columns[rows, j] = simulated_latency_ms(table, device)
    info = {**{d: dict(v) for d, v in dataset.info.items()},
            **{d.name: {**d.facts(), "integer_ms": False, "n_measured": int(len(rows))} for d in devices}}
    return replace(dataset, devices=[*dataset.devices, *(d.name for d in devices)],
                   latency_ms=np.hstack([dataset.latency_ms, columns]),
                   groups=[*dataset.groups, *(SIMULATED_GROUP for _ in devices)], info=info)


__all__ = ["DEFAULT_SAMPLE", "FREE_GROUPS", "LayerTable", "NOISE_SIGMA", "PARAMETER_RANGES", "SIMULATED_GROUP",
           "SIMULATED_KIND", "SimulatedAccelerator", "draw_accelerators", "layer_table", "simulated_latency_ms",
           "simulated_rows", "with_simulated_devices"]
