"""``cost_nnls`` (non-negative prices of the IR costs), ``loo_select`` (per-device choice by leave-one-out) and
``without_costs`` on real bundled FBNet latencies: 1,500 architectures, one device held out (it contributes only
its K=10 measurements), the others for training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas_latency.data import device_columns, load_table
from nas_latency.ir import FeatureMatrix
from nas_latency.models import (
    CostPriceModel,
    LeaveOneOutAverage,
    LeaveOneOutSelection,
    LogMixModel,
    WithoutCosts,
    load_model,
)
from nas_latency.errors import InvalidInputError
from nas_latency.models.base import DeviceAdaptation
from nas_latency.models.ensemble import GeometricEnsemble
from nas_latency.models.linalg import clone, rank_correlation
from nas_latency.models.selection import leave_one_out_log_mse, pseudo_bma_weights, f_test_choice
from nas_latency.models.specs import build_model
from nas_latency.signature.selection import select_signature
from search_spaces import get_space

N_ARCHS, K = 1500, 10


def subset(features: FeatureMatrix, rows: np.ndarray) -> FeatureMatrix:
    return FeatureMatrix(features.names, features.values[rows], tuple(features.rows[i] for i in rows))


def strip_costs(features: FeatureMatrix) -> FeatureMatrix:
    keep = [i for i, name in enumerate(features.names) if not name.startswith("cost.")]
    return FeatureMatrix(tuple(features.names[i] for i in keep), features.values[:, keep], features.rows)


class Data:
    def __init__(self) -> None:
        space = get_space("fbnet")
        frame = load_table("fbnet_latency").sort_values("arch_id").reset_index(drop=True)
        archs = space.measured_archs()  # in arch_id order
        rng = np.random.default_rng(11)
        rows = np.sort(rng.choice(len(frame), N_ARCHS, replace=False))
        self.devices = device_columns("fbnet_latency")
        self.latency = frame[self.devices].to_numpy()[rows]
        self.features = space.model_features([archs[i] for i in rows])
        self.signature = rng.choice(N_ARCHS, K, replace=False)
        self.rest = np.setdiff1d(np.arange(N_ARCHS), self.signature)

    def column(self, device: str) -> int:
        return self.devices.index(device)

    def training(self, device: str) -> np.ndarray:
        return np.delete(self.latency, self.column(device), axis=1)

    def spearman(self, predicted: np.ndarray, device: str) -> float:
        return rank_correlation(self.latency[self.rest, self.column(device)], predicted[self.rest])


@pytest.fixture(scope="module")
def data() -> Data:
    return Data()


def test_the_prices_of_a_sequential_device_are_recovered_from_ten_measurements(data: Data) -> None:
    """A device that charges per MAC of each convolution kind and per byte moved (no noise): ten measurements
    pin its non-negative prices well enough to rank 1,490 other networks almost perfectly."""
    names = data.features.names
    cost = {name: data.features.values[:, names.index(f"cost.{name}")] for name in (
        "conv.macs", "depthwise_conv.macs", "total.bytes_read", "elementwise.count")}
    truth = 0.4 + 2e-9 * cost["conv.macs"] + 9e-9 * cost["depthwise_conv.macs"] + 3e-8 * cost["total.bytes_read"] \
        + 4e-3 * cost["elementwise.count"]
    model = CostPriceModel().fit(data.features, data.training("pixel3"))
    adaptation = model.adapt(subset(data.features, data.signature), truth[data.signature])
    assert (adaptation.arrays["prices"] >= 0).all()
    predicted, log_std = model.predict_with_uncertainty(data.features, adaptation)
    assert rank_correlation(truth[data.rest], predicted[data.rest]) > 0.99
    assert np.median(np.abs(predicted / truth - 1)) < 0.01
    assert log_std.shape == truth.shape and np.all(log_std == log_std[0]) and 0 < log_std[0] < 0.05


def test_bagged_prices_are_the_mean_of_the_leave_one_out_price_lists(data: Data) -> None:
    from nas_latency.models import model_from_bytes
    from nas_latency.models.cost_nnls import bagged_prices, fit_prices

    model = CostPriceModel(bagged=True).fit(data.features, data.training("gold_6240"))
    y = data.latency[data.signature, data.column("gold_6240")]
    costs = model._costs(data.features.values[data.signature])
    by_hand = np.mean([fit_prices(np.delete(costs, i, axis=0), np.delete(y, i)) for i in range(len(y))], axis=0)
    adaptation = model.adapt(subset(data.features, data.signature), y)
    np.testing.assert_allclose(adaptation.arrays["prices"], by_hand, rtol=1e-12, atol=0)
    assert (by_hand >= 0).all()
    # an average of corners: more prices are non-zero than in the one fit on all ten, and it is not that fit
    plain = fit_prices(costs, y)
    assert np.count_nonzero(by_hand) > np.count_nonzero(plain) and not np.allclose(by_hand, plain)
    # its σ comes from bagged fits on nine measurements each, and it is what a saved and loaded model adapts to
    loaded = model_from_bytes(model.to_artifact().to_bytes())
    assert loaded.bagged is True
    again = loaded.adapt(subset(data.features, data.signature), y)
    np.testing.assert_array_equal(again.arrays["prices"], adaptation.arrays["prices"])
    assert again.info["log_std"] == adaptation.info["log_std"] != CostPriceModel().fit(
        data.features, data.training("gold_6240")).adapt(subset(data.features, data.signature), y).info["log_std"]
    np.testing.assert_array_equal(bagged_prices(costs[:1], y[:1]), fit_prices(costs[:1], y[:1]))  # one row: its own
    with pytest.raises(InvalidInputError, match="bagged must be true or false, got 1"):
        CostPriceModel(bagged=1).fit(data.features, data.training("gold_6240"))  # type: ignore[arg-type]


def test_cost_nnls_refuses_features_without_cost_columns(data: Data) -> None:
    from nas_latency.errors import FailedPreconditionError

    with pytest.raises(FailedPreconditionError, match="cost"):
        CostPriceModel().fit(strip_costs(data.features), data.training("pixel3"))


@pytest.mark.parametrize("device, expected_member", [("pixel3", 1), ("titanx_32", 0)])
def test_loo_select_takes_the_cost_prices_only_where_they_explain_the_device(data: Data, device: str,
                                                                             expected_member: int) -> None:
    """pixel3 runs FBNet's layers one after another (its in-device ridge ceiling is 0.999), unlike the 12 other
    devices; titanx_32 is like the other GPUs. The selection must see both from the ten measurements."""
    model = build_model("loo_select(without_costs(nnls_mix),cost_nnls)").fit(data.features, data.training(device))
    y = data.latency[data.signature, data.column(device)]
    adaptation = model.adapt(subset(data.features, data.signature), y)
    assert adaptation.info["device_weights"] == [1.0 - expected_member, float(expected_member)]
    errors = adaptation.info["leave_one_out_log_mse"]
    assert len(errors) == 2 and all(e > 0 for e in errors)
    predicted = model.predict(data.features, adaptation)
    transfer = model.members_[0]
    alone = transfer.predict(data.features, transfer.adapt(subset(data.features, data.signature), y))
    if expected_member == 1:
        assert data.spearman(predicted, device) > 0.98 > data.spearman(alone, device) + 0.02
    else:
        assert np.array_equal(predicted, alone)


def test_loo_select_errors_are_the_members_leave_one_out_errors_and_it_saves_exactly(data: Data,
                                                                                      tmp_path: Path) -> None:
    model = LeaveOneOutSelection(members=[WithoutCosts(base=LogMixModel()), CostPriceModel()], significance=0.2)
    model.fit(data.features, data.training("pixel3"))
    X, y = data.features.values[data.signature], data.latency[data.signature, data.column("pixel3")]
    adaptation = model.adapt(subset(data.features, data.signature), y)
    expected = [leave_one_out_log_mse(member, X, y) for member in model.members_]
    assert adaptation.info["leave_one_out_log_mse"] == pytest.approx(expected, rel=1e-12)
    loaded = load_model(model.save(tmp_path / "select.nlm"))
    assert isinstance(loaded, LeaveOneOutSelection) and loaded.significance == 0.2
    assert np.array_equal(loaded.predict(data.features, adaptation), model.predict(data.features, adaptation))


def test_many_measurements_cost_ten_folds_not_one_adaptation_each(data: Data) -> None:
    class Counting(LogMixModel):  # a model on the generic cross-validation: one adaptation per fold
        adaptations = 0

        def _adapt(self, X, latency_ms):  # type: ignore[no-untyped-def]
            Counting.adaptations += 1
            return super()._adapt(X, latency_ms)

    model = Counting().fit(data.features, data.training("pixel3"))
    rows = np.arange(25)
    X, y = data.features.values[rows], data.latency[rows, data.column("pixel3")]
    mse = leave_one_out_log_mse(model, X, y)
    assert Counting.adaptations == 10
    fold = rows % 10  # measurement i is predicted by the fit without its fold
    errors = np.concatenate([
        np.log(y[fold == f]) - np.log(model._predict(X[fold == f], model._adapt(X[fold != f], y[fold != f])))
        for f in range(10)
    ])
    assert mse == pytest.approx(float(np.mean(errors**2)), rel=1e-12)
    Counting.adaptations = 0
    leave_one_out_log_mse(model, X[:10], y[:10])
    assert Counting.adaptations == 10  # ten measurements: leave-one-out proper


@pytest.mark.parametrize("spec", ["blr_evidence", "without_costs(geo_ensemble(nnls_mix,blr_evidence))", "cost_nnls",
                                  "cost_nnls(bagged=true)"])
@pytest.mark.parametrize("n, n_folds", [(10, 10), (23, 10)])
def test_closed_form_cross_validation_equals_adapting_once_per_fold(data: Data, spec: str, n: int,
                                                                   n_folds: int) -> None:
    from nas_latency.models.base import CrossDeviceModel

    model = build_model(spec).fit(data.features, data.training("gold_6240"))
    rows = np.random.default_rng(3).choice(N_ARCHS, n, replace=False)
    X, y = data.features.values[rows], data.latency[rows, data.column("gold_6240")]
    fold = np.random.default_rng(4).permutation(n) % n_folds  # folds not in row order
    generic = CrossDeviceModel._held_out_log_predictions(model, X, y, fold)
    np.testing.assert_allclose(model._held_out_log_predictions(X, y, fold), generic, rtol=0, atol=1e-10)


def test_the_weight_rules() -> None:
    # F-test at 5 % with 10 residuals: the critical ratio is 2.98
    assert f_test_choice([0.03, 0.0100], 10, 0.05).tolist() == [0.0, 1.0]
    assert f_test_choice([0.03, 0.0101], 10, 0.05).tolist() == [1.0, 0.0]
    assert f_test_choice([0.03, 0.002, 0.001], 10, 0.05).tolist() == [0.0, 0.0, 1.0]  # the smallest that passes
    assert f_test_choice([0.01, 0.0], 10, 0.05).tolist() == [0.0, 1.0]  # an exact fit passes
    # two exact fits (rounding left 1e-31 and 2e-32): the first listed, not the one rounding favoured
    assert f_test_choice([1e-4, 1.05e-31, 2.3e-32], 9, 0.05).tolist() == [0.0, 1.0, 0.0]
    # pseudo-BMA: w ∝ MSE^(-K/2); twice as accurate at K = 10 is 32 times the weight
    np.testing.assert_allclose(pseudo_bma_weights([0.02, 0.01], 10), [1 / 33, 32 / 33], rtol=1e-12)
    np.testing.assert_allclose(pseudo_bma_weights([0.01, 0.01, 0.01], 4), [1 / 3] * 3, rtol=1e-12)
    np.testing.assert_allclose(pseudo_bma_weights([1e-300, 1.0], 10), [1.0, 1e-60], rtol=1e-9)  # floored at 1e-12


def test_loo_average_weighs_the_members_by_pseudo_bma(data: Data) -> None:
    model = LeaveOneOutAverage(members=[WithoutCosts(base=LogMixModel()), CostPriceModel()])
    model.fit(data.features, data.training("pixel3"))
    X, y = data.features.values[data.signature], data.latency[data.signature, data.column("pixel3")]
    adaptation = model.adapt(subset(data.features, data.signature), y)
    expected = pseudo_bma_weights([leave_one_out_log_mse(member, X, y) for member in model.members_], K)
    np.testing.assert_allclose(adaptation.arrays["device_weights"], expected, rtol=1e-12)
    assert expected[1] > 0.9  # pixel3 is priced by its costs
    members = np.column_stack([
        member.predict(data.features, member.adapt(subset(data.features, data.signature), y))
        for member in model.members_
    ])
    np.testing.assert_allclose(model.predict(data.features, adaptation), np.exp(np.log(members) @ expected),
                               rtol=1e-10)
    _, log_std = model.predict_with_uncertainty(data.features, adaptation)
    assert np.isfinite(log_std).all() and (log_std > 0).all()


def test_loo_select_with_too_few_measurements_to_leave_one_out_uses_its_first_member(data: Data) -> None:
    model = LeaveOneOutSelection(members=[WithoutCosts(base=LogMixModel()), CostPriceModel()])
    model.fit(data.features, data.training("pixel3"))
    rows = data.signature[:3]
    adaptation = model.adapt(subset(data.features, rows), data.latency[rows, data.column("pixel3")])
    assert adaptation.info["device_weights"] == [1.0, 0.0] and "too few" in adaptation.info["weighted_by"]
    assert adaptation.info["leave_one_out_log_mse"] is None
    first = model.members_[0]
    y = data.latency[rows, data.column("pixel3")]
    alone = first.predict(data.features, first.adapt(subset(data.features, rows), y))
    assert np.array_equal(model.predict(data.features, adaptation), alone)


@pytest.mark.parametrize("kind", ["loo_select", "loo_average"])
def test_with_fewer_measurements_than_a_choice_needs_the_first_member_is_kept(data: Data, kind: str,
                                                                             tmp_path: Path) -> None:
    """pixel3 from 7 measurements: below ``min_choice_measurements`` (8) the device keeps members[0] and says
    why; with the rule off (0, kept through save and load) the members' leave-one-out errors choose."""
    from nas_latency.models.selection import MIN_CHOICE_MEASUREMENTS

    rows = data.signature[:7]
    X, y = subset(data.features, rows), data.latency[rows, data.column("pixel3")]
    assert len(rows) < MIN_CHOICE_MEASUREMENTS == 8
    kept = build_model(f"{kind}(without_costs(nnls_mix),cost_nnls)").fit(data.features, data.training("pixel3"))
    adaptation = kept.adapt(X, y)
    assert adaptation.info["device_weights"] == [1.0, 0.0] and adaptation.info["leave_one_out_log_mse"] is None
    assert adaptation.info["weighted_by"] == "members[0]: 7 measurements, fewer than the 8 a choice among members needs"
    free = clone(kept)
    free.min_choice_measurements = 0
    free.fit(data.features, data.training("pixel3"))
    chosen = free.adapt(X, y).info
    assert len(chosen["leave_one_out_log_mse"]) == 2 and not chosen["weighted_by"].startswith("members[0]")
    loaded = load_model(free.save(tmp_path / "free.nlm"))
    assert loaded.min_choice_measurements == 0 and loaded.adapt(X, y).info == chosen
    for bad in (-1, 2.5, True, "8"):
        broken = clone(kept)
        broken.min_choice_measurements = bad
        with pytest.raises(InvalidInputError, match="min_choice_measurements"):
            broken.fit(data.features, data.training("pixel3"))


