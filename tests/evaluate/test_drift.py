"""Drift along the measurement order: a device that got slower half-way through its measurements shows it, a
steady one does not (whatever its architectures cost), and a leave-device-out run can be scored against the
measurements with the drift removed while it trains and onboards on the measured ones."""

from __future__ import annotations

import numpy as np
import pytest

from nas_latency.errors import InvalidInputError
from nas_latency.evaluate.drift import DRIFT_WINDOW, MIN_WINDOWS, drift_removed_latency, order_drift
from nas_latency.evaluate.datasets import LatencyDataset
from nas_latency.evaluate.protocols import leave_device_out
from nas_latency.ir import FeatureMatrix
from nas_latency.models.specs import build_model

N, P = 2000, 12
STEP_LOG = 0.2  # the drifted device runs e^0.2 = 22 % slower from its 1000th measurement on
NOISE_LOG = 0.02


def toy(n: int = N) -> tuple[LatencyDataset, FeatureMatrix, np.ndarray]:
    """Three devices with the same architecture effects; ``drifted`` also has a step along the measurement order.
    The rows are not in measurement order: ``arch_ids`` is a permutation, as the drift must follow the ids."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(n, P))
    arch_effect = 1.0 + X @ rng.normal(scale=0.3, size=P)
    arch_ids = rng.permutation(n)
    step = np.where(arch_ids >= n // 2, STEP_LOG, 0.0)
    steady = np.exp(arch_effect + rng.normal(scale=NOISE_LOG, size=n))
    drifted = np.exp(arch_effect + step + rng.normal(scale=NOISE_LOG, size=n))
    twin = np.exp(arch_effect + 0.5 + rng.normal(scale=NOISE_LOG, size=n))
    archs = [f"a{i}" for i in range(n)]
    devices = ["steady", "drifted", "twin"]
    dataset = LatencyDataset(space="ganesan_mobile", archs=archs, devices=devices,
                             latency_ms=np.column_stack([steady, drifted, twin]), groups=devices,
                             info={d: {} for d in devices}, arch_ids=arch_ids, degenerate=np.zeros(n, bool))
    return dataset, FeatureMatrix(tuple(f"x{j}" for j in range(P)), X, tuple(archs)), step


def test_a_step_along_the_measurement_order_is_found_and_architecture_effects_are_not() -> None:
    dataset, features, step = toy()
    drift, figures = order_drift(dataset, features)
    steady, drifted, _ = figures
    assert (steady.device, drifted.device) == ("steady", "drifted")
    assert steady.n_measured == drifted.n_measured == N
    # the steady device's residuals are independent noise: no order, no drift, though its latencies vary 3x
    assert abs(steady.lag1_autocorrelation) < 0.1
    assert steady.drift_std_log < 0.01 and steady.drift_share < 0.1
    assert steady.residual_std_log == pytest.approx(NOISE_LOG, rel=0.2)
    # the drifted device: correlated along the ids, the step recovered away from its edge
    assert drifted.lag1_autocorrelation > 0.5 and drifted.drift_share > 0.8
    away = np.abs(dataset.arch_ids - N // 2) > DRIFT_WINDOW
    recovered = drift[away, 1] - np.median(drift[away & (step == 0), 1])
    assert np.abs(recovered - step[away]).max() < 0.03
    # with the drift removed, the drifted device is the steady one again (up to their independent noise)
    removed = np.log(drift_removed_latency(dataset, drift))
    assert np.std(removed[away, 1] - removed[away, 0]) < 2 * NOISE_LOG


def test_too_few_measurements_and_bad_windows_are_refused() -> None:
    dataset, features, _ = toy(n=MIN_WINDOWS * 51 - 1)
    with pytest.raises(InvalidInputError, match="steady: .* too few"):
        order_drift(dataset, features, window=51)
    dataset, features, _ = toy(n=400)
    for window in (4, 1, 2.5):
        with pytest.raises(InvalidInputError, match="odd integer"):
            order_drift(dataset, features, window=window)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="feature rows"):
        order_drift(dataset, FeatureMatrix(("x",), np.zeros((3, 1)), ("a", "b", "c")))
    with pytest.raises(InvalidInputError, match="shape"):
        drift_removed_latency(dataset, np.zeros((3, 2)))


def test_leave_device_out_scores_against_other_latencies_but_onboards_on_the_measured_ones() -> None:
    dataset, features, _ = toy(n=600)
    truth = dataset.latency_ms * 1.5
    run = dict(budget=8, seeds=[0], features=features, holdout=["drifted"])
    measured = leave_device_out(dataset, {"mix": lambda: build_model("nnls_mix")}, **run)
    scaled = leave_device_out(dataset, {"mix": lambda: build_model("nnls_mix")}, scoring_latency_ms=truth,
                              scored_against="scaled", **run)
    # the same signature, onboarded on the same measured latencies: the same predictions
    assert measured.signatures == scaled.signatures
    assert np.array_equal(measured.predictions[("mix", "drifted")].predicted_ms,
                          scaled.predictions[("mix", "drifted")].predicted_ms)
    assert measured.scored_against == "measured" and scaled.scored_against == "scaled"
    assert np.array_equal(scaled.truth_of("drifted"), truth[:, 1])
    assert np.array_equal(measured.truth_of("drifted"), dataset.latency_ms[:, 1])
    before, after = measured.scores[0].metrics, scaled.scores[0].metrics
    assert after["spearman"] == pytest.approx(before["spearman"])  # ranks do not see a constant factor
    assert after["within_10pct"] < before["within_10pct"]  # the levels do


def test_scoring_latencies_must_match_the_dataset() -> None:
    dataset, features, _ = toy(n=300)
    run = dict(budget=5, seeds=[0], features=features, holdout=["drifted"])
    with pytest.raises(InvalidInputError, match="exactly when"):
        leave_device_out(dataset, {"mix": lambda: build_model("nnls_mix")}, scoring_latency_ms=dataset.latency_ms, **run)
    with pytest.raises(InvalidInputError, match="exactly when"):
        leave_device_out(dataset, {"mix": lambda: build_model("nnls_mix")}, scored_against="other", **run)
    with pytest.raises(InvalidInputError, match="shape"):
        leave_device_out(dataset, {"mix": lambda: build_model("nnls_mix")}, scoring_latency_ms=np.ones((3, 2)), scored_against="x",
                         **run)
    holes = np.array(dataset.latency_ms)
    holes[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="measured exactly where"):
        leave_device_out(dataset, {"mix": lambda: build_model("nnls_mix")}, scoring_latency_ms=holes, scored_against="x", **run)
    with pytest.raises(InvalidInputError, match="positive"):
        leave_device_out(dataset, {"mix": lambda: build_model("nnls_mix")}, scoring_latency_ms=-dataset.latency_ms, scored_against="x",
                         **run)
