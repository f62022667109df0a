"""The expected-latency loss on the live architecture parameters of NNI's DARTS and Proxyless: it has a gradient
(NNI's own penalty, built on detached ``export_probs()``, has none), and training with it lowers the expected
latency of the architecture distribution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from nas_latency.nni.latency_table import LatencyTable, build_latency_table
from nas_latency.nni.oneshot import LatencyPenalty, expected_latency, live_alphas
from nas_latency.nni.profiler import LatencyProfiler
from nas_latency.predictor import Predictor

SPACE = "nasbench201"
PROBE = "probe"


def _space() -> nn.Module:
    from nni.nas.nn.pytorch import LayerChoice, ModelSpace

    class Tiny(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.b1 = LayerChoice([nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 5, padding=2)],
                                  label="b1")
            self.b2 = LayerChoice([nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 5, padding=2)],
                                  label="b2")
            self.head = nn.Linear(8, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.relu(self.b1(torch.relu(self.stem(x))))
            return self.head(self.b2(x).mean((2, 3)))

    return Tiny()


@pytest.fixture(scope="module")
def table(nb201_store_url: str) -> LatencyTable:
    """The table of the tiny space from the real profiler (generic path: freeze → IR → the probe's latency)."""
    with Predictor(store_url=nb201_store_url) as predictor:
        profiler = LatencyProfiler(_space(), device=PROBE, space=SPACE, predictor=predictor,
                                   example_input=torch.randn(1, 3, 32, 32))
        table = build_latency_table(_space(), profiler)
    assert table.exhaustive and table.labels == ("b1", "b2")
    for label in table.labels:  # 1x1 < 3x3 < 5x5
        assert table.latency_ms[label][0] == 0.0 < table.latency_ms[label][1] < table.latency_ms[label][2]
    return table


def _evaluator(root: Path) -> Any:
    from nni.nas.evaluator.pytorch import Classification, DataLoader

    data = torch.utils.data.TensorDataset(torch.randn(64, 3, 16, 16), torch.randint(0, 10, (64,)))
    return Classification(train_dataloaders=DataLoader(data, batch_size=16),
                          val_dataloaders=DataLoader(data, batch_size=16),
                          max_epochs=3, num_classes=10, logger=False, enable_checkpointing=False,
                          enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(root),
                          accelerator="cpu")


def _strategy(kind: str, penalty: LatencyPenalty | None) -> Any:
    from nni.nas.strategy import DARTS, Proxyless

    cls = {"darts": DARTS, "proxyless": Proxyless}[kind]
    strategy = cls(penalty=penalty, arc_learning_rate=0.05)
    if penalty is not None:
        penalty.bind(strategy)
    return strategy


def _initialized(kind: str, penalty: LatencyPenalty | None, root: Path) -> Any:
    from nni.nas.execution import SequentialExecutionEngine
    from nni.nas.space import RawFormatModelSpace

    torch.manual_seed(0)
    strategy = _strategy(kind, penalty)
    strategy.initialize(RawFormatModelSpace.from_model(_space(), _evaluator(root)), SequentialExecutionEngine())
    return strategy


@pytest.mark.parametrize("kind", ["darts", "proxyless"])
def test_architecture_gradient_is_nonzero(kind: str, table: LatencyTable, tmp_path: Path) -> None:
    strategy = _initialized(kind, None, tmp_path)
    alphas = live_alphas(strategy)
    assert set(alphas) == {"b1", "b2"}
    latency = expected_latency(table, strategy)
    assert latency.requires_grad
    latency.backward()
    for label, (alpha, values) in alphas.items():
        assert alpha is strategy._arch_parameters[label]  # the very parameters the strategy optimizes
        assert alpha.grad is not None and torch.all(alpha.grad != 0)
        # raising the logit of the dearest candidate raises the expected latency; of the cheapest, lowers it
        assert alpha.grad[2] > 0 > alpha.grad[0]
    # the supernet (its mixed layers hold the same alphas) gives the same value
    assert expected_latency(table, strategy.supernet).item() == pytest.approx(latency.item())
    # NNI's own penalty input: export_probs() is plain floats, so nothing can flow back from it
    probs = strategy.oneshot_module.export_probs()
    assert all(isinstance(p, float) for dist in probs.values() for p in dist.values())


@pytest.mark.parametrize("kind", ["darts", "proxyless"])
def test_expected_latency_falls_when_the_penalty_is_on(kind: str, table: LatencyTable, tmp_path: Path) -> None:
    outcomes = {}
    for on in (False, True):
        target = table.base_ms + 0.25 * sum(max(v) for v in table.latency_ms.values())
        penalty = LatencyPenalty(table, target_ms=target, scale=5.0) if on else None
        strategy = _initialized(kind, penalty, tmp_path / str(on))
        before = expected_latency(table, strategy).item()
        strategy.run()  # NNI's one-shot training loop (Lightning), arch steps on the penalized loss
        outcomes[on] = (before, expected_latency(table, strategy).item())
    (before_off, after_off), (before_on, after_on) = outcomes[False], outcomes[True]
    assert before_on == pytest.approx(before_off)  # same start
    spread = sum(max(v) for v in table.latency_ms.values())
    assert after_on < before_on - 0.1 * spread  # the penalty pulls the distribution to cheaper choices
    assert after_on < after_off - 0.1 * spread
