"""The nested choice: per held-out device, the candidate an inner leave-device-out run on the training devices
alone prefers, scored with that candidate's outer predictions; the choice never sees the held-out device."""

from __future__ import annotations

import numpy as np
import pytest

from nas_latency.errors import InvalidInputError
from nas_latency.evaluate.nested import NESTED_MODEL, add_nested_choice
from nas_latency.evaluate.datasets import LatencyDataset
from nas_latency.evaluate.protocols import RandomSignature, leave_device_out
from nas_latency.evaluate.report import render_markdown, result_document
from nas_latency.ir import FeatureMatrix
from nas_latency.models.specs import build_model

N, P = 400, 6
CANDIDATES = {"nnls_mix": lambda: build_model("nnls_mix"), "blr": lambda: build_model("blr")}


def toy() -> tuple[LatencyDataset, FeatureMatrix]:
    """Five devices, each a different mix of two latency patterns plus noise."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(N, P))
    patterns = np.exp(np.column_stack([1.0 + X @ rng.normal(scale=0.3, size=P) for _ in range(2)]))
    devices = [f"d{i}" for i in range(5)]
    mix = rng.uniform(0.1, 1.0, size=(2, 5))
    latency = (patterns @ mix) * np.exp(rng.normal(scale=0.03, size=(N, 5)))
    archs = [f"a{i}" for i in range(N)]
    dataset = LatencyDataset(space="ganesan_mobile", archs=archs, devices=devices, latency_ms=latency, groups=devices,
                             info={d: {} for d in devices}, arch_ids=np.arange(N), degenerate=np.zeros(N, bool))
    return dataset, FeatureMatrix(("log_macs", *(f"x{j}" for j in range(1, P))), X, tuple(archs))


def run(dataset: LatencyDataset, features: FeatureMatrix):  # type: ignore[no-untyped-def]
    models = {"flops_xdev": lambda: build_model("flops_xdev"), **CANDIDATES}
    return leave_device_out(dataset, models, budget=5, seeds=[0, 1], selector=RandomSignature(), features=features,
                            holdout=["d0", "d3"])


def test_each_held_out_device_gets_the_candidate_its_training_devices_prefer() -> None:
    dataset, features = toy()
    result = add_nested_choice(run(dataset, features), CANDIDATES, selector=RandomSignature(), features=features)
    assert result.models[-1] == NESTED_MODEL and set(result.nested_choices) == {"d0", "d3"}
    for group, record in result.nested_choices.items():
        assert record["inner_devices"] == [d for d in dataset.devices if d != group]
        # the inner run, by hand, on the training devices only
        inner = leave_device_out(dataset.with_devices(record["inner_devices"]), CANDIDATES, budget=5, seeds=[0, 1],
                                 selector=RandomSignature(), features=features)
        by_hand = {r["model"]: r["spearman_mean"] for r in inner.summary() if r["set"] == "all"}
        assert record["inner_spearman"] == pytest.approx(by_hand)
        assert record["chosen"] == max(by_hand, key=by_hand.get)
        nested = sorted((s.seed, s.scoring_set, s.metrics["spearman"]) for s in result.scores
                        if s.model == NESTED_MODEL and s.device == group)
        chosen = sorted((s.seed, s.scoring_set, s.metrics["spearman"]) for s in result.scores
                        if s.model == record["chosen"] and s.device == group)
        assert nested == chosen and len(nested) == 2
        assert np.array_equal(result.predictions[(NESTED_MODEL, group)].predicted_ms,
                              result.predictions[(record["chosen"], group)].predicted_ms)
    assert result_document(result)["nested_choices"]["d0"]["chosen"] in CANDIDATES
    assert "## Nested choice" in render_markdown(result)
    assert any(r["model"] == NESTED_MODEL for r in result.summary())


def test_a_nested_choice_needs_two_scored_candidates_and_is_added_once() -> None:
    dataset, features = toy()
    result = run(dataset, features)
    with pytest.raises(InvalidInputError, match="at least 2 candidate models"):
        add_nested_choice(result, {"blr": CANDIDATES["blr"]}, selector=RandomSignature(), features=features)
    with pytest.raises(InvalidInputError, match="did not score the candidates gp_mix"):
        add_nested_choice(result, {**CANDIDATES, "gp_mix": lambda: build_model("gp_mix")}, selector=RandomSignature(),
                          features=features)
    add_nested_choice(result, CANDIDATES, selector=RandomSignature(), features=features)
    with pytest.raises(InvalidInputError, match="already has"):
        add_nested_choice(result, CANDIDATES, selector=RandomSignature(), features=features)
