"""Evaluation protocols of cross-device latency models on the bundled measured tables.

* :func:`load_latency_dataset` turns a bundled table into a :class:`LatencyDataset`: architectures × devices in
  milliseconds, plus the hold-out *group* of every device (a Ganesan phone model groups its measurement files;
  on NAS-Bench-201 and FBNet every device is its own group) and what is known about each device.
* :func:`leave_device_out` is the honest few-shot protocol: for every held-out group, fit on the other groups,
  choose the ``K`` signature architectures **without** the held-out latencies (a :data:`SignatureSelector` only
  ever sees the training dataset), adapt on the held-out device's latencies at those architectures, predict
  every architecture and score. It is repeated over signature seeds; a model is fitted once per held-out group
  and adapted once per seed and device.
* :func:`help_query_indices` is HELP's query set: architecture index 900..1899, minus the 10 % fastest and the
  10 % slowest on the scored device, minus the signature architectures.

Library code: no printing; progress goes through an optional callback, diagnostics through ``logging``.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Callable, Final, Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from nas_latency.errors import FailedPreconditionError, InvalidInputError, NotFoundError
from nas_latency.evaluate.metrics import SUMMARY_KEYS, summarize
from nas_latency.evaluate.retest import twin_rows
from nas_latency.ir import FeatureMatrix
from nas_latency.models.base import CrossDeviceModel

logger = logging.getLogger(__name__)

ScoringSet = Literal["help", "all", "twins"]

#: Spaces scored on HELP's query set as well as on all architectures.
HELP_SPACES: Final[frozenset[str]] = frozenset({"nasbench201", "fbnet"})
#: HELP's query architectures: official index ``HELP_QUERY_RANGE[0] .. HELP_QUERY_RANGE[1] - 1``.
HELP_QUERY_RANGE: Final[tuple[int, int]] = (900, 1900)
#: Share of the query set dropped at each end (fastest and slowest on the scored device).
HELP_TRIM_FRACTION: Final[float] = 0.1
#: For each metric, whether larger is better (decides the "worst" device).
HIGHER_IS_BETTER: Final[Mapping[str, bool]] = {
    "spearman": True,
    "kendall": True,
    "mape_pct": False,
    "within_10pct": True,
    "r2": True,
}

#: How a latency table is made of repeated runs: ``"published"``, the bundled table as is (Ganesan phones: the
#: mean of 30 runs, warm-up run and throttling spikes included); ``"median"``, the median of every run of each
#: architecture on each device, for the spaces in :data:`RUN_TABLES`.
RUN_STATISTICS: Final[tuple[str, ...]] = ("published", "median")
#: Spaces that bundle every run, and the table holding them (``device_id, network_id, run, latency_ms``).
RUN_TABLES: Final[Mapping[str, str]] = {"ganesan_mobile": "ganesan_mobile_runs"}

ModelFactory = Callable[[], CrossDeviceModel]
Featurizer = Callable[[Sequence[str]], FeatureMatrix]
ProgressCallback = Callable[[int, int, str], None]


# ---- datasets ---------------------------------------------------------------------------------------------------
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
        entry = {k: record[k] for k in _NB201_FACTS if k in record and not _missing(record[k])}
        if "batch_size" in entry:
            entry["batch_size"] = int(entry["batch_size"])
        facts[str(record["device"])] = entry
    return facts


def _missing(value: Any) -> bool:
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
        str(r["device_id"]): {k: v for k, v in r.items() if k != "device_id" and not _missing(v)}
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


# ---- signatures -------------------------------------------------------------------------------------------------
#: ``(train_dataset, k, seed) -> k architectures``: picks the signature without any held-out latency.
SignatureSelector = Callable[[LatencyDataset, int, int], Sequence[str]]


class RandomSignature:
    """``k`` architectures drawn uniformly by ``numpy.random.default_rng(seed)``. When the space has degenerate
    architectures (``space.degenerate_mask``), ``k - 1`` are drawn from the others and the first degenerate
    architecture (in dataset order) completes the set: the research found one dead cell in the signature the
    one robust gain (models can then learn whether a device drops dead cells)."""

    def __init__(self, *, include_degenerate: bool = True) -> None:
        self.include_degenerate = include_degenerate

    def __repr__(self) -> str:
        return f"RandomSignature(include_degenerate={self.include_degenerate})"

    def __call__(self, train: LatencyDataset, k: int, seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        n = len(train.archs)
        if not 1 <= k <= n:
            raise InvalidInputError(f"signature size must be in 1..{n}, got {k}")
        degenerate = np.flatnonzero(train.degenerate)
        if self.include_degenerate and degenerate.size and k >= 2:
            live = np.flatnonzero(~train.degenerate)
            picks = rng.choice(live, size=k - 1, replace=False)
            rows = [int(degenerate[0]), *picks.tolist()]
        else:
            rows = rng.choice(n, size=k, replace=False).tolist()
        return [train.archs[i] for i in rows]


class MethodSignature:
    """The product's signature selection (:func:`nas_latency.signature.select_signature`) run on the training
    devices only: ``method`` is one of ``SELECTION_METHODS`` (the shipped default is what ``signature`` uses)."""

    def __init__(self, method: str) -> None:
        from nas_latency.signature import SELECTION_METHODS

        if method not in SELECTION_METHODS:
            raise InvalidInputError(f"unknown signature method {method!r}; methods: {', '.join(SELECTION_METHODS)}")
        self.method = method

    def __repr__(self) -> str:
        return f"MethodSignature({self.method!r})"

    def __call__(self, train: LatencyDataset, k: int, seed: int) -> list[str]:
        from nas_latency.signature import select_signature
        from search_spaces import get_space

        features = get_space(train.space).model_features(train.archs) if self.method == "informative" else None
        return list(select_signature(self.method, train.latency_ms, list(train.archs), k, seed=seed,
                                     features=features, degenerate_mask=train.degenerate))


def _check_signature(dataset: LatencyDataset, signature: Sequence[str], k: int, selector: Any) -> np.ndarray:
    archs = list(signature)
    if len(archs) != k or len(set(archs)) != k:
        raise InvalidInputError(f"signature selector {selector!r} returned {len(archs)} archs "
                                f"({len(set(archs))} distinct); expected {k} distinct")
    return dataset.arch_indices(archs)


# ---- scoring sets -----------------------------------------------------------------------------------------------
def help_query_indices(
    arch_ids: np.ndarray,
    latency_ms: np.ndarray,
    signature_rows: Sequence[int] | np.ndarray = (),
    *,
    id_range: tuple[int, int] = HELP_QUERY_RANGE,
    trim_fraction: float = HELP_TRIM_FRACTION,
) -> np.ndarray:
    """Rows of HELP's query set on one device: official index in ``id_range`` (half-open), measured, without
    the ``round(trim_fraction * n)`` fastest and as many slowest on *this* device (ties broken by row order),
    then without the signature rows. Sorted row positions."""
    ids = np.asarray(arch_ids)
    y = np.asarray(latency_ms, dtype=np.float64)
    if ids.shape != y.shape:
        raise InvalidInputError(f"help_query_indices: {ids.shape} arch ids but latencies of shape {y.shape}")
    if not 0 <= trim_fraction < 0.5:
        raise InvalidInputError(f"help_query_indices: trim_fraction must be in [0, 0.5), got {trim_fraction}")
    rows = np.flatnonzero((ids >= id_range[0]) & (ids < id_range[1]) & np.isfinite(y))
    rows = rows[np.argsort(ids[rows], kind="stable")]  # by official index, so tie-breaking is well defined
    drop = int(round(trim_fraction * rows.size))
    order = np.argsort(y[rows], kind="stable")
    kept = rows[order[drop: rows.size - drop]]
    return np.setdiff1d(kept, np.asarray(signature_rows, dtype=np.intp))


def all_query_indices(latency_ms: np.ndarray, signature_rows: Sequence[int] | np.ndarray = ()) -> np.ndarray:
    """Every measured row except the signature rows."""
    rows = np.flatnonzero(np.isfinite(np.asarray(latency_ms, dtype=np.float64)))
    return np.setdiff1d(rows, np.asarray(signature_rows, dtype=np.intp))


def scoring_sets(space: str) -> tuple[ScoringSet, ...]:
    return ("help", "all") if space in HELP_SPACES else ("all",)


# ---- results ----------------------------------------------------------------------------------------------------
#: the central intervals ``ln ŷ ± z σ`` whose coverage is reported, by name: z of a normal 68 % and 95 % interval
INTERVALS: Final[Mapping[str, float]] = {"coverage_68": 1.0, "coverage_95": 1.959964}


@dataclass(frozen=True)
class IntervalCoverage:
    """How often the measured latency fell inside a model's predictive intervals on one held-out device (the
    fraction of scored archs with ``|ln y − ln ŷ| ≤ z σ``, for each :data:`INTERVALS` entry)."""

    model: str
    seed: int
    device: str
    scoring_set: ScoringSet
    coverage: Mapping[str, float]
    median_std_log: float


@dataclass(frozen=True)
class DeviceScore:
    """The metrics of one model on one held-out device, for one signature seed and one scoring set."""

    model: str
    seed: int
    device: str
    group: str
    scoring_set: ScoringSet
    n_scored: int
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class Prediction:
    """Predicted latencies of every dataset arch on one held-out device (kept for the first seed)."""

    model: str
    device: str
    seed: int
    signature_rows: np.ndarray
    predicted_ms: np.ndarray


@dataclass
class EvaluationResult:
    """Everything a leave-device-out run produced. ``scores`` holds one entry per model × seed × held-out
    device × scoring set; the aggregate views are :meth:`per_device` and :meth:`summary`."""

    dataset: LatencyDataset
    budget: int
    seeds: list[int]
    models: list[str]
    selector: str
    held_out_groups: list[str]
    #: device-info key (e.g. ``"kind"``): devices sharing its value with the held-out device were left out of
    #: training too (leave-kind-out); None = plain leave-device-out
    exclude_same: str | None = None
    #: group -> the training devices its models were fitted on
    training_devices: dict[str, list[str]] = field(default_factory=dict)
    scores: list[DeviceScore] = field(default_factory=list)
    predictions: dict[tuple[str, str], Prediction] = field(default_factory=dict)
    #: seed -> group -> signature archs
    signatures: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    #: model -> {"fit_s": ..., "adapt_predict_s": ...}
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    #: the predictive intervals of the models that give an uncertainty: one entry per model × seed × device × set
    intervals: list[IntervalCoverage] = field(default_factory=list)
    #: every held-out device's latencies (its signature measurements and its truth) times this factor F: the same
    #: device F times slower (F > 1) or faster than measured; the training devices stay as measured
    held_out_scale: float = 1.0
    #: one of every held-out device's signature measurements (:func:`spiked_position`) times this factor: a bad
    #: measurement among the K; the latencies it is scored against stay as measured
    held_out_spike: float = 1.0
    #: every held-out device's signature measurements times ``exp(σ z)``, ``z`` standard normal drawn per seed and
    #: device (:func:`measurement_noise`): measured with timing noise of this log standard deviation σ; the
    #: latencies it is scored against stay as measured
    held_out_noise: float = 0.0
    #: what the predictions were scored against: ``"measured"`` (the dataset's latencies) or the name of
    #: :attr:`scoring_latency_ms` (e.g. ``"drift_removed"``)
    scored_against: str = "measured"
    #: the latencies scored against when not the measured ones (same shape as ``dataset.latency_ms``)
    scoring_latency_ms: np.ndarray | None = None
    #: scoring sets asked for on top of the space's own (:func:`scoring_sets`): ``"twins"``
    extra_sets: tuple[ScoringSet, ...] = ()
    #: held-out group -> the nested choice's record (:mod:`~nas_latency.evaluate.nested`): ``chosen``, the inner
    #: mean Spearman of every candidate (``inner_spearman``) and the devices of the inner run (``inner_devices``)
    nested_choices: dict[str, dict[str, Any]] = field(default_factory=dict)

    def truth_of(self, device: str) -> np.ndarray:
        """The latencies ``device``'s predictions were scored against."""
        j = self.dataset.device_index(device)
        truth = self.dataset.latency_ms[:, j] if self.scoring_latency_ms is None else self.scoring_latency_ms[:, j]
        return truth if self.held_out_scale == 1.0 else truth * self.held_out_scale

    @property
    def scoring_sets(self) -> tuple[ScoringSet, ...]:
        return scoring_sets(self.dataset.space) + self.extra_sets

    @property
    def held_out_devices(self) -> list[str]:
        groups = set(self.held_out_groups)
        return [d for d, g in zip(self.dataset.devices, self.dataset.groups) if g in groups]

    def frame(self) -> pd.DataFrame:
        """One row per score: model, seed, device, group, set, n_scored and the :data:`SUMMARY_KEYS`."""
        rows = [
            {"model": s.model, "seed": s.seed, "device": s.device, "group": s.group, "set": s.scoring_set,
             "n_scored": s.n_scored, **{k: s.metrics[k] for k in SUMMARY_KEYS}}
            for s in self.scores
        ]
        return pd.DataFrame(rows, columns=["model", "seed", "device", "group", "set", "n_scored", *SUMMARY_KEYS])

    def per_device(self) -> list[dict[str, Any]]:
        """Per model, set and device: each metric's mean over seeds (``<metric>``) and std (``<metric>_std``)."""
        frame = self.frame()
        rows: list[dict[str, Any]] = []
        for model in self.models:
            for scoring in self.scoring_sets:
                part = frame[(frame.model == model) & (frame.set == scoring)]
                for device in self.held_out_devices:
                    dev = part[part.device == device]
                    if dev.empty:
                        continue
                    row: dict[str, Any] = {"model": model, "set": scoring, "device": device,
                                           "group": str(dev.group.iloc[0]), "n_scored": int(dev.n_scored.iloc[0])}
                    for key in SUMMARY_KEYS:
                        row[key], row[f"{key}_std"] = _mean_std(dev[key].to_numpy())
                    rows.append(row)
        return rows

    def summary(self) -> list[dict[str, Any]]:
        """Per model and set: for each metric the mean over held-out devices and the worst device, each computed
        per seed and then given as mean and std over seeds (``<metric>_mean``, ``<metric>_mean_std``,
        ``<metric>_worst``, ``<metric>_worst_std``)."""
        frame = self.frame()
        rows: list[dict[str, Any]] = []
        for model in self.models:
            for scoring in self.scoring_sets:
                part = frame[(frame.model == model) & (frame.set == scoring)]
                if part.empty:
                    continue
                row: dict[str, Any] = {"model": model, "set": scoring, "devices": int(part.device.nunique()),
                                       "seeds": int(part.seed.nunique())}
                for key in SUMMARY_KEYS:
                    per_seed = part.groupby("seed")[key]
                    means = per_seed.apply(lambda v: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan)
                    worst = per_seed.apply(lambda v, k=key: _worst(v.to_numpy(), k))
                    row[f"{key}_mean"], row[f"{key}_mean_std"] = _mean_std(means.to_numpy())
                    row[f"{key}_worst"], row[f"{key}_worst_std"] = _mean_std(worst.to_numpy())
                rows.append(row)
        return rows

    def calibration(self) -> list[dict[str, Any]]:
        """Per model (that gives an uncertainty) and set: the interval coverages and the median predictive
        standard deviation, averaged over held-out devices and seeds (nominal: 0.68 and 0.95)."""
        rows: list[dict[str, Any]] = []
        for model in self.models:
            for scoring in self.scoring_sets:
                part = [c for c in self.intervals if c.model == model and c.scoring_set == scoring]
                if not part:
                    continue
                row: dict[str, Any] = {"model": model, "set": scoring, "devices": len({c.device for c in part})}
                for name in INTERVALS:
                    row[name] = float(np.mean([c.coverage[name] for c in part]))
                    row[f"{name}_worst"] = float(min(c.coverage[name] for c in part))
                row["median_std_log"] = float(np.median([c.median_std_log for c in part]))
                rows.append(row)
        return rows

    def best_model(self) -> str:
        """The model with the highest mean Spearman on the first scoring set (HELP's where there is one)."""
        primary = self.scoring_sets[0]
        best, best_value = self.models[0], -math.inf
        for row in self.summary():
            value = row["spearman_mean"]
            if row["set"] == primary and not math.isnan(value) and value > best_value:
                best, best_value = row["model"], value
        return best


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    return float(finite.mean()), float(finite.std(ddof=0))


