"""SignatureModel (Ganesan et al.'s generalizable LightGBM model) on a slice of the real NAS-Bench-201 latencies:
1,500 archs, 7 training devices, one held-out device onboarded from its signature."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from nas_latency.data import load_nb201_latency
from nas_latency.errors import FailedPreconditionError, InvalidInputError
from nas_latency.evaluate import spearman
from nas_latency.ir import FeatureMatrix
from nas_latency.models.base import NotFittedError
from nas_latency.models.signature_model import SignatureModel
from search_spaces import get_space

N_ARCHS = 1500
TRAIN = ("1080ti_1", "1080ti_256", "silver_4114", "samsung_a50", "essential_ph_1", "titanx_32", "silver_4210r")
HELD_OUT = "gold_6240"
SMALL = dict(n_synthetic=8, rows_per_device=600, n_estimators=80, learning_rate=0.1, signature_k=10, seed=0)


def _features(archs: list[str]) -> FeatureMatrix:
    space = get_space("nasbench201")
    featurize = getattr(space, "model_features", space.featurize)
    return featurize(archs)


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
        "features": _features(archs),
        "train": frame[list(TRAIN)].to_numpy(dtype=np.float64),
        "held_out": dict(zip(archs, frame[HELD_OUT].to_numpy(dtype=np.float64))),
    }


@pytest.fixture(scope="module")
def model(data) -> SignatureModel:
    return SignatureModel(**SMALL).fit(data["features"], data["train"])


def _onboard(model: SignatureModel, data: dict, archs: list[str]):
    y = np.array([data["held_out"][a] for a in archs])
    return model.adapt(_rows(data["features"], archs), y)


def _score(model, data: dict, adaptation) -> float:
    signature = getattr(model, "base_", model).signature_archs_
    rest = [a for a in data["archs"] if a not in set(signature)]
    pred = model.predict(_rows(data["features"], rest), adaptation)
    return spearman([data["held_out"][a] for a in rest], pred)


def test_held_out_device_predicted_from_its_signature(model, data) -> None:
    assert model.kind == "signature_gbm"
    assert len(model.signature_archs_) == 10 and set(model.signature_archs_) <= set(data["archs"])
    adaptation = _onboard(model, data, model.signature_archs_)
    assert adaptation.info["n_imputed"] == 0 and adaptation.n_measurements == 10
    assert _score(model, data, adaptation) > 0.8


def test_deterministic_fit(model, data) -> None:
    again = SignatureModel(**SMALL).fit(data["features"], data["train"])
    assert again.signature_archs_ == model.signature_archs_
    assert again.booster_text_ == model.booster_text_


def test_save_load_identical_predictions_and_no_pickle(model, data, tmp_path) -> None:
    adaptation = _onboard(model, data, model.signature_archs_)
    path = model.save(tmp_path / "sig.nlm")
    loaded = SignatureModel.load(path)
    assert loaded.get_params() == {**model.get_params()}
    assert loaded.signature_archs_ == model.signature_archs_
    np.testing.assert_array_equal(
        loaded.predict(data["features"], adaptation), model.predict(data["features"], adaptation)
    )
    adapted_again = _onboard(loaded, data, model.signature_archs_)
    for name, value in adaptation.arrays.items():
        np.testing.assert_array_equal(adapted_again.arrays[name], value)
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        with np.load(io.BytesIO(archive.read("arrays.npz")), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    assert manifest["kind"] == "signature_gbm"
    assert manifest["extra"]["signature_archs"] == model.signature_archs_
    assert arrays["regressor.booster_txt"].dtype == np.uint8
    assert arrays["regressor.booster_txt"].tobytes().decode().startswith("tree")


def test_missing_signature_archs_are_imputed_and_counted(model, data) -> None:
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


def test_signature_found_by_features_without_ids(model, data) -> None:
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


def test_wrapped_in_degenerate_aware(model, data) -> None:
    if "is_degenerate" not in data["features"].names:
        pytest.skip("the space's model features do not mark degenerate archs")
    from nas_latency.models.degenerate import DegenerateAware

    wrapped = DegenerateAware(base=SignatureModel(**SMALL)).fit(data["features"], data["train"])
    adaptation = wrapped.adapt(_rows(data["features"], model.signature_archs_),
                               np.array([data["held_out"][a] for a in model.signature_archs_]))
    assert _score(wrapped, data, adaptation) > 0.8


def test_explicit_signature_and_unmeasured_training_cells(data) -> None:
    archs = data["archs"]
    signature = [archs[i] for i in (5, 50, 500, 700, 1400)]
    table = data["train"].copy()
    table[5, 1] = np.nan  # a training device never measured a signature arch: its own ridge fit fills in
    table[100:400, 3] = np.nan  # and a device measured only part of the archs
    model = SignatureModel(**{**SMALL, "signature_archs": signature}).fit(data["features"], table)
    assert model.signature_archs_ == signature
    assert model.fit_info_["n_signature_imputed"] == 1
    adaptation = _onboard(model, data, signature)
    assert _score(model, data, adaptation) > 0.8


def test_bad_latencies_rejected(model, data) -> None:
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
        SignatureModel(**SMALL).fit(data["features"], table)


def test_errors_before_fit_and_on_misuse(model, data) -> None:
    with pytest.raises(NotFittedError):
        SignatureModel().adapt(data["features"], data["train"][:, 0])
    other = SignatureModel(**{**SMALL, "seed": 1}).fit(data["features"], data["train"])
    adaptation = _onboard(other, data, other.signature_archs_)
    with pytest.raises(FailedPreconditionError, match="another fit"):
        model.predict(data["features"], adaptation)
    with pytest.raises(InvalidInputError, match="not rows"):
        SignatureModel(**{**SMALL, "signature_archs": ["|nope~0|"]}).fit(data["features"], data["train"])
