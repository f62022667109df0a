"""One contract test over every cost model (the FLOPs baselines included): scikit-learn-style parameters,
fitted checks, artifacts without pickle, schema checks and input validation. Small synthetic data, fast."""

from __future__ import annotations

import inspect
import io
import json
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from nas_latency.errors import FailedPreconditionError, InvalidInputError, NotFoundError
from nas_latency.ir import FeatureMatrix
from nas_latency.models import (
    MODEL_CLASSES,
    BayesianDeviceModel,
    CostModel,
    CostPriceModel,
    CrossDeviceModel,
    DegenerateAware,
    DeviceAdaptation,
    EvidenceBayesianDeviceModel,
    FlopsCrossDevice,
    FlopsRegressor,
    GeometricEnsemble,
    LatencyRegressor,
    LeaveOneOutAverage,
    LeaveOneOutSelection,
    LogMixModel,
    NotFittedError,
    OutlierDrop,
    PrunedCostPriceModel,
    SpeedClamp,
    WithoutCosts,
    load_model,
    model_from_artifact,
    model_class,
    model_from_bytes,
    model_kinds,
)
from nas_latency.models.artifacts import ARRAYS_NAME, MANIFEST_NAME, load_artifact
from nas_latency.models.gp_mix import GPMixModel
from nas_latency.models.mix import MeasuredLogMixModel

N_ROWS, N_DEVICES = 90, 5
SMALL_GRID = ((1.0, 1e-2, 1e-4), (4.0, 1e-2, 1e-4))