def _worst(values: np.ndarray, key: str) -> float:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan
    return float(finite.min() if HIGHER_IS_BETTER[key] else finite.max())


# ---- leave-device-out -------------------------------------------------------------------------------------------
def default_featurizer(space_name: str) -> Featurizer:
    """``space.model_features`` where the space has it (the features the shipped models are trained on), else
    ``space.featurize``."""
    from search_spaces import get_space

    space = get_space(space_name)
    method = getattr(space, "model_features", None)
    return method if method is not None else space.featurize


def _subset(features: FeatureMatrix, rows: np.ndarray) -> FeatureMatrix:
    return FeatureMatrix(features.names, features.values[rows], tuple(features.rows[i] for i in rows.tolist()))


def leave_device_out(
    dataset: LatencyDataset,
    models: Mapping[str, ModelFactory],
    *,
    budget: int,
    seeds: Sequence[int] = (0, 1, 2),
    selector: SignatureSelector | None = None,
    features: FeatureMatrix | Mapping[str, FeatureMatrix] | None = None,
    holdout: Sequence[str] | None = None,
    keep_predictions: bool = True,
    progress: ProgressCallback | None = None,
    exclude_same: str | None = None,
    scoring_latency_ms: np.ndarray | None = None,
    scored_against: str = "measured",
    twins: bool = False,
    held_out_scale: float = 1.0,
    held_out_spike: float = 1.0,
    held_out_noise: float = 0.0,
) -> EvaluationResult:
    """Leave-device-out evaluation of every model in ``models`` (name -> factory of an unfitted model).

    For each held-out group (``holdout``: group or device names, default every group), the training dataset is
    the other groups' devices; ``selector(train, budget, seed)`` picks the signature for each seed (the same
    signatures serve every model, so models are compared on paired draws); each model is fitted once on the
    training devices and adapted, per seed, on each held-out device's latencies at the signature archs; it then
    predicts every arch and is scored on :func:`scoring_sets` (signature archs never scored).

    ``exclude_same``: a key of the devices' info (``"kind"``: GPU, CPU, mobile), or several joined by ``+``: the
    training devices of a held-out group also exclude every device whose value of it is one of the held-out devices'
    values, so a device is onboarded with a model that has seen no device of its kind (an unseen *kind* of hardware,
    not only an unseen device); devices lacking the fact train none (:func:`training_devices`). ``features``: one
    :class:`FeatureMatrix` for all models, or one per model name, with rows in dataset order; default
    :func:`default_featurizer`. ``progress(done, total, message)`` is called after each model fit and each
    adaptation.

    ``scoring_latency_ms`` (same shape as ``dataset.latency_ms``, named ``scored_against``): score the predictions
    against these latencies instead of the measured ones, e.g. the measurements with their drift removed
    (:mod:`~nas_latency.evaluate.drift`). Training, signatures and onboarding still use the measured latencies.

    ``held_out_scale``: multiply every held-out device's latencies, the signature measurements it is onboarded with
    and those it is scored against, by this factor F: the same device F times slower (F > 1) or faster, while
    the training devices stay as measured. A model whose rankings do not depend on a device's overall speed scores
    the same for every factor.

    ``held_out_spike``: multiply one of every held-out device's K signature measurements by this factor (which one:
    :func:`spiked_position`, drawn per seed and device), as a throttled or preempted run would: a model that
    onboards the device on the other measurements scores as with none spiked. The truth stays as measured (the
    signature archs are never scored).

    ``held_out_noise``: multiply each of every held-out device's K signature measurements by ``exp(σ z)`` with
    this σ and ``z`` standard normal (:func:`measurement_noise`, drawn per seed and device, the same for every
    model): a device timed with noise of log standard deviation σ (0.05: about ±5 %), as one short run per
    network on a busy machine would be. The truth stays as measured.

    ``twins``: also score on the ``"twins"`` set, the architectures that spell the same network as another one
    (:mod:`~nas_latency.evaluate.retest`; NAS-Bench-201 only), where a second measurement of each network can be
    scored too.
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
        raise InvalidInputError(f"budget must be an integer, got {budget!r}")
    if budget < 3:
        raise InvalidInputError(f"budget must be at least 3 signature measurements, got {budget}")
    if budget >= len(dataset.archs):
        raise InvalidInputError(f"budget {budget} leaves nothing to score: {dataset.space} has {len(dataset.archs)} archs")
    for name, factor in (("held_out_scale", held_out_scale), ("held_out_spike", held_out_spike)):
        if not (_is_finite_real(factor) and factor > 0):
            raise InvalidInputError(f"{name} must be a positive finite number, got {factor!r}")
    if not (_is_finite_real(held_out_noise) and held_out_noise >= 0):
        raise InvalidInputError(f"held_out_noise must be a finite log standard deviation >= 0, got {held_out_noise!r}")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise InvalidInputError(f"seeds must be a non-empty list of distinct integers, got {seeds}")
    if not models:
        raise InvalidInputError("no models to evaluate")
    if (scoring_latency_ms is None) != (scored_against == "measured"):
        raise InvalidInputError("give scoring_latency_ms exactly when scored_against names something other than "
                                f"'measured' (got scored_against={scored_against!r})")
    if scoring_latency_ms is not None:
        scoring_latency_ms = np.array(scoring_latency_ms, dtype=np.float64)
        if scoring_latency_ms.shape != dataset.latency_ms.shape:
            raise InvalidInputError(f"scoring latencies of shape {scoring_latency_ms.shape} for a dataset of shape "
                                    f"{dataset.latency_ms.shape}")
        if not np.array_equal(np.isfinite(scoring_latency_ms), np.isfinite(dataset.latency_ms)):
            raise InvalidInputError("scoring latencies must be measured exactly where the dataset's are")
        if (scoring_latency_ms[np.isfinite(scoring_latency_ms)] <= 0).any():
            raise InvalidInputError("scoring latencies must be positive")
        scoring_latency_ms.setflags(write=False)
    selector = selector if selector is not None else RandomSignature()
    groups = _resolve_holdout(dataset, holdout)
    if len(dataset.group_names) < 2:
        raise InvalidInputError(f"dataset {dataset.space}: leave-device-out needs at least 2 device groups")

    twin_set = twin_rows(dataset.space, dataset.archs) if twins else np.empty(0, dtype=np.intp)
    if twins and not twin_set.size:
        raise InvalidInputError(f"dataset {dataset.space}: no architecture has its twin in the dataset")
    feature_map = _resolve_features(dataset, list(models), features)
    training = {group: training_devices(dataset, group, exclude_same) for group in groups}
    result = EvaluationResult(dataset=dataset, budget=int(budget), seeds=seeds, models=list(models),
                              selector=repr(selector), held_out_groups=groups, exclude_same=exclude_same,
                              training_devices=training, scored_against=scored_against,
                              scoring_latency_ms=scoring_latency_ms, extra_sets=("twins",) if twins else (),
                              held_out_scale=float(held_out_scale), held_out_spike=float(held_out_spike),
                              held_out_noise=float(held_out_noise))
    result.timings = {name: {"fit_s": 0.0, "adapt_predict_s": 0.0, "fits": 0, "adaptations": 0} for name in models}
    n_test = sum(len(dataset.devices_of(g)) for g in groups)
    total = len(models) * (len(groups) + len(seeds) * n_test)
    done = 0

    for group in groups:
        test_devices = dataset.devices_of(group)
        train = dataset.with_devices(training[group])
        signature_rows: dict[int, np.ndarray] = {}
        for seed in seeds:
            signature = list(selector(train, int(budget), seed))
            signature_rows[seed] = _check_signature(dataset, signature, int(budget), selector)
            result.signatures.setdefault(seed, {})[group] = signature
        for name, factory in models.items():
            feats = feature_map[name]
            start = time.perf_counter()
            model = factory()
            model.fit(feats, train.latency_ms)
            result.timings[name]["fit_s"] += time.perf_counter() - start
            result.timings[name]["fits"] += 1
            done += 1
            if progress:
                progress(done, total, f"{name}: fitted without {group}")
            for seed in seeds:
                rows = signature_rows[seed]
                sig_features = _subset(feats, rows)
                for device in test_devices:
                    y = dataset.latency_of(device) * result.held_out_scale
                    start = time.perf_counter()
                    measured = np.isfinite(y[rows])
                    if not measured.all():
                        raise FailedPreconditionError(
                            f"{device} has no latency for {int((~measured).sum())} signature archs "
                            f"(first {dataset.archs[int(rows[~measured][0])]!r}); choose another signature"
                        )
                    measurements = y[rows]
                    if result.held_out_spike != 1.0:
                        measurements = measurements.copy()
                        measurements[spiked_position(seed, device, len(rows))] *= result.held_out_spike
                    if result.held_out_noise > 0:
                        measurements = measurements * measurement_noise(seed, device, len(rows),
                                                                        result.held_out_noise)
                    adaptation = model.adapt(sig_features, measurements)
                    predicted = np.asarray(model.predict(feats, adaptation), dtype=np.float64)
                    result.timings[name]["adapt_predict_s"] += time.perf_counter() - start
                    result.timings[name]["adaptations"] += 1
                    _check_prediction(predicted, name, device, len(dataset.archs))
                    std_log = _predictive_std(model, feats, adaptation)
                    truth = result.truth_of(device)
                    for scoring in result.scoring_sets:
                        query = _query_rows(scoring, dataset.arch_ids, truth, rows, twin_set)
                        metrics = summarize(truth[query], predicted[query])
                        result.scores.append(DeviceScore(name, seed, device, group, scoring, int(query.size), metrics))
                        if std_log is not None and query.size:
                            error = np.abs(np.log(truth[query] / predicted[query]))
                            result.intervals.append(IntervalCoverage(
                                name, seed, device, scoring,
                                {key: float(np.mean(error <= z * std_log[query])) for key, z in INTERVALS.items()},
                                float(np.median(std_log[query]))))
                    if keep_predictions and seed == seeds[0]:
                        result.predictions[(name, device)] = Prediction(name, device, seed, rows, predicted)
                    done += 1
                    if progress:
                        progress(done, total, f"{name}: adapted to {device} (seed {seed})")
    return result


def _is_finite_real(value: object) -> bool:
    """A finite int or float (not a bool)."""
    return not isinstance(value, bool) and isinstance(value, (int, float, np.floating)) and math.isfinite(value)


def device_rng(seed: int, device: str, *stream: int) -> np.random.Generator:
    """The random numbers drawn for one device: from the seed, the device's name and the draw's own ``stream``
    (a perturbation of a held-out device's measurements, a simulated device's timing noise), so every model of a
    run gets the same draws."""
    return np.random.default_rng([int(seed), zlib.crc32(device.encode("utf-8")), *stream])


def spiked_position(seed: int, device: str, budget: int) -> int:
    """Which of a held-out device's ``budget`` signature measurements ``held_out_spike`` multiplies: drawn from the
    seed and the device's name, so every model of a run gets the same spiked measurement."""
    return int(device_rng(seed, device).integers(budget))


