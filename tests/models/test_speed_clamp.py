"""``clamp_speed``: a device within the training devices' speed range is the base model's, untouched; one
outside it gets the same ranking at any scale and predictions scaled with it; the adaptation says so."""

from __future__ import annotations

import re

import numpy as np
import pytest

from nas_latency.ir import FeatureMatrix
from nas_latency.models import LogMixModel, SpeedClamp, model_from_bytes
from nas_latency.models.adaptation_summary import summarize_adaptation
from nas_latency.models.specs import build_model

N_ROWS, N_DEVICES = 120, 6


@pytest.fixture(scope="module")
def data() -> tuple[FeatureMatrix, np.ndarray, np.ndarray]:
    """Features, a training table of devices within a factor 3 of each other, and a held-out device of the same
    family, as measured (its speed inside their range)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_ROWS, 5))
    features = FeatureMatrix(tuple(f"f{i}" for i in range(5)), X, tuple(f"arch{i}" for i in range(N_ROWS)))
    weights = rng.uniform(0.2, 0.6, size=(5, N_DEVICES + 1))
    offsets = np.linspace(0.0, 1.1, N_DEVICES + 1)
    log_latency = X @ weights + offsets + rng.normal(scale=0.02, size=(N_ROWS, N_DEVICES + 1))
    latency = np.exp(log_latency)
    return features, latency[:, 1:], latency[:, 0] * np.exp(0.5)  # the held-out one sits mid-range


def _rows(features: FeatureMatrix, rows: np.ndarray) -> FeatureMatrix:
    return FeatureMatrix(features.names, features.values[rows], tuple(features.rows[i] for i in rows))


SIGNATURE = np.arange(0, N_ROWS, 12)


def _adapted(model: SpeedClamp, features: FeatureMatrix, latency: np.ndarray):  # type: ignore[no-untyped-def]
    adaptation = model.adapt(_rows(features, SIGNATURE), latency[SIGNATURE])
    return adaptation, model.predict(features, adaptation)


def test_a_device_within_the_training_range_gets_the_base_model_s_predictions(data) -> None:  # type: ignore[no-untyped-def]
    features, table, device = data
    clamped = SpeedClamp(base=LogMixModel()).fit(features, table)
    base = LogMixModel().fit(features, table)
    adaptation, predicted = _adapted(clamped, features, device)
    assert adaptation.info["shift"] == 0.0
    lowest, highest = adaptation.info["training_offsets"]
    assert lowest < adaptation.info["offset"] < highest
    expected = base.predict(features, base.adapt(_rows(features, SIGNATURE), device[SIGNATURE]))
    np.testing.assert_allclose(predicted, expected, rtol=1e-12)
    assert summarize_adaptation(adaptation).detail == ""


@pytest.mark.parametrize("factor", [1e-3, 0.05, 20.0, 1e4])
def test_beyond_the_range_any_scale_gives_the_same_ranking_and_scaled_predictions(data, factor: float) -> None:  # type: ignore[no-untyped-def]
    features, table, device = data
    model = SpeedClamp(base=LogMixModel()).fit(features, table)
    reference_factor = 1e-2 if factor < 1 else 1e2  # also beyond the range, on the same side
    _, reference = _adapted(model, features, device * reference_factor)
    adaptation, predicted = _adapted(model, features, device * factor)
    assert adaptation.info["shift"] != 0.0
    np.testing.assert_allclose(predicted, reference * (factor / reference_factor), rtol=1e-9)
    # the unclamped mix does not scale so (at 1e-3 its non-negative weights all go to 0: every prediction 1 ms)
    base = LogMixModel().fit(features, table)
    plain = base.predict(features, base.adapt(_rows(features, SIGNATURE), device[SIGNATURE] * factor))
    plain_reference = base.predict(features, base.adapt(_rows(features, SIGNATURE),
                                                        device[SIGNATURE] * reference_factor))
    assert not np.allclose(plain, plain_reference * (factor / reference_factor), rtol=1e-3)


def test_the_summary_names_the_factor_and_the_direction(data) -> None:  # type: ignore[no-untyped-def]
    features, table, device = data
    model = build_model("clamp_speed(nnls_mix)").fit(features, table)
    slow, _ = _adapted(model, features, device * 100.0)
    fast, _ = _adapted(model, features, device / 100.0)
    assert "slower than the training devices' range allows" in summarize_adaptation(slow).detail
    assert "faster than the training devices' range allows" in summarize_adaptation(fast).detail
    for adaptation in (slow, fast):  # the factor is said as a number above 1 ("10 times faster", not "0.1 times")
        times = re.search(r"([0-9.e+]+) times (slower|faster) than", summarize_adaptation(adaptation).detail)
        assert times is not None and float(times.group(1)) > 1.0
    assert summarize_adaptation(slow).model == "nnls_mix"


def test_the_artifact_restores_the_reference_and_the_clamp(data) -> None:  # type: ignore[no-untyped-def]
    features, table, device = data
    model = SpeedClamp(base=LogMixModel()).fit(features, table)
    restored = model_from_bytes(model.to_artifact().to_bytes())
    assert isinstance(restored, SpeedClamp) and restored.fingerprint_ == model.fingerprint_
    for factor in (1.0, 1e3):
        np.testing.assert_array_equal(_adapted(restored, features, device * factor)[1],
                                      _adapted(model, features, device * factor)[1])