def make_features(n: int = N_ROWS, seed: int = 0, rename: bool = False) -> FeatureMatrix:
    rng = np.random.default_rng(seed)
    one_hot = np.zeros((n, 4))
    one_hot[np.arange(n), rng.integers(0, 4, n)] = 1.0
    costs = rng.uniform(1.0, 10.0, size=(n, 2))
    dense = rng.normal(size=(n, 3))
    log_macs = rng.uniform(15.0, 19.0, size=n)
    degenerate = np.zeros(n)
    degenerate[:: max(1, n // 9)] = 1.0
    names = tuple(f"op={i}" for i in range(4)) + ("cost.macs", "cost.bytes", "a", "b", "c", "log_macs",
                                                   "is_degenerate")
    if rename:
        names = names[:-3] + ("renamed",) + names[-2:]
    values = np.column_stack([one_hot, costs, dense, log_macs, degenerate])
    return FeatureMatrix(names, values, tuple(f"arch{i}" for i in range(n)))


def make_table(features: FeatureMatrix, n_devices: int = N_DEVICES, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = features.values[:, :-1]
    weights = rng.normal(scale=0.3, size=(X.shape[1], n_devices))
    weights[-1] = rng.uniform(0.5, 1.0, n_devices)  # latency grows with MACs
    log_latency = (X - X.mean(axis=0)) @ weights + rng.normal(scale=0.05, size=(X.shape[0], n_devices)) + 1.0
    return np.exp(log_latency)


# every model, as a factory of an unfitted instance with explicit (non-default) parameters
FACTORIES: dict[str, Callable[[], CostModel]] = {
    "flops": lambda: FlopsRegressor(macs_feature="log_macs", log_transform=False),
    "flops_xdev": lambda: FlopsCrossDevice(prior_scale=2.0, noise_variance=0.02),
    "nnls_mix": lambda: LogMixModel(alpha=0.1, standardize="all"),
    "blr": lambda: BayesianDeviceModel(grid=SMALL_GRID, selection_draws=2, selection_signature_size=5),
    "degenerate_aware": lambda: DegenerateAware(base=BayesianDeviceModel(grid=SMALL_GRID), ratio_threshold=0.2),
    "geo_ensemble": lambda: GeometricEnsemble(
        members=[LogMixModel(), BayesianDeviceModel(grid=SMALL_GRID)], weights=[1.0, 2.0]
    ),
    "nnls_mix_measured": lambda: MeasuredLogMixModel(alpha=0.1, standardize="all"),
    "blr_evidence": lambda: EvidenceBayesianDeviceModel(grid=((1.0, 1e-2, 1e-4, 0.0), (4.0, 1e-2, 1e-3, 0.1)),
                                                        uncertainty_weight_floor=0.05),
    "cost_nnls": lambda: CostPriceModel(cost_prefix="cost."),
    "pruned_cost_nnls": lambda: PrunedCostPriceModel(cost_prefix="cost.", bagged=True),
    "loo_select": lambda: LeaveOneOutSelection(members=[LogMixModel(), CostPriceModel()], significance=0.1),
    "loo_average": lambda: LeaveOneOutAverage(members=[CostPriceModel(), LogMixModel(alpha=0.1)]),
    "without_costs": lambda: WithoutCosts(base=LogMixModel(alpha=0.1), cost_prefixes=("cost.",)),
    "clamp_speed": lambda: SpeedClamp(base=LogMixModel(alpha=0.1), alpha=0.1),
    "drop_outliers": lambda: OutlierDrop(base=LogMixModel(alpha=0.1), min_z=2.5),
    "gp_mix": lambda: GPMixModel(grid=((1.0, 1e-3, 1e-2), (4.0, 1e-2, 1e-2)), selection_draws=2,
                                 selection_signature_size=5, selection_metric="spearman"),
}


def test_every_core_kind_is_covered_and_every_registered_kind_resolves() -> None:
    assert set(FACTORIES) == set(MODEL_CLASSES)
    for kind, factory in FACTORIES.items():
        assert factory().kind == kind and model_class(kind) is type(factory())
    for kind in model_kinds():  # the lazily imported models of the sibling modules too
        assert model_class(kind).kind == kind
    with pytest.raises(NotFoundError, match="known kinds"):
        model_class("no_such_model")


@pytest.fixture(scope="module")
def data() -> tuple[FeatureMatrix, np.ndarray]:
    features = make_features()
    return features, make_table(features)


def fit(model: CostModel, features: FeatureMatrix, table: np.ndarray) -> CostModel:
    if isinstance(model, LatencyRegressor):
        return model.fit(features, table[:, 0])
    return model.fit(features, table)


def predict(model: CostModel, features: FeatureMatrix, table: np.ndarray) -> np.ndarray:
    if isinstance(model, LatencyRegressor):
        return model.predict(features)
    assert isinstance(model, CrossDeviceModel)
    rows = np.arange(0, N_ROWS, 9)
    return model.predict(features, model.adapt(subset(features, rows), table[rows, 0]))


def subset(features: FeatureMatrix, rows: np.ndarray) -> FeatureMatrix:
    return FeatureMatrix(features.names, features.values[rows], tuple(features.rows[i] for i in rows))


@pytest.fixture(scope="module")
def fitted(data: tuple[FeatureMatrix, np.ndarray]) -> dict[str, CostModel]:
    features, table = data
    return {kind: fit(factory(), features, table) for kind, factory in FACTORIES.items()}


KINDS = sorted(FACTORIES)


@pytest.mark.parametrize("kind", KINDS)
def test_init_is_keyword_only_stores_arguments_and_params_round_trip(kind: str) -> None:
    model = FACTORIES[kind]()
    parameters = list(inspect.signature(type(model).__init__).parameters.values())[1:]
    assert parameters and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)
    params = model.get_params()
    assert set(params) == {p.name for p in parameters}
    assert all(getattr(model, name) is value for name, value in params.items())  # stored, untouched
    again = type(model)(**params)
    assert again.get_params() == params
    assert not model.is_fitted and repr(model).startswith(type(model).__name__ + "(")


@pytest.mark.parametrize("kind", KINDS)
def test_using_before_fit_raises_not_fitted(kind: str, data: tuple[FeatureMatrix, np.ndarray]) -> None:
    features, table = data
    model = FACTORIES[kind]()
    with pytest.raises(NotFittedError):
        predict(model, features, table)
    if isinstance(model, CrossDeviceModel):
        with pytest.raises(NotFittedError):
            model.adapt(features, table[:, 0])
    with pytest.raises(NotFittedError):
        model.to_artifact()


@pytest.mark.parametrize("kind", KINDS)
def test_fit_returns_self_and_is_deterministic(kind: str, data: tuple[FeatureMatrix, np.ndarray],
                                               fitted: dict[str, CostModel]) -> None:
    features, table = data
    model = FACTORIES[kind]()
    assert fit(model, features, table) is model
    assert model.is_fitted
    first, second = model.to_artifact(), fitted[kind].to_artifact()
    assert first.arrays.keys() == second.arrays.keys()
    for name in first.arrays:
        assert first.arrays[name].tobytes() == second.arrays[name].tobytes(), name
    assert np.array_equal(predict(model, features, table), predict(fitted[kind], features, table))


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_is_exact_and_pickle_free(kind: str, data: tuple[FeatureMatrix, np.ndarray],
                                            fitted: dict[str, CostModel], tmp_path: Path) -> None:
    features, table = data
    model = fitted[kind]
    path = model.save(tmp_path / f"{kind}.nlm")
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read(MANIFEST_NAME))
        with np.load(io.BytesIO(archive.read(ARRAYS_NAME)), allow_pickle=False) as npz:
            stored = {name: npz[name] for name in npz.files}
    assert manifest["kind"] == kind and manifest["feature_schema_hash"] == features.schema_hash
    assert all(value.dtype != object for value in stored.values())
    expected = model.to_artifact()
    assert set(stored) == set(expected.arrays)
    for name, value in expected.arrays.items():
        assert stored[name].dtype == np.asarray(value).dtype and stored[name].tobytes() == np.asarray(value).tobytes()

    for loaded in (load_model(path), type(model).load(path), model_from_bytes(path.read_bytes()),
                   model_from_artifact(load_artifact(path))):
        assert type(loaded) is type(model)
        assert np.array_equal(predict(loaded, features, table), predict(model, features, table))
        again = loaded.to_artifact()
        for name, value in expected.arrays.items():
            assert again.arrays[name].tobytes() == np.asarray(value).tobytes()
    if isinstance(model, CrossDeviceModel):  # an adaptation made before saving works with the loaded model
        rows = np.arange(0, N_ROWS, 7)
        adaptation = model.adapt(subset(features, rows), table[rows, 1])
        assert np.array_equal(load_model(path).predict(features, adaptation), model.predict(features, adaptation))


@pytest.mark.parametrize("kind", KINDS)
def test_other_feature_schema_is_refused(kind: str, data: tuple[FeatureMatrix, np.ndarray],
                                         fitted: dict[str, CostModel]) -> None:
    features, table = data
    model = fitted[kind]
    other = make_features(rename=True)
    assert other.schema_hash != features.schema_hash
    with pytest.raises(FailedPreconditionError, match="schema"):
        predict(model, other, table)
    if isinstance(model, CrossDeviceModel):
        with pytest.raises(FailedPreconditionError, match="schema"):
            model.adapt(other, table[:, 0])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bad", [np.nan, 0.0, -1.0, np.inf])
def test_bad_latencies_are_invalid_input(kind: str, bad: float, data: tuple[FeatureMatrix, np.ndarray],
                                         fitted: dict[str, CostModel]) -> None:
    features, table = data
    broken = table.copy()
    broken[3, 0] = bad
    model = FACTORIES[kind]()
    if isinstance(model, LatencyRegressor) or not np.isnan(bad):  # NaN in a training table means "unmeasured"
        with pytest.raises(InvalidInputError):
            fit(model, features, broken)
    if isinstance(model, CrossDeviceModel):
        rows = np.arange(0, N_ROWS, 9)
        y = table[rows, 0].copy()
        y[1] = bad
        with pytest.raises(InvalidInputError):
            fitted[kind].adapt(subset(features, rows), y)  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", KINDS)
def test_too_few_points_are_invalid_input(kind: str, data: tuple[FeatureMatrix, np.ndarray],
                                          fitted: dict[str, CostModel]) -> None:
    features, table = data
    model = fitted[kind]
    rows = np.array([1, 2])
    if isinstance(model, LatencyRegressor):
        with pytest.raises(InvalidInputError, match="at least 2"):
            FACTORIES[kind]().fit(subset(features, rows[:1]), table[rows[:1], 0])  # type: ignore[attr-defined]
    else:
        assert isinstance(model, CrossDeviceModel)
        with pytest.raises(InvalidInputError, match="at least 3"):
            model.adapt(subset(features, rows), table[rows, 0])
        with pytest.raises(InvalidInputError, match="shape"):
            model.adapt(subset(features, np.arange(5)), table[:4, 0])
        with pytest.raises(InvalidInputError, match="at least 2 training devices"):
            FACTORIES[kind]().fit(features, table[:, :1])  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "flops"])
