"""The measurement protocol: how one latency figure is taken on a shared, noisy machine.

A *sampler* runs the thing being measured ``number`` times back to back and returns the elapsed seconds (a
runner builds one per network: :mod:`nas_latency.bench.runners`). :func:`measure` drives it:

1. **Warm-up**: at least ``warmup_runs`` runs and ``warmup_s`` seconds (caches, allocator, lazy init).
2. **Inner loop**: ``number`` (runs per sample) is chosen from the warm-up so that one sample lasts at least
   ``min_sample_s``; microsecond kernels are then timed over many runs and the timer's resolution and overhead do
   not matter. Each sample is converted to milliseconds *per run*.
3. **Repetitions until the median is stable, or a cap**: after ``min_samples`` samples, the distribution-free
   95 % confidence interval of the median (order statistics ``n/2 ± 0.98·√n``) is computed after every sample;
   sampling stops when its half-width is at most ``rel_ci`` of the median (``stop_reason="stable"``), when
   ``max_time_s`` seconds of timed sampling have passed (``"time_cap"``), or after ``max_samples`` samples
   (``"max_samples"``).
4. **Outlier rejection**: samples outside Tukey's fences ``[Q1 − k·IQR, Q3 + k·IQR]`` (``outlier_k``, 3 = "far
   out") are dropped; preemption by another process shows up as such high outliers.
5. **Statistics** of the kept samples: median (the latency), IQR, coefficient of variation (std / mean), mean,
   min, 10th percentile, and the CI's relative half-width. A measurement that ended on a cap is marked
   ``stable=False``; callers report how many were.

**Timers.** CPU samplers report the wall time and the CPU time of the measuring thread for the same runs. The
protocol's ``timer`` chooses which one the statistics (and the stopping rule) use: ``"wall"`` (the default: latency
as a user sees it) or ``"cpu"`` (one thread only: leaves out the time the thread waited while another process ran
— on a machine with more runnable processes than cores, a run longer than the scheduler's time slice is almost
always preempted, and its wall time says more about the neighbours than about the network). Either way both
medians and their ratio ``cpu_share`` (1.0 = never descheduled) are recorded: the contention indicator.

The clock is a parameter (``time.perf_counter`` by default) so the statistics can be tested deterministically with
a synthetic sampler and a virtual clock. Garbage collection is paused while timing.

:func:`execution_context` applies the thread count (torch, and the OpenMP/MKL environment) and optional CPU
pinning (``os.sched_setaffinity``) for the duration of a sweep and restores them afterwards;
:func:`environment_record` describes the machine and libraries for the store.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from typing import Any, Callable, Iterator, Literal, Protocol, Sequence

import numpy as np

from nas_latency import __version__
from nas_latency.errors import InvalidInputError

StopReason = Literal["stable", "time_cap", "max_samples", "rounds_disagree"]
Timer = Literal["wall", "cpu"]
TIMERS: tuple[Timer, ...] = ("wall", "cpu")
Clock = Callable[[], float]


class Sampler(Protocol):
    """Runs the measured thing ``number`` times and returns the elapsed seconds: wall time, or a pair
    ``(wall, cpu)`` where ``cpu`` is the CPU time of the measuring thread over the same runs."""

    def __call__(self, number: int) -> float | tuple[float, float]: ...


def _split(result: float | tuple[float, float]) -> tuple[float, float | None]:
    if isinstance(result, tuple):
        return float(result[0]), float(result[1])
    return float(result), None


@dataclass(frozen=True)
class MeasurementProtocol:
    """Parameters of :func:`measure` (see the module docstring)."""

    warmup_runs: int = 3
    warmup_s: float = 0.02
    min_sample_s: float = 2e-4
    max_number: int = 1000
    min_samples: int = 7
    max_samples: int = 400
    max_time_s: float = 1.0
    rel_ci: float = 0.01
    outlier_k: float = 3.0
    timer: Timer = "wall"

    def __post_init__(self) -> None:
        if self.timer not in TIMERS:
            raise InvalidInputError(f"protocol: timer must be one of {', '.join(TIMERS)}, got {self.timer!r}")
        for name in ("warmup_runs", "max_number", "min_samples", "max_samples"):
            value = getattr(self, name)
            minimum = 0 if name == "warmup_runs" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InvalidInputError(f"protocol: {name} must be an integer >= {minimum}, got {value!r}")
        if self.min_samples < 3:
            raise InvalidInputError(f"protocol: min_samples must be at least 3, got {self.min_samples}")
        if self.max_samples < self.min_samples:
            raise InvalidInputError(
                f"protocol: max_samples ({self.max_samples}) must be >= min_samples ({self.min_samples})"
            )
        for name in ("warmup_s", "min_sample_s", "max_time_s", "rel_ci", "outlier_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InvalidInputError(f"protocol: {name} must be a finite number >= 0, got {value!r}")
        if self.rel_ci <= 0 or self.outlier_k <= 0:
            raise InvalidInputError("protocol: rel_ci and outlier_k must be > 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Presets: ``quick`` for tests and smoke runs, ``default`` for kernels and blocks, ``network`` for whole networks.
PROTOCOLS: dict[str, MeasurementProtocol] = {
    "quick": MeasurementProtocol(warmup_runs=1, warmup_s=0.002, min_samples=3, max_samples=30, max_time_s=0.05,
                                 rel_ci=0.05),
    "default": MeasurementProtocol(),
    "network": MeasurementProtocol(warmup_runs=3, warmup_s=0.1, min_sample_s=0.0, min_samples=9, max_samples=200,
                                   max_time_s=3.0, rel_ci=0.01),
}


@dataclass(frozen=True)
class TimingStats:
    """The result of :func:`measure`. Times are milliseconds per run; ``cv`` and ``ci_rel`` are fractions."""

    median_ms: float
    iqr_ms: float
    cv: float
    mean_ms: float
    min_ms: float
    p10_ms: float
    ci_rel: float
    number: int
    n_samples: int
    n_rejected: int
    stable: bool
    stop_reason: StopReason
    elapsed_s: float
    samples_ms: tuple[float, ...] = field(default=(), repr=False)
    round_medians_ms: tuple[float, ...] = ()
    timer: Timer = "wall"
    #: median per-run wall time and CPU time of the measuring thread (None where the runtime cannot report it)
    wall_median_ms: float | None = None
    cpu_median_ms: float | None = None
    #: total CPU time / total wall time of the timed runs: 1.0 when the thread was never descheduled
    cpu_share: float | None = None
    other_samples_ms: tuple[float, ...] = field(default=(), repr=False)
    #: timed runs of all samples (rounds pooled), where ``number`` differed between rounds; else None
    total_runs: int | None = None

    @property
    def fastest_round_ms(self) -> float:
        """The median of the fastest round (the pooled median when there was one round). Interference from other
        processes only adds time, so on a shared machine this is the closest to the machine's unloaded speed."""
        return min(self.round_medians_ms) if self.round_medians_ms else self.median_ms

    @property
    def round_spread(self) -> float:
        """``(max − min) / median`` of the round medians: how much the item's time moved between rounds."""
        if len(self.round_medians_ms) < 2 or self.median_ms <= 0:
            return 0.0
        return (max(self.round_medians_ms) - min(self.round_medians_ms)) / self.median_ms

    @property
    def n_runs(self) -> int:
        """Timed runs behind the samples (the kept ones, for one round)."""
        return self.total_runs if self.total_runs is not None else self.number * self.n_samples

    def summary(self) -> dict[str, Any]:
        """JSON-able figures (no raw samples) for a store row's environment."""
        return {
            "median_ms": self.median_ms, "iqr_ms": self.iqr_ms, "cv": self.cv, "mean_ms": self.mean_ms,
            "min_ms": self.min_ms, "p10_ms": self.p10_ms, "ci_rel": self.ci_rel, "number": self.number,
            "n_samples": self.n_samples, "n_rejected": self.n_rejected, "stable": self.stable,
            "stop_reason": self.stop_reason, "elapsed_s": round(self.elapsed_s, 4),
            "round_medians_ms": list(self.round_medians_ms), "round_spread": self.round_spread,
            "fastest_round_ms": self.fastest_round_ms, "timer": self.timer, "wall_median_ms": self.wall_median_ms,
            "cpu_median_ms": self.cpu_median_ms, "cpu_share": self.cpu_share,
        }


