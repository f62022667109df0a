"""Datasets from the bundled tables, HELP's query set, and the leave-device-out protocol (with tiny models
defined here, so the protocol is tested independently of the shipped cost models)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nas_latency.data import load_table
from nas_latency.errors import FailedPreconditionError, InvalidInputError, NotFoundError
from nas_latency.evaluate.datasets import LatencyDataset, devices_lacking, load_latency_dataset
from nas_latency.evaluate.device_draws import measurement_noise, spiked_position
from nas_latency.evaluate.metrics import SUMMARY_KEYS
from nas_latency.evaluate.protocols import RandomSignature, leave_device_out
from nas_latency.evaluate.scoring_sets import all_query_indices, help_query_indices
from nas_latency.ir import FeatureMatrix
from nas_latency.models.base import CrossDeviceModel, DeviceAdaptation


# ---- tiny models ------------------------------------------------------------------------------------------------
class LogMeanModel(CrossDeviceModel):
    """Per-arch mean log latency over the training devices, shifted per device by the mean signature residual.
    It needs the arch identity, so its features are one column: the row's position in the dataset."""

    kind = "test_log_mean"
    fits = 0
    adapted: list[np.ndarray] = []

    def __init__(self) -> None:
        pass

    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "LogMeanModel":
        Y = self._validate_table(features, latency_ms)
        self.log_mean_ = np.nanmean(np.log(Y), axis=1)
        self._remember_schema(features)
        type(self).fits += 1
        return self

    def _rows(self, X: np.ndarray) -> np.ndarray:
        return X[:, 0].astype(np.intp)

    def _adapt(self, X: np.ndarray, latency_ms: np.ndarray) -> DeviceAdaptation:
        type(self).adapted.append(latency_ms.copy())
        shift = float(np.mean(np.log(latency_ms) - self.log_mean_[self._rows(X)]))
        return DeviceAdaptation(self.kind, self.feature_schema_hash_, len(latency_ms), {"shift": np.array([shift])})

    def _predict(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        return np.exp(self.log_mean_[self._rows(X)] + adaptation.arrays["shift"][0])

    def _learned_arrays(self) -> dict[str, np.ndarray]:
        return {"log_mean": self.log_mean_}

    def _restore(self, arrays: Any, extra: Any) -> None:
        self.log_mean_ = arrays["log_mean"]


class ConstantModel(LogMeanModel):
    """Predicts the same latency everywhere: rank metrics are undefined (NaN) and must not crash the run."""

    kind = "test_constant"

    def _predict(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        return np.full(X.shape[0], 5.0)


class UncertainLogMeanModel(LogMeanModel):
    """LogMeanModel with a constant predictive standard deviation of ln latency."""

    kind = "test_uncertain_log_mean"
    STD = 0.05

    def _predict_log_std(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        return np.full(X.shape[0], self.STD)


def row_features(dataset: LatencyDataset) -> FeatureMatrix:
    return FeatureMatrix(("row",), np.arange(len(dataset.archs), dtype=np.float64)[:, None], tuple(dataset.archs))


@pytest.fixture(autouse=True)
def _reset_counters() -> None:
    LogMeanModel.fits = 0
    LogMeanModel.adapted = []


# ---- datasets ---------------------------------------------------------------------------------------------------
def test_nb201_dataset_is_in_official_index_order_with_one_group_per_device() -> None:
    dataset = load_latency_dataset("nasbench201")
    table = load_table("nb201_latency").sort_values("arch_index")
    assert dataset.latency_ms.shape == (15625, 13)
    assert np.array_equal(dataset.arch_ids, np.arange(15625))
    assert dataset.archs[:3] == table["arch_string"].tolist()[:3]
    assert dataset.groups == dataset.devices
    assert "pixel3" in dataset.devices
    assert np.allclose(dataset.latency_of("pixel3"), table["pixel3"].to_numpy())
    assert not dataset.excluded
    # facts from nb201_devices.csv; the whole-ms phones are flagged
    assert dataset.info["samsung_s7"]["integer_ms"] is True
    assert dataset.info["1080ti_1"]["integer_ms"] is False
    assert dataset.info["1080ti_32"]["batch_size"] == 32
    with pytest.raises(ValueError):
        dataset.latency_ms[0, 0] = 1.0  # read-only


def test_fbnet_dataset_joins_the_layer_columns() -> None:
    dataset = load_latency_dataset("fbnet")
    table = load_table("fbnet_latency").sort_values("arch_id")
    assert dataset.latency_ms.shape == (5000, 13)
    assert np.array_equal(dataset.arch_ids, table["arch_id"].to_numpy())
    first = table.iloc[0]
    assert dataset.archs[0] == "-".join(str(first[f"layer{i:02d}"]) for i in range(22))
    assert dataset.groups == dataset.devices
    assert dataset.info["titanx_64"]["batch_size"] == 64  # a batch size nb201_devices.csv does not list


def test_ganesan_groups_are_phone_models_from_the_device_table() -> None:
    dataset = load_latency_dataset("ganesan_mobile")
    phones = load_table("ganesan_mobile_devices")
    model_of = dict(zip(phones["device_id"], phones["model"]))
    assert dataset.latency_ms.shape == (118, 71)
    assert dataset.groups == [model_of[d] for d in dataset.devices]
    assert len(dataset.group_names) == len(set(model_of.values()))
    assert len(dataset.devices_of("GM1901")) > 1
    # networks with latencies but no layer rows are listed, not dropped silently
    assert [e.arch_id for e in dataset.excluded] == [118, 119, 120, 121]
    assert all("no layer rows" in e.reason for e in dataset.excluded)
    assert np.array_equal(dataset.arch_ids, np.arange(118))


def test_ganesan_run_medians_are_the_medians_of_the_bundled_runs() -> None:
    published = load_latency_dataset("ganesan_mobile")
    median = load_latency_dataset("ganesan_mobile", "median")
    assert median.run_statistic == "median" and published.run_statistic == "published"
    assert median.devices == published.devices and median.archs == published.archs
    assert median.with_devices(median.devices[:2]).run_statistic == "median"
    runs = load_table("ganesan_mobile_runs")
    for device, network in [("HD1901_1", 54), ("Pixel_3a_0", 0), (median.devices[-1], 117)]:
        values = runs[(runs.device_id == device) & (runs.network_id == network)].latency_ms.to_numpy()
        row, column = int(np.flatnonzero(median.arch_ids == network)[0]), median.device_index(device)
        assert len(values) == 30
        assert median.latency_ms[row, column] == pytest.approx(float(np.median(values)), rel=1e-12)
        assert published.latency_ms[row, column] == pytest.approx(float(np.mean(values)), rel=1e-6)
    # the published mean keeps the spikes of a throttled file; the median does not
    j, row = published.device_index("HD1901_1"), int(np.flatnonzero(published.arch_ids == 58)[0])
    assert published.latency_ms[row, j] > 1.5 * median.latency_ms[row, j]


@pytest.mark.parametrize(("space", "statistic", "message"), [
    ("nasbench201", "median", "not its runs"),
    ("ganesan_mobile", "trimmed_mean", "unknown run statistic"),
])
def test_run_statistic_needs_a_space_with_runs(space: str, statistic: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        load_latency_dataset(space, statistic)


def test_unknown_space_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        load_latency_dataset("no_such_space")


def test_with_devices_copies_the_columns() -> None:
    dataset = load_latency_dataset("ganesan_mobile")
    part = dataset.with_devices(dataset.devices[:3])
    assert part.devices == dataset.devices[:3]
    assert part.latency_ms.shape == (118, 3)
    assert not np.shares_memory(part.latency_ms, dataset.latency_ms)


# ---- HELP query set ---------------------------------------------------------------------------------------------
def test_help_query_set_on_a_toy_device() -> None:
    ids = np.arange(2000)
    rng = np.random.default_rng(0)
    perm = rng.permutation(2000)  # rows are not in id order
    latency = rng.uniform(1, 100, size=2000)
    signature_rows = np.flatnonzero(np.isin(ids[perm], [5, 950, 1500]))
    got = help_query_indices(ids[perm], latency, signature_rows)

    in_range = np.flatnonzero((ids[perm] >= 900) & (ids[perm] < 1900))
    order = in_range[np.argsort(latency[in_range])]
    expected = np.setdiff1d(order[100:900], signature_rows)  # 10 % of 1000 dropped at each end
    assert np.array_equal(got, np.sort(expected))
    assert got.size in (798, 799, 800)
    assert latency[got].min() >= latency[order[100]]
    assert latency[got].max() <= latency[order[899]]


def test_help_trimming_breaks_ties_by_index_and_skips_unmeasured() -> None:
    ids = np.arange(20)
    latency = np.ones(20)
    latency[3] = np.nan
    got = help_query_indices(ids, latency, [], id_range=(0, 20), trim_fraction=0.1)
    # 19 measured, round(1.9) = 2 dropped at each end; ties are ordered by index
    assert got.tolist() == [2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]


def test_all_query_set_drops_signature_and_unmeasured() -> None:
    latency = np.array([1.0, np.nan, 3.0, 4.0])
    assert all_query_indices(latency, [2]).tolist() == [0, 3]


# ---- signatures -------------------------------------------------------------------------------------------------
def test_random_signature_is_seeded_and_adds_the_first_degenerate_arch() -> None:
    dataset = load_latency_dataset("ganesan_mobile")
    selector = RandomSignature()
    a, b = selector(dataset, 8, 3), selector(dataset, 8, 3)
    assert a == b and len(set(a)) == 8
    assert selector(dataset, 8, 4) != a
    degenerate = np.zeros(len(dataset.archs), dtype=bool)
    degenerate[[7, 40]] = True
    marked = dataclasses.replace(dataset, degenerate=degenerate)
    signature = selector(marked, 8, 3)
    assert signature[0] == dataset.archs[7]
    assert dataset.archs[40] not in signature
    assert RandomSignature(include_degenerate=False)(marked, 8, 3) == a  # a plain seeded draw


def test_nb201_signature_includes_a_degenerate_cell_when_the_space_marks_them() -> None:
    dataset = load_latency_dataset("nasbench201")
    signature = RandomSignature()(dataset, 10, 0)
    if dataset.degenerate.any():
        assert dataset.degenerate[dataset.arch_indices(signature)].sum() == 1
    else:  # the space does not mark degenerate cells (yet): a plain random draw
        assert dataset.degenerate_source == "unavailable"


# ---- leave-device-out -------------------------------------------------------------------------------------------
def test_selector_never_sees_the_held_out_devices() -> None:
    dataset = load_latency_dataset("ganesan_mobile")
    holdout = ["GM1901", "Pixel_3a", "SM-M307F"]
    seen: list[list[str]] = []

    def selector(train: LatencyDataset, k: int, seed: int) -> list[str]:
        assert not np.shares_memory(train.latency_ms, dataset.latency_ms)
        held_out_group = holdout[len(seen) // 2]
        assert held_out_group not in train.groups
        for device in dataset.devices_of(held_out_group):
            assert device not in train.devices
            column = dataset.latency_of(device)
            assert not any(np.array_equal(column, train.latency_ms[:, j]) for j in range(len(train.devices)))
        seen.append(list(train.devices))
        return RandomSignature()(train, k, seed)

    result = leave_device_out(dataset, {"mean": LogMeanModel}, budget=5, seeds=[0, 1], selector=selector,
                              features=row_features(dataset), holdout=holdout)
    assert len(seen) == len(holdout) * 2
    for i, group in enumerate(holdout):
        group_devices = set(dataset.devices_of(group))
        # a phone model's files are never split between training and test
        assert set(seen[2 * i]) == set(dataset.devices) - group_devices
    assert {s.group for s in result.scores} == set(holdout)
    assert {s.device for s in result.scores} == {d for g in holdout for d in dataset.devices_of(g)}


def test_fit_once_per_group_adapt_per_seed_on_signature_latencies_only() -> None:
    dataset = load_latency_dataset("ganesan_mobile")
    holdout = ["GM1901", "Pixel_3a"]
    result = leave_device_out(dataset, {"mean": LogMeanModel}, budget=6, seeds=[0, 1, 2],
                              features=row_features(dataset), holdout=holdout)
    n_test = sum(len(dataset.devices_of(g)) for g in holdout)
    assert LogMeanModel.fits == len(holdout)
    assert len(LogMeanModel.adapted) == 3 * n_test
    # every adaptation saw exactly the held-out device's latencies at that seed's signature
    first = dataset.devices_of("GM1901")[0]
    rows = dataset.arch_indices(result.signatures[0]["GM1901"])
    assert np.array_equal(LogMeanModel.adapted[0], dataset.latency_of(first)[rows])
    scores = [s for s in result.scores if s.device == first and s.seed == 0]
    assert len(scores) == 1 and scores[0].scoring_set == "all"
    assert scores[0].n_scored == 118 - 6
    assert set(scores[0].metrics) == set(SUMMARY_KEYS)
    assert result.timings["mean"]["fits"] == len(holdout)


def test_held_out_noise_multiplies_every_signature_measurement_by_a_drawn_log_normal_factor() -> None:
    dataset = load_latency_dataset("ganesan_mobile")
    features = row_features(dataset)
    LogMeanModel.adapted = []
    plain = leave_device_out(dataset, {"mean": LogMeanModel}, budget=6, seeds=[0, 1], features=features,
                             holdout=["GM1901"])
    clean = list(LogMeanModel.adapted)
    noisy_runs = {}
    for sigma in (0.05, 0.2):
        LogMeanModel.adapted = []
        noisy_runs[sigma] = leave_device_out(dataset, {"mean": LogMeanModel}, budget=6, seeds=[0, 1],
                                             features=features, holdout=["GM1901"], held_out_noise=sigma)
        assert noisy_runs[sigma].held_out_noise == sigma and len(LogMeanModel.adapted) == len(clean)
        order = [(seed, device) for seed in (0, 1) for device in dataset.devices_of("GM1901")]
        for (seed, device), before, after in zip(order, clean, LogMeanModel.adapted):
            factors = measurement_noise(seed, device, 6, sigma)
            np.testing.assert_allclose(after, before * factors, rtol=1e-15)
            # a larger sigma scales the same draws: log factors proportional to sigma
            np.testing.assert_allclose(np.log(factors), sigma / 0.05 * np.log(measurement_noise(seed, device, 6, 0.05)))
    draws = np.log(np.concatenate([measurement_noise(seed, f"device{seed}", 200, 0.1) for seed in range(20)]))
    assert abs(draws.mean()) < 0.01 and abs(draws.std() - 0.1) < 0.005  # log-normal with the asked sigma
    assert not np.array_equal(measurement_noise(0, "a", 6, 0.1), measurement_noise(1, "a", 6, 0.1))
    device = dataset.devices_of("GM1901")[0]
    np.testing.assert_array_equal(noisy_runs[0.2].truth_of(device), plain.truth_of(device))
    assert not np.array_equal(noisy_runs[0.2].predictions[("mean", device)].predicted_ms,
                              plain.predictions[("mean", device)].predicted_ms)


def test_held_out_spike_multiplies_one_signature_measurement_and_scores_against_the_measured() -> None:
    dataset = load_latency_dataset("ganesan_mobile")
    plain = leave_device_out(dataset, {"mean": LogMeanModel}, budget=6, seeds=[0, 1], features=row_features(dataset),
                             holdout=["GM1901"])
    clean = list(LogMeanModel.adapted)
    LogMeanModel.adapted = []
    spiked = leave_device_out(dataset, {"mean": LogMeanModel}, budget=6, seeds=[0, 1],
                              features=row_features(dataset), holdout=["GM1901"], held_out_spike=4.0)
    files = dataset.devices_of("GM1901")
    assert spiked.held_out_spike == 4.0 and len(LogMeanModel.adapted) == len(clean) == 2 * len(files)
    order = [(seed, device) for seed in (0, 1) for device in files]  # adapted seed by seed, device by device
    assert len({spiked_position(seed, device, 6) for seed, device in order}) > 1  # drawn, not one fixed place
    for (seed, device), before, after in zip(order, clean, LogMeanModel.adapted):
        position = spiked_position(seed, device, 6)
        np.testing.assert_array_equal(np.flatnonzero(after != before), [position])
        assert after[position] == 4.0 * before[position]
    # the truth is as measured: only the onboarding moved, so the predictions are 4^(1/6) times the plain ones
    device = dataset.devices_of("GM1901")[0]
    np.testing.assert_array_equal(spiked.truth_of(device), plain.truth_of(device))
    np.testing.assert_allclose(spiked.predictions[("mean", device)].predicted_ms,
                               plain.predictions[("mean", device)].predicted_ms * 4.0 ** (1 / 6), rtol=1e-12)


def test_exclude_same_kind_trains_without_every_device_of_the_held_out_kind() -> None:
    dataset = load_latency_dataset("nasbench201")
    seen: list[list[str]] = []

    def selector(train: LatencyDataset, k: int, seed: int) -> list[str]:
        seen.append(list(train.devices))
        return RandomSignature()(train, k, seed)

    result = leave_device_out(dataset, {"mean": LogMeanModel}, budget=10, seeds=[0], selector=selector,
                              features=row_features(dataset), holdout=["titanx_32", "pixel3"], exclude_same="kind")
    kinds = {d: dataset.info[d]["kind"] for d in dataset.devices}
    assert kinds["titanx_32"] == "GPU" and kinds["pixel3"] == "mobile"
    assert seen[0] == [d for d in dataset.devices if kinds[d] != "GPU"]
    assert seen[1] == [d for d in dataset.devices if kinds[d] != "mobile"]
    assert result.training_devices == {"titanx_32": seen[0], "pixel3": seen[1]}
    assert result.exclude_same == "kind" and LogMeanModel.fits == 2
    plain = leave_device_out(dataset, {"mean": LogMeanModel}, budget=10, seeds=[0], features=row_features(dataset),
                             holdout=["titanx_32"])
    assert plain.exclude_same is None and len(plain.training_devices["titanx_32"]) == len(dataset.devices) - 1
    with pytest.raises(InvalidInputError, match="no such fact"):
        leave_device_out(dataset, {"mean": LogMeanModel}, budget=10, seeds=[0], features=row_features(dataset),
                         holdout=["titanx_32"], exclude_same="colour")


def test_exclude_same_several_facts_leaves_out_the_same_hardware_and_every_device_lacking_them() -> None:
    dataset = load_latency_dataset("ganesan_mobile")
    facts = ("cpu", "max_freq_ghz")

    def spec(device: str) -> tuple[object, ...] | None:
        info = dataset.info.get(device, {})
        return None if any(info.get(f) in (None, "") or info.get(f) != info.get(f) for f in facts) else tuple(
            info[f] for f in facts)

    held = [d for d in dataset.devices if dataset.groups[dataset.devices.index(d)] == "GM1901"]
    same = {d for d in dataset.devices if spec(d) == spec(held[0]) and d not in held}
    lacking = {d for d in dataset.devices if spec(d) is None}
    assert same and lacking  # the data has both: regional variants of one phone, and a phone with no spec
    result = leave_device_out(dataset, {"mean": LogMeanModel}, budget=5, seeds=[0], features=row_features(dataset),
                              holdout=["GM1901"], exclude_same="cpu+max_freq_ghz")
    assert set(result.training_devices["GM1901"]) == set(dataset.devices) - set(held) - same - lacking
    assert devices_lacking(dataset, "cpu+max_freq_ghz") == [d for d in dataset.devices if d in lacking]
    with pytest.raises(InvalidInputError, match="no such fact 'clock'"):
        leave_device_out(dataset, {"mean": LogMeanModel}, budget=5, seeds=[0], features=row_features(dataset),
                         holdout=["GM1901"], exclude_same="cpu+clock")


def test_exclude_same_refuses_to_train_on_fewer_than_two_devices() -> None:
    dataset = load_latency_dataset("ganesan_mobile")
    with pytest.raises(FailedPreconditionError, match="at least 2"):
        leave_device_out(dataset, {"mean": LogMeanModel}, budget=5, seeds=[0], features=row_features(dataset),
                         holdout=["GM1901"], exclude_same="integer_ms")


def test_interval_coverage_is_reported_for_models_with_an_uncertainty() -> None:
    dataset = load_latency_dataset("ganesan_mobile")
    result = leave_device_out(dataset, {"mean": LogMeanModel, "uncertain": UncertainLogMeanModel}, budget=5,
                              seeds=[0], features=row_features(dataset), holdout=["MotoG3"])
    assert {c.model for c in result.intervals} == {"uncertain"}  # the other gives no uncertainty: not reported
    device = dataset.devices_of("MotoG3")[0]
    coverage = next(c for c in result.intervals if c.device == device)
    rows = dataset.arch_indices(result.signatures[0]["MotoG3"])
    model = UncertainLogMeanModel().fit(row_features(dataset), result.dataset.with_devices(
        [d for d in dataset.devices if d not in dataset.devices_of("MotoG3")]).latency_ms)
    y = dataset.latency_of(device)
    predicted = model.predict(row_features(dataset), model.adapt(
        FeatureMatrix(("row",), rows[:, None].astype(np.float64), tuple(dataset.archs[i] for i in rows)), y[rows]))
    query = all_query_indices(y, rows)
    error = np.abs(np.log(y[query] / predicted[query]))
    assert coverage.coverage["coverage_68"] == pytest.approx(np.mean(error <= 0.05))
    assert coverage.coverage["coverage_95"] == pytest.approx(np.mean(error <= 1.959964 * 0.05))
    assert coverage.median_std_log == pytest.approx(0.05)
    [row] = result.calibration()
    assert row["model"] == "uncertain" and row["devices"] == len(dataset.devices_of("MotoG3"))
    assert row["coverage_95_worst"] <= row["coverage_95"]


def test_nb201_scores_help_and_all_sets() -> None:
    dataset = load_latency_dataset("nasbench201")
    result = leave_device_out(dataset, {"mean": LogMeanModel}, budget=10, seeds=[0], features=row_features(dataset),
                              holdout=["pixel3", "samsung_s7"])
    sets = {(s.device, s.scoring_set): s.n_scored for s in result.scores}
    assert set(sets) == {(d, k) for d in ("pixel3", "samsung_s7") for k in ("help", "all")}
    assert 790 <= sets[("pixel3", "help")] <= 800
    assert sets[("pixel3", "all")] == 15625 - 10
    assert result.per_device()[0]["spearman"] > 0.5


def test_summary_mean_and_worst_over_devices_then_seeds() -> None:
    dataset = load_latency_dataset("ganesan_mobile")
    result = leave_device_out(dataset, {"mean": LogMeanModel, "const": ConstantModel}, budget=5, seeds=[0, 1],
                              features=row_features(dataset), holdout=["GM1901", "Pixel_3a", "MotoG3"])
    frame = result.frame()
    part = frame[(frame.model == "mean") & (frame.set == "all")]
    by_seed_mean = part.groupby("seed")["spearman"].mean()
    by_seed_worst_mape = part.groupby("seed")["mape_pct"].max()
    row = next(r for r in result.summary() if r["model"] == "mean")
    assert row["spearman_mean"] == pytest.approx(by_seed_mean.mean())
    assert row["spearman_mean_std"] == pytest.approx(by_seed_mean.std(ddof=0))
    assert row["mape_pct_worst"] == pytest.approx(by_seed_worst_mape.mean())
    assert row["spearman_worst"] <= row["spearman_mean"]
    const = next(r for r in result.summary() if r["model"] == "const")
    assert np.isnan(const["spearman_mean"])  # undefined, reported as NaN, not a crash
    assert result.best_model() == "mean"
    per_device = pd.DataFrame(result.per_device())
    assert len(per_device) == 2 * len(result.held_out_devices)


def test_bad_arguments() -> None:
    dataset = load_latency_dataset("ganesan_mobile")
    features = row_features(dataset)
    with pytest.raises(InvalidInputError, match="at least 3"):
        leave_device_out(dataset, {"mean": LogMeanModel}, budget=2, features=features)
    with pytest.raises(InvalidInputError, match="nothing to score"):
        leave_device_out(dataset, {"mean": LogMeanModel}, budget=118, features=features)
    with pytest.raises(NotFoundError):
        leave_device_out(dataset, {"mean": LogMeanModel}, budget=5, features=features, holdout=["nope"])
    with pytest.raises(InvalidInputError, match="distinct"):
        leave_device_out(dataset, {"mean": LogMeanModel}, budget=5, features=features, holdout=["MotoG3"],
                         selector=lambda train, k, seed: [train.archs[0]] * k)
    with pytest.raises(InvalidInputError, match="rows"):
        leave_device_out(dataset, {"mean": LogMeanModel}, budget=5, holdout=["MotoG3"],
                         features=FeatureMatrix(("row",), np.zeros((3, 1)), ("a", "b", "c")))
    for scale in (0.0, -2.0, float("nan"), float("inf"), True, "10"):
        with pytest.raises(InvalidInputError, match="held_out_scale"):
            leave_device_out(dataset, {"mean": LogMeanModel}, budget=5, features=features, holdout=["MotoG3"],
                             held_out_scale=scale)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="held_out_spike"):
            leave_device_out(dataset, {"mean": LogMeanModel}, budget=5, features=features, holdout=["MotoG3"],
                             held_out_spike=scale)  # type: ignore[arg-type]
    for sigma in (-0.1, float("nan"), float("inf"), True, "0.1"):
        with pytest.raises(InvalidInputError, match="held_out_noise"):
            leave_device_out(dataset, {"mean": LogMeanModel}, budget=5, features=features, holdout=["MotoG3"],
                             held_out_noise=sigma)  # type: ignore[arg-type]
