"""Numerical helpers shared by the cost models: standardization, per-device ridge in log space, rank
correlation, composite-model plumbing (cloning, nesting artifacts and adaptations), fitted-state fingerprints.

Everything here is plain numpy/scipy and deterministic.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.special import ndtri

from nas_latency.errors import FailedPreconditionError, InvalidInputError
from nas_latency.models.artifacts import Artifact
from nas_latency.models.base import CostModel, DeviceAdaptation

Standardize = Literal["non_binary", "all", "none"]
STANDARDIZE_MODES: tuple[str, ...] = ("non_binary", "all", "none")


# ---- standardization --------------------------------------------------------------------------------------
def check_standardize(mode: object) -> str:
    if mode not in STANDARDIZE_MODES:
        raise InvalidInputError(f"standardize must be one of {', '.join(STANDARDIZE_MODES)}, got {mode!r}")
    return str(mode)


def fit_standardizer(X: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Column ``(mean, scale)`` such that ``(X - mean) / scale`` is standardized.

    ``"non_binary"`` leaves 0/1 columns (one-hots, flags) as they are and standardizes the others; ``"all"``
    standardizes every column; ``"none"`` none. Constant columns get scale 1 (they are only centred).
    """
    mode = check_standardize(mode)
    p = X.shape[1]
    mean, scale = np.zeros(p), np.ones(p)
    if mode == "none" or X.shape[0] == 0:
        return mean, scale
    selected = np.ones(p, dtype=bool)
    if mode == "non_binary":
        selected = ~np.all((X == 0.0) | (X == 1.0), axis=0)
    mean[selected] = X[:, selected].mean(axis=0)
    std = X[:, selected].std(axis=0)
    scale[selected] = np.where(std > 0, std, 1.0)
    return mean, scale


