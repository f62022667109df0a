"""``pruned_cost_nnls``: a device that runs only the ops whose values reach the output is a price list over the
``pruned_cost.*`` columns, and a device's own measurements tell it apart from one that runs every op."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models import (
    CostPriceModel,
    DegenerateAware,
    LeaveOneOutSelection,
    LogMixModel,
    PrunedCostPriceModel,
    WithoutCosts,
    load_model,
)
from nas_latency.models.adaptation_summary import summarize_adaptation
from nas_latency.models.artifacts import MANIFEST_NAME
from nas_latency.models.blr_evidence import EvidenceBayesianDeviceModel
from nas_latency.models.linalg import rank_correlation
from search_spaces import get_space

N_ARCHS, K = 1200, 10
SPACE = get_space("nasbench201")


def subset(features: FeatureMatrix, rows: np.ndarray) -> FeatureMatrix:
    return FeatureMatrix(features.names, features.values[rows], tuple(features.rows[i] for i in rows))


class Data:
    def __init__(self) -> None:
        rng = np.random.default_rng(5)
        archs = SPACE.measured_archs()
        live = np.flatnonzero(~SPACE.degenerate_mask(archs))
        rows = np.sort(rng.choice(live, N_ARCHS, replace=False))
        self.features = SPACE.model_features([archs[i] for i in rows])
        names = self.features.names

        def device(prefix: str) -> np.ndarray:  # 0.5 ms + per conv MAC + per byte read, of the chosen costs
            macs = self.features.values[:, names.index(f"{prefix}conv.macs")]
            read = self.features.values[:, names.index(f"{prefix}total.bytes_read")]
            return 0.5 + 4e-8 * macs + 2e-7 * read

        self.pruning = device("pruned_cost.")
        self.running_all = device("cost.")
        # training devices: synthetic, not the bundled ones, so the test does not depend on the data's quirks
        self.training = np.column_stack([self.running_all * np.exp(rng.normal(0, 0.05, N_ARCHS)) * s
                                         for s in (0.5, 1.0, 2.0, 3.0)])
        self.signature = rng.choice(N_ARCHS, K, replace=False)
        self.rest = np.setdiff1d(np.arange(N_ARCHS), self.signature)


@pytest.fixture(scope="module")
def data() -> Data:
    return Data()


def test_ten_measurements_of_a_pruning_device_are_priced_on_the_pruned_costs(data: Data) -> None:
    truth = data.pruning
    assert rank_correlation(truth, data.running_all) < 0.95  # pruning changes the order
    pruned = PrunedCostPriceModel().fit(data.features, data.training)
    every_op = CostPriceModel().fit(data.features, data.training)
    assert all(data.features.names[i].startswith("pruned_cost.") for i in pruned.columns_)
    assert not any(data.features.names[i].startswith("pruned_cost.") for i in every_op.columns_)
    rows = data.signature
    ours = pruned.predict(data.features, pruned.adapt(subset(data.features, rows), truth[rows]))
    theirs = every_op.predict(data.features, every_op.adapt(subset(data.features, rows), truth[rows]))
    assert rank_correlation(truth[data.rest], ours[data.rest]) > 0.99
    assert rank_correlation(truth[data.rest], theirs[data.rest]) < rank_correlation(truth[data.rest], ours[data.rest])


def test_the_device_s_measurements_choose_between_the_two_price_lists(data: Data) -> None:
    model = LeaveOneOutSelection(members=[WithoutCosts(base=EvidenceBayesianDeviceModel()), CostPriceModel(),
                                          PrunedCostPriceModel()]).fit(data.features, data.training)
    rows = data.signature
    chosen = {}
    for name, truth in (("pruning", data.pruning), ("running_all", data.running_all * 7.0)):
        adaptation = model.adapt(subset(data.features, rows), truth[rows])
        chosen[name] = int(np.argmax(adaptation.arrays["device_weights"]))
    assert chosen["pruning"] == 2
    assert chosen["running_all"] != 2


def test_without_costs_hides_both_cost_families(data: Data) -> None:
    wrapped = WithoutCosts(base=EvidenceBayesianDeviceModel()).fit(data.features, data.training)
    assert not any(name.startswith(("cost.", "pruned_cost.")) for name in wrapped.base_.feature_names_)
    assert len(wrapped.base_.feature_names_) == len(data.features.names) - 48


def test_a_without_costs_artifact_from_before_pruned_costs_still_loads(data: Data, tmp_path: Path) -> None:
    wrapped = WithoutCosts(base=LogMixModel(), cost_prefixes=("cost.",))
    wrapped.fit(data.features, data.training)
    path = wrapped.save(tmp_path / "old.nlm")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(members[MANIFEST_NAME])
    manifest["params"].pop("cost_prefixes")
    manifest["params"]["cost_prefix"] = "cost."  # the parameter's name and form before
    members[MANIFEST_NAME] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, blob in members.items():
            archive.writestr(name, blob)
    loaded = load_model(path)
    assert isinstance(loaded, WithoutCosts) and loaded.cost_prefixes == ("cost.",)
    assert np.array_equal(loaded.columns_, wrapped.columns_)


def test_the_summary_names_the_price_list_a_pruning_device_chose(data: Data) -> None:
    model = LeaveOneOutSelection(members=[WithoutCosts(base=EvidenceBayesianDeviceModel()), CostPriceModel(),
                                          PrunedCostPriceModel()]).fit(data.features, data.training)
    rows = data.signature
    summary = summarize_adaptation(model.adapt(subset(data.features, rows), data.pruning[rows]))
    assert summary.model == "pruned_cost_nnls"
    assert summary.detail.startswith("leave-one-out mean square of the ln error: blr_evidence ")


class DeadCellData:
    """Live archs, the first dead-cell arch, a device that prunes (the dead cell in almost no time) and one that
    runs every op, and a signature as the shipped ones are: the dead cell and nine archs that read every value
    they compute, on which the two price lists agree."""

    def __init__(self) -> None:
        rng = np.random.default_rng(11)
        archs = SPACE.measured_archs()
        dead = SPACE.degenerate_mask(archs)
        rows = np.r_[np.flatnonzero(dead)[0], np.sort(rng.choice(np.flatnonzero(~dead), N_ARCHS, replace=False))]
        self.features = SPACE.model_features([archs[i] for i in rows])
        names = self.features.names
        values = self.features.values

        def device(prefix: str) -> np.ndarray:
            return 0.5 + 4e-8 * values[:, names.index(f"{prefix}conv.macs")] + 2e-7 * values[:, names.index(
                f"{prefix}total.bytes_read")]

        self.running_all = device("cost.")
        self.pruning = device("pruned_cost.")
        self.pruning[0] = 0.003  # the dead cell: nothing the output reads
        self.training = np.column_stack([self.running_all * np.exp(rng.normal(0, 0.05, len(rows))) * s
                                         for s in (0.5, 1.0, 2.0, 3.0)])
        costs = [i for i, n in enumerate(names) if n.startswith("cost.")]
        twins = [names.index("pruned_cost." + names[i][len("cost."):]) for i in costs]
        reads_all = np.flatnonzero(np.isclose(values[:, costs], values[:, twins]).all(axis=1))
        self.partially_read = np.setdiff1d(np.arange(1, len(rows)), reads_all)
        self.signature = np.r_[0, rng.choice(reads_all[reads_all > 0], K - 1, replace=False)]
        self.rest = np.setdiff1d(np.arange(1, len(rows)), self.signature)


@pytest.fixture(scope="module")
def dead_cell_data() -> DeadCellData:
    return DeadCellData()


def _dead_cell_aware(prune_costs: bool = True) -> DegenerateAware:
    return DegenerateAware(base=LeaveOneOutSelection(members=[WithoutCosts(base=EvidenceBayesianDeviceModel()),
                                                              CostPriceModel(), PrunedCostPriceModel()]),
                           prune_costs=prune_costs)


def test_a_device_that_drops_dead_cells_is_priced_on_the_pruned_costs(dead_cell_data: DeadCellData) -> None:
    data = dead_cell_data
    assert len(data.partially_read) > 100  # archs the signature cannot tell the two price lists apart on
    rows = data.signature
    scores = {}
    for prune_costs in (True, False):
        model = _dead_cell_aware(prune_costs).fit(data.features, data.training)
        adaptation = model.adapt(subset(data.features, rows), data.pruning[rows])
        assert adaptation.info["drops_degenerate"]
        assert bool(adaptation.info.get("costs_pruned")) is prune_costs
        predicted = model.predict(data.features, adaptation)
        assert predicted[0] == pytest.approx(0.003)
        note = "price only the layers whose values are read"
        assert (note in summarize_adaptation(adaptation).detail) is prune_costs
        scores[prune_costs] = rank_correlation(data.pruning[data.partially_read], predicted[data.partially_read])
    assert scores[True] > 0.99
    assert scores[False] < scores[True] - 0.02


def test_a_device_that_runs_dead_cells_keeps_its_costs(dead_cell_data: DeadCellData) -> None:
    data = dead_cell_data
    rows = data.signature
    truth = data.running_all * 3.0
    predictions = []
    for prune_costs in (True, False):
        model = _dead_cell_aware(prune_costs).fit(data.features, data.training)
        adaptation = model.adapt(subset(data.features, rows), truth[rows])
        assert not adaptation.info["drops_degenerate"] and "costs_pruned" not in adaptation.info
        predictions.append(model.predict(data.features, adaptation))
    assert np.array_equal(predictions[0], predictions[1])


def test_prune_costs_is_saved_and_checked(dead_cell_data: DeadCellData, tmp_path: Path) -> None:
    data = dead_cell_data
    model = _dead_cell_aware(False).fit(data.features, data.training)
    loaded = load_model(model.save(tmp_path / "m.nlm"))
    assert isinstance(loaded, DegenerateAware) and loaded.prune_costs is False
    rows = data.signature
    adaptation = loaded.adapt(subset(data.features, rows), data.pruning[rows])
    assert np.array_equal(loaded.predict(data.features, adaptation),
                          model.predict(data.features, model.adapt(subset(data.features, rows), data.pruning[rows])))
    with pytest.raises(InvalidInputError, match="prune_costs must be true or false"):
        DegenerateAware(base=CostPriceModel(), prune_costs="yes").fit(data.features, data.training)  # type: ignore[arg-type]
