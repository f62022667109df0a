"""Statistical and mixed layer models (ANNETTE), on LightGBM gradient boosting.

:class:`StatisticalLayerModel`
    gradient boosting on the layer's shape features, one booster per layer family that has at least
    ``min_family_samples`` micro-kernels and one shared booster (family one-hot as features) for the rest;
    target ``log t``. Trees can only interpolate, so with ``linear_tree`` (default) each leaf holds a linear model
    of the (log) features, which extrapolates along the power laws of layer cost.

:class:`MixedLayerModel`
    the refined roofline as a prior, times a learned correction: ``t = roofline(layer) · exp(g(layer))`` with
    ``g`` one shared booster on the roofline's log residuals (strongly shrunk: few, shallow trees). Where the
    booster has seen nothing like a layer, the correction stays near its training mean and the roofline carries
    the prediction.

Boosters are stored in LightGBM's own text format (a ``uint8`` array in the artifact), never pickled.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models.base import LatencyRegressor
from nas_latency.models.layer_features import FAMILIES, RAW, families_of
from nas_latency.models.layer_roofline import RefinedRooflineLayerModel, _check_fit_inputs
from nas_latency.models.linalg import integer_setting, nest_artifact, unnest_artifact
from nas_latency.models.artifacts import Artifact


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError as exc:  # pragma: no cover - lightgbm is a declared dependency
        raise InvalidInputError(f"the statistical layer models need lightgbm ({exc})") from None
    return lightgbm



def _encode(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _decode(array: np.ndarray) -> str:
    return np.asarray(array, dtype=np.uint8).tobytes().decode("utf-8")


def _model_columns(names: tuple[str, ...]) -> list[int]:
    """Every feature except the raw (unlogged) FLOPs and bytes."""
    return [i for i, name in enumerate(names) if name not in RAW]


class _Boosters:
    """Named LightGBM boosters fitted on log targets, kept as text."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self._boosters: dict[str, Any] = {}

    def fit(self, name: str, X: np.ndarray, t: np.ndarray, params: dict[str, Any], rounds: int) -> None:
        lgb = _lightgbm()
        data = lgb.Dataset(X, label=t, params={"verbosity": -1, "linear_tree": params.get("linear_tree", False)},
                           free_raw_data=True)
        booster = lgb.train(params, data, num_boost_round=rounds)
        self.set(name, booster.model_to_string())

    def set(self, name: str, text: str) -> None:
        self.texts[name] = text
        self._boosters[name] = _lightgbm().Booster(model_str=text)

    def predict(self, name: str, X: np.ndarray) -> np.ndarray:
        return np.asarray(self._boosters[name].predict(X, num_threads=1), dtype=np.float64)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}{name}": _encode(text) for name, text in self.texts.items()}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> "_Boosters":
        out = cls()
        for key, value in arrays.items():
            if key.startswith(prefix):
                out.set(key[len(prefix):], _decode(value))
        return out


