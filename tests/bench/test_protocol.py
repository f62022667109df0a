"""The measurement protocol on synthetic timers: deterministic, independent of this machine's speed."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest

from nas_latency.bench.items import BenchItem, kernel_network
from nas_latency.bench.protocol import (
    PROTOCOLS,
    MeasurementProtocol,
    choose_number,
    combine_rounds,
    environment_record,
    execution_context,
    measure,
    median_ci_rel,
    parse_cpus,
    reject_outliers,
)
from nas_latency.bench.sweep import measurement_rows, run_sweep
from nas_latency.errors import InvalidInputError, NasLatencyError
from nas_latency.ir import NetworkBuilder


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class SyntheticSampler:
    """Each run takes ``base_s`` × lognormal(σ) seconds; a fraction of runs is preempted (× ``outlier_factor``).
    Advances a virtual clock by the time it reports."""

    def __init__(self, clock: VirtualClock, *, base_s: float, sigma: float, outlier_rate: float = 0.0,
                 outlier_factor: float = 5.0, seed: int = 0) -> None:
        self.clock = clock
        self.base_s = base_s
        self.sigma = sigma
        self.outlier_rate = outlier_rate
        self.outlier_factor = outlier_factor
        self.rng = np.random.default_rng(seed)
        self.calls = 0

    def __call__(self, number: int) -> float:
        self.calls += 1
        times = self.base_s * np.exp(self.rng.normal(0.0, self.sigma, number))
        preempted = self.rng.random(number) < self.outlier_rate
        times[preempted] *= self.outlier_factor
        elapsed = float(times.sum())
        self.clock.now += elapsed
        return elapsed


def synthetic(**kwargs: float) -> tuple[SyntheticSampler, VirtualClock]:
    clock = VirtualClock()
    return SyntheticSampler(clock, **kwargs), clock  # type: ignore[arg-type]


def test_stable_timer_gives_its_median_and_rejects_preemption_outliers() -> None:
    sampler, clock = synthetic(base_s=2e-3, sigma=0.01, outlier_rate=0.05, outlier_factor=6.0, seed=1)
    stats = measure(sampler, PROTOCOLS["default"], clock=clock)
    assert stats.stable and stats.stop_reason == "stable"
    assert stats.median_ms == pytest.approx(2.0, rel=0.01)
    assert stats.n_rejected >= 1  # the 6x preempted runs are outside Tukey's fences
    assert stats.cv < 0.03 and stats.ci_rel <= 2 * PROTOCOLS["default"].rel_ci
    assert 0.0 < stats.iqr_ms < 0.1
    assert stats.number == 1  # 2 ms per run is longer than min_sample_s: no inner loop
    assert stats.min_ms <= stats.p10_ms <= stats.median_ms
    assert stats.n_runs == stats.n_samples * stats.number


def test_measurement_is_deterministic_for_a_deterministic_timer() -> None:
    def once():  # noqa: ANN202
        sampler, clock = synthetic(base_s=1e-3, sigma=0.05, seed=7)
        return measure(sampler, PROTOCOLS["default"], clock=clock, keep_samples=True)

    first, second = once(), once()
    assert first == second and len(first.samples_ms) == first.n_samples + first.n_rejected


def test_noisy_timer_stops_at_the_time_cap_and_says_so() -> None:
    sampler, clock = synthetic(base_s=1e-3, sigma=0.4, seed=3)
    protocol = MeasurementProtocol(max_time_s=0.05, max_samples=10_000, rel_ci=0.005)
    stats = measure(sampler, protocol, clock=clock)
    assert not stats.stable and stats.stop_reason == "time_cap"
    assert stats.elapsed_s == pytest.approx(0.05, abs=0.01)
    assert stats.cv > 0.2


def test_sample_cap_and_stop_reason() -> None:
    sampler, clock = synthetic(base_s=1e-3, sigma=0.4, seed=4)
    stats = measure(sampler, MeasurementProtocol(max_samples=12, max_time_s=100.0, rel_ci=1e-4), clock=clock)
    assert stats.stop_reason == "max_samples" and stats.n_samples + stats.n_rejected == 12


def test_microsecond_kernels_are_timed_over_an_inner_loop() -> None:
    sampler, clock = synthetic(base_s=1e-6, sigma=0.02, seed=5)
    protocol = MeasurementProtocol(min_sample_s=2e-4)
    stats = measure(sampler, protocol, clock=clock)
    assert 150 <= stats.number <= 250  # about min_sample_s / 1 µs
    assert stats.median_ms == pytest.approx(1e-3, rel=0.01)
    assert choose_number(0.0, protocol) == protocol.max_number
    assert choose_number(1.0, MeasurementProtocol(min_sample_s=0.0)) == 1


def test_warmup_runs_are_not_timed() -> None:
    sampler, clock = synthetic(base_s=1e-3, sigma=0.0, seed=6)
    protocol = MeasurementProtocol(warmup_runs=5, warmup_s=0.0, min_samples=3, rel_ci=0.5)
    stats = measure(sampler, protocol, clock=clock)
    assert sampler.calls == 5 + stats.n_samples


def test_rounds_are_pooled_and_their_spread_reported() -> None:
    protocol = PROTOCOLS["default"]
    rounds = []
    for base, seed in ((1e-3, 1), (1.2e-3, 2)):
        sampler, clock = synthetic(base_s=base, sigma=0.005, seed=seed)
        rounds.append(measure(sampler, protocol, clock=clock, keep_samples=True))
    combined = combine_rounds(rounds, protocol)
    assert combined.round_medians_ms == pytest.approx((1.0, 1.2), rel=0.01)
    assert 1.0 < combined.median_ms < 1.2
    assert combined.round_spread == pytest.approx(0.2 / combined.median_ms, rel=0.02)
    assert combined.cv > 0.05  # the shift between rounds is part of the noise
    assert combined.summary()["round_spread"] == combined.round_spread
    # each round settled, but on medians 20 % apart: the pooled median is not known to 1 %
    assert all(r.stable for r in rounds) and combined.ci_rel > protocol.rel_ci
    assert not combined.stable and combined.stop_reason == "rounds_disagree"
    assert combined.n_runs == sum(r.n_runs for r in rounds)


def test_pooled_rounds_with_different_inner_loops_count_their_runs() -> None:
    protocol = PROTOCOLS["default"]
    fast, clock = synthetic(base_s=2e-5, sigma=0.001, seed=3)
    slow, clock2 = synthetic(base_s=4e-5, sigma=0.001, seed=4)
    rounds = [measure(fast, protocol, clock=clock, keep_samples=True),
              measure(slow, protocol, clock=clock2, keep_samples=True)]
    assert rounds[0].number != rounds[1].number
    assert combine_rounds(rounds, protocol).n_runs == sum(r.n_runs for r in rounds)


def test_no_95_percent_interval_below_six_samples() -> None:
    """With 3 samples [min, max] holds the median 75 % of the time: the stopping rule waits for 6 (96.9 %)."""
    sampler, clock = synthetic(base_s=2e-3, sigma=1e-6, seed=5)
    stats = measure(sampler, MeasurementProtocol(min_samples=3, max_samples=30, rel_ci=0.05), clock=clock)
    assert stats.stable and stats.n_samples + stats.n_rejected == 6


def test_order_statistics_and_fences() -> None:
    values = np.sort(np.arange(1.0, 101.0))
    assert 0.1 < median_ci_rel(values) < 0.25
    mask = reject_outliers(np.array([1.0, 1.0, 1.1, 0.9, 1.0, 50.0]), 3.0)
    assert mask.tolist() == [True, True, True, True, True, False]
    # a quantizing timer: most samples equal (IQR 0); a tick above them is not an outlier, a preemption is
    quantized = np.array([1.0] * 8 + [1.0005, 1.001, 1.5])
    assert reject_outliers(quantized, 3.0).tolist() == [True] * 10 + [False]


@pytest.mark.parametrize("bad", [
    {"min_samples": 2}, {"max_samples": 3, "min_samples": 5}, {"rel_ci": 0.0}, {"max_time_s": -1.0},
    {"warmup_runs": 1.5}, {"outlier_k": float("nan")},
])
def test_bad_protocols_are_refused(bad: dict) -> None:
    with pytest.raises(InvalidInputError, match="protocol"):
        MeasurementProtocol(**bad)


def test_negative_times_from_a_broken_timer_are_an_error() -> None:
    with pytest.raises(InvalidInputError, match="negative"):
        measure(lambda number: -1.0, MeasurementProtocol(warmup_runs=0, warmup_s=0.0), clock=VirtualClock())


# ---- sweeps -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FakeRunner:
    """Synthetic samplers keyed by network name; a network named 'broken' cannot be run."""

    clock: VirtualClock
    name: str = "fake"

    def sampler(self, network, *, copies: int = 1):  # noqa: ANN001, ANN201
        if network.name == "broken":
            raise NasLatencyError("operator not supported by this runtime")
        base = 1e-3 * (1 + len(network.name) % 5)
        return SyntheticSampler(self.clock, base_s=base, sigma=0.01, seed=len(network.name))

    def info(self) -> dict:
        return {"runtime": self.name}


def _items(names: list[str]) -> list[BenchItem]:
    out = []
    for name in names:
        b = NetworkBuilder(name)
        b.relu(b.input((1, 4, 2, 2), name="x0"))
        out.append(BenchItem(name, "kernel", b.build(), "test"))
    return out


def test_sweep_interleaves_rounds_reports_failures_and_makes_store_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    import nas_latency.bench.sweep as sweep

    clock = VirtualClock()
    calls: list[str] = []
    real_measure = sweep.measure

    def recording_measure(sampler, protocol, **kwargs):  # noqa: ANN001, ANN202
        calls.append(sampler)
        return real_measure(sampler, protocol, clock=clock, **kwargs)

    monkeypatch.setattr(sweep, "measure", recording_measure)
    progress: list[tuple[str, int, int]] = []
    result = run_sweep(_items(["a", "bb", "broken", "ccc"]), FakeRunner(clock), PROTOCOLS["default"], rounds=3,
                       chunk=2, progress=lambda *a: progress.append(a), label="test")
    assert [m.item.key for m in result.measured] == ["a", "bb", "ccc"]
    assert [(item.key, "not supported" in why) for item, why in result.failed] == [("broken", True)]
    assert all(len(m.stats.round_medians_ms) == 3 for m in result.measured)
    assert progress[-1] == ("test", 12, 12)
    # rounds alternate direction inside a chunk: a, bb | bb, a | a, bb
    first_chunk = [s.base_s for s in calls[:6]]
    assert first_chunk[0] == first_chunk[3] == first_chunk[4] and first_chunk[1] == first_chunk[2] == first_chunk[5]
    noise = result.noise()
    assert noise["n"] == 3 and noise["failed"] == 1 and 0 <= noise["cv_median"] < 0.05
    rows = measurement_rows(result.measured, {"runtime": "fake"})
    assert rows[0].arch == "a" and rows[0].latency_ms == pytest.approx(result.measured[0].stats.median_ms)
    assert rows[0].environment["stats"]["stop_reason"] in ("stable", "time_cap", "max_samples")
    assert rows[0].n_runs == result.measured[0].stats.n_runs


# ---- context and environment ------------------------------------------------------------------------------------
def test_execution_context_sets_and_restores_threads_and_affinity() -> None:
    import torch

    before = torch.get_num_threads()
    affinity = os.sched_getaffinity(0)
    cpu = min(affinity)
    with execution_context(threads=1, pin_cpus=(cpu,)):
        assert torch.get_num_threads() == 1
        assert os.sched_getaffinity(0) == {cpu}
        assert os.environ["OMP_NUM_THREADS"] == "1"
    assert torch.get_num_threads() == before
    assert os.sched_getaffinity(0) == affinity
    with pytest.raises(InvalidInputError):
        with execution_context(threads=0):
            pass


def test_parse_cpus_and_environment_record() -> None:
    cpu = min(os.sched_getaffinity(0))
    assert parse_cpus(str(cpu)) == (cpu,)
    assert parse_cpus(None) is None and parse_cpus(" ") is None
    with pytest.raises(InvalidInputError, match="--pin"):
        parse_cpus("x")
    with pytest.raises(InvalidInputError, match="not available"):
        parse_cpus("4096")
    env = environment_record(runtime="torch", threads=1)
    assert env["runtime"] == "torch" and env["threads"] == 1 and env["torch"] and env["cpu_model"]
    assert env["logical_cpus"] >= 1 and isinstance(env["loadavg"], list)


def test_kernel_network_runs_one_layer_on_fresh_inputs() -> None:
    b = NetworkBuilder("n")
    x = b.input((1, 4, 8, 8))
    y = b.conv(x, 8, 3, padding=1, name="c")
    b.add(y, y, name="s")
    network = b.build()
    kernel = kernel_network(network.layer("s"))
    assert [spec.shape for spec in kernel.inputs] == [(1, 8, 8, 8), (1, 8, 8, 8)]
    assert len(kernel.layers) == 1 and kernel.layers[0].inputs == ("x0", "x1")
