"""The bundled measured latency tables as :class:`LatencyDataset`: architectures × devices in milliseconds, the
hold-out *group* of every device (a Ganesan phone model groups its measurement files; on NAS-Bench-201 and FBNet
every device is its own group) and what is known about each device (:func:`load_latency_dataset`)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Callable, Final, Mapping, Sequence

import numpy as np

from nas_latency.errors import FailedPreconditionError, InvalidInputError, NotFoundError

logger = logging.getLogger(__name__)

#: How a latency table is made of repeated runs: ``"published"``, the bundled table as is (Ganesan phones: the
#: mean of 30 runs, warm-up run and throttling spikes included); ``"median"``, the median of every run of each
#: architecture on each device, for the spaces in :data:`RUN_TABLES`.
RUN_STATISTICS: Final[tuple[str, ...]] = ("published", "median")
#: Spaces that bundle every run, and the table holding them (``device_id, network_id, run, latency_ms``).
RUN_TABLES: Final[Mapping[str, str]] = {"ganesan_mobile": "ganesan_mobile_runs"}


@dataclass(frozen=True)
class ExcludedArch:
    """An architecture with measured latencies that the dataset leaves out, and why (never silently)."""

    arch_id: int
    name: str
    reason: str


@dataclass(frozen=True, eq=False)
class LatencyDataset:
    """Measured latencies of one space: ``latency_ms[i, j]`` is architecture ``archs[i]`` on ``devices[j]``
    (NaN = not measured). ``groups[j]`` is the hold-out group of ``devices[j]``; ``arch_ids[i]`` the official
    index of ``archs[i]`` (NAS-Bench-201 ``arch_index``, FBNet ``arch_id``, Ganesan ``network_id``);
    ``degenerate[i]`` marks architectures the space calls degenerate (e.g. NAS-Bench-201 cells with no
    input→output path); ``info[device]`` holds what is known about a device (``integer_ms``, kind, ...).
    The arrays are read-only."""

    space: str
    archs: list[str]
    devices: list[str]
    latency_ms: np.ndarray
    groups: list[str]
    info: dict[str, dict[str, Any]]
    arch_ids: np.ndarray
    degenerate: np.ndarray
    excluded: list[ExcludedArch] = field(default_factory=list)
    #: ``"space"`` when ``degenerate`` comes from ``space.degenerate_mask``; ``"unavailable"`` otherwise
    degenerate_source: str = "space"
    #: how one latency per architecture and device was made of the repeated runs: ``"published"`` (the bundled
    #: table as its source published it) or ``"median"`` (the median of the bundled runs; see RUN_STATISTICS)
    run_statistic: str = "published"

    def __post_init__(self) -> None:
        n, m = len(self.archs), len(self.devices)
        if self.latency_ms.shape != (n, m):
            raise InvalidInputError(f"dataset {self.space}: latency table {self.latency_ms.shape} for {n} archs x {m} devices")
        if len(self.groups) != m:
            raise InvalidInputError(f"dataset {self.space}: {len(self.groups)} groups for {m} devices")
        if self.arch_ids.shape != (n,) or self.degenerate.shape != (n,):
            raise InvalidInputError(f"dataset {self.space}: arch_ids/degenerate must have one entry per arch ({n})")
        if len(set(self.devices)) != m:
            raise InvalidInputError(f"dataset {self.space}: device names are not distinct")
        for array in (self.latency_ms, self.arch_ids, self.degenerate):
            array.setflags(write=False)

    @property
    def group_names(self) -> list[str]:
        """Distinct groups in order of first appearance."""
        return list(dict.fromkeys(self.groups))

    def devices_of(self, group: str) -> list[str]:
        devices = [d for d, g in zip(self.devices, self.groups) if g == group]
        if not devices:
            raise NotFoundError(f"dataset {self.space}: no device group {group!r}; groups: {', '.join(self.group_names)}")
        return devices

    def device_index(self, device: str) -> int:
        try:
            return self.devices.index(device)
        except ValueError:
            raise NotFoundError(
                f"dataset {self.space}: no device {device!r}; devices: {', '.join(self.devices)}"
            ) from None

    def latency_of(self, device: str) -> np.ndarray:
        return self.latency_ms[:, self.device_index(device)]

    def arch_indices(self, archs: Sequence[str]) -> np.ndarray:
        """Row positions of ``archs``; ``InvalidInputError`` naming the first unknown one."""
        lookup = self._row_lookup()
        out = np.empty(len(archs), dtype=np.intp)
        for i, arch in enumerate(archs):
            try:
                out[i] = lookup[arch]
            except KeyError:
                raise InvalidInputError(f"dataset {self.space}: architecture {arch!r} is not in the dataset") from None
        return out

    def _row_lookup(self) -> dict[str, int]:
        cached = self.__dict__.get("_rows")
        if cached is None:
            cached = {a: i for i, a in enumerate(self.archs)}
            object.__setattr__(self, "_rows", cached)
        return cached

    def with_devices(self, devices: Sequence[str]) -> "LatencyDataset":
        """The same architectures restricted to ``devices`` (in the order given); a new, independent array."""
        columns = [self.device_index(d) for d in devices]
        return replace(
            self,
            devices=list(devices),
            latency_ms=np.array(self.latency_ms[:, columns]),
            groups=[self.groups[j] for j in columns],
            info={d: dict(self.info.get(d, {})) for d in devices},
        )


def _degenerate_mask(space: Any, archs: Sequence[str]) -> tuple[np.ndarray, str]:
    method = getattr(space, "degenerate_mask", None)
    if method is None:
        logger.warning("space %s has no degenerate_mask(); no architecture is treated as degenerate", space.name)
        return np.zeros(len(archs), dtype=bool), "unavailable"
    mask = np.asarray(method(archs), dtype=bool).reshape(-1)
    if mask.shape != (len(archs),):
        raise FailedPreconditionError(f"{space.name}.degenerate_mask returned {mask.shape} for {len(archs)} archs")
    return np.array(mask), "space"


def _integer_ms(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return bool(finite.size) and bool(np.all(finite == np.round(finite)))


#: Device facts taken from ``nb201_devices.csv`` (its value statistics describe the NB201 table only).
_NB201_FACTS: Final[tuple[str, ...]] = ("kind", "description", "batch_size")


@lru_cache(maxsize=1)
def _nb201_device_facts() -> dict[str, dict[str, Any]]:
    from nas_latency.data import load_table

    frame = load_table("nb201_devices")
    facts: dict[str, dict[str, Any]] = {}
    for record in frame.to_dict("records"):
        entry = {k: record[k] for k in _NB201_FACTS if k in record and not is_missing(record[k])}
        if "batch_size" in entry:
            entry["batch_size"] = int(entry["batch_size"])
        facts[str(record["device"])] = entry
    return facts


def is_missing(value: Any) -> bool:
    """Whether a device fact is absent (None or NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _hw_nas_facts(device: str) -> tuple[dict[str, Any], str]:
    """Facts of an NB201/FBNet device column from ``nb201_devices.csv``: by name, or for a GPU column of
    another batch size (``1080ti_64``) from a column of the same GPU, with the batch size from the suffix."""
    facts = _nb201_device_facts()
    if device in facts:
        return dict(facts[device]), "nb201_devices.csv"
    stem, _, suffix = device.rpartition("_")
    if suffix.isdigit():
        for name, entry in facts.items():
            if name.rpartition("_")[0] == stem and "batch_size" in entry:
                return {**entry, "batch_size": int(suffix)}, "nb201_devices.csv (same GPU, batch size from name)"
    return {}, "data"


def _device_info(devices: Sequence[str], latency: np.ndarray,
                 facts: Callable[[str], tuple[dict[str, Any], str]]) -> dict[str, dict[str, Any]]:
    """Facts of each device plus statistics of its column in this table (``integer_ms``: every latency is a
    whole number of ms, so expect ties)."""
    info: dict[str, dict[str, Any]] = {}
    for j, device in enumerate(devices):
        column = latency[:, j]
        finite = column[np.isfinite(column)]
        entry, source = facts(device)
        entry.update({
            "integer_ms": _integer_ms(column),
            "n_measured": int(finite.size),
            "n_unique_values": int(np.unique(finite).size),
            "min_ms": float(finite.min()) if finite.size else math.nan,
            "median_ms": float(np.median(finite)) if finite.size else math.nan,
            "max_ms": float(finite.max()) if finite.size else math.nan,
            "info_source": source,
        })
        info[device] = entry
    return info


def _benchmark_dataset(space_name: str, table: str, id_column: str,
                       archs_of: Callable[[Any, Any], list[str]]) -> LatencyDataset:
    """A benchmark table of one row per architecture (NAS-Bench-201, FBNet), in id order, every device its own
    group; ``archs_of(space, frame)`` names the rows."""
    from nas_latency.data import device_columns, load_table
    from search_spaces import get_space

    space = get_space(space_name)
    frame = load_table(table).sort_values(id_column, kind="stable").reset_index(drop=True)
    devices = device_columns(table)
    archs = archs_of(space, frame)
    latency = frame[devices].to_numpy(dtype=np.float64, copy=True)
    degenerate, source = _degenerate_mask(space, archs)
    return LatencyDataset(
        space=space_name,
        archs=archs,
        devices=devices,
        latency_ms=latency,
        groups=list(devices),
        info=_device_info(devices, latency, _hw_nas_facts),
        arch_ids=frame[id_column].to_numpy(dtype=np.int64, copy=True),
        degenerate=degenerate,
        degenerate_source=source,
    )


def _nb201_dataset() -> LatencyDataset:
    return _benchmark_dataset("nasbench201", "nb201_latency", "arch_index",
                              lambda space, frame: [space.canonical(str(a)) for a in frame["arch_string"]])


def _fbnet_dataset() -> LatencyDataset:
    return _benchmark_dataset("fbnet", "fbnet_latency", "arch_id",
                              lambda space, frame: space.measured_archs())  # the table's rows, in arch_id order


def _run_medians(table: str, arch_ids: np.ndarray, devices: Sequence[str], published: np.ndarray) -> np.ndarray:
    """``(archs, devices)`` medians of the runs in ``table`` where ``published`` has a latency (NaN elsewhere);
    ``FailedPreconditionError`` naming the first architecture and device that has a published latency but no
    run."""
    from nas_latency.data import load_table

    runs = load_table(table)
    medians = runs.groupby(["network_id", "device_id"])["latency_ms"].median().unstack()
    values = np.array(medians.reindex(index=list(arch_ids), columns=list(devices)), dtype=np.float64)
    lacking = np.argwhere(np.isfinite(published) & ~np.isfinite(values))
    if lacking.size:
        i, j = lacking[0]
        raise FailedPreconditionError(
            f"{table} has no run of network {int(arch_ids[i])} on {devices[j]}, which the published table has a "
            f"latency for ({len(lacking)} such pairs)"
        )
    values[~np.isfinite(published)] = np.nan
    return values


def _ganesan_dataset(run_statistic: str = "published") -> LatencyDataset:
    from nas_latency.data import device_columns, load_table
    from search_spaces import get_space

    space = get_space("ganesan_mobile")
    frame = load_table("ganesan_mobile_latency").sort_values("network_id", kind="stable").reset_index(drop=True)
    devices = device_columns("ganesan_mobile_latency")
    phones = load_table("ganesan_mobile_devices")
    known = {
        str(r["device_id"]): {k: v for k, v in r.items() if k != "device_id" and not is_missing(v)}
        for r in phones.to_dict("records")
    }
    groups = []
    for device in devices:
        if device in known and isinstance(known[device].get("model"), str):
            groups.append(str(known[device]["model"]))
        else:  # not in the phone table: fall back on the documented `<model>_<n>` file naming
            model = device.rsplit("_", 1)[0]
            logger.warning("ganesan device %s is not in ganesan_mobile_devices.csv; grouped as model %s", device, model)
            groups.append(model)
    keep, excluded = [], []
    archs = []
    for i, (network_id, name) in enumerate(zip(frame["network_id"].tolist(), frame["network_name"].astype(str))):
        try:
            archs.append(space.canonical(name))
            keep.append(i)
        except InvalidInputError as exc:
            excluded.append(ExcludedArch(int(network_id), name, str(exc)))
    if excluded:
        logger.info("ganesan_mobile: %d measured networks excluded (no layer rows): %s", len(excluded),
                    ", ".join(e.name for e in excluded))
    kept = frame.iloc[keep]
    latency = kept[devices].to_numpy(dtype=np.float64, copy=True)
    if run_statistic == "median":
        latency = _run_medians(RUN_TABLES["ganesan_mobile"], kept["network_id"].to_numpy(), devices, latency)
    degenerate, source = _degenerate_mask(space, archs)
    return LatencyDataset(
        space="ganesan_mobile",
        archs=archs,
        devices=devices,
        latency_ms=latency,
        groups=groups,
        info=_device_info(
            devices, latency,
            lambda d: (dict(known[d]), "ganesan_mobile_devices.csv") if d in known else ({}, "data"),
        ),
        arch_ids=kept["network_id"].to_numpy(dtype=np.int64, copy=True),
        degenerate=degenerate,
        excluded=excluded,
        degenerate_source=source,
        run_statistic=run_statistic,
    )


_LOADERS: Final[Mapping[str, Callable[..., LatencyDataset]]] = {
    "nasbench201": _nb201_dataset,
    "fbnet": _fbnet_dataset,
    "ganesan_mobile": _ganesan_dataset,
}


def dataset_spaces() -> list[str]:
    """Spaces that have a bundled latency table."""
    return sorted(_LOADERS)


@lru_cache(maxsize=None)
def load_latency_dataset(space: str, run_statistic: str = "published") -> LatencyDataset:
    """The measured latencies of ``space`` from the bundled tables (read once per process; read-only arrays).

    * ``nasbench201``: 15,625 archs in official index order × 13 devices, each device its own group.
    * ``fbnet``: 5,000 archs (layer00..21 joined by ``-``) in ``arch_id`` order × 13 devices, one group each.
    * ``ganesan_mobile``: the networks with layer rows × 71 measurement files, grouped by phone model (from
      ``ganesan_mobile_devices.csv``); measured networks without layer rows are listed in ``excluded``.

    ``run_statistic`` (:data:`RUN_STATISTICS`): ``"median"`` replaces each published latency by the median of
    its runs, for the spaces that bundle them (:data:`RUN_TABLES`).
    """
    if run_statistic not in RUN_STATISTICS:
        raise InvalidInputError(f"unknown run statistic {run_statistic!r}; known: {', '.join(RUN_STATISTICS)}")
    if run_statistic != "published" and space not in RUN_TABLES:
        raise InvalidInputError(
            f"space {space!r} bundles one latency per architecture and device, not its runs: run statistic "
            f"{run_statistic!r} needs one of {', '.join(RUN_TABLES)}"
        )
    try:
        loader = _LOADERS[space]
    except KeyError:
        from search_spaces import get_space

        get_space(space)  # NotFoundError listing the spaces if the name is unknown
        raise NotFoundError(
            f"space {space!r} has no bundled latency table; spaces with one: {', '.join(dataset_spaces())}"
        ) from None
    return loader(run_statistic) if space in RUN_TABLES else loader()


# ---- device facts ---------------------------------------------------------------------------------------------
def fact_values(dataset: LatencyDataset, device: str, facts: Sequence[str]) -> tuple[Any, ...] | None:
    """The device's values of ``facts``, or None when it lacks one of them."""
    found = tuple(dataset.info.get(device, {}).get(fact) for fact in facts)
    return None if any(is_missing(v) for v in found) else found


def devices_lacking(dataset: LatencyDataset, exclude_same: str) -> list[str]:
    """The devices that lack one of the facts of ``exclude_same`` (``+``-joined): they train no held-out device."""
    facts = exclude_same.split("+")
    return [d for d in dataset.devices if fact_values(dataset, d, facts) is None]


def known_facts(dataset: LatencyDataset) -> list[str]:
    """The facts at least one device of ``dataset`` has a value of, sorted."""
    return sorted({k for d in dataset.devices for k, v in dataset.info.get(d, {}).items() if not is_missing(v)})


__all__ = [
    "RUN_STATISTICS",
    "RUN_TABLES",
    "ExcludedArch",
    "LatencyDataset",
    "dataset_spaces",
    "devices_lacking",
    "fact_values",
    "is_missing",
    "known_facts",
    "load_latency_dataset",
]
