"""The in-device ceiling is out-of-fold: a device that is an exact function of the features scores ~1, a device
of pure noise ~0 (an in-sample fit with as many features would look far better than that)."""

from __future__ import annotations

import numpy as np
import pytest

from nas_latency.errors import InvalidInputError
from nas_latency.evaluate.ceiling import in_device_ceiling
from nas_latency.evaluate.datasets import LatencyDataset, load_latency_dataset
from nas_latency.ir import FeatureMatrix

N, P = 300, 80


def toy() -> tuple[LatencyDataset, FeatureMatrix]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(N, P))
    exact = np.exp(1.0 + X @ rng.normal(scale=0.2, size=P))
    noise = np.exp(1.0 + rng.normal(scale=0.2, size=N))
    archs = [f"net{i}" for i in range(N)]
    dataset = LatencyDataset(space="ganesan_mobile", archs=archs, devices=["exact", "noise"],
                             latency_ms=np.column_stack([exact, noise]), groups=["exact", "noise"],
                             info={"exact": {}, "noise": {}}, arch_ids=np.arange(N), degenerate=np.zeros(N, bool))
    return dataset, FeatureMatrix(tuple(f"x{j}" for j in range(P)), X, tuple(archs))


def test_an_exact_device_scores_one_and_noise_scores_nothing() -> None:
    dataset, features = toy()
    scores = {s.device: s for s in in_device_ceiling(dataset, features)}
    assert set(scores) == {"exact", "noise"} and all(s.scoring_set == "all" for s in scores.values())
    assert scores["exact"].n_scored == N and scores["exact"].metrics["spearman"] > 0.99
    assert abs(scores["noise"].metrics["spearman"]) < 0.2
    # in-sample, the 80 features would "explain" a good part of the noise: the ceiling is not in-sample
    Z = np.column_stack([np.ones(N), features.values])
    fitted = Z @ np.linalg.lstsq(Z, np.log(dataset.latency_ms[:, 1]), rcond=None)[0]
    assert np.corrcoef(fitted, np.log(dataset.latency_ms[:, 1]))[0, 1] > 0.3


def test_trees_find_an_interaction_the_linear_ceiling_cannot() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(N, 4))
    latency = np.exp(1.0 + 0.5 * np.sign(X[:, 0]) * X[:, 1])  # no linear trace in either column
    archs = [f"net{i}" for i in range(N)]
    dataset = LatencyDataset(space="ganesan_mobile", archs=archs, devices=["gated"], latency_ms=latency[:, None],
                             groups=["gated"], info={"gated": {}}, arch_ids=np.arange(N), degenerate=np.zeros(N, bool))
    features = FeatureMatrix(tuple(f"x{j}" for j in range(4)), X, tuple(archs))
    ridge = in_device_ceiling(dataset, features)[0].metrics["spearman"]
    trees = in_device_ceiling(dataset, features, model="lightgbm")[0].metrics["spearman"]
    assert abs(ridge) < 0.3 < 0.8 < trees
    with pytest.raises(InvalidInputError, match="ceiling model"):
        in_device_ceiling(dataset, features, model="gp")


def test_nb201_has_help_and_all_sets_and_bad_arguments_are_refused() -> None:
    dataset = load_latency_dataset("nasbench201").with_devices(["titanx_1"])
    from nas_latency.evaluate.protocols import default_featurizer

    features = default_featurizer("nasbench201")(dataset.archs)
    scores = in_device_ceiling(dataset, features, folds=3)
    assert [(s.device, s.scoring_set) for s in scores] == [("titanx_1", "help"), ("titanx_1", "all")]
    assert scores[0].n_scored == 800 and scores[1].n_scored == 15625
    assert scores[1].metrics["spearman"] > 0.95
    with pytest.raises(InvalidInputError, match="folds"):
        in_device_ceiling(dataset, features, folds=1)
    with pytest.raises(InvalidInputError, match="feature rows"):
        in_device_ceiling(dataset, FeatureMatrix(("a",), np.zeros((2, 1)), ("p", "q")))
