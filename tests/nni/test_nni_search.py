"""The latency-constrained NNI 3.0 search, in this process, with its profiler querying a real server."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from nas_latency.client import LatencyClient
from nas_latency.data import nb201_accuracy
from nas_latency.nni.constraints import LatencyAwareEvaluator, mnasnet_reward, range_filter
from nas_latency.nni.profiler import LatencyProfiler
from nas_latency.nni.search import BundledAccuracyEvaluator, nasbench201_space, run_search
from nas_latency.predictor import Predictor
from search_spaces.nasbench201.nni_adapter import from_nni_sample

SPACE = "nasbench201"
PROBE = "probe"


def _budget(client: LatencyClient, quantile: float) -> float:
    """A budget most samples break: the ``quantile`` of the probe's predicted latencies over the whole space."""
    from search_spaces import get_space

    predicted = client.predict(SPACE, get_space(SPACE).measured_archs(), device=PROBE)
    return float(np.quantile(predicted, quantile))


def test_ten_trials_through_a_real_server_never_evaluate_a_rejected_sample(server_address: str) -> None:
    with LatencyClient(server_address) as client:
        budget = _budget(client, 0.3)
        space = nasbench201_space()
        evaluator = BundledAccuracyEvaluator()
        profiler = LatencyProfiler(space, device=PROBE, predictor=client)
        result = run_search(space, evaluator, profiler, max_latency_ms=budget, trials=10, strategy="evolution", seed=1)

        assert profiler.path == "nasbench201" and profiler.stats.backend_calls > 0  # it asked the server
        assert len(result.trials) == 10 and len(evaluator.evaluated) == 10
        assert result.rejected > 0, "the budget should reject some of what the strategy proposes"
        evaluated = [t.arch for t in result.trials]
        assert evaluated == evaluator.evaluated  # the engine's models are exactly what the evaluator saw
        rejected = [from_nni_sample(sample) for sample in result.rejected_samples]
        assert len(rejected) == result.rejected and not set(rejected) & set(evaluated)
        assert np.all(client.predict(SPACE, rejected, device=PROBE) > budget)  # rejected for the right reason
        # every evaluated arch is under budget by a fresh server answer (not only by the profiler's cache)
        fresh = client.predict(SPACE, evaluated, device=PROBE)
        assert np.all(fresh <= budget)
        np.testing.assert_allclose(fresh, [t.predicted_latency_ms for t in result.trials])
        # each trial carries the model's standard deviation, and with it the chance of being within the budget
        _, sd = client.predict_with_uncertainty(SPACE, evaluated, device=PROBE)
        np.testing.assert_allclose([t.predicted_log_std for t in result.trials], sd, rtol=1e-6)
        first = result.trials[0]
        assert first.probability_within(budget) == pytest.approx(
            norm.cdf(np.log(budget / first.predicted_latency_ms) / first.predicted_log_std))
        accuracy = nb201_accuracy()
        assert [t.metric for t in result.trials] == [accuracy[a] for a in evaluated]
        assert result.best is not None and result.best.metric == max(accuracy[a] for a in evaluated)


def test_server_and_embedded_searches_agree(server_address: str, nb201_store_url: str) -> None:
    space = nasbench201_space()
    with LatencyClient(server_address) as client, Predictor(store_url=nb201_store_url) as predictor:
        budget = _budget(client, 0.5)
        remote = run_search(space, BundledAccuracyEvaluator(), LatencyProfiler(space, device=PROBE, predictor=client),
                            max_latency_ms=budget, trials=30, seed=3)
        local = run_search(space, BundledAccuracyEvaluator(),
                           LatencyProfiler(space, device=PROBE, predictor=predictor),
                           max_latency_ms=budget, trials=30, seed=3)
    assert [t.arch for t in remote.trials] == [t.arch for t in local.trials]
    np.testing.assert_allclose([t.predicted_latency_ms for t in remote.trials],
                               [t.predicted_latency_ms for t in local.trials], rtol=1e-9)


@pytest.mark.parametrize("strategy", ["random", "tpe"])
def test_other_strategies_respect_the_budget(server_address: str, strategy: str) -> None:
    space = nasbench201_space()
    with LatencyClient(server_address) as client:
        budget = _budget(client, 0.4)
        profiler = LatencyProfiler(space, device=PROBE, predictor=client)
        result = run_search(space, BundledAccuracyEvaluator(), profiler, max_latency_ms=budget, trials=12,
                            strategy=strategy, seed=0)
    assert len(result.trials) == 12
    assert all(t.predicted_latency_ms <= budget for t in result.trials)