def test_adaptations_of_another_model_or_fit_are_refused(kind: str, data: tuple[FeatureMatrix, np.ndarray],
                                                         fitted: dict[str, CostModel]) -> None:
    features, table = data
    model = fitted[kind]
    assert isinstance(model, CrossDeviceModel)
    rows = np.arange(0, N_ROWS, 9)
    adaptation = model.adapt(subset(features, rows), table[rows, 0])
    assert isinstance(adaptation, DeviceAdaptation) and adaptation.model_kind == kind
    assert adaptation.n_measurements == len(rows)
    foreign = DeviceAdaptation("other_kind", features.schema_hash, len(rows), adaptation.arrays, adaptation.info)
    with pytest.raises(FailedPreconditionError, match="other_kind"):
        model.predict(features, foreign)
    # another fit: other training rows and another table (cost_nnls learns only from the rows)
    others = np.arange(N_ROWS - 10)
    refit = fit(FACTORIES[kind](), subset(features, others), table[others, ::-1].copy())
    with pytest.raises(FailedPreconditionError, match="another fit"):
        refit.predict(features, adaptation)  # type: ignore[call-arg]


def test_missing_named_columns_are_a_failed_precondition(data: tuple[FeatureMatrix, np.ndarray]) -> None:
    features, table = data
    with pytest.raises(FailedPreconditionError, match="no_such_column"):
        FlopsRegressor(macs_feature="no_such_column").fit(features, table[:, 0])
    with pytest.raises(FailedPreconditionError, match="no_such_column"):
        DegenerateAware(base=LogMixModel(), degenerate_feature="no_such_column").fit(features, table)
    with pytest.raises(FailedPreconditionError, match="no_such_prefix"):
        CostPriceModel(cost_prefix="no_such_prefix.").fit(features, table)