def measurement_noise(seed: int, device: str, budget: int, sigma: float) -> np.ndarray:
    """The factors ``exp(σ z)`` (``z`` standard normal) ``held_out_noise`` multiplies a held-out device's
    ``budget`` signature measurements by: drawn from the seed and the device's name (a stream apart from
    :func:`spiked_position`'s), so every model of a run gets the same noisy measurements and a larger σ scales the
    same draws."""
    z = device_rng(seed, device, 1).standard_normal(budget)
    return np.exp(float(sigma) * z)


def _query_rows(scoring: ScoringSet, arch_ids: np.ndarray, truth: np.ndarray, signature_rows: np.ndarray,
                twin_set: np.ndarray) -> np.ndarray:
    if scoring == "help":
        return help_query_indices(arch_ids, truth, signature_rows)
    if scoring == "twins":
        return np.setdiff1d(twin_set[np.isfinite(truth[twin_set])], signature_rows)
    return all_query_indices(truth, signature_rows)


def training_devices(dataset: LatencyDataset, group: str, exclude_same: str | None) -> list[str]:
    """The devices a held-out ``group``'s models are fitted on: every other group's, less (``exclude_same``) the
    devices that share the info value ``exclude_same`` with a held-out device. ``exclude_same`` may join several
    facts with ``+`` (``cpu+max_freq_ghz``: the same values of all of them). A device that lacks one of the facts
    cannot be told apart from the held-out device, so it trains no held-out device; a held-out device that lacks
    one is compared with no other (its training devices are those that have the facts)."""
    others = [d for d, g in zip(dataset.devices, dataset.groups) if g != group]
    if exclude_same is None:
        return others
    facts = exclude_same.split("+")
    for fact in facts:
        if not fact or all(_missing(dataset.info.get(d, {}).get(fact)) for d in dataset.devices):
            raise InvalidInputError(f"exclude_same={exclude_same!r}: no such fact {fact!r} in the {dataset.space} "
                                    f"device info (facts: {', '.join(_known_facts(dataset))})")

    held = {_fact_values(dataset, d, facts) for d in dataset.devices_of(group)} - {None}
    kept = [d for d in others if _fact_values(dataset, d, facts) not in held | {None}]
    if len(kept) < 2:
        raise FailedPreconditionError(f"holding out {group} and every device with {exclude_same} in "
                                      f"{sorted(map(str, held))} leaves {len(kept)} training device(s); at least 2 "
                                      f"are needed")
    return kept