def test_without_costs_is_its_base_on_the_features_without_cost_columns(data: Data, tmp_path: Path) -> None:
    wrapped = WithoutCosts(base=LogMixModel()).fit(data.features, data.training("gold_6240"))
    plain = LogMixModel().fit(strip_costs(data.features), data.training("gold_6240"))
    assert not any(name.startswith("cost.") for name in wrapped.base_.feature_names_)
    y = data.latency[data.signature, data.column("gold_6240")]
    ours = wrapped.predict(data.features, wrapped.adapt(subset(data.features, data.signature), y))
    stripped = strip_costs(data.features)
    theirs = plain.predict(stripped, plain.adapt(subset(stripped, data.signature), y))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)  # the same fit; only the column slicing's rounding
    loaded = load_model(wrapped.save(tmp_path / "wrapped.nlm"))
    assert isinstance(loaded, WithoutCosts) and loaded.base_.feature_schema_hash_ == plain.feature_schema_hash_
    adaptation = loaded.adapt(subset(data.features, data.signature), y)
    assert np.array_equal(loaded.predict(data.features, adaptation), ours)


def test_signature_selection_does_not_use_the_cost_columns(data: Data) -> None:
    archs = list(data.features.rows)
    table = data.training("pixel3")
    with_costs = select_signature("informative", table, archs, 5, seed=0, features=data.features)
    without = select_signature("informative", table, archs, 5, seed=0, features=strip_costs(data.features))
    assert with_costs == without


