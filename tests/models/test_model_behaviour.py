"""The cost models on real bundled NAS-Bench-201 latencies, kept small: 2,000 architectures, one device held
out (it contributes only its K=10 signature latencies), the others for training. ``blr_evidence`` is also
checked against a synthetic device unlike every bundled one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from nas_latency.data import device_columns, load_table
from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix

from nas_latency.models import (
    BayesianDeviceModel,
    CrossDeviceModel,
    DegenerateAware,
    EvidenceBayesianDeviceModel,
    FlopsCrossDevice,
    FlopsRegressor,
    GeometricEnsemble,
    LogMixModel,
    load_model,
)
from nas_latency.models.cost_nnls import COST_PREFIXES
from nas_latency.models.blr_evidence import DEFAULT_EVIDENCE_GRID, GRID_FIELDS, MAX_KEPT_ENTRIES
from nas_latency.models.linalg import design_matrix, rank_correlation
from search_spaces import get_space

HELD_OUT = "titanx_32"
N_ARCHS, N_DEAD, K = 2000, 40, 10
GRID = ((1.0, 1e-2, 1e-4), (4.0, 1e-2, 1e-4), (16.0, 1e-2, 1e-4))
FIXED = GRID[1:2]  # one entry: no inner selection, for the tests that are not about it (faster)


def subset(features: FeatureMatrix, rows: np.ndarray) -> FeatureMatrix:
    return FeatureMatrix(features.names, features.values[rows], tuple(features.rows[i] for i in rows))


class Data:
    """2,000 NB201 architectures (40 of them dead cells), their features and latencies."""

    def __init__(self) -> None:
        space = get_space("nasbench201")
        frame = load_table("nb201_latency").sort_values("arch_index").reset_index(drop=True)
        archs = list(frame["arch_string"])
        dead = space.degenerate_mask(archs)
        rng = np.random.default_rng(7)
        rows = np.sort(np.r_[rng.choice(np.flatnonzero(~dead), N_ARCHS - N_DEAD, replace=False),
                             rng.choice(np.flatnonzero(dead), N_DEAD, replace=False)])
        self.devices = device_columns("nb201_latency")
        self.latency = frame[self.devices].to_numpy()[rows]
        # the transfer models' features: the shipped ones are wrapped in without_costs
        every = space.model_features([archs[i] for i in rows])
        keep = [j for j, name in enumerate(every.names) if not name.startswith(COST_PREFIXES)]
        self.features = FeatureMatrix(tuple(every.names[j] for j in keep), every.values[:, keep], every.rows)
        self.dead = dead[rows]
        self.train = [d for d in range(len(self.devices)) if self.devices[d] != HELD_OUT]
        self.target = self.devices.index(HELD_OUT)
        live_rows = np.flatnonzero(~self.dead)
        self.signature = np.r_[np.flatnonzero(self.dead)[0], rng.choice(live_rows, K - 1, replace=False)]
        self.rest = np.setdiff1d(np.arange(len(rows)), self.signature)

    def spearman(self, predicted: np.ndarray, truth: np.ndarray) -> float:
        return rank_correlation(truth[self.rest], predicted[self.rest])

    def onboard(self, model: CrossDeviceModel, truth: np.ndarray) -> tuple[np.ndarray, dict]:
        adaptation = model.adapt(subset(self.features, self.signature), truth[self.signature])
        return model.predict(self.features, adaptation), dict(adaptation.info)


@pytest.fixture(scope="module")
def data() -> Data:
    return Data()


@pytest.fixture(scope="module")
def blr(data: Data) -> BayesianDeviceModel:
    return BayesianDeviceModel(grid=GRID).fit(data.features, data.latency[:, data.train])


def test_blr_beats_flops_on_an_unseen_device(data: Data, blr: BayesianDeviceModel) -> None:
    truth = data.latency[:, data.target]
    live = np.flatnonzero(~data.dead[data.signature])  # the FLOPs baselines get only live points (no dead cell)
    live_signature = data.signature[live]
    flops = FlopsCrossDevice().fit(data.features, data.latency[:, data.train])
    flops_pred = flops.predict(data.features, flops.adapt(subset(data.features, live_signature), truth[live_signature]))
    single = FlopsRegressor().fit(subset(data.features, live_signature), truth[live_signature])
    blr_pred, info = data.onboard(blr, truth)
    sp_blr = data.spearman(blr_pred, truth)
    assert sp_blr > 0.9
    assert sp_blr > data.spearman(flops_pred, truth) + 0.02
    assert sp_blr > data.spearman(single.predict(data.features), truth) + 0.02
    assert info["hyperparameters"] == blr.hyperparameters()


def test_blr_records_its_hyperparameter_selection(data: Data, blr: BayesianDeviceModel, tmp_path: Path) -> None:
    artifact = blr.to_artifact()
    n_train = len(data.train)
    assert artifact.arrays["selection_scores"].shape == (len(GRID), n_train, 3, 2)
    assert artifact.arrays["grid"].tolist() == [list(g) for g in GRID]
    means = artifact.extra["selection"]["mean_scores"]
    best = int(np.argmax([m[0] for m in means]))  # Spearman is the default criterion
    assert artifact.extra["hyperparameters"] == blr.hyperparameters()
    assert blr.hyperparameters()["prior_scale"] == GRID[best][0]
    loaded = load_model(blr.save(tmp_path / "blr.nlm"))
    assert isinstance(loaded, BayesianDeviceModel) and loaded.hyperparameters() == blr.hyperparameters()


def test_blr_uncertainty_is_exact_and_shrinks_where_measured(data: Data, blr: BayesianDeviceModel) -> None:
    truth = data.latency[:, data.target]
    adaptation = blr.adapt(subset(data.features, data.signature), truth[data.signature])
    latency, std_log = blr.predict_with_uncertainty(data.features, adaptation)
    assert np.array_equal(latency, blr.predict(data.features, adaptation))
    assert std_log.shape == latency.shape and np.all(std_log > 0) and np.all(np.isfinite(std_log))
    assert std_log[data.signature].mean() < std_log[data.rest].mean()
    # the closed form equals the dense posterior covariance of the weights
    Z = np.column_stack([np.ones(len(latency)), (data.features.values - blr.mean_) / blr.scale_])
    prior = blr.prior_
    sigma = prior.factor @ prior.factor.T + prior.tau2 * np.eye(Z.shape[1])
    sigma[0, 0] += prior.v0
    F = adaptation.arrays["posterior_factor"]
    posterior = sigma - F @ F.T
    rows = data.rest[:5]
    dense = np.einsum("ij,jk,ik->i", Z[rows], posterior, Z[rows]) + blr.noise_variance_
    assert np.allclose(std_log[rows] ** 2, dense, rtol=1e-6)
    assert np.allclose(adaptation.arrays["posterior_variance"], np.diag(posterior))
    # and the posterior mean is the textbook formula
    Zs = Z[data.signature]
    gain = sigma @ Zs.T @ np.linalg.inv(Zs @ sigma @ Zs.T + blr.noise_variance_ * np.eye(K))
    mean = prior.mean + gain @ (np.log(truth[data.signature]) - Zs @ prior.mean)
    assert np.allclose(adaptation.arrays["weights"], mean, atol=1e-8)


def test_degenerate_wrapper_detects_a_device_that_drops_dead_cells(data: Data) -> None:
    # training devices: none of them drops dead cells (pixel3 does, so it is left out), the held-out one neither
    train = [d for d in data.train if data.devices[d] != "pixel3"]
    wrapper = DegenerateAware(base=BayesianDeviceModel(grid=FIXED)).fit(data.features, data.latency[:, train])
    real = data.latency[:, data.target]
    dropping = real.copy()
    dropping[data.dead] = 0.01  # the same device, had its pipeline skipped dead cells

    real_pred, real_info = data.onboard(wrapper, real)
    assert real_info["drops_degenerate"] is False and real_info["degenerate_measured"] == 1
    assert data.spearman(real_pred, real) > 0.9

    drop_pred, drop_info = data.onboard(wrapper, dropping)
    assert drop_info["drops_degenerate"] is True and drop_info["degenerate_latency_ms"] == 0.01
    assert np.all(drop_pred[data.dead] == 0.01)
    assert np.allclose(drop_pred[~data.dead], real_pred[~data.dead], rtol=0.3)  # live rows: same device
    plain = wrapper.base_  # the base model fitted through the dead-cell outlier
    plain_pred, _ = data.onboard(plain, dropping)
    assert data.spearman(drop_pred, dropping) > 0.9 > data.spearman(plain_pred, dropping)

    # without a degenerate architecture in the signature the wrapper is the base model
    live = data.signature[1:]
    adaptation = wrapper.adapt(subset(data.features, live), real[live])
    assert adaptation.info["degenerate_measured"] == 0
    base = wrapper.base_.adapt(subset(data.features, live), real[live])
    assert np.array_equal(wrapper.predict(data.features, adaptation), wrapper.base_.predict(data.features, base))


def test_the_degenerate_wrapper_adapts_on_every_point_when_too_few_are_live(
        data: Data, caplog: pytest.LogCaptureFixture) -> None:
    """Three measurements, the first a dead cell (the first three signature archs of NB201 are such a set): the
    drop rule needs three live points, so the base model takes all three, and the adaptation and log say so."""
    wrapper = DegenerateAware(base=BayesianDeviceModel(grid=FIXED)).fit(data.features, data.latency[:, data.train])
    truth = data.latency[:, data.target]
    rows = data.signature[:3]
    assert data.dead[rows].tolist() == [True, False, False]
    with caplog.at_level("WARNING", logger="nas_latency.models.degenerate"):
        adaptation = wrapper.adapt(subset(data.features, rows), truth[rows])
    assert adaptation.info["degenerate_untested"] is True and adaptation.info["drops_degenerate"] is False
    assert "1 of the 3 measurements are of degenerate architectures" in caplog.text
    base = wrapper.base_.adapt(subset(data.features, rows), truth[rows])
    assert np.array_equal(wrapper.predict(data.features, adaptation), wrapper.base_.predict(data.features, base))


def test_geometric_ensemble_is_the_geometric_mean_of_its_members(data: Data, tmp_path: Path) -> None:
    train_table = data.latency[:, data.train]
    mix = LogMixModel().fit(data.features, train_table)
    blr = BayesianDeviceModel(grid=FIXED).fit(data.features, train_table)
    ensemble = GeometricEnsemble(members=[LogMixModel(), BayesianDeviceModel(grid=FIXED)]).fit(data.features,
                                                                                             train_table)
    truth = data.latency[:, data.target]
    predicted, info = data.onboard(ensemble, truth)
    expected = np.sqrt(data.onboard(mix, truth)[0] * data.onboard(blr, truth)[0])
    assert np.allclose(predicted, expected, rtol=1e-12)
    assert [m["model_kind"] for m in info["members"]] == ["nnls_mix", "blr"]

    weighted = GeometricEnsemble(members=[LogMixModel(), BayesianDeviceModel(grid=FIXED)], weights=[3.0, 1.0])
    weighted.fit(data.features, train_table)
    expected = data.onboard(mix, truth)[0] ** 0.75 * data.onboard(blr, truth)[0] ** 0.25
    assert np.allclose(data.onboard(weighted, truth)[0], expected, rtol=1e-12)

    # composites nest: a degenerate-aware ensemble saves to one artifact and loads back exactly
    nested = DegenerateAware(base=ensemble).fit(data.features, train_table)
    loaded = load_model(nested.save(tmp_path / "nested.nlm"))
    assert isinstance(loaded, DegenerateAware) and isinstance(loaded.base_, GeometricEnsemble)
    assert np.array_equal(data.onboard(loaded, truth)[0], data.onboard(nested, truth)[0])
    assert any(name.startswith("base.members.1.") for name in nested.to_artifact().arrays)


# ---- blr_evidence: blr with one grid entry; evidence = marginal likelihood; a wider prior only where needed ----
@pytest.fixture(scope="module")
def evidence_model(data: Data) -> EvidenceBayesianDeviceModel:
    return EvidenceBayesianDeviceModel().fit(data.features, data.latency[:, data.train])


def live_signature(data: Data) -> np.ndarray:
    return data.signature[~data.dead[data.signature]]


def test_one_grid_entry_without_physical_variance_is_blr(data: Data) -> None:
    train = data.latency[:, data.train]
    blr = BayesianDeviceModel(grid=FIXED).fit(data.features, train)
    single = EvidenceBayesianDeviceModel(grid=[(*FIXED[0], 0.0)], calibrate=False).fit(data.features, train)
    rows = live_signature(data)
    truth = data.latency[:, data.target]
    a_blr = blr.adapt(subset(data.features, rows), truth[rows])
    a_ev = single.adapt(subset(data.features, rows), truth[rows])
    np.testing.assert_allclose(a_ev.arrays["weights"], a_blr.arrays["weights"], rtol=1e-9, atol=1e-12)
    latency, std = single.predict_with_uncertainty(data.features, a_ev)
    latency_blr, std_blr = blr.predict_with_uncertainty(data.features, a_blr)
    np.testing.assert_allclose(latency, latency_blr, rtol=1e-9)
    np.testing.assert_allclose(std, std_blr, rtol=1e-6)
    # the evidence is the Gaussian marginal likelihood of the measured log latencies
    prior = blr.prior_
    Z = design_matrix(data.features.values[rows], blr.mean_, blr.scale_)
    sigma = prior.factor @ prior.factor.T + prior.tau2 * np.eye(Z.shape[1])
    sigma[0, 0] += prior.v0
    covariance = Z @ sigma @ Z.T + blr.noise_variance_ * np.eye(len(rows))
    expected = multivariate_normal(Z @ prior.mean, covariance).logpdf(np.log(truth[rows]))
    assert a_ev.arrays["grid_log_evidence"][0] == pytest.approx(expected, rel=1e-9)
    assert a_ev.arrays["grid_posterior"].tolist() == [1.0]


def test_onboards_an_unseen_device_and_saves_exactly(data: Data, evidence_model: EvidenceBayesianDeviceModel,
                                                     tmp_path: Path) -> None:
    rows = live_signature(data)
    truth = data.latency[:, data.target]
    adaptation = evidence_model.adapt(subset(data.features, rows), truth[rows])
    posterior = adaptation.arrays["grid_posterior"]
    assert posterior.shape == (len(DEFAULT_EVIDENCE_GRID),) and np.all(posterior >= 0)
    assert posterior.sum() == pytest.approx(1.0)
    best = dict(zip(GRID_FIELDS, DEFAULT_EVIDENCE_GRID[int(np.argmax(posterior))]))
    assert adaptation.info["map_hyperparameters"] == best
    assert 1 <= len(adaptation.arrays["kept_entries"]) <= MAX_KEPT_ENTRIES
    predicted = evidence_model.predict(data.features, adaptation)
    assert rank_correlation(truth[data.rest], predicted[data.rest]) > 0.9
    latency, std_log = evidence_model.predict_with_uncertainty(data.features, adaptation)
    assert np.array_equal(latency, predicted) and np.all(np.isfinite(std_log)) and np.all(std_log > 0)
    assert std_log[rows].mean() < std_log[data.rest].mean()
    loaded = load_model(evidence_model.save(tmp_path / "blr_evidence.nlm"))
    assert isinstance(loaded, EvidenceBayesianDeviceModel)
    again = loaded.adapt(subset(data.features, rows), truth[rows])
    assert np.array_equal(loaded.predict(data.features, again), predicted)


def test_the_evidence_widens_the_prior_only_for_a_device_unlike_the_training_devices(
        data: Data, evidence_model: EvidenceBayesianDeviceModel) -> None:
    names = list(data.features.names)
    X = data.features.values
    pools = X[:, names.index("live_pool_count")]
    log_macs = X[:, names.index("log_macs")]
    # an accelerator where pooling is dear and MACs nearly free: no mix of the bundled devices behaves so
    unlike = np.exp(2.0 + 0.25 * (pools - pools.mean()) / pools.std() - 0.05 * (log_macs - log_macs.mean()))
    rows = live_signature(data)
    physical = np.array([g[3] for g in DEFAULT_EVIDENCE_GRID])

    def wide_share(truth: np.ndarray) -> float:
        adaptation = evidence_model.adapt(subset(data.features, rows), truth[rows])
        return float(adaptation.arrays["grid_posterior"][physical > 0].sum())

    assert wide_share(unlike) > 0.75
    assert wide_share(data.latency[:, data.target]) < 0.5
    blr = BayesianDeviceModel(grid=FIXED).fit(data.features, data.latency[:, data.train])
    wide = evidence_model.predict(data.features, evidence_model.adapt(subset(data.features, rows), unlike[rows]))
    narrow = blr.predict(data.features, blr.adapt(subset(data.features, rows), unlike[rows]))
    assert rank_correlation(unlike[data.rest], wide[data.rest]) > rank_correlation(unlike[data.rest],
                                                                                   narrow[data.rest]) + 0.05


def test_the_degenerate_wrapper_passes_its_uncertainty_through(data: Data) -> None:
    wrapper = DegenerateAware(base=EvidenceBayesianDeviceModel()).fit(data.features, data.latency[:, data.train])
    truth = data.latency[:, data.target]
    adaptation = wrapper.adapt(subset(data.features, data.signature), truth[data.signature])
    latency, std_log = wrapper.predict_with_uncertainty(data.features, adaptation)
    assert np.array_equal(latency, wrapper.predict(data.features, adaptation))
    assert std_log.shape == latency.shape and np.all(np.isfinite(std_log))


def test_ensemble_uncertainty_is_the_mixture_variance_of_its_members(data: Data) -> None:
    from nas_latency.errors import FailedPreconditionError

    train = data.latency[:, data.train]
    truth = data.latency[:, data.target]
    rows = live_signature(data)
    mix = LogMixModel().fit(data.features, train)
    blr = BayesianDeviceModel(grid=FIXED).fit(data.features, train)
    ensemble = GeometricEnsemble(members=[LogMixModel(), BayesianDeviceModel(grid=FIXED)],
                                 weights=[1.0, 3.0]).fit(data.features, train)
    adaptation = ensemble.adapt(subset(data.features, rows), truth[rows])
    latency, std_log = ensemble.predict_with_uncertainty(data.features, adaptation)
    log_mix = np.log(mix.predict(data.features, mix.adapt(subset(data.features, rows), truth[rows])))
    blr_latency, blr_std = blr.predict_with_uncertainty(data.features, blr.adapt(subset(data.features, rows),
                                                                                 truth[rows]))
    centre = 0.25 * log_mix + 0.75 * np.log(blr_latency)
    # the mix has no uncertainty of its own: it counts with the BLR's variance
    expected = np.sqrt(blr_std**2 + 0.25 * (log_mix - centre) ** 2 + 0.75 * (np.log(blr_latency) - centre) ** 2)
    np.testing.assert_allclose(latency, np.exp(centre), rtol=1e-10)
    np.testing.assert_allclose(std_log, expected, rtol=1e-10)
    two_mixes = GeometricEnsemble(members=[LogMixModel(), LogMixModel(alpha=1.0)]).fit(data.features, train)
    with pytest.raises(FailedPreconditionError, match="no member"):
        two_mixes.predict_with_uncertainty(data.features, two_mixes.adapt(subset(data.features, rows), truth[rows]))
    with pytest.raises(FailedPreconditionError, match="gives no uncertainty"):
        mix.predict_with_uncertainty(data.features, mix.adapt(subset(data.features, rows), truth[rows]))


def test_blr_evidence_scales_its_uncertainty_by_the_inner_calibration(data: Data) -> None:
    train = data.latency[:, data.train]
    raw = EvidenceBayesianDeviceModel(calibrate=False).fit(data.features, train)
    calibrated = EvidenceBayesianDeviceModel().fit(data.features, train)
    assert raw.std_scale_ == 1.0 and 0.1 < calibrated.std_scale_ < 10.0
    rows = live_signature(data)
    truth = data.latency[:, data.target]
    a_raw = raw.adapt(subset(data.features, rows), truth[rows])
    a_cal = calibrated.adapt(subset(data.features, rows), truth[rows])
    np.testing.assert_array_equal(raw.predict(data.features, a_raw), calibrated.predict(data.features, a_cal))
    std_raw = raw.predict_with_uncertainty(data.features, a_raw)[1]
    std_cal = calibrated.predict_with_uncertainty(data.features, a_cal)[1]
    np.testing.assert_allclose(std_cal, calibrated.std_scale_ * std_raw, rtol=1e-12)
    # deterministic: the same fit finds the same scale
    again = EvidenceBayesianDeviceModel().fit(data.features, train)
    assert again.std_scale_ == calibrated.std_scale_
    with pytest.raises(InvalidInputError, match="calibration_draws"):
        EvidenceBayesianDeviceModel(calibration_draws=0).fit(data.features, train)