def _fact_values(dataset: LatencyDataset, device: str, facts: Sequence[str]) -> tuple[Any, ...] | None:
    """The device's values of ``facts``, or None when it lacks one of them."""
    found = tuple(dataset.info.get(device, {}).get(fact) for fact in facts)
    return None if any(_missing(v) for v in found) else found


def devices_lacking(dataset: LatencyDataset, exclude_same: str) -> list[str]:
    """The devices that lack one of the facts of ``exclude_same`` (``+``-joined): they train no held-out device."""
    facts = exclude_same.split("+")
    return [d for d in dataset.devices if _fact_values(dataset, d, facts) is None]


def _known_facts(dataset: LatencyDataset) -> list[str]:
    return sorted({k for d in dataset.devices for k, v in dataset.info.get(d, {}).items() if not _missing(v)})


def _predictive_std(model: CrossDeviceModel, features: FeatureMatrix, adaptation: Any) -> np.ndarray | None:
    """The model's predictive standard deviation of each log latency, or None when it gives none."""
    try:
        return np.asarray(model.predict_with_uncertainty(features, adaptation)[1], dtype=np.float64)
    except FailedPreconditionError:
        return None


def _resolve_holdout(dataset: LatencyDataset, holdout: Sequence[str] | None) -> list[str]:
    if holdout is None:
        return dataset.group_names
    groups: list[str] = []
    for name in holdout:
        if name in dataset.group_names:
            group = name
        elif name in dataset.devices:  # a device names its whole group
            group = dataset.groups[dataset.devices.index(name)]
        else:
            raise NotFoundError(
                f"dataset {dataset.space}: {name!r} is neither a device nor a device group; "
                f"groups: {', '.join(dataset.group_names)}"
            )
        if group not in groups:
            groups.append(group)
    if not groups:
        raise InvalidInputError("no device group to hold out")
    return groups


