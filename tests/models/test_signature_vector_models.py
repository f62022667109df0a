"""The two signature-vector models, ResPerfNetModel (residual MLP in torch) and SignatureModel (Ganesan et al.'s
generalizable LightGBM model), on one contract and a slice of the real NAS-Bench-201 latencies: 1,500 archs,
7 training devices, one held-out device onboarded from its signature. The shared behaviour is checked on both;
what is particular to one (torch state, booster text, training bounds) on that one."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np
import pytest
import torch

from nas_latency.data import load_nb201_latency
from nas_latency.errors import FailedPreconditionError, InvalidInputError
from nas_latency.evaluate import spearman
from nas_latency.ir import FeatureMatrix
from nas_latency.models.base import NotFittedError
from nas_latency.models.resperfnet import ResPerfNetModel
from nas_latency.models.signature_model import SignatureModel
from search_spaces import get_space

N_ARCHS = 1500
TRAIN = ("1080ti_1", "1080ti_256", "silver_4114", "samsung_a50", "essential_ph_1", "titanx_32", "silver_4210r")
HELD_OUT = "gold_6240"
#: kind -> (class, small settings)
MODELS: dict[str, tuple[type, dict[str, Any]]] = {
    "resperfnet": (ResPerfNetModel, dict(n_synthetic=8, rows_per_device=600, width=64, n_blocks=2, max_epochs=20,
                                         patience=4, learning_rate=3e-3, batch_size=256, signature_k=10, seed=0)),
    "signature_gbm": (SignatureModel, dict(n_synthetic=8, rows_per_device=600, n_estimators=80, learning_rate=0.1,
                                           signature_k=10, seed=0)),
}


def make(kind: str, **overrides: Any) -> Any:
    cls, small = MODELS[kind]
    return cls(**{**small, **overrides})


def _rows(features: FeatureMatrix, archs: list[str]) -> FeatureMatrix:
    index = {a: i for i, a in enumerate(features.rows)}
    take = [index[a] for a in archs]
    return FeatureMatrix(features.names, features.values[take], tuple(archs))


@pytest.fixture(scope="module")
def data() -> dict:
    frame = load_nb201_latency().sort_values("arch_index").head(N_ARCHS)
    archs = frame["arch_string"].tolist()
    return {
        "archs": archs,
        "features": get_space("nasbench201").model_features(archs),
        "train": frame[list(TRAIN)].to_numpy(dtype=np.float64),
        "held_out": dict(zip(archs, frame[HELD_OUT].to_numpy(dtype=np.float64))),
    }


@pytest.fixture(scope="module")
def fitted(data: dict) -> dict[str, Any]:
    return {kind: make(kind).fit(data["features"], data["train"]) for kind in MODELS}


@pytest.fixture(params=sorted(MODELS))
def model(request: pytest.FixtureRequest, fitted: dict[str, Any]) -> Any:
    return fitted[request.param]


def _onboard(model: Any, data: dict, archs: list[str]) -> Any:
    y = np.array([data["held_out"][a] for a in archs])
    return model.adapt(_rows(data["features"], archs), y)


def _score(model: Any, data: dict, adaptation: Any) -> float:
    signature = getattr(model, "base_", model).signature_archs_
    rest = [a for a in data["archs"] if a not in set(signature)]
    pred = model.predict(_rows(data["features"], rest), adaptation)
    return spearman([data["held_out"][a] for a in rest], pred)


def _saved_arrays(path: Any) -> tuple[dict, dict[str, np.ndarray]]:
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        with np.load(io.BytesIO(archive.read("arrays.npz")), allow_pickle=False) as npz:
            return manifest, {name: npz[name] for name in npz.files}


# ---- shared behaviour ------------------------------------------------------------------------------------------------
def test_held_out_device_predicted_from_its_signature(model: Any, data: dict) -> None:
    assert len(model.signature_archs_) == 10 and set(model.signature_archs_) <= set(data["archs"])
    adaptation = _onboard(model, data, model.signature_archs_)
    assert adaptation.info["n_imputed"] == 0 and adaptation.n_measurements == 10
    assert _score(model, data, adaptation) > 0.8


def test_save_load_identical_predictions_and_no_pickle(model: Any, data: dict, tmp_path: Any) -> None:
    adaptation = _onboard(model, data, model.signature_archs_)
    path = model.save(tmp_path / "sig.nlm")
    loaded = type(model).load(path)
    assert loaded.get_params() == {**model.get_params()}
    assert loaded.signature_archs_ == model.signature_archs_
    np.testing.assert_array_equal(
        loaded.predict(data["features"], adaptation), model.predict(data["features"], adaptation)
    )
    adapted_again = _onboard(loaded, data, model.signature_archs_)
    for name, value in adaptation.arrays.items():
        np.testing.assert_array_equal(adapted_again.arrays[name], value)
    manifest, _ = _saved_arrays(path)
    assert manifest["kind"] == model.kind
    assert manifest["extra"]["signature_archs"] == model.signature_archs_


def test_missing_signature_archs_are_imputed_and_counted(model: Any, data: dict) -> None:
    signature = model.signature_archs_
    others = [a for a in data["archs"][::97] if a not in set(signature)][:6]
    adaptation = _onboard(model, data, signature[3:] + others)
    assert adaptation.info["n_imputed"] == 3
    assert adaptation.info["imputed"] == signature[:3]
    assert adaptation.info["n_other_measured"] == len(others)
    assert np.isfinite(adaptation.arrays["signature_log_latency"]).all()
    assert _score(model, data, adaptation) > 0.7
    nothing = _onboard(model, data, others)  # no signature arch measured at all: everything imputed
    assert nothing.info["n_imputed"] == 10
    assert np.isfinite(model.predict(data["features"], nothing)).all()


def test_signature_found_by_features_without_ids(model: Any, data: dict) -> None:
    signature = model.signature_archs_
    measured = _rows(data["features"], signature)
    renamed = FeatureMatrix(measured.names, measured.values, tuple(f"row{i}" for i in range(len(signature))))
    y = np.array([data["held_out"][a] for a in signature])
    by_id = model.adapt(measured, y)
    by_features = model.adapt(renamed, y)
    assert by_features.info["n_matched_by_features"] == 10 and by_features.info["n_imputed"] == 0
    np.testing.assert_array_equal(by_features.arrays["signature_log_latency"], by_id.arrays["signature_log_latency"])
    id_less = model._adapt(measured.values, y)  # the path wrappers use
    np.testing.assert_array_equal(id_less.arrays["affine"], by_id.arrays["affine"])


def test_bad_latencies_rejected(model: Any, data: dict) -> None:
    archs = model.signature_archs_
    y = np.array([data["held_out"][a] for a in archs])
    for bad_value in (np.nan, 0.0, -1.0, np.inf):
        bad = y.copy()
        bad[2] = bad_value
        with pytest.raises(InvalidInputError):
            model.adapt(_rows(data["features"], archs), bad)
    with pytest.raises(InvalidInputError, match="at least 3"):
        model.adapt(_rows(data["features"], archs[:2]), y[:2])
    table = data["train"].copy()
    table[5, 2] = 0.0
    with pytest.raises(InvalidInputError, match="zero or negative"):
        make(model.kind).fit(data["features"], table)


def test_errors_before_fit_and_on_misuse(model: Any, data: dict) -> None:
    with pytest.raises(NotFittedError):
        type(model)().adapt(data["features"], data["train"][:, 0])
    other = make(model.kind, seed=1, **({"max_epochs": 2} if model.kind == "resperfnet" else {}))
    other.fit(data["features"], data["train"])
    adaptation = _onboard(other, data, other.signature_archs_)
    with pytest.raises(FailedPreconditionError, match="another fit"):
        model.predict(data["features"], adaptation)
    with pytest.raises(InvalidInputError, match="not rows"):
        make(model.kind, signature_archs=["|nope~0|"]).fit(data["features"], data["train"])


# ---- ResPerfNet: torch --------------------------------------------------------------------------------------------------
def test_resperfnet_fit_is_deterministic_and_saves_its_weights(fitted: dict[str, Any], data: dict,
                                                               tmp_path: Any) -> None:
    model = fitted["resperfnet"]
    again = make("resperfnet").fit(data["features"], data["train"])
    assert again.signature_archs_ == model.signature_archs_
    for name, value in model.net_.state_dict().items():
        assert torch.equal(again.net_.state_dict()[name], value), name
    _, arrays = _saved_arrays(model.save(tmp_path / "resperfnet.nlm"))
    state = model.net_.state_dict()
    assert {f"regressor.net.{k}" for k in state} <= set(arrays)
    for name, value in state.items():
        np.testing.assert_array_equal(arrays[f"regressor.net.{name}"], value.numpy())


def test_resperfnet_training_is_bounded_and_leaves_torch_settings_alone(fitted: dict[str, Any], data: dict) -> None:
    info = fitted["resperfnet"].train_info_
    assert 1 <= info["best_epoch"] <= info["epochs_run"] <= MODELS["resperfnet"][1]["max_epochs"]
    assert info["n_validation_rows"] > 0 and info["n_train_rows"] > info["n_validation_rows"]
    threads = torch.get_num_threads()
    state = torch.random.get_rng_state()
    make("resperfnet", max_epochs=1).fit(data["features"], data["train"])
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), state)


# ---- SignatureModel: LightGBM -------------------------------------------------------------------------------------------
def test_signature_gbm_fit_is_deterministic_and_saves_its_booster_as_text(fitted: dict[str, Any], data: dict,
                                                                          tmp_path: Any) -> None:
    model = fitted["signature_gbm"]
    again = make("signature_gbm").fit(data["features"], data["train"])
    assert again.signature_archs_ == model.signature_archs_
    assert again.booster_text_ == model.booster_text_
    _, arrays = _saved_arrays(model.save(tmp_path / "gbm.nlm"))
    assert arrays["regressor.booster_txt"].dtype == np.uint8
    assert arrays["regressor.booster_txt"].tobytes().decode().startswith("tree")


def test_signature_gbm_wrapped_in_degenerate_aware(fitted: dict[str, Any], data: dict) -> None:
    from nas_latency.models.degenerate import DegenerateAware

    assert "is_degenerate" in data["features"].names
    signature = fitted["signature_gbm"].signature_archs_
    wrapped = DegenerateAware(base=make("signature_gbm")).fit(data["features"], data["train"])
    adaptation = wrapped.adapt(_rows(data["features"], signature),
                               np.array([data["held_out"][a] for a in signature]))
    assert _score(wrapped, data, adaptation) > 0.8


def test_signature_gbm_explicit_signature_and_unmeasured_training_cells(data: dict) -> None:
    archs = data["archs"]
    signature = [archs[i] for i in (5, 50, 500, 700, 1400)]
    table = data["train"].copy()
    table[5, 1] = np.nan  # a training device never measured a signature arch: its own ridge fit fills in
    table[100:400, 3] = np.nan  # and a device measured only part of the archs
    model = make("signature_gbm", signature_archs=signature).fit(data["features"], table)
    assert model.signature_archs_ == signature
    assert model.fit_info_["n_signature_imputed"] == 1
    adaptation = _onboard(model, data, signature)
    assert _score(model, data, adaptation) > 0.8