#: the fewest samples whose extreme order statistics bound the median with at least 95 % confidence
#: (1 − 2 · 0.5^6 = 96.9 %; with 5 it is 93.75 %, with 3 only 75 %): the stopping rule waits for them
MIN_CI_SAMPLES = 6


def median_ci_rel(sorted_values: np.ndarray) -> float:
    """Relative half-width of the distribution-free 95 % CI of the median of ascending ``sorted_values``. Below
    :data:`MIN_CI_SAMPLES` no interval reaches 95 %: the full range is returned (a lower confidence)."""
    n = len(sorted_values)
    half = 0.98 * math.sqrt(n)  # 1.96 / 2 * sqrt(n)
    lo = max(0, int(math.floor(n / 2 - half)))
    hi = min(n - 1, int(math.ceil(n / 2 + half)))
    median = float(np.median(sorted_values))
    if median <= 0:
        return math.inf
    return float(sorted_values[hi] - sorted_values[lo]) / (2.0 * median)


#: the IQR is taken as at least this share of the median, so a timer that quantizes (most samples equal: IQR 0)
#: does not make every sample off the quartiles an outlier
MIN_IQR_SHARE = 0.001


def reject_outliers(values: np.ndarray, k: float) -> np.ndarray:
    """Boolean mask of the values inside Tukey's fences ``[Q1 − k·IQR, Q3 + k·IQR]`` (IQR at least
    :data:`MIN_IQR_SHARE` of the median)."""
    q1, q3 = np.percentile(values, [25, 75])
    iqr = max(q3 - q1, MIN_IQR_SHARE * abs(float(np.median(values))))
    return (values >= q1 - k * iqr) & (values <= q3 + k * iqr)


