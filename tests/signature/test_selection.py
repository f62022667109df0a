"""Signature-set selection on a slice of the real NAS-Bench-201 latencies (1,500 archs × 8 devices)."""

from __future__ import annotations

import numpy as np
import pytest

from nas_latency.data import device_columns, load_nb201_latency
from nas_latency.errors import InvalidInputError, NotFoundError
from nas_latency.ir import FeatureMatrix
from nas_latency.signature import SELECTION_METHODS, select_signature, spearman_matrix
from search_spaces import get_space

N_ARCHS = 1500
DEVICES = ("1080ti_1", "1080ti_256", "silver_4114", "samsung_a50", "essential_ph_1", "titanx_32", "gold_6240",
           "silver_4210r")


def _features(archs: list[str]) -> FeatureMatrix:
    space = get_space("nasbench201")
    featurize = getattr(space, "model_features", space.featurize)
    return featurize(archs)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, list[str], FeatureMatrix]:
    frame = load_nb201_latency().sort_values("arch_index").head(N_ARCHS)
    assert set(DEVICES) <= set(device_columns("nb201_latency"))
    archs = frame["arch_string"].tolist()
    return frame[list(DEVICES)].to_numpy(dtype=np.float64), archs, _features(archs)


@pytest.mark.parametrize("method", SELECTION_METHODS)
def test_k_distinct_archs_from_the_set_deterministic_per_seed(data, method: str) -> None:
    Y, archs, features = data
    first = select_signature(method, Y, archs, 10, seed=3, features=features)
    again = select_signature(method, Y, archs, 10, seed=3, features=features)
    assert first == again
    assert len(first) == 10 and len(set(first)) == 10
    assert set(first) <= set(archs)


@pytest.mark.parametrize("method", SELECTION_METHODS)
def test_one_degenerate_arch_is_included(data, method: str) -> None:
    Y, archs, features = data
    mask = np.zeros(len(archs), dtype=bool)
    mask[[37, 500, 901]] = True
    chosen = select_signature(method, Y, archs, 8, seed=0, features=features, degenerate_mask=mask)
    degenerate = {archs[i] for i in np.flatnonzero(mask)}
    assert len(chosen) == 8 and len(set(chosen)) == 8
    assert [a for a in chosen if a in degenerate] == [archs[37]]  # exactly one: the first in arch order


def test_seed_changes_the_random_draw(data) -> None:
    Y, archs, _ = data
    assert select_signature("random", Y, archs, 10, seed=0) != select_signature("random", Y, archs, 10, seed=1)


def test_spearman_greedy_is_less_correlated_than_random(data) -> None:
    Y, archs, _ = data
    L = np.log(Y)
    centre = L.mean(axis=0)
    position = {a: i for i, a in enumerate(archs)}

    def mean_abs_rho(chosen: list[str]) -> float:
        rho = np.abs(spearman_matrix(L[[position[a] for a in chosen]], centre))
        return float(rho[np.triu_indices(len(chosen), 1)].mean())

    greedy = [mean_abs_rho(select_signature("spearman_greedy", Y, archs, 10, seed=s)) for s in range(3)]
    random = [mean_abs_rho(select_signature("random", Y, archs, 10, seed=s)) for s in range(3)]
    assert max(greedy) < min(random)


def test_unmeasured_archs_are_never_chosen(data) -> None:
    Y, archs, features = data
    Y = Y.copy()
    Y[::2, 3] = np.nan  # every other arch unmeasured on one training device
    for method in SELECTION_METHODS:
        chosen = select_signature(method, Y, archs, 6, seed=1, features=features)
        assert all(archs.index(a) % 2 == 1 for a in chosen), method


def test_errors(data) -> None:
    Y, archs, features = data
    with pytest.raises(NotFoundError, match="spearman_greedy"):
        select_signature("nope", Y, archs, 5, seed=0)
    with pytest.raises(InvalidInputError, match="k=1501"):
        select_signature("random", Y, archs, N_ARCHS + 1, seed=0)
    with pytest.raises(InvalidInputError, match="k must be"):
        select_signature("random", Y, archs, 0, seed=0)
    with pytest.raises(InvalidInputError, match="needs features"):
        select_signature("informative", Y, archs, 5, seed=0)
    with pytest.raises(InvalidInputError, match="at least 3 training devices"):
        select_signature("spearman_greedy", Y[:, :2], archs, 5, seed=0)
    with pytest.raises(InvalidInputError, match="shape"):
        select_signature("random", Y[:10], archs, 5, seed=0)
    bad = Y.copy()
    bad[4, 1] = 0.0
    with pytest.raises(InvalidInputError, match="> 0 ms"):
        select_signature("random", bad, archs, 5, seed=0)
    with pytest.raises(InvalidInputError, match="distinct"):
        select_signature("random", Y[:3], ["a", "a", "b"], 2, seed=0)
    small = Y[:3].copy()
    small[0, 0] = np.nan  # arch 0 unmeasured on one device, arch 1 degenerate: one candidate left
    with pytest.raises(InvalidInputError, match="only 1 are"):
        select_signature("random", small, archs[:3], 3, seed=0, degenerate_mask=[False, True, False])
