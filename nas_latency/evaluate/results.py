"""What a leave-device-out run (:func:`~nas_latency.evaluate.protocols.leave_device_out`) produced: one
:class:`DeviceScore` per model × seed × held-out device × scoring set, kept predictions, interval coverages, and
the per-device and summary views of :class:`EvaluationResult`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final, Mapping

import numpy as np
import pandas as pd

from nas_latency.evaluate.datasets import LatencyDataset
from nas_latency.evaluate.metrics import SUMMARY_KEYS
from nas_latency.evaluate.scoring_sets import ScoringSet, scoring_sets

#: For each metric, whether larger is better (decides the "worst" device).
HIGHER_IS_BETTER: Final[Mapping[str, bool]] = {
    "spearman": True,
    "kendall": True,
    "mape_pct": False,
    "within_10pct": True,
    "r2": True,
}


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
    #: one of every held-out device's signature measurements
    #: (:func:`~nas_latency.evaluate.device_draws.spiked_position`) times this factor: a bad measurement among the
    #: K; the latencies it is scored against stay as measured
    held_out_spike: float = 1.0
    #: every held-out device's signature measurements times ``exp(σ z)``, ``z`` standard normal drawn per seed and
    #: device (:func:`~nas_latency.evaluate.device_draws.measurement_noise`): measured with timing noise of this
    #: log standard deviation σ; the latencies it is scored against stay as measured
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


__all__ = [
    "HIGHER_IS_BETTER",
    "INTERVALS",
    "DeviceScore",
    "EvaluationResult",
    "IntervalCoverage",
    "Prediction",
]