def _warmup(sampler: Sampler, protocol: MeasurementProtocol, clock: Clock) -> float:
    """Run the warm-up; return the last observed seconds per run (for choosing ``number``)."""
    start = clock()
    runs = 0
    per_run = 0.0
    while True:
        elapsed, _ = _split(sampler(1))
        runs += 1
        per_run = max(elapsed, 0.0)
        if runs >= protocol.warmup_runs and clock() - start >= protocol.warmup_s:
            return per_run
        if runs >= 10_000:  # a clock that does not advance: stop anyway
            return per_run


def choose_number(per_run_s: float, protocol: MeasurementProtocol) -> int:
    if protocol.min_sample_s <= 0:
        return 1
    if per_run_s <= 0:
        return protocol.max_number
    return int(min(protocol.max_number, max(1, math.ceil(protocol.min_sample_s / per_run_s))))


def summarize_samples(samples_ms: Sequence[float], protocol: MeasurementProtocol, *, number: int,
                      stop_reason: StopReason, elapsed_s: float, keep_samples: bool = False,
                      round_medians_ms: Sequence[float] = (), other_samples_ms: Sequence[float] = (),
                      total_runs: int | None = None) -> TimingStats:
    """Statistics of per-run times (ms) of the protocol's timer: outliers rejected (Tukey fences), then median,
    IQR, CV, ...; ``other_samples_ms`` are the same runs on the other timer (CPU time for a wall-time protocol and
    the reverse), when the runtime reports both."""
    values = np.asarray(samples_ms, dtype=np.float64)
    other = np.asarray(other_samples_ms, dtype=np.float64)
    if other.size and other.size != values.size:
        raise InvalidInputError("measure: wall and CPU samples differ in number")
    if values.size == 0:
        raise InvalidInputError("measure: no samples")
    if np.any(~np.isfinite(values)) or np.any(values < 0):
        raise InvalidInputError(f"measure: the sampler returned a non-finite or negative time ({values.min()} ms)")
    keep = reject_outliers(values, protocol.outlier_k)
    kept = np.sort(values[keep])
    kept_other = other[keep] if other.size else other
    # both timers' medians over the same kept runs as the median itself
    wall, cpu = (values[keep], kept_other) if protocol.timer == "wall" else (kept_other, values[keep])
    mean = float(kept.mean())
    q1, q3 = np.percentile(kept, [25, 75])
    return TimingStats(
        median_ms=float(np.median(kept)),
        iqr_ms=float(q3 - q1),
        cv=float(kept.std(ddof=1) / mean) if len(kept) > 1 and mean > 0 else 0.0,
        mean_ms=mean,
        min_ms=float(kept[0]),
        p10_ms=float(np.percentile(kept, 10)),
        ci_rel=median_ci_rel(kept),
        number=number,
        n_samples=int(len(kept)),
        n_rejected=int((~keep).sum()),
        stable=stop_reason == "stable",
        stop_reason=stop_reason,
        elapsed_s=float(elapsed_s),
        samples_ms=tuple(float(v) for v in values) if keep_samples else (),
        round_medians_ms=tuple(float(v) for v in round_medians_ms),
        timer=protocol.timer,
        wall_median_ms=float(np.median(wall)) if wall.size else None,
        cpu_median_ms=float(np.median(cpu)) if cpu.size else None,
        cpu_share=float(cpu.sum() / wall.sum()) if cpu.size and wall.size and wall.sum() > 0 else None,
        other_samples_ms=tuple(float(v) for v in other) if keep_samples else (),
        total_runs=total_runs,
    )