def test_bad_parameters_are_invalid_input(data: tuple[FeatureMatrix, np.ndarray]) -> None:
    features, table = data
    for model in (
        LogMixModel(alpha=0.0),
        LogMixModel(standardize="sometimes"),
        BayesianDeviceModel(grid=()),
        BayesianDeviceModel(grid=((1.0, -1.0, 1e-4),)),
        BayesianDeviceModel(grid=((1.0, 1e-2),)),
        BayesianDeviceModel(selection_draws=0),
        BayesianDeviceModel(selection_metric="accuracy"),
        EvidenceBayesianDeviceModel(grid=()),
        EvidenceBayesianDeviceModel(grid=((1.0, 1e-2, 1e-4),)),
        EvidenceBayesianDeviceModel(grid=((1.0, 1e-2, 1e-4, -0.1),)),
        EvidenceBayesianDeviceModel(grid=((0.0, 1e-2, 1e-4, 0.1),)),
        EvidenceBayesianDeviceModel(uncertainty_weight_floor=1.0),
        EvidenceBayesianDeviceModel(alpha=-1.0),
        EvidenceBayesianDeviceModel(calibration_seed=-1),
        EvidenceBayesianDeviceModel(calibration_coverage=1.0),
        EvidenceBayesianDeviceModel(calibration_rows=0),
        FlopsCrossDevice(noise_variance=0.0),
        DegenerateAware(base=LogMixModel(), ratio_threshold=1.5),
        GeometricEnsemble(members=[]),
        GeometricEnsemble(members=[LogMixModel()], weights=[-1.0]),
        CostPriceModel(cost_prefix=""),
        LeaveOneOutSelection(members=[LogMixModel(), CostPriceModel()], weights=[1.0, 1.0]),
        LeaveOneOutSelection(members=[LogMixModel(), CostPriceModel()], significance=1.5),
        LeaveOneOutSelection(members=[LogMixModel(), CostPriceModel()], weighting="vote"),
        LeaveOneOutAverage(members=[LogMixModel(), CostPriceModel()], weights=[0.5, 0.5]),
        LeaveOneOutSelection(members=[]),
        WithoutCosts(base=LogMixModel(), cost_prefixes=("",)),
        WithoutCosts(base=LogMixModel(), cost_prefixes="cost."),
        WithoutCosts(base=LogMixModel(), cost_prefixes=()),
        PrunedCostPriceModel(cost_prefix=""),
        SpeedClamp(base=LogMixModel(), alpha=0.0),
        OutlierDrop(base=LogMixModel(), max_fraction=0.0),
    ):
        with pytest.raises(InvalidInputError):
            model.fit(features, table)
    with pytest.raises(InvalidInputError, match="3 training devices"):
        BayesianDeviceModel().fit(features, table[:, :2])
    BayesianDeviceModel(grid=SMALL_GRID[:1]).fit(features, table[:, :2])  # one grid entry: no selection needed


