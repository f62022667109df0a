"""``gp_mix``: the GP over networks whose covariance is the training devices' (measured) log latencies plus a
feature kernel. The posterior mean is checked against the dense GP formula on a toy problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models import GeometricEnsemble, LogMixModel, load_model, model_class
from nas_latency.models.gp_mix import RESEARCH_HYPERPARAMETERS, GPMixModel
from nas_latency.models.specs import build_model

NAMES = ("a", "b", "c", "flag")


def toy(n: int = 16, n_devices: int = 5, seed: int = 0) -> tuple[FeatureMatrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(loc=3.0, scale=2.0, size=(n, 3)), rng.integers(0, 2, n)])
    log_latency = X @ rng.uniform(0.1, 0.5, size=(4, n_devices)) + rng.normal(scale=0.3, size=(n, n_devices))
    return FeatureMatrix(NAMES, X, tuple(f"net{i}" for i in range(n))), np.exp(log_latency)


def subset(features: FeatureMatrix, rows: np.ndarray) -> FeatureMatrix:
    return FeatureMatrix(features.names, features.values[rows], tuple(features.rows[i] for i in rows))


SIGNATURE = np.array([1, 4, 6, 9, 13])


def dense_posterior(features: FeatureMatrix, table: np.ndarray, query_X: np.ndarray, known: np.ndarray,
                    y: np.ndarray, *, s: float, v_phi: float, sigma2: float, v0: float,
                    v_mu: float) -> tuple[np.ndarray, np.ndarray]:
    """The GP posterior of log latency written out densely: profiles of the training rows (measured, ridge in
    NaN cells) and of the query rows (the table row where ``known`` gives one, ridge otherwise), the full kernel
    over [signature; query], the mean ``m_q + K_qs (K_ss + σ² I)⁻¹ (log y_s − m_s)`` and the predictive variance
    ``diag(K_qq − K_qs (K_ss + σ² I)⁻¹ K_sq) + σ²``."""
    ridge = LogMixModel().fit(features, table)  # the same per-device ridge models (alpha, standardization)
    train = np.log(table)
    train = np.where(np.isnan(train), ridge.device_log_predictions(features.values), train)
    binary = np.all((features.values == 0) | (features.values == 1), axis=0)
    mean = np.where(binary, 0.0, features.values.mean(axis=0))
    std = np.where(binary, 1.0, features.values.std(axis=0))

    def profile_and_phi(X: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        P = ridge.device_log_predictions(X)
        P[rows >= 0] = train[rows[rows >= 0]]
        return P, np.column_stack([np.ones(len(X)), (X - mean) / std])

    P_s, phi_s = profile_and_phi(features.values[SIGNATURE], SIGNATURE)
    P_q, phi_q = profile_and_phi(query_X, known)
    P, phi = np.vstack([P_s, P_q]), np.vstack([phi_s, phi_q])
    m = P.mean(axis=1)
    C = P - m[:, None]
    D = table.shape[1]
    K = s / (D - 1) * C @ C.T + v0 + v_mu * np.outer(m, m) + v_phi * phi @ phi.T
    k = len(SIGNATURE)
    K_ss = K[:k, :k] + sigma2 * np.eye(k)
    mean_q = m[k:] + K[k:, :k] @ np.linalg.solve(K_ss, np.log(y) - m[:k])
    variance_q = np.diag(K[k:, k:] - K[k:, :k] @ np.linalg.solve(K_ss, K[:k, k:])) + sigma2
    return mean_q, variance_q


@pytest.fixture(scope="module")
def data() -> tuple[FeatureMatrix, np.ndarray, np.ndarray]:
    features, table = toy()
    table[2, 1] = np.nan  # unmeasured cells: ridge-filled in the profiles
    table[9, 3] = np.nan  # (a signature row)
    rng = np.random.default_rng(3)
    new_device = np.exp(np.nanmean(np.log(table), axis=1) * 1.2 + rng.normal(scale=0.05, size=len(table)))
    return features, table, new_device


@pytest.mark.parametrize("hyper", [dict(), dict(mean_variance=0.0, intercept_variance=0.5)])
def test_posterior_mean_equals_the_dense_formula(hyper: dict,
                                                 data: tuple[FeatureMatrix, np.ndarray, np.ndarray]) -> None:
    features, table, y = data
    model = GPMixModel(**hyper, calibrate=False).fit(features, table)
    s, v_phi, sigma2 = RESEARCH_HYPERPARAMETERS
    v0, v_mu = model.intercept_variance, model.mean_variance
    adaptation = model.adapt(subset(features, SIGNATURE), y[SIGNATURE])
    rng = np.random.default_rng(7)
    new_X = np.column_stack([rng.normal(loc=3.0, scale=2.0, size=(3, 3)), [0, 1, 1]])
    query = FeatureMatrix(NAMES, np.vstack([features.values, new_X]),
                          tuple(features.rows) + ("new0", "new1", "new2"))
    known = np.concatenate([np.arange(len(features.rows)), [-1, -1, -1]])
    expected, variance = dense_posterior(features, table, query.values, known, y[SIGNATURE], s=s, v_phi=v_phi,
                                         sigma2=sigma2, v0=v0, v_mu=v_mu)
    predicted = model.predict(query, adaptation)
    assert np.allclose(np.log(predicted), expected, rtol=0, atol=1e-9)
    latency, std_log = model.predict_with_uncertainty(query, adaptation)
    assert np.array_equal(latency, predicted)
    assert np.allclose(std_log**2, variance, rtol=1e-8, atol=1e-12)
    assert std_log[SIGNATURE].mean() < np.delete(std_log, SIGNATURE).mean()
    assert adaptation.info["hyperparameters"] == {"device_scale": s, "feature_variance": v_phi,
                                                  "noise_variance": sigma2, "intercept_variance": v0,
                                                  "mean_variance": v_mu}
    # the networks outside the table really used ridge profiles: as if they were training networks they differ
    as_known, _ = dense_posterior(features, table, query.values[:3], np.arange(3), y[SIGNATURE], s=s, v_phi=v_phi,
                                  sigma2=sigma2, v0=v0, v_mu=v_mu)
    renamed = FeatureMatrix(NAMES, features.values[:3], ("x0", "x1", "x2"))
    assert not np.allclose(np.log(model.predict(renamed, adaptation)), as_known, atol=1e-3)


def test_grid_is_chosen_by_inner_leave_one_device_out(data: tuple[FeatureMatrix, np.ndarray, np.ndarray]) -> None:
    features, table, _ = data
    grid = ((1.0, 1e-3, 1e-2), (16.0, 1e-2, 1e-1), (4.0, 0.0, 1e-3))
    model = GPMixModel(grid=grid, selection_signature_size=4, selection_draws=2).fit(features, table)
    scores = model.selection_scores_
    assert scores.shape == (3, table.shape[1], 2, 2)
    best = int(np.argmin(scores[..., 0].mean(axis=(1, 2))))  # log-RMSE by default
    assert np.array_equal(model.hyperparameters_, np.asarray(grid[best]))
    extra = model.to_artifact().extra
    assert extra["hyperparameters"]["device_scale"] == grid[best][0]
    assert extra["selection"]["metric"] == "log_rmse" and len(extra["selection"]["mean_scores"]) == 3
    by_spearman = GPMixModel(grid=grid, selection_signature_size=4, selection_draws=2,
                             selection_metric="spearman").fit(features, table)
    assert np.array_equal(by_spearman.selection_scores_, scores)  # same draws, another criterion
    best = int(np.argmax(scores[..., 1].mean(axis=(1, 2))))
    assert np.array_equal(by_spearman.hyperparameters_, np.asarray(grid[best]))
    single = GPMixModel().fit(features, table)
    assert single.selection_scores_.size == 0 and np.array_equal(single.hyperparameters_, RESEARCH_HYPERPARAMETERS)


def test_save_load_gives_identical_predictions(data: tuple[FeatureMatrix, np.ndarray, np.ndarray],
                                               tmp_path: Path) -> None:
    features, table, y = data
    model = GPMixModel(grid=((1.0, 1e-3, 1e-2), (4.0, 1e-3, 1e-2)), selection_signature_size=4).fit(features, table)
    loaded = load_model(model.save(tmp_path / "gp.nlm"))
    assert type(loaded) is GPMixModel and loaded.fingerprint_ == model.fingerprint_
    for name, value in model.to_artifact().arrays.items():
        again = loaded.to_artifact().arrays[name]
        assert again.dtype == value.dtype and again.tobytes() == value.tobytes(), name
    sig = subset(features, SIGNATURE)
    adaptation = model.adapt(sig, y[SIGNATURE])
    assert np.array_equal(loaded.predict(features, adaptation), model.predict(features, adaptation))
    assert np.array_equal(loaded.predict(features, loaded.adapt(sig, y[SIGNATURE])),
                          model.predict(features, adaptation))


def test_registered_and_usable_inside_an_ensemble(data: tuple[FeatureMatrix, np.ndarray, np.ndarray]) -> None:
    features, table, y = data
    assert model_class("gp_mix") is GPMixModel
    assert isinstance(build_model("geo_ensemble(gp_mix,nnls_mix_measured)"), GeometricEnsemble)
    model = GPMixModel().fit(features, table)
    ensemble = GeometricEnsemble(members=[GPMixModel()]).fit(features, table)
    sig = subset(features, SIGNATURE)
    # members get feature values only: the rows are found by their feature digest, with the same result
    assert np.array_equal(ensemble.predict(features, ensemble.adapt(sig, y[SIGNATURE])),
                          model.predict(features, model.adapt(sig, y[SIGNATURE])))


def test_a_device_the_training_devices_span_is_recovered() -> None:
    features, table = toy(n=40, n_devices=6, seed=4)
    y = np.exp(0.5 * np.log(table[:, 0]) + 0.5 * np.log(table[:, 4]))
    model = GPMixModel().fit(features, table)
    rows = np.arange(0, 40, 4)
    predicted = model.predict(features, model.adapt(subset(features, rows), y[rows]))
    rest = np.setdiff1d(np.arange(40), rows)
    assert np.sqrt(np.mean(np.log(predicted[rest] / y[rest]) ** 2)) < 0.1


@pytest.mark.parametrize("params", [
    dict(grid=()), dict(grid=((1.0, 1e-3),)), dict(grid=((0.0, 1e-3, 1e-2),)), dict(grid=((1.0, -1e-3, 1e-2),)),
    dict(grid=((1.0, 1e-3, 0.0),)), dict(grid="abc"), dict(mean_variance=-1.0), dict(intercept_variance=np.nan),
    dict(selection_metric="accuracy"), dict(selection_draws=0), dict(alpha=0.0), dict(standardize="sometimes"),
])
def test_bad_parameters_are_invalid_input(params: dict, data: tuple[FeatureMatrix, np.ndarray, np.ndarray]) -> None:
    features, table, _ = data
    with pytest.raises(InvalidInputError):
        GPMixModel(**params).fit(features, table)


def test_selection_needs_three_training_devices(data: tuple[FeatureMatrix, np.ndarray, np.ndarray]) -> None:
    features, table, _ = data
    with pytest.raises(InvalidInputError, match="3 training devices"):
        GPMixModel(grid=((1.0, 1e-3, 1e-2), (4.0, 1e-3, 1e-2))).fit(features, table[:, :2])
    GPMixModel().fit(features, table[:, [0, 2]])  # the fixed research values need no selection


def test_calibration_scales_the_predictive_std_only(data: tuple[FeatureMatrix, np.ndarray, np.ndarray]) -> None:
    features, table, y = data
    raw = GPMixModel(calibrate=False).fit(features, table)
    calibrated = GPMixModel().fit(features, table)
    assert raw.std_scale_ == 1.0 and calibrated.std_scale_ > 0
    a_raw = raw.adapt(subset(features, SIGNATURE), y[SIGNATURE])
    a_cal = calibrated.adapt(subset(features, SIGNATURE), y[SIGNATURE])
    latency_raw, std_raw = raw.predict_with_uncertainty(features, a_raw)
    latency_cal, std_cal = calibrated.predict_with_uncertainty(features, a_cal)
    np.testing.assert_array_equal(latency_raw, latency_cal)
    np.testing.assert_allclose(std_cal, calibrated.std_scale_ * std_raw, rtol=1e-12)
    with pytest.raises(InvalidInputError, match="calibration_coverage"):
        GPMixModel(calibration_coverage=0.0).fit(features, table)