def measure(sampler: Sampler, protocol: MeasurementProtocol | None = None, *, clock: Clock = time.perf_counter,
            keep_samples: bool = False) -> TimingStats:
    """Measure ``sampler`` under ``protocol`` (default: ``PROTOCOLS['default']``)."""
    protocol = protocol or PROTOCOLS["default"]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        per_run = _warmup(sampler, protocol, clock)
        number = choose_number(per_run, protocol)
        samples: list[float] = []
        others: list[float] = []
        start = clock()
        reason: StopReason = "max_samples"
        while len(samples) < protocol.max_samples:
            wall, cpu = _split(sampler(number))
            if protocol.timer == "cpu":
                if cpu is None:
                    raise InvalidInputError("measure: this runtime cannot report CPU time; use the wall timer")
                wall, cpu = cpu, wall
            samples.append(wall / number * 1e3)
            if cpu is not None:
                others.append(cpu / number * 1e3)
            if len(samples) >= max(protocol.min_samples, MIN_CI_SAMPLES):
                if median_ci_rel(np.sort(np.asarray(samples))) <= protocol.rel_ci:
                    reason = "stable"
                    break
                if clock() - start >= protocol.max_time_s:
                    reason = "time_cap"
                    break
        elapsed = clock() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    return summarize_samples(samples, protocol, number=number, stop_reason=reason, elapsed_s=elapsed,
                             keep_samples=keep_samples, other_samples_ms=others)


