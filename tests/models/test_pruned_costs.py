"""``pruned_cost_nnls``: a device that runs only the ops whose values reach the output is a price list over the
``pruned_cost.*`` columns, and a device's own measurements tell it apart from one that runs every op."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nas_latency.ir import FeatureMatrix
from nas_latency.models import (
    CostPriceModel,
    LeaveOneOutSelection,
    LogMixModel,
    PrunedCostPriceModel,
    WithoutCosts,
    load_model,
)
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
    from nas_latency.models.adaptation_summary import summarize_adaptation

    model = LeaveOneOutSelection(members=[WithoutCosts(base=EvidenceBayesianDeviceModel()), CostPriceModel(),
                                          PrunedCostPriceModel()]).fit(data.features, data.training)
    rows = data.signature
    summary = summarize_adaptation(model.adapt(subset(data.features, rows), data.pruning[rows]))
    assert summary.model == "pruned_cost_nnls"
    assert summary.detail.startswith("leave-one-out mean square of the ln error: blr_evidence ")