def _rewritten(blob: bytes, *, manifest: Callable[[dict], None] | None = None, arrays: bytes | None = None) -> bytes:
    """The artifact ``blob`` with its manifest edited in place and/or its arrays member replaced."""
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if manifest is not None:
        document = json.loads(members[MANIFEST_NAME])
        manifest(document)
        members[MANIFEST_NAME] = json.dumps(document).encode()
    if arrays is not None:
        members[ARRAYS_NAME] = arrays
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_damaged_newer_or_foreign_artifacts_are_refused_with_the_project_s_errors(
        fitted: dict[str, CostModel]) -> None:
    blob = fitted["blr"].to_artifact().to_bytes()
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        arrays = archive.read(ARRAYS_NAME)
    cases: list[tuple[bytes, type[Exception], str]] = [
        (_rewritten(blob, manifest=lambda m: m.update(package_version="99.0.0")), FailedPreconditionError,
         "written by nas-latency 99.0.0, newer than this"),
        (_rewritten(blob, manifest=lambda m: m.pop("package_version")), InvalidInputError, "no package_version"),
        (_rewritten(blob, arrays=arrays[: len(arrays) // 2]), InvalidInputError, "arrays are damaged"),
        (_rewritten(blob, arrays=b"garbage"), InvalidInputError, "arrays are damaged"),
        (_rewritten(blob, manifest=lambda m: m["params"].update(bogus=1)), InvalidInputError,
         "parameters do not fit this release's model"),
    ]
    for data, error, message in cases:
        with pytest.raises(error, match=message):
            model_from_bytes(data)
    with pytest.raises(FailedPreconditionError, match="holds a 'blr' model, not a 'nnls_mix' model"):
        LogMixModel.from_artifact(model_from_bytes(blob).to_artifact())