def combine_rounds(rounds: Sequence[TimingStats], protocol: MeasurementProtocol, *,
                   keep_samples: bool = False) -> TimingStats:
    """One measurement from several rounds of the same item (interleaved with other items): the samples are
    pooled, so the CV includes the variation between rounds (load that changed in between); the round medians
    are kept (``round_medians_ms``). Stable only if every round was."""
    if not rounds:
        raise InvalidInputError("combine_rounds: no rounds")
    if len(rounds) == 1:
        only = rounds[0]
        return summarize_samples(only.samples_ms, protocol, number=only.number, stop_reason=only.stop_reason,
                                 elapsed_s=only.elapsed_s, keep_samples=keep_samples,
                                 round_medians_ms=(only.median_ms,), other_samples_ms=only.other_samples_ms)
    pooled = [v for r in rounds for v in r.samples_ms]
    others = [v for r in rounds for v in r.other_samples_ms]
    if len(others) != len(pooled):
        others = []
    unstable = [r.stop_reason for r in rounds if r.stop_reason != "stable"]
    combined = summarize_samples(pooled, protocol, number=rounds[0].number,
                                 stop_reason=unstable[0] if unstable else "stable",
                                 elapsed_s=sum(r.elapsed_s for r in rounds), keep_samples=keep_samples,
                                 round_medians_ms=[r.median_ms for r in rounds], other_samples_ms=others,
                                 total_runs=sum(r.n_runs for r in rounds))
    if combined.stable and combined.ci_rel > protocol.rel_ci:  # each round settled, but on different medians
        combined = replace(combined, stable=False, stop_reason="rounds_disagree")
    return combined


# ---- execution context --------------------------------------------------------------------------------------
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def parse_cpus(text: str | None) -> tuple[int, ...] | None:
    """``"0,2-3"`` → ``(0, 2, 3)``; ``None``/empty → ``None`` (no pinning)."""
    if text is None or not text.strip():
        return None
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = part.split("-", 1)
                cpus.update(range(int(lo), int(hi) + 1))
            else:
                cpus.add(int(part))
    except ValueError:
        raise InvalidInputError(f"--pin: expected CPU ids like '0' or '0,2-3', got {text!r}") from None
    if not hasattr(os, "sched_getaffinity"):
        raise InvalidInputError("--pin: CPU pinning needs os.sched_setaffinity (Linux)")
    available = os.sched_getaffinity(0)
    unknown = sorted(cpus - available)
    if unknown:
        raise InvalidInputError(
            f"--pin: CPUs {unknown} are not available to this process (available: {sorted(available)})")
    return tuple(sorted(cpus))


@contextmanager
def execution_context(*, threads: int = 1, pin_cpus: Sequence[int] | None = None) -> Iterator[None]:
    """Run the body with ``threads`` intra-op threads (torch) and, optionally, pinned to ``pin_cpus``.

    Pinning uses ``os.sched_setaffinity(0, ...)``, which on Linux applies to the calling thread (the one that
    runs the measured code with one thread); worker threads created later inherit it.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InvalidInputError(f"threads must be a positive integer, got {threads!r}")
    saved_env = {name: os.environ.get(name) for name in _THREAD_ENV}
    for name in _THREAD_ENV:
        os.environ[name] = str(threads)
    torch_threads = None
    try:
        import torch

        torch_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None  # type: ignore[assignment]
    saved_affinity = None
    if pin_cpus:
        saved_affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, set(pin_cpus))
    try:
        yield
    finally:
        if saved_affinity is not None:
            os.sched_setaffinity(0, saved_affinity)
        if torch is not None and torch_threads is not None:
            torch.set_num_threads(torch_threads)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment_record(*, runtime: str, threads: int, pin_cpus: Sequence[int] | None = None,
                       extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a measurement depends on: CPU model, CPUs, threads, pinning, library versions, load at the time."""
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        load = None
    record: dict[str, Any] = {
        "runtime": runtime,
        "threads": threads,
        "pinned_cpus": list(pin_cpus) if pin_cpus else None,
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "loadavg": load,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nas_latency": __version__,
        "numpy": np.__version__,
        "torch": _version("torch"),
        "onnxruntime": _version("onnxruntime"),
    }
    if extra:
        record.update(extra)
    return record