def assert_same_adaptation(got: DeviceAdaptation, expected: DeviceAdaptation) -> None:
    assert got.info == expected.info and got.n_measurements == expected.n_measurements
    assert sorted(got.arrays) == sorted(expected.arrays)
    for key, value in expected.arrays.items():
        assert np.array_equal(got.arrays[key], value), key


@pytest.mark.parametrize("spec", [
    "cost_nnls", "cost_nnls(bagged=true)", "blr_evidence", "without_costs(blr_evidence)",
    "geo_ensemble(nnls_mix,blr_evidence)", "loo_select(without_costs(geo_ensemble(nnls_mix,blr_evidence)),cost_nnls)",
])
@pytest.mark.parametrize("n_folds", [10, 3])
def test_adapting_and_cross_validating_at_once_gives_what_each_gives_alone(data: Data, spec: str,
                                                                            n_folds: int) -> None:
    """The models that share the work between an adaptation and its cross-validation (the grid's linear systems,
    a price list's held-out fits) give the same numbers, to the bit, as the two computed apart; with three folds a
    price list's σ (always leave-one-out) cannot come from them and is computed as before."""
    model = build_model(spec).fit(data.features, data.training("pixel3"))
    X, y = data.features.values[data.signature], data.latency[data.signature, data.column("pixel3")]
    fold = np.arange(K) % n_folds
    adaptation, held_out = model._adapt_and_held_out(X, y, fold)
    assert np.array_equal(held_out, model._held_out_log_predictions(X, y, fold))
    assert_same_adaptation(adaptation, model._adapt(X, y))


def test_loo_select_adapts_its_members_as_they_adapt_alone(data: Data) -> None:
    model = build_model("loo_select(without_costs(blr_evidence),cost_nnls)").fit(data.features,
                                                                                data.training("pixel3"))
    X, y = data.features.values[data.signature], data.latency[data.signature, data.column("pixel3")]
    adaptation = model._adapt(X, y)
    alone = GeometricEnsemble._adapt(model, X, y)
    assert adaptation.info["members"] == alone.info["members"]
    for key, value in alone.arrays.items():
        assert np.array_equal(adaptation.arrays[key], value), key