def _resolve_features(
    dataset: LatencyDataset, names: list[str], features: FeatureMatrix | Mapping[str, FeatureMatrix] | None
) -> dict[str, FeatureMatrix]:
    if features is None:
        shared = default_featurizer(dataset.space)(dataset.archs)
        mapping = {name: shared for name in names}
    elif isinstance(features, FeatureMatrix):
        mapping = {name: features for name in names}
    else:
        missing = [n for n in names if n not in features]
        if missing:
            raise InvalidInputError(f"no features given for models {', '.join(missing)}")
        mapping = {name: features[name] for name in names}
    for name, matrix in mapping.items():
        if matrix.values.shape[0] != len(dataset.archs):
            raise InvalidInputError(
                f"features for {name}: {matrix.values.shape[0]} rows but the dataset has {len(dataset.archs)} archs"
            )
        if matrix.rows and tuple(matrix.rows) != tuple(dataset.archs):
            first = next(i for i, (a, b) in enumerate(zip(matrix.rows, dataset.archs)) if a != b)
            raise InvalidInputError(f"features for {name}: rows are not in dataset order (row {first} is "
                                    f"{matrix.rows[first]!r}, the dataset has {dataset.archs[first]!r})")
    return mapping


def _check_prediction(predicted: np.ndarray, model: str, device: str, n: int) -> None:
    if predicted.shape != (n,):
        raise FailedPreconditionError(f"{model} predicted {predicted.shape} latencies on {device}, expected ({n},)")
    bad = ~np.isfinite(predicted)
    if bad.any():
        raise FailedPreconditionError(
            f"{model} predicted {int(bad.sum())} non-finite latencies on {device} (first at row {int(np.flatnonzero(bad)[0])})"
        )


__all__ = [
    "HELP_QUERY_RANGE",
    "HELP_SPACES",
    "HELP_TRIM_FRACTION",
    "DeviceScore",
    "EvaluationResult",
    "ExcludedArch",
    "LatencyDataset",
    "Prediction",
    "RUN_STATISTICS",
    "RUN_TABLES",
    "RandomSignature",
    "SignatureSelector",
    "all_query_indices",
    "dataset_spaces",
    "default_featurizer",
    "device_rng",
    "help_query_indices",
    "leave_device_out",
    "load_latency_dataset",
    "scoring_sets",
    "training_devices",
]
