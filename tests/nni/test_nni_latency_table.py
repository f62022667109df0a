"""The per-choice latency table: exact on an additive profiler, close on the predictor's NB201 latencies."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pytest
import torch
from torch import nn

from nas_latency.errors import InvalidInputError
from nas_latency.nni.latency_table import LatencyTable, TableProfiler, build_latency_table
from nas_latency.nni.profiler import LatencyProfiler
from nas_latency.nni.search import nasbench201_space
from nas_latency.predictor import Predictor
from search_spaces import get_space
from search_spaces.nasbench201.nni_adapter import NNI_LABELS, to_nni_sample

SPACE = "nasbench201"
PROBE = "probe"


def _two_choice_space() -> nn.Module:
    import nni
    from nni.nas.nn.pytorch import LayerChoice, ModelSpace, MutableConv2d

    class TwoChoices(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.conv = MutableConv2d(3, 8, kernel_size=nni.choice("kernel", [1, 3, 5]), padding="same")
            self.block = LayerChoice({"skip": nn.Identity(), "conv": nn.Conv2d(8, 8, 3, padding=1),
                                      "pool": nn.AvgPool2d(3, 1, 1)}, label="block")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.block(self.conv(x))

    return TwoChoices()


class _Additive:
    """A profiler that is exactly additive: 2 ms + kernel cost + block cost."""

    cost = {"kernel": {1: 0.5, 3: 1.5, 5: 4.0}, "block": {"skip": 0.1, "conv": 2.0, "pool": 0.6}}

    def __init__(self) -> None:
        self.calls = 0

    def profile(self, sample: Mapping[str, Any]) -> float:
        self.calls += 1
        return 2.0 + self.cost["kernel"][sample["kernel"]] + self.cost["block"][sample["block"]]


def test_table_recovers_an_additive_profiler_exactly(tmp_path: Path) -> None:
    space = _two_choice_space()
    profiler = _Additive()
    table = build_latency_table(space, profiler)
    assert table.exhaustive and table.n_samples == 9 == profiler.calls  # 3 x 3: every sample, once
    assert set(table.labels) == {"kernel", "block"}
    assert table.values["kernel"] == (1, 3, 5) and table.values["block"] == ("skip", "conv", "pool")
    np.testing.assert_allclose(table.latency_ms["kernel"], [0.0, 1.0, 3.5], atol=1e-9)  # over the cheapest
    np.testing.assert_allclose(table.latency_ms["block"], [0.0, 1.9, 0.5], atol=1e-9)
    assert table.base_ms == pytest.approx(2.6)
    assert table.rmse_ms < 1e-9 and table.r2 == pytest.approx(1.0)
    for kernel in (1, 3, 5):
        for block in ("skip", "conv", "pool"):
            sample = {"kernel": kernel, "block": block}
            assert table.predict(sample) == pytest.approx(profiler.profile(sample))
    # expectation under a distribution; a label left out counts at its cheapest candidate
    assert table.expected({"kernel": [0.5, 0.5, 0.0]}) == pytest.approx(2.6 + 0.5)
    # JSON round trip, and a profiler answering from the table
    loaded = LatencyTable.load(table.save(tmp_path / "table.json"))
    assert loaded == table
    assert TableProfiler(loaded).profile({"kernel": 5, "block": "conv"}) == pytest.approx(2.0 + 4.0 + 2.0)
    with pytest.raises(InvalidInputError, match="no candidate 7"):
        table.predict({"kernel": 7, "block": "conv"})
    with pytest.raises(InvalidInputError, match="fewer than"):
        build_latency_table(space, profiler, n_samples=3)


def test_nb201_table_from_the_predictor_fits_and_ranks_ops(nb201_store_url: str) -> None:
    hub = nasbench201_space()
    with Predictor(store_url=nb201_store_url) as predictor:
        profiler = LatencyProfiler(hub, device=PROBE, predictor=predictor)
        table = build_latency_table(hub, profiler, n_samples=400, seed=0)
        assert profiler.stats.backend_calls == 1  # all 400 samples in one batched prediction
        assert table.labels == NNI_LABELS and not table.exhaustive and table.n_samples == 400
        for label in NNI_LABELS:
            costs = dict(zip(table.values[label], table.latency_ms[label]))
            assert min(costs.values()) == 0.0 and all(v >= 0 for v in costs.values())
            assert costs["conv_3x3"] > costs["conv_1x1"] > max(costs["skip_connect"], costs["none"])
        assert table.r2 > 0.9
        # on samples it was not fitted on, the additive table stays close to the profiler
        held_out = get_space(SPACE).sample(200, seed=99)
        truth = predictor.predict(SPACE, held_out, device=PROBE)
        approx = np.array([table.predict(to_nni_sample(a)) for a in held_out])
        assert np.median(np.abs(approx / truth - 1)) < 0.1
