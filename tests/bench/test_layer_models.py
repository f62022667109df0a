"""The device-specific layer models on the common contract: fit/predict, errors, artifacts without pickle."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from nas_latency.bench.kernel_items import KernelSpec, grid_kernels, random_kernels, sequence_grid_kernels
from nas_latency.errors import FailedPreconditionError, InvalidInputError
from nas_latency.ir import FeatureMatrix, OpKind
from nas_latency.models import model_from_bytes
from nas_latency.models.artifacts import artifact_from_bytes
from nas_latency.models.base import NotFittedError
from nas_latency.models.layer_features import (
    FAMILIES,
    LAYER_FEATURE_NAMES,
    LayerFeaturizer,
    families_of,
    family,
    layer_bytes,
    layer_flops,
    layer_key,
)
from nas_latency.models.layer_roofline import RooflineLayerModel
from nas_latency.models.layer_stacked import LAYER_MODELS, layer_model_class

PEAK_FLOPS_PER_MS = 5e7  # 50 GFLOP/s
BANDWIDTH_BYTES_PER_MS = 2e7  # 20 GB/s
OVERHEAD_MS = 2e-3

# small, fast settings: these tests check behaviour, not accuracy at scale
FAST = {
    "statistical": {"n_estimators": 60, "min_family_samples": 30},
    "mixed": {"n_estimators": 40},
    "resperfnet": {"epochs": 150, "width": 32, "blocks": 1},
}


def synthetic_time_ms(layers: list, rng: np.random.Generator | None = None, noise: float = 0.0) -> np.ndarray:
    """A roofline device with per-family efficiencies (depthwise convs run at 20 % of peak)."""
    efficiency = {"depthwise_conv": 0.2, "grouped_conv": 0.5}
    t = np.array([
        OVERHEAD_MS + max(layer_flops(l) / (PEAK_FLOPS_PER_MS * efficiency.get(family(l), 1.0)),
                          layer_bytes(l) / BANDWIDTH_BYTES_PER_MS)
        for l in layers
    ])
    if rng is not None and noise:
        t *= np.exp(rng.normal(0.0, noise, len(t)))
    return t


@pytest.fixture(scope="module")
def data() -> tuple[FeatureMatrix, np.ndarray, FeatureMatrix, np.ndarray]:
    rng = np.random.default_rng(0)
    layers = [s.layer() for s in grid_kernels("quick")] + [s.layer() for s in random_kernels(150, rng, max_macs=5e7)]
    test_layers = [s.layer() for s in random_kernels(40, np.random.default_rng(1), max_macs=5e7)]
    featurizer = LayerFeaturizer()
    return (featurizer.transform(layers), synthetic_time_ms(layers, rng, 0.02), featurizer.transform(test_layers),
            synthetic_time_ms(test_layers))


@pytest.fixture(scope="module")
def fitted(data: tuple) -> dict:
    features, y, _, _ = data
    return {name: cls(**FAST.get(name, {})).fit(features, y) for name, cls in LAYER_MODELS.items()}


def test_features_are_named_keyed_and_one_family_per_row() -> None:
    layers = [KernelSpec(OpKind.CONV, 16, 32, 8, 3).layer(), KernelSpec(OpKind.IDENTITY, 16, 16, 8).layer()]
    features = LayerFeaturizer().transform(layers)
    assert features.names == LAYER_FEATURE_NAMES and features.values.shape == (2, len(LAYER_FEATURE_NAMES))
    assert features.rows == tuple(layer_key(l) for l in layers)
    assert families_of(features).tolist() == ["conv", "view"]
    assert features.column("flops")[0] == 2 * layers[0].macs and features.column("flops")[1] == 0
    assert set(FAMILIES) >= {family(op) for op in OpKind}


def test_transformer_layers_have_their_families_and_shape_features() -> None:
    specs = {s.op: s for s in sequence_grid_kernels("quick")}
    layers = [specs[op].layer() for op in (OpKind.MATMUL, OpKind.LAYER_NORM, OpKind.TRANSPOSE, OpKind.SCALE)]
    features = LayerFeaturizer().transform(layers)
    assert families_of(features).tolist() == ["matmul", "layer_norm", "transpose", "scale"]
    matmul, norm, transpose, scale = layers
    assert features.column("flops")[0] == 2 * matmul.macs == 2 * 4 * 64 * 64 * 32
    # a layer norm's channels are the features of one normalized row (128), not the tokens (64)
    assert features.column("log_cin")[1] == pytest.approx(np.log2(128 + 1))
    assert features.column("flops")[2] == 0 and features.column("bytes")[2] == 2 * 4 * 64 * 128
    assert features.column("flops")[3] == 4 * 64 * 64


def test_slices_are_data_movement_of_the_part_they_copy() -> None:
    narrow, select = (s.layer() for s in sequence_grid_kernels("quick") if s.op is OpKind.SLICE)
    features = LayerFeaturizer().transform([narrow, select])
    assert families_of(features).tolist() == ["slice", "slice"]
    # no arithmetic, like a transpose or concat; only the part copied is read: (1, 64, 128) and (1, 4, 64, 32)
    assert features.column("flops").tolist() == [0.0, 0.0]
    assert features.column("bytes").tolist() == [2 * 4 * 64 * 128] * 2 == [layer_bytes(narrow), layer_bytes(select)]
    assert features.column("log_bytes_in").tolist() == features.column("log_bytes_out").tolist()


def test_every_layer_model_predicts_the_transformer_kernels(fitted: dict) -> None:
    features = LayerFeaturizer().transform([s.layer() for s in sequence_grid_kernels("full")])
    for name, model in fitted.items():
        predicted = model.predict(features)
        assert np.all(np.isfinite(predicted)) and np.all(predicted > 0), name


def test_layer_keys_ignore_names_and_see_every_attribute() -> None:
    a = KernelSpec(OpKind.CONV, 16, 16, 8, 3).layer()
    b = KernelSpec(OpKind.CONV, 16, 16, 8, 3, stride=2).layer()
    c = KernelSpec(OpKind.CONV, 16, 16, 8, 3, groups=2).layer()
    assert len({layer_key(a), layer_key(b), layer_key(c)}) == 3
    from dataclasses import replace

    assert layer_key(replace(a, name="other")) == layer_key(a)
    assert layer_key(a) == "conv;i=1x16x8x8;o=1x16x8x8;k=3x3;s=1x1;p=1x1x1x1"


def test_roofline_recovers_the_device_peaks() -> None:
    rng = np.random.default_rng(2)
    layers = [s.layer() for s in random_kernels(200, rng, max_macs=5e7)]
    y = synthetic_time_ms(layers)
    model = RooflineLayerModel(peak_quantile=1.0, overhead_quantile=0.0).fit(LayerFeaturizer().transform(layers), y)
    # the fastest layers run at the peaks; quantile 1.0 finds them (overhead ~ the smallest time)
    assert model.peak_flops_per_ms_ == pytest.approx(PEAK_FLOPS_PER_MS, rel=0.15)
    assert model.bandwidth_bytes_per_ms_ == pytest.approx(BANDWIDTH_BYTES_PER_MS, rel=0.15)


@pytest.mark.parametrize("name", list(LAYER_MODELS))
def test_fit_predict_on_unseen_layers(name: str, fitted: dict, data: tuple) -> None:
    _, _, test_features, test_y = data
    predicted = fitted[name].predict(test_features)
    assert predicted.shape == test_y.shape and np.all(np.isfinite(predicted)) and np.all(predicted > 0)
    mape = float(np.mean(np.abs(predicted - test_y) / test_y))
    # the plain roofline ignores per-family efficiency; an MLP fitted on ~180 layers extrapolates poorly to the
    # rare families of the test draw (on a real sweep of ~1000 kernels it is on par with the others): its MAPE here
    # is one or two grouped convs off by several times, 20 to 60 % depending on the init seed (seeds 0-5)
    limit = {"roofline": 1.0, "resperfnet": 0.75}.get(name, 0.25)
    assert mape < limit, f"{name}: MAPE {100 * mape:.1f} %"


def test_refined_roofline_learns_per_family_efficiency(fitted: dict, data: tuple) -> None:
    _, _, test_features, test_y = data
    families = families_of(test_features)
    dw = families == "depthwise_conv"
    assert dw.any()
    refined = fitted["refined_roofline"].predict(test_features)[dw]
    plain = fitted["roofline"].predict(test_features)[dw]
    assert np.mean(np.abs(refined - test_y[dw]) / test_y[dw]) < np.mean(np.abs(plain - test_y[dw]) / test_y[dw])


@pytest.mark.parametrize("name", list(LAYER_MODELS))
def test_contract_init_stores_params_and_unfitted_models_refuse_to_predict(name: str, data: tuple) -> None:
    cls = LAYER_MODELS[name]
    model = cls(**FAST.get(name, {}))
    assert {k: v for k, v in model.get_params().items() if k in FAST.get(name, {})} == FAST.get(name, {})
    with pytest.raises(NotFittedError):
        model.predict(data[0])
    with pytest.raises(TypeError):
        cls(1)  # keyword-only
    features, y, _, _ = data
    with pytest.raises(InvalidInputError):
        cls(**FAST.get(name, {})).fit(features, -y)
    with pytest.raises(InvalidInputError):
        cls(**FAST.get(name, {})).fit(features, y[:-1])


@pytest.mark.parametrize("name", list(LAYER_MODELS))
def test_artifacts_round_trip_without_pickle(name: str, fitted: dict, data: tuple, tmp_path) -> None:
    model = fitted[name]
    _, _, test_features, _ = data
    blob = model.to_artifact().to_bytes()
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        assert sorted(archive.namelist()) == ["arrays.npz", "manifest.json"]
        manifest = json.loads(archive.read("manifest.json"))
        with np.load(io.BytesIO(archive.read("arrays.npz")), allow_pickle=False) as npz:
            assert all(npz[k].dtype != object for k in npz.files)
    assert manifest["kind"] == model.kind and manifest["feature_schema_hash"] == test_features.schema_hash
    restored = layer_model_class(name).from_artifact(artifact_from_bytes(blob))
    np.testing.assert_array_equal(restored.predict(test_features), model.predict(test_features))
    path = model.save(tmp_path / f"{name}.nlm")
    np.testing.assert_array_equal(type(model).load(path).predict(test_features), model.predict(test_features))
    # the package registry rebuilds it from the kind alone
    np.testing.assert_array_equal(model_from_bytes(blob).predict(test_features), model.predict(test_features))


def test_models_refuse_features_of_another_schema(fitted: dict) -> None:
    other = FeatureMatrix(("a", "b"), np.ones((1, 2)), ("x",))
    with pytest.raises(FailedPreconditionError, match="schema"):
        fitted["mixed"].predict(other)


def test_lookup_uses_measured_kernels_and_falls_back_elsewhere(fitted: dict, data: tuple) -> None:
    features, y, test_features, _ = data
    lookup = fitted["lookup"]
    np.testing.assert_allclose(lookup.predict(features)[:5], y[:5])  # seen kernels: their measurements (no dups)
    unseen = [i for i, key in enumerate(test_features.rows) if key not in set(features.rows)]
    sub = FeatureMatrix(test_features.names, test_features.values[unseen], tuple(test_features.rows[i] for i in unseen))
    np.testing.assert_allclose(lookup.predict(sub), lookup.fallback_.predict(sub))


def test_resperfnet_is_deterministic(data: tuple) -> None:
    features, y, test_features, _ = data
    a = LAYER_MODELS["resperfnet"](**FAST["resperfnet"]).fit(features, y).predict(test_features)
    b = LAYER_MODELS["resperfnet"](**FAST["resperfnet"]).fit(features, y).predict(test_features)
    np.testing.assert_array_equal(a, b)