def design_matrix(X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``[1, (X - mean) / scale]``: the standardized features with an intercept column first."""
    out = np.empty((X.shape[0], X.shape[1] + 1))
    out[:, 0] = 1.0
    np.subtract(X, mean, out=out[:, 1:])
    out[:, 1:] /= scale
    return out


def linear_predictor(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``design_matrix(X, mean, scale) @ weights`` without building the design matrix (one product with
    ``X``); ``weights`` is ``(p + 1,)`` or ``(p + 1, k)``, intercept first."""
    coefficients = weights[1:] / (scale if weights.ndim == 1 else scale[:, None])
    return X @ coefficients + (weights[0] - mean @ coefficients)


# ---- ridge in log space -----------------------------------------------------------------------------------
def _ridge_solve(Z: np.ndarray, T: np.ndarray, alpha: float) -> np.ndarray:
    gram = Z.T @ Z
    penalty = np.full(Z.shape[1], float(alpha))
    penalty[0] = 0.0  # the intercept is not shrunk
    gram[np.diag_indices_from(gram)] += penalty + 1e-10 * max(1.0, float(np.trace(gram)) / Z.shape[1])
    return cho_solve(cho_factor(gram), Z.T @ T)


def ridge_per_device(Z: np.ndarray, L: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge weights ``(p, n_devices)`` of each column of ``L`` (log latencies, NaN = unmeasured) on ``Z``.

    Columns without NaN share one factorization; a column with NaN is fitted on its measured rows only.
    """
    W = np.zeros((Z.shape[1], L.shape[1]))
    measured = ~np.isnan(L)
    complete = measured.all(axis=0)
    if complete.any():
        W[:, complete] = _ridge_solve(Z, L[:, complete], alpha)
    for d in np.flatnonzero(~complete):
        rows = measured[:, d]
        W[:, d] = _ridge_solve(Z[rows], L[rows, d : d + 1], alpha)[:, 0]
    return W


#: the most refits in one leave-one-out of a device's measurements (more measurements: this many interleaved folds)
MAX_FOLDS = 10


def cross_validation_folds(n: int, max_folds: int = MAX_FOLDS) -> np.ndarray:
    """Each of ``n`` measurements' fold: its own up to ``max_folds`` measurements (leave-one-out); beyond,
    ``max_folds`` interleaved folds (measurement ``i`` in fold ``i mod max_folds``)."""
    return np.arange(n) % max_folds


def check_alpha(alpha: object, name: str = "alpha") -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not np.isfinite(alpha) or alpha <= 0:
        raise InvalidInputError(f"{name} must be a positive number, got {alpha!r}")
    return float(alpha)


def check_table_coverage(Y: np.ndarray, *, minimum: int, where: str) -> None:
    """Every training device must have at least ``minimum`` measured rows."""
    counts = (~np.isnan(Y)).sum(axis=0)
    if (counts < minimum).any():
        d = int(np.argmin(counts))
        raise InvalidInputError(
            f"{where}: training device column {d} has {int(counts[d])} measured latencies; at least {minimum} needed"
        )


# ---- ranking ----------------------------------------------------------------------------------------------
def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation with average ranks for ties; 0.0 when either side is constant."""
    return float(rank_correlations(a, np.asarray(b)[:, None])[0])


def rank_correlations(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Spearman correlation of ``truth`` with each column of ``predicted`` (average ranks; 0.0 if constant)."""
    from scipy.stats import rankdata  # scipy.stats costs ~0.5 s to import; only model fitting needs it

    rt = rankdata(truth) - (len(truth) + 1) / 2.0
    rp = rankdata(predicted, axis=0) - (len(truth) + 1) / 2.0
    denominator = np.sqrt(float(rt @ rt) * (rp**2).sum(axis=0))
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, (rt @ rp) / safe, 0.0)


# ---- fingerprints -----------------------------------------------------------------------------------------
def repeated_median_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Siegel's repeated-median line ``(intercept, slope)`` of ``y`` on ``x``: each point's median slope to the
    points at another ``x``, the median of those; the intercept the median of ``y − slope · x``. Up to half the
    points can be outliers without tilting it (a least-squares line follows one far point). Slope 0 when ``x``
    does not vary."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2:
        raise InvalidInputError(f"a line needs two equally long 1-D arrays of at least 2 points, got shapes "
                                f"{x.shape} and {y.shape}")
    dx = x[:, None] - x[None, :]
    apart = dx != 0
    rows = apart.any(axis=1)
    if not rows.any():
        return float(np.median(y)), 0.0
    slopes = np.where(apart, (y[:, None] - y[None, :]) / np.where(apart, dx, 1.0), np.nan)
    slope = float(np.median(np.nanmedian(slopes[rows], axis=1)))
    return float(np.median(y - slope * x)), slope


def fingerprint(arrays: Mapping[str, np.ndarray], *parts: str) -> str:
    """A short digest of fitted state, stored in each :class:`DeviceAdaptation` so that an adaptation made by
    an earlier fit of the model is refused instead of silently mixed with new weights."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(name.encode())
        digest.update(str(value.dtype).encode())
        digest.update(str(value.shape).encode())
        digest.update(value.tobytes())
    for part in parts:
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def params_text(model: CostModel) -> str:
    """The model's parameters as canonical JSON (tuples and lists alike), for fingerprints."""
    return json.dumps(model.get_params(), sort_keys=True)


# ---- composites -------------------------------------------------------------------------------------------
def clone(model: CostModel) -> CostModel:
    """An unfitted copy of ``model`` with the same parameters (members of composites cloned too)."""

    def copy(value: Any) -> Any:
        if isinstance(value, CostModel):
            return clone(value)
        if isinstance(value, (list, tuple)):
            return type(value)(copy(v) for v in value)
        return value

    return type(model)(**{name: copy(value) for name, value in model.get_params().items()})


def nest_artifact(prefix: str, artifact: Artifact) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """A member's artifact as (params spec, prefixed arrays, extra without the shared feature names)."""
    spec = {"kind": artifact.kind, "params": dict(artifact.params)}
    arrays = {f"{prefix}.{name}": value for name, value in artifact.arrays.items()}
    extra = {k: v for k, v in artifact.extra.items() if k != "feature_names"}
    return spec, arrays, extra


def unnest_artifact(
    prefix: str, spec: Mapping[str, Any], parent: Artifact, extra: Mapping[str, Any]
) -> Artifact:
    """Inverse of :func:`nest_artifact`: the member's artifact out of its parent's."""
    if not isinstance(spec, Mapping) or "kind" not in spec or "params" not in spec:
        raise InvalidInputError(f"artifact member {prefix!r}: expected {{'kind', 'params'}}, got {spec!r}")
    start = f"{prefix}."
    arrays = {name[len(start) :]: value for name, value in parent.arrays.items() if name.startswith(start)}
    return Artifact(
        kind=str(spec["kind"]),
        params=dict(spec["params"]),
        feature_schema_hash=parent.feature_schema_hash,
        arrays=arrays,
        extra={"feature_names": list(parent.extra.get("feature_names", ())), **dict(extra)},
        package_version=parent.package_version,
        format_version=parent.format_version,
    )


def nest_adaptation(prefix: str, adaptation: DeviceAdaptation) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays = {f"{prefix}.{name}": value for name, value in adaptation.arrays.items()}
    info = {"model_kind": adaptation.model_kind, "n_measurements": adaptation.n_measurements,
            "info": dict(adaptation.info)}
    return arrays, info


def unnest_adaptation(prefix: str, parent: DeviceAdaptation, info: Mapping[str, Any]) -> DeviceAdaptation:
    start = f"{prefix}."
    return DeviceAdaptation(
        model_kind=str(info["model_kind"]),
        feature_schema_hash=parent.feature_schema_hash,
        n_measurements=int(info["n_measurements"]),
        arrays={name[len(start) :]: value for name, value in parent.arrays.items() if name.startswith(start)},
        info=dict(info["info"]),
    )


def as_float_tuple(values: Iterable[Any], *, what: str, length: int | None = None) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} must be a sequence of numbers, got {values!r}") from None
    if length is not None and len(out) != length:
        raise InvalidInputError(f"{what} must have {length} numbers, got {len(out)}")
    return out


def column_index(names: Sequence[str], name: str, *, model: str) -> int:
    try:
        return list(names).index(name)
    except ValueError:
        raise FailedPreconditionError(
            f"{model} needs a feature column named {name!r}, which this feature schema does not have "
            f"({len(names)} columns); use a space's model_features() or pass the column name in the parameters"
        ) from None


def check_grid(grid: object, fields: Sequence[str], *, non_negative: Sequence[int] = ()) -> np.ndarray:
    """A hyper-parameter grid as an ``(n, len(fields))`` float array: at least one entry, every value finite,
    the columns in ``non_negative`` >= 0 and the others > 0."""
    names = ", ".join(fields)
    try:
        rows = [as_float_tuple(row, what=f"each grid entry ({names})", length=len(fields)) for row in grid]  # type: ignore[attr-defined]
    except TypeError:
        raise InvalidInputError(f"grid must be a sequence of ({names}), got {grid!r}") from None
    if not rows:
        raise InvalidInputError(f"grid must hold at least one ({names}) entry")
    values = np.asarray(rows, dtype=np.float64)
    zero_allowed = np.zeros(len(fields), dtype=bool)
    zero_allowed[list(non_negative)] = True
    if not np.all(np.isfinite(values)) or (values[:, ~zero_allowed] <= 0).any() or (values[:, zero_allowed] < 0).any():
        allowed = ", ".join(fields[i] for i in non_negative)
        raise InvalidInputError(f"grid values must be finite and positive{f' ({allowed}: non-negative)' if allowed else ''}"
                                f", got {rows}")
    return values


def integer_setting(model: object, name: str, minimum: int = 1) -> int:
    """The model's integer parameter ``name``, checked to be an integer (not a bool) >= ``minimum``."""
    value = getattr(model, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise InvalidInputError(f"{name} must be {what}, got {value!r}")
    return int(value)


def check_open_unit(value: object, name: str) -> float:
    """``value`` as a float strictly between 0 and 1 (a coverage, a significance level, a ratio threshold)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise InvalidInputError(f"{name} must be a number in (0, 1), got {value!r}")
    return float(value)


# ---- predictive-uncertainty calibration ---------------------------------------------------------------------


def calibration_scale(ratios: Sequence[np.ndarray], coverage: float) -> float:
    """The factor for σ that makes the ``coverage`` quantile of the pooled |log error| / σ ``ratios`` (of an inner
    leave-one-device-out) equal to a normal's: ``ln ŷ ± z σ`` then holds ``coverage`` of them."""
    return float(np.quantile(np.concatenate(ratios), coverage) / ndtri(0.5 + coverage / 2.0))


# ---- hyper-parameter selection settings ----------------------------------------------------------------------
def check_selection_settings(
    model: object, *, metrics: Sequence[str], grid_size: int, n_devices: int, grid_fields: str
) -> tuple[int, int, int]:
    """Validate the inner leave-one-device-out settings a grid-selected model stores (``selection_signature_size``,
    ``selection_draws``, ``selection_seed``, ``selection_metric``); returns ``(size, draws, seed)``."""

    size, draws = integer_setting(model, "selection_signature_size"), integer_setting(model, "selection_draws")
    seed = integer_setting(model, "selection_seed", 0)
    metric = getattr(model, "selection_metric")
    if metric not in metrics:
        raise InvalidInputError(f"selection_metric must be one of {', '.join(metrics)}, got {metric!r}")
    if grid_size > 1 and n_devices < 3:
        raise InvalidInputError(
            f"choosing the hyper-parameters by inner leave-one-device-out needs at least 3 training devices, "
            f"got {n_devices}; pass a grid with a single ({grid_fields}) entry"
        )
    return size, draws, seed
