"""``LogMixModel(use_measured=True)`` / ``nnls_mix_measured``: the NNLS mix of the training devices' MEASURED log
latencies for training networks (ridge where a device has NaN, ridge for networks outside the table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import nnls

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models import GeometricEnsemble, LogMixModel, load_model, model_class
from nas_latency.models.mix import MeasuredLogMixModel, TrainingTable, row_digests
from nas_latency.models.specs import build_model

NAMES = ("a", "b", "c")


def toy(n: int = 14, n_devices: int = 4, seed: int = 0) -> tuple[FeatureMatrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(NAMES)))
    # latencies the 3 features explain only in part, so measured and ridge-predicted values differ
    log_latency = X @ rng.uniform(0.2, 1.0, size=(len(NAMES), n_devices)) + rng.normal(scale=0.3, size=(n, n_devices))
    return FeatureMatrix(NAMES, X, tuple(f"net{i}" for i in range(n))), np.exp(log_latency + 2.0)


def subset(features: FeatureMatrix, rows: np.ndarray) -> FeatureMatrix:
    return FeatureMatrix(features.names, features.values[rows], tuple(features.rows[i] for i in rows))


SIGNATURE = np.array([0, 3, 5, 8, 11])


@pytest.fixture(scope="module")
def data() -> tuple[FeatureMatrix, np.ndarray, np.ndarray]:
    features, table = toy()
    new_device = np.exp(0.6 * np.log(table[:, 0]) + 0.5 * np.log(table[:, 2]))
    return features, table, new_device


def test_known_rows_mix_the_measured_values_exactly(data: tuple[FeatureMatrix, np.ndarray, np.ndarray]) -> None:
    features, table, y = data
    model = LogMixModel(use_measured=True).fit(features, table)
    adaptation = model.adapt(subset(features, SIGNATURE), y[SIGNATURE])
    L = np.log(table)
    expected_mix = nnls(L[SIGNATURE], np.log(y[SIGNATURE]))[0]  # hand-computed: the measured table, no ridge
    assert np.array_equal(adaptation.arrays["mix"], expected_mix)
    assert np.array_equal(model.predict(features, adaptation), np.exp(L @ expected_mix))
    # y is an exact non-negative mix of two training devices: the measured mix recovers it
    assert np.allclose(expected_mix, [0.6, 0.0, 0.5, 0.0], atol=1e-10)
    assert np.allclose(model.predict(features, adaptation), y, rtol=1e-10)


def test_unknown_rows_and_unmeasured_cells_use_ridge(data: tuple[FeatureMatrix, np.ndarray, np.ndarray]) -> None:
    features, table, y = data
    holes = table.copy()
    holes[3, 1] = np.nan  # a signature network that training device 1 did not measure
    holes[7, 2] = np.nan
    model = LogMixModel(use_measured=True).fit(features, holes)
    ridge = LogMixModel().fit(features, holes)  # the same per-device ridge models
    assert np.array_equal(model.device_weights_, ridge.device_weights_)
    filled = np.log(holes)
    ridge_train = ridge.device_log_predictions(features.values)
    filled[3, 1], filled[7, 2] = ridge_train[3, 1], ridge_train[7, 2]
    assert np.allclose(model.table_.log_latency, filled, rtol=0, atol=1e-12)
    assert model.table_.measured.sum() == holes.size - 2

    adaptation = model.adapt(subset(features, SIGNATURE), y[SIGNATURE])
    expected_mix = nnls(model.table_.log_latency[SIGNATURE], np.log(y[SIGNATURE]))[0]
    assert np.array_equal(adaptation.arrays["mix"], expected_mix)

    # a query with two networks outside the table (new ids) around two training networks
    rng = np.random.default_rng(5)
    new_values = rng.normal(size=(2, 3))
    query = FeatureMatrix(NAMES, np.vstack([features.values[[2, 7]], new_values]), ("net2", "net7", "new0", "new1"))
    predicted = model.predict(query, adaptation)
    assert np.array_equal(predicted[:2], np.exp(model.table_.log_latency[[2, 7]] @ expected_mix))
    ridge_rows = np.exp(ridge.device_log_predictions(new_values) @ expected_mix)
    assert np.allclose(predicted[2:], ridge_rows, rtol=1e-12, atol=0)
    # the id decides: a known id is looked up even if its features changed; an unknown id gets ridge
    renamed = FeatureMatrix(NAMES, features.values[[2, 4]], ("other_name", "net2"))
    predicted = model.predict(renamed, adaptation)
    assert np.isclose(predicted[0], np.exp(ridge.device_log_predictions(features.values[[2]]) @ expected_mix)[0],
                      rtol=1e-12, atol=0)
    assert not np.isclose(predicted[0], np.exp(model.table_.log_latency[2] @ expected_mix), rtol=1e-6)
    assert np.array_equal(predicted[1], np.exp(model.table_.log_latency[2] @ expected_mix))


def test_default_is_the_ridge_mix(data: tuple[FeatureMatrix, np.ndarray, np.ndarray]) -> None:
    features, table, y = data
    model = LogMixModel().fit(features, table)
    assert model.get_params() == {"alpha": 1e-2, "standardize": "non_binary", "use_measured": False}
    adaptation = model.adapt(subset(features, SIGNATURE), y[SIGNATURE])
    ridge = model.device_log_predictions(features.values)
    assert np.array_equal(adaptation.arrays["mix"], nnls(ridge[SIGNATURE], np.log(y[SIGNATURE]))[0])
    assert np.allclose(model.predict(features, adaptation), np.exp(ridge @ adaptation.arrays["mix"]), rtol=1e-12)
    assert set(model.to_artifact().arrays) == {"mean", "scale", "device_weights"}
    measured = LogMixModel(use_measured=True).fit(features, table)
    assert not np.allclose(measured.predict(features, measured.adapt(subset(features, SIGNATURE), y[SIGNATURE])),
                           model.predict(features, adaptation))


def test_measured_kind_is_the_option(data: tuple[FeatureMatrix, np.ndarray, np.ndarray]) -> None:
    features, table, y = data
    assert model_class("nnls_mix_measured") is MeasuredLogMixModel
    alias = build_model("nnls_mix_measured").fit(features, table)
    assert isinstance(alias, MeasuredLogMixModel) and alias.use_measured is True
    assert alias.get_params() == {"alpha": 1e-2, "standardize": "non_binary"}
    option = LogMixModel(use_measured=True).fit(features, table)
    sig = subset(features, SIGNATURE)
    assert np.array_equal(alias.predict(features, alias.adapt(sig, y[SIGNATURE])),
                          option.predict(features, option.adapt(sig, y[SIGNATURE])))


@pytest.mark.parametrize("factory", [lambda: LogMixModel(use_measured=True), MeasuredLogMixModel])
def test_artifact_round_trip_is_byte_exact(factory, data: tuple[FeatureMatrix, np.ndarray, np.ndarray],
                                           tmp_path: Path) -> None:
    features, table, y = data
    holes = table.copy()
    holes[4, 0] = np.nan
    model = factory().fit(features, holes)
    artifact = model.to_artifact()
    assert artifact.arrays["table_ids"].dtype.kind == "U"  # ids as a numpy unicode array, no pickle
    assert artifact.arrays["table_ids"].tolist() == list(features.rows)
    loaded = load_model(model.save(tmp_path / "mix.nlm"))
    assert type(loaded) is type(model) and loaded.fingerprint_ == model.fingerprint_
    again = loaded.to_artifact()
    assert set(again.arrays) == set(artifact.arrays)
    for name, value in artifact.arrays.items():
        assert again.arrays[name].dtype == value.dtype and again.arrays[name].tobytes() == value.tobytes(), name
    sig = subset(features, SIGNATURE)
    adaptation = model.adapt(sig, y[SIGNATURE])
    assert np.array_equal(loaded.predict(features, adaptation), model.predict(features, adaptation))
    assert np.array_equal(loaded.adapt(sig, y[SIGNATURE]).arrays["mix"], adaptation.arrays["mix"])


def test_inside_composites_rows_are_found_by_feature_digest(data: tuple[FeatureMatrix, np.ndarray, np.ndarray]) -> None:
    features, table, y = data
    model = MeasuredLogMixModel().fit(features, table)
    ensemble = GeometricEnsemble(members=[MeasuredLogMixModel()]).fit(features, table)
    sig = subset(features, SIGNATURE)
    direct = model.predict(features, model.adapt(sig, y[SIGNATURE]))
    assert np.array_equal(ensemble.predict(features, ensemble.adapt(sig, y[SIGNATURE])), direct)
    # the feature-values-only path, and a digest that several training rows share, which is treated as unknown
    assert np.array_equal(model.table_.positions(features.values.copy()), np.arange(len(features.rows)))
    twin = TrainingTable(np.array(["x", "y"]), np.zeros((2, 2)), np.ones((2, 2), bool), row_digests(np.ones((2, 3))))
    assert twin.positions(np.ones((1, 3))).tolist() == [-1]
    assert row_digests(np.array([[-0.0, 1.0]])).tolist() == row_digests(np.array([[0.0, 1.0]])).tolist()


def test_bad_input_is_refused(data: tuple[FeatureMatrix, np.ndarray, np.ndarray]) -> None:
    features, table, _ = data
    duplicated = FeatureMatrix(NAMES, features.values, ("dup",) * len(features.rows))
    with pytest.raises(InvalidInputError, match="distinct row ids"):
        LogMixModel(use_measured=True).fit(duplicated, table)
    LogMixModel().fit(duplicated, table)  # the ridge mix does not look rows up
    with pytest.raises(InvalidInputError, match="use_measured"):
        LogMixModel(use_measured="yes").fit(features, table)  # type: ignore[arg-type]
