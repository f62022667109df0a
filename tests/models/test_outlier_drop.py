"""``drop_outliers``: a device's measurements that agree leave the base model untouched; one measurement its
others disagree with is left out, named in the adaptation and its summary; fewer than nine measurements keep all."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models import BayesianDeviceModel, DegenerateAware, LogMixModel, OutlierDrop, model_from_bytes
from nas_latency.models.adaptation_summary import summarize_adaptation
from nas_latency.models.base import CrossDeviceModel
from nas_latency.models.outlier_drop import held_out_errors, standardized

N_ROWS, N_DEVICES = 120, 6
SIGNATURE = np.arange(0, N_ROWS, 12)  # ten rows
SMALL_GRID = ((1.0, 1e-2, 1e-3), (4.0, 1e-2, 1e-2))


@pytest.fixture(scope="module")
def data() -> tuple[FeatureMatrix, np.ndarray, np.ndarray]:
    """Features (the last column marks degenerate rows), a training table of log-linear devices with 2 % noise,
    and a held-out device of the same family."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_ROWS, 5))
    X[:, 4] = 0.0
    X[[6, 60], 4] = 1.0  # two degenerate rows, one of them (60) in the signature
    features = FeatureMatrix(("f0", "f1", "f2", "f3", "is_degenerate"), X, tuple(f"arch{i}" for i in range(N_ROWS)))
    weights = rng.uniform(0.2, 0.6, size=(5, N_DEVICES + 1))
    weights[4] = 0.0
    offsets = np.linspace(0.0, 1.1, N_DEVICES + 1)
    latency = np.exp(X @ weights + offsets + rng.normal(scale=0.02, size=(N_ROWS, N_DEVICES + 1)))
    return features, latency[:, 1:], latency[:, 0] * np.exp(0.5)


def _rows(features: FeatureMatrix, rows: np.ndarray) -> FeatureMatrix:
    return FeatureMatrix(features.names, features.values[rows], tuple(features.rows[i] for i in rows))


def _base(kind: str) -> CrossDeviceModel:
    return LogMixModel(alpha=0.1) if kind == "nnls_mix" else BayesianDeviceModel(grid=SMALL_GRID)


@pytest.mark.parametrize("kind", ["nnls_mix", "blr"])  # no predictive σ (the spread of the others) / with one
def test_measurements_that_agree_leave_the_base_model_untouched(data, kind: str) -> None:  # type: ignore[no-untyped-def]
    features, table, device = data
    model = OutlierDrop(base=_base(kind)).fit(features, table)
    base = _base(kind).fit(features, table)
    adaptation = model.adapt(_rows(features, SIGNATURE), device[SIGNATURE])
    assert adaptation.info["outliers"] == []
    expected = base.predict(features, base.adapt(_rows(features, SIGNATURE), device[SIGNATURE]))
    np.testing.assert_allclose(model.predict(features, adaptation), expected, rtol=1e-12)
    assert summarize_adaptation(adaptation).left_out == ()


@pytest.mark.parametrize("kind", ["nnls_mix", "blr"])
@pytest.mark.parametrize("factor", [0.4, 2.0, 5.0])
def test_one_measurement_the_others_disagree_with_is_left_out(data, kind: str, factor: float) -> None:  # type: ignore[no-untyped-def]
    features, table, device = data
    model = OutlierDrop(base=_base(kind)).fit(features, table)
    measured = device[SIGNATURE].copy()
    measured[3] *= factor
    adaptation = model.adapt(_rows(features, SIGNATURE), measured)
    [entry] = adaptation.info["outliers"]
    assert entry["row"] == 3 and entry["measured_ms"] == measured[3]
    assert entry["log_error"] == pytest.approx(math.log(factor), abs=0.1)  # the others predict the true latency
    assert entry["predicted_ms"] == pytest.approx(device[SIGNATURE][3], rel=0.1)
    # the predictions are the base model's on the other nine
    base = _base(kind).fit(features, table)
    keep = np.arange(len(SIGNATURE)) != 3
    expected = base.predict(features, base.adapt(_rows(features, SIGNATURE[keep]), measured[keep]))
    np.testing.assert_allclose(model.predict(features, adaptation), expected, rtol=1e-12)
    left_out = summarize_adaptation(adaptation, [f"arch{i}" for i in SIGNATURE]).left_out
    assert [m.arch for m in left_out] == [f"arch{SIGNATURE[3]}"]


def test_a_spike_the_base_model_follows_is_worse_than_leaving_it_out(data) -> None:  # type: ignore[no-untyped-def]
    """Why the wrapper exists: on the same spiked measurements, its predictions are nearer the device's truth."""
    features, table, device = data
    measured = device[SIGNATURE].copy()
    measured[3] *= 3.0
    base = LogMixModel(alpha=0.1).fit(features, table)
    model = OutlierDrop(base=LogMixModel(alpha=0.1)).fit(features, table)
    plain = base.predict(features, base.adapt(_rows(features, SIGNATURE), measured))
    dropped = model.predict(features, model.adapt(_rows(features, SIGNATURE), measured))
    error = lambda predicted: float(np.mean(np.abs(np.log(predicted / device))))  # noqa: E731
    assert error(dropped) < 0.5 * error(plain)


