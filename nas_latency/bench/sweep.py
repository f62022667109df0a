"""Measure a list of :class:`~nas_latency.bench.items.BenchItem` with one runner and one protocol, and
turn the results into store rows.

An item the runtime cannot run (an operator onnxruntime's exporter rejects, a GPU item without a GPU) is an
explicit, counted failure with its reason — never a silent 0 ms.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np

from nas_latency.bench.items import BenchItem
from nas_latency.bench.protocol import MeasurementProtocol, Sampler, TimingStats, combine_rounds, measure
from nas_latency.bench.runners import Runner
from nas_latency.errors import InvalidInputError, NasLatencyError
from nas_latency.store import MeasurementRow

log = logging.getLogger(__name__)

#: ``progress(label, done, total)``, called after every item.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Measured:
    item: BenchItem
    stats: TimingStats


@dataclass
class SweepResult:
    """Measured items in order, failures with their reasons, and the wall time."""

    measured: list[Measured] = field(default_factory=list)
    failed: list[tuple[BenchItem, str]] = field(default_factory=list)
    elapsed_s: float = 0.0

    def extend(self, other: "SweepResult") -> None:
        self.measured += other.measured
        self.failed += other.failed
        self.elapsed_s += other.elapsed_s

    def by_key(self) -> dict[str, TimingStats]:
        return {m.item.key: m.stats for m in self.measured}

    def noise(self) -> dict[str, Any]:
        """Noise figures of the sweep: median and 90th percentile CV, share of stable measurements."""
        if not self.measured:
            return {"n": 0}
        cvs = np.array([m.stats.cv for m in self.measured])
        ci = np.array([m.stats.ci_rel for m in self.measured])
        return {
            "n": len(self.measured),
            "failed": len(self.failed),
            "cv_median": float(np.median(cvs)),
            "cv_p90": float(np.percentile(cvs, 90)),
            "ci_rel_median": float(np.median(ci)),
            "stable_fraction": float(np.mean([m.stats.stable for m in self.measured])),
            "round_spread_median": float(np.median([m.stats.round_spread for m in self.measured])),
            "rejected_fraction": float(
                sum(m.stats.n_rejected for m in self.measured)
                / max(1, sum(m.stats.n_rejected + m.stats.n_samples for m in self.measured))),
            "elapsed_s": round(self.elapsed_s, 2),
        }


def run_sweep(items: Sequence[BenchItem], runner: Runner, protocol: MeasurementProtocol, *, rounds: int = 1,
              chunk: int = 64, progress: Progress | None = None, label: str = "sweep") -> SweepResult:
    """Measure every item with ``runner`` under ``protocol``.

    With ``rounds > 1`` the items are measured in chunks of ``chunk``: each round goes once over the chunk, so an
    item's rounds are seconds apart and interleaved with its neighbours, and a burst of load from another
    process shifts several items a little instead of one item a lot. The rounds are pooled
    (:func:`~nas_latency.bench.protocol.combine_rounds`). Runnable modules are built once per chunk.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise InvalidInputError(f"rounds must be a positive integer, got {rounds!r}")
    result = SweepResult()
    start = time.perf_counter()
    total = len(items) * rounds
    done = 0
    for first in range(0, len(items), max(1, chunk)):
        block = items[first : first + max(1, chunk)]
        samplers: dict[int, Sampler] = {}
        failed: dict[int, str] = {}
        measured: dict[int, list[TimingStats]] = {i: [] for i in range(len(block))}
        for r in range(rounds):
            # alternate the direction of each round so that no item is always measured right after the same one
            order = range(len(block)) if r % 2 == 0 else range(len(block) - 1, -1, -1)
            for i in order:
                if i not in failed:
                    try:
                        if i not in samplers:
                            samplers[i] = runner.sampler(block[i].network, copies=block[i].copies)
                        measured[i].append(measure(samplers[i], protocol, keep_samples=True))
                    except NasLatencyError as exc:
                        log.warning("%s: cannot measure %s: %s", runner.name, block[i].key, exc)
                        failed[i] = str(exc)
                done += 1
                if progress is not None:
                    progress(label, done, total)
        for i, item in enumerate(block):
            if i in failed:
                result.failed.append((item, failed[i]))
            else:
                result.measured.append(Measured(item, combine_rounds(measured[i], protocol)))
        samplers.clear()
    result.elapsed_s = time.perf_counter() - start
    return result


Statistic = Literal["median", "fastest_round"]


def latency_of(stats: TimingStats, statistic: Statistic) -> float:
    if statistic == "median":
        return stats.median_ms
    if statistic == "fastest_round":
        return stats.fastest_round_ms
    raise InvalidInputError(f"unknown statistic {statistic!r}; expected 'median' or 'fastest_round'")


def measurement_rows(measured: Sequence[Measured], environment: Mapping[str, Any], *,
                     arch: Callable[[BenchItem], str] | None = None,
                     statistic: Statistic = "median") -> list[MeasurementRow]:
    """Store rows: ``statistic`` as ``latency_ms`` (the pooled median by default), with IQR, CV, runs, and the
    full statistics, the statistic used and the item's origin in the environment."""
    rows = []
    for m in measured:
        env = dict(environment)
        env.update(kind=m.item.kind, origin=m.item.origin, stats=m.stats.summary(), statistic=statistic)
        rows.append(MeasurementRow(
            arch=arch(m.item) if arch else m.item.key, latency_ms=latency_of(m.stats, statistic),
            n_runs=m.stats.n_runs,
            iqr_ms=m.stats.iqr_ms, cv=m.stats.cv, environment=env,
        ))
    return rows