class StatisticalLayerModel(LatencyRegressor):
    """Gradient boosting per layer family (log time on log shape features)."""

    kind = "layer_statistical"

    def __init__(self, *, n_estimators: int = 300, learning_rate: float = 0.05, num_leaves: int = 8,
                 min_data_in_leaf: int = 3, linear_tree: bool = True, min_family_samples: int = 25,
                 seed: int = 0) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.linear_tree = linear_tree
        self.min_family_samples = min_family_samples
        self.seed = seed

    def _params(self) -> dict[str, Any]:
        return {
            "objective": "regression", "learning_rate": float(self.learning_rate),
            "num_leaves": integer_setting(self, "num_leaves"),
            "min_data_in_leaf": integer_setting(self, "min_data_in_leaf"),
            "min_data_per_group": 1, "min_sum_hessian_in_leaf": 0.0, "linear_tree": bool(self.linear_tree),
            "linear_lambda": 0.1, "num_threads": 1, "seed": int(self.seed), "deterministic": True,
            "force_row_wise": True, "verbosity": -1,
        }

    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "StatisticalLayerModel":
        y = _check_fit_inputs(self, features, latency_ms)
        rounds = integer_setting(self, "n_estimators")
        min_family = integer_setting(self, "min_family_samples")
        params = self._params()
        columns = _model_columns(features.names)
        X = features.values[:, columns]
        t = np.log(y)
        fams = families_of(features)
        boosters = _Boosters()
        boosters.fit("shared", X, t, params, rounds)
        own = []
        for fam in FAMILIES:
            rows = fams == fam
            if int(rows.sum()) >= min_family:
                boosters.fit(f"family.{fam}", X[rows], t[rows], params, rounds)
                own.append(fam)
        self.boosters_ = boosters
        self.own_families_ = tuple(own)
        self._remember_schema(features)
        return self

    def predict(self, features: FeatureMatrix) -> np.ndarray:
        values = self._check_features(features)
        X = values[:, _model_columns(self.feature_names_)]
        log_t = self.boosters_.predict("shared", X) if len(X) else np.zeros(0)
        fams = families_of(features)
        for fam in self.own_families_:
            rows = fams == fam
            if rows.any():
                log_t[rows] = self.boosters_.predict(f"family.{fam}", X[rows])
        return np.exp(log_t)

    def _learned_arrays(self) -> dict[str, np.ndarray]:
        return self.boosters_.arrays("booster_txt.")

    def _learned_extra(self) -> dict[str, Any]:
        return {"own_families": list(self.own_families_)}

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        self.boosters_ = _Boosters.from_arrays(arrays, "booster_txt.")
        self.own_families_ = tuple(extra.get("own_families", ()))


class MixedLayerModel(LatencyRegressor):
    """Refined roofline prior × a boosted multiplicative correction."""

    kind = "layer_mixed"

    def __init__(self, *, n_estimators: int = 150, learning_rate: float = 0.05, num_leaves: int = 8,
                 min_data_in_leaf: int = 5, seed: int = 0) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.seed = seed

    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "MixedLayerModel":
        y = _check_fit_inputs(self, features, latency_ms)
        self.prior_ = RefinedRooflineLayerModel().fit(features, y)
        residual = np.log(y) - np.log(self.prior_.predict(features))
        params = {
            "objective": "huber", "alpha": 0.3, "learning_rate": float(self.learning_rate),
            "num_leaves": integer_setting(self, "num_leaves"),
            "min_data_in_leaf": integer_setting(self, "min_data_in_leaf"),
            "min_data_per_group": 1, "min_sum_hessian_in_leaf": 0.0, "num_threads": 1, "seed": int(self.seed),
            "deterministic": True, "force_row_wise": True, "verbosity": -1,
        }
        boosters = _Boosters()
        boosters.fit("correction", features.values[:, _model_columns(features.names)], residual, params,
                     integer_setting(self, "n_estimators"))
        self.boosters_ = boosters
        self._remember_schema(features)
        return self

    def predict(self, features: FeatureMatrix) -> np.ndarray:
        values = self._check_features(features)
        if not len(values):
            return np.zeros(0)
        correction = self.boosters_.predict("correction", values[:, _model_columns(self.feature_names_)])
        return self.prior_.predict(features) * np.exp(correction)

    def _learned_arrays(self) -> dict[str, np.ndarray]:
        _, prior_arrays, _ = nest_artifact("prior", self.prior_.to_artifact())
        return {**prior_arrays, **self.boosters_.arrays("booster_txt.")}

    def _learned_extra(self) -> dict[str, Any]:
        spec, _, prior_extra = nest_artifact("prior", self.prior_.to_artifact())
        return {"prior": spec, "prior_extra": prior_extra}

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        parent = Artifact(kind=self.kind, params=self.get_params(), feature_schema_hash=self.feature_schema_hash_ or "",
                          arrays=arrays, extra={"feature_names": list(self.feature_names_)})
        prior = unnest_artifact("prior", extra["prior"], parent, extra.get("prior_extra", {}))
        self.prior_ = RefinedRooflineLayerModel.from_artifact(prior, source="mixed layer model prior")
        self.boosters_ = _Boosters.from_arrays(arrays, "booster_txt.")