def test_fewer_than_nine_measurements_keep_every_one(data) -> None:  # type: ignore[no-untyped-def]
    features, table, device = data
    model = OutlierDrop(base=LogMixModel(alpha=0.1)).fit(features, table)
    rows = SIGNATURE[:9]
    measured = device[rows].copy()
    measured[3] *= 5.0
    assert [e["row"] for e in model.adapt(_rows(features, rows), measured).info["outliers"]] == [3]
    assert model.adapt(_rows(features, rows[:8]), measured[:8]).info["outliers"] == []
    # max_fraction 0.25 lets it leave out two of nine
    two = OutlierDrop(base=LogMixModel(alpha=0.1), max_fraction=0.25).fit(features, table)
    measured[7] *= 0.2
    assert sorted(e["row"] for e in two.adapt(_rows(features, rows), measured).info["outliers"]) == [3, 7]
    # a degenerate arch (row 5 here) is never left out: degenerate_aware decides about it
    measured[5] *= 6.0
    assert 5 not in [e["row"] for e in two.adapt(_rows(features, rows), measured).info["outliers"]]


def test_the_summary_names_the_arch_behind_a_degenerate_aware_device_s_live_rows(data) -> None:  # type: ignore[no-untyped-def]
    """A device that drops degenerate archs is adapted on its live measurements only: the left-out row counts
    among those, and the summary still names the right arch."""
    features, table, device = data
    model = DegenerateAware(base=OutlierDrop(base=_base("blr"))).fit(features, table)
    measured = device[SIGNATURE].copy()
    measured[SIGNATURE == 60] = 1e-3  # the degenerate arch, measured as dropped
    measured[8] *= 4.0  # after it: its row among the live ones is 7
    adaptation = model.adapt(_rows(features, SIGNATURE), measured)
    assert adaptation.info["drops_degenerate"]
    summary = summarize_adaptation(adaptation, [f"arch{i}" for i in SIGNATURE])
    assert [m.arch for m in summary.left_out] == [f"arch{SIGNATURE[8]}"]
    assert "left out 1 measurement the others disagree with: arch96 (measured" in summary.detail
    assert "measurement 9 (measured" in summarize_adaptation(adaptation).detail  # unnamed: its position


def test_standardized_falls_back_on_the_spread_of_the_other_errors() -> None:
    errors = np.array([0.01, -0.02, 0.015, 0.7])
    z = standardized(errors, np.array([np.nan, np.nan, 0.0, np.nan]))
    assert z[3] == pytest.approx(0.7 / (1.4826 * 0.015))
    assert z[2] == pytest.approx(0.015 / (1.4826 * 0.02))
    np.testing.assert_allclose(standardized(errors, np.full(4, 0.1)), np.abs(errors) / 0.1)


def test_the_artifact_restores_the_rule_and_bad_parameters_are_refused(data) -> None:  # type: ignore[no-untyped-def]
    features, table, device = data
    model = OutlierDrop(base=LogMixModel(alpha=0.1), min_z=2.5).fit(features, table)
    restored = model_from_bytes(model.to_artifact().to_bytes())
    assert isinstance(restored, OutlierDrop) and restored.min_z == 2.5
    measured = device[SIGNATURE].copy()
    measured[2] *= 3.0
    a, b = (m.adapt(_rows(features, SIGNATURE), measured) for m in (model, restored))
    assert a.info["outliers"] == b.info["outliers"]
    np.testing.assert_array_equal(model.predict(features, a), restored.predict(features, b))
    for bad in ({"min_log_error": 0.0}, {"min_z": -1.0}, {"max_fraction": 1.0}, {"min_z": True}):
        with pytest.raises(InvalidInputError, match=next(iter(bad))):
            OutlierDrop(base=LogMixModel(), **bad).fit(features, table)  # type: ignore[arg-type]


def test_many_measurements_are_cross_validated_in_folds(data) -> None:  # type: ignore[no-untyped-def]
    """Beyond ``max_folds`` measurements each is predicted without its fold (``i mod max_folds``), not alone; a
    spike among 40 (here two) is still found."""
    features, table, device = data
    base = LogMixModel(alpha=0.1).fit(features, table)
    rows = np.arange(0, N_ROWS, 3)  # 40
    X, y = features.values[rows], device[rows].copy()
    errors, _ = held_out_errors(base, X, y, max_folds=5)
    for f in range(5):
        held = np.arange(len(rows)) % 5 == f
        adaptation = base._adapt(X[~held], y[~held])
        np.testing.assert_allclose(errors[held], np.log(y[held] / base._predict(X[held], adaptation)), rtol=1e-12)
    y[[7, 21]] *= (3.0, 0.3)
    model = OutlierDrop(base=LogMixModel(alpha=0.1)).fit(features, table)
    assert sorted(e["row"] for e in model.adapt(_rows(features, rows), y).info["outliers"]) == [7, 21]