def test_mnasnet_objective_wraps_any_evaluator(nb201_store_url: str) -> None:
    space = nasbench201_space()
    with Predictor(store_url=nb201_store_url) as predictor:
        profiler = LatencyProfiler(space, device=PROBE, predictor=predictor)
        target = 10.0
        evaluator = LatencyAwareEvaluator(BundledAccuracyEvaluator(), profiler, target_ms=target)
        result = run_search(space, evaluator, profiler, max_latency_ms=1e6, trials=8, strategy="random", seed=0)
    accuracy = nb201_accuracy()
    for trial in result.trials:
        expected = mnasnet_reward(accuracy[trial.arch], trial.predicted_latency_ms, target)
        assert trial.metric == pytest.approx(expected)
    assert mnasnet_reward(90.0, 20.0, 10.0, hard=True) == pytest.approx(45.0)
    assert mnasnet_reward(90.0, 5.0, 10.0, hard=True) == 90.0
    # NNI's own RangeProfilerFilter (for one-shot strategies) works over the profiler
    keep = range_filter(profiler, max_latency_ms=target)
    sample = result.trials[0].sample
    assert keep(sample) == (profiler.profile(sample) <= target)


def test_search_cli_through_the_server_writes_json_and_plot(server_address: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from nas_latency.cli import main

    with LatencyClient(server_address) as client:
        budget = round(_budget(client, 0.5), 3)
    plot = tmp_path / "pareto.png"
    code = main(["search", "--space", SPACE, "--device", PROBE, "--max-latency-ms", str(budget), "--trials", "25",
                 "--strategy", "evolution", "--seed", "2", "--server", server_address, "--plot", str(plot),
                 "--pareto", "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    doc = json.loads(out)
    assert {"arch", "predicted_latency_ms", "accuracy", "trials", "wall_s"} <= set(doc)
    assert doc["trials"] == 25 and doc["predicted_latency_ms"] <= budget
    assert doc["accuracy"] == nb201_accuracy()[doc["arch"]]
    assert doc["predicted_log_std"] > 0 and 0.5 <= doc["probability_within_budget"] <= 1.0  # predicted within it
    assert doc["backend"] == f"server {server_address}"
    assert doc["pareto"] and all(p["predicted_latency_ms"] <= budget for p in doc["pareto"])
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_search_cli_bad_input_exits_2(server_address: str, capsys: pytest.CaptureFixture[str]) -> None:
    from nas_latency.cli import main

    assert main(["search", "--space", SPACE, "--device", "no-such-device", "--max-latency-ms", "5",
                 "--server", server_address]) == 2
    assert "no-such-device" in capsys.readouterr().err
    assert main(["search", "--space", SPACE, "--device", PROBE, "--max-latency-ms", "-1",
                 "--server", server_address]) == 2


def test_any_model_space_and_a_real_evaluator(nb201_store_url: str) -> None:
    """The generic path in a search: NNI freezes each accepted sample into a module and a FunctionalEvaluator
    runs it; samples are priced by freeze → IR → the probe's latency."""
    import torch
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.nn.pytorch import LayerChoice, ModelSpace
    from torch import nn

    class Small(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.b1 = LayerChoice([nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 5, padding=2)],
                                  label="b1")
            self.b2 = LayerChoice([nn.Identity(), nn.Conv2d(8, 8, 3, padding=1)], label="b2")
            self.head = nn.Linear(8, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.b2(torch.relu(self.b1(torch.relu(self.stem(x))))).mean((2, 3)))

    seen: list[nn.Module] = []

    def evaluate(model: nn.Module) -> None:  # a stand-in for training: run it, report minus its size
        import nni

        seen.append(model)
        with torch.no_grad():
            assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        nni.report_final_result(-float(sum(p.numel() for p in model.parameters())))

    space = Small()
    with Predictor(store_url=nb201_store_url) as predictor:
        profiler = LatencyProfiler(space, device=PROBE, space=SPACE, predictor=predictor,
                                   example_input=torch.randn(1, 3, 32, 32))
        all_samples = [{"b1": i, "b2": j} for i in range(3) for j in range(2)]
        budget = float(np.median(profiler.profile_many(all_samples)))
        result = run_search(space, FunctionalEvaluator(evaluate), profiler, max_latency_ms=budget, trials=3,
                            strategy="random", seed=0)
    assert len(seen) == len(result.trials) == 3 and all(isinstance(m, nn.Module) for m in seen)
    assert all(t.predicted_latency_ms <= budget and t.arch is None for t in result.trials)
    assert result.rejected > 0 and all(profiler.profile(s) > budget for s in result.rejected_samples)
    assert result.best is not None and result.best.metric == max(t.metric for t in result.trials)


def test_an_impossible_budget_is_a_clear_failure(server_address: str, capsys: pytest.CaptureFixture[str]) -> None:
    from nas_latency.cli import main

    assert main(["search", "--space", SPACE, "--device", PROBE, "--max-latency-ms", "0.01", "--trials", "5",
                 "--strategy", "random", "--server", server_address]) == 2  # bad input, before any proposal
    assert "no NAS-Bench-201 architecture is predicted within 0.01 ms on probe" in capsys.readouterr().err


def test_a_budget_under_every_architecture_fails_at_once(nb201_store_url: str) -> None:
    from nas_latency.errors import InvalidInputError
    from nas_latency.nni.search import search_nasbench201

    with Predictor(store_url=nb201_store_url) as predictor:
        with pytest.raises(InvalidInputError, match=r"no NAS-Bench-201 architecture is predicted within 0\.001 ms on "
                                                    r"probe: the fastest is predicted at [\d.]+ ms \(\|"):
            search_nasbench201(device=PROBE, max_latency_ms=0.001, trials=10, predictor=predictor)
        profiler = LatencyProfiler(nasbench201_space(), device=PROBE, predictor=predictor)
        arch, fastest_ms = profiler.fastest()
        assert fastest_ms == pytest.approx(float(predictor.predict(SPACE, [arch], device=PROBE)[0]))
        assert profiler.stats.backend_calls == 0


def test_an_unknown_device_fails_when_the_profiler_is_made(nb201_store_url: str) -> None:
    from nas_latency.errors import NotFoundError

    with Predictor(store_url=nb201_store_url) as predictor:
        with pytest.raises(NotFoundError, match="no-such-device"):
            LatencyProfiler(nasbench201_space(), device="no-such-device", predictor=predictor)


def test_an_unwritable_plot_is_refused_before_the_search(server_address: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from nas_latency.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code = main(["search", "--space", SPACE, "--device", PROBE, "--max-latency-ms", "50", "--trials", "5",
                 "--server", server_address, "--plot", str(blocker / "plot.png")])
    captured = capsys.readouterr()
    assert code == 2 and "--plot" in captured.err and "cannot be written" in captured.err and not captured.out


def test_rejections_reported_to_the_strategy_are_bounded() -> None:
    """TPE sorts its whole history on every proposal: only the first ``max_invalid_metrics`` rejections carry
    ``metric_for_invalid``; every rejection still ends (TrainingEnd), so the strategy forgets it."""
    from types import SimpleNamespace

    from nni.nas.execution.event import ModelEventType

    from nas_latency.nni.constraints import LatencyConstraint, latency_filter

    profiler = SimpleNamespace(profile=lambda sample: 10.0)
    middleware = latency_filter(LatencyConstraint(profiler, max_latency_ms=1.0), metric_for_invalid=0.0,
                                max_invalid_metrics=2)
    events: list[ModelEventType] = []
    middleware.dispatch_model_event = lambda event_type, **kwargs: events.append(event_type)
    for i in range(5):
        middleware.submit_models(SimpleNamespace(sample={"i": i}))
    assert events.count(ModelEventType.FinalMetric) == 2 and events.count(ModelEventType.TrainingEnd) == 5


def test_importing_nni_writes_nothing_outside_the_home(tmp_path: Path) -> None:
    """torch._dynamo (imported by NNI) makes $TMPDIR/torchinductor_<user>; matplotlib caches fonts in ~."""
    import os
    import subprocess
    import sys

    folders = {name: tmp_path / name for name in ("tmp", "user", "home")}
    for folder in folders.values():
        folder.mkdir()
    env = {**os.environ, "TMPDIR": str(folders["tmp"]), "HOME": str(folders["user"]),
           "NAS_LATENCY_HOME": str(folders["home"])}
    for variable in ("MPLCONFIGDIR", "TORCHINDUCTOR_CACHE_DIR", "XDG_CACHE_HOME"):
        env.pop(variable, None)
    subprocess.run([sys.executable, "-c", "from nas_latency.nni._compat import import_nni; import_nni()"],
                   env=env, check=True, timeout=120)
    assert not list(folders["tmp"].iterdir()) and not list(folders["user"].iterdir())
    assert {p.name for p in folders["home"].iterdir()} == {"matplotlib", "torchinductor"}
