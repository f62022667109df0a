"""The phone model's price list: ``ganesan_mobile``'s shipped model onboards an accelerator unlike every phone with
the non-negative prices of the networks' IR costs (``cost_nnls``), and a phone like the training phones with the
transfer model, as the leave-one-out choice at its 1 % level tells them apart from ten measurements."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nas_latency.builtin_models import DEFAULT_MODEL_SPECS, signature_method_of
from nas_latency.evaluate.metrics import summarize
from nas_latency.evaluate.datasets import load_latency_dataset
from nas_latency.evaluate.protocols import MethodSignature, default_featurizer, training_devices
from nas_latency.evaluate.simulated import draw_accelerators, layer_table, simulated_latency_ms
from nas_latency.ir import FeatureMatrix
from nas_latency.models.adaptation_summary import summarize_adaptation
from nas_latency.models.specs import build_model
from search_spaces import get_space

SPACE = "ganesan_mobile"
HELD_OUT = "Pixel_3a"  # a phone file group whose transfer model is far better than a price list


@pytest.fixture(scope="module")
def setup() -> dict[str, Any]:
    dataset = load_latency_dataset(SPACE)
    features = default_featurizer(SPACE)(dataset.archs)
    train = dataset.with_devices(training_devices(dataset, HELD_OUT, None))
    signature = list(MethodSignature(signature_method_of(SPACE))(train, 10, 0))
    rows = np.array([dataset.archs.index(a) for a in signature])
    shipped = build_model(DEFAULT_MODEL_SPECS[SPACE]).fit(features, train.latency_ms)
    transfer = build_model("without_costs(geo_ensemble(nnls_mix_measured,gp_mix))").fit(features, train.latency_ms)
    networks = [get_space(SPACE).to_ir(a) for a in dataset.archs]
    return {"dataset": dataset, "features": features, "rows": rows, "shipped": shipped, "transfer": transfer,
            "table": layer_table(networks)}


def _onboard(setup: dict[str, Any], model: Any, latency_ms: np.ndarray) -> tuple[Any, np.ndarray]:
    rows, features = setup["rows"], setup["features"]
    measured = FeatureMatrix(features.names, features.values[rows], tuple(features.rows[i] for i in rows))
    adaptation = model.adapt(measured, latency_ms[rows])
    return adaptation, np.asarray(model.predict(features, adaptation), dtype=np.float64)


def _scored(setup: dict[str, Any], truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    query = np.setdiff1d(np.flatnonzero(np.isfinite(truth)), setup["rows"])
    return summarize(truth[query], predicted[query])


def test_an_accelerator_unlike_every_phone_is_priced(setup: dict[str, Any]) -> None:
    for device in draw_accelerators(4)[:2]:  # one that runs every layer, one that prunes
        latency = simulated_latency_ms(setup["table"], device)
        adaptation, predicted = _onboard(setup, setup["shipped"], latency)
        assert summarize_adaptation(adaptation).model == "cost_nnls", device.name  # the price list alone
        _, transfer = _onboard(setup, setup["transfer"], latency)
        shipped_r2, transfer_r2 = _scored(setup, latency, predicted)["r2"], _scored(setup, latency, transfer)["r2"]
        assert shipped_r2 > 0.88 and shipped_r2 > transfer_r2 + 0.15, (device.name, shipped_r2, transfer_r2)


def test_a_phone_keeps_the_transfer_model(setup: dict[str, Any]) -> None:
    dataset = setup["dataset"]
    for device in dataset.devices_of(HELD_OUT):
        latency = dataset.latency_of(device)
        adaptation, predicted = _onboard(setup, setup["shipped"], latency)
        assert summarize_adaptation(adaptation).model == "geo_ensemble(nnls_mix_measured,gp_mix)", device
        scores = _scored(setup, latency, predicted)
        assert scores["r2"] > 0.9 and scores["within_10pct"] > 0.7, (device, scores)
