"""The leave-device-out evaluation protocol of cross-device latency models on the bundled measured tables
(:mod:`~nas_latency.evaluate.datasets`).

* :func:`leave_device_out` is the honest few-shot protocol: for every held-out group, fit on the other groups,
  choose the ``K`` signature architectures **without** the held-out latencies (a :data:`SignatureSelector` only
  ever sees the training dataset), adapt on the held-out device's latencies at those architectures, predict
  every architecture and score it on the space's scoring sets (:mod:`~nas_latency.evaluate.scoring_sets`). It is
  repeated over signature seeds; a model is fitted once per held-out group and adapted once per seed and device.
  What it returns is an :class:`~nas_latency.evaluate.results.EvaluationResult`.
* :class:`RandomSignature` and :class:`MethodSignature` are the signature selectors.

Library code: no printing; progress goes through an optional callback, diagnostics through ``logging``.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from nas_latency.errors import FailedPreconditionError, InvalidInputError, NotFoundError
from nas_latency.evaluate.datasets import LatencyDataset, fact_values, is_missing, known_facts
from nas_latency.evaluate.device_draws import measurement_noise, spiked_position
from nas_latency.evaluate.metrics import summarize
from nas_latency.evaluate.results import INTERVALS, DeviceScore, EvaluationResult, IntervalCoverage, Prediction
from nas_latency.evaluate.retest import twin_rows
from nas_latency.evaluate.scoring_sets import ScoringSet, all_query_indices, help_query_indices
from nas_latency.ir import FeatureMatrix
from nas_latency.models.base import CrossDeviceModel

logger = logging.getLogger(__name__)

ModelFactory = Callable[[], CrossDeviceModel]
Featurizer = Callable[[Sequence[str]], FeatureMatrix]
ProgressCallback = Callable[[int, int, str], None]


# ---- signatures -------------------------------------------------------------------------------------------------
#: ``(train_dataset, k, seed) -> k architectures``: picks the signature without any held-out latency.
SignatureSelector = Callable[[LatencyDataset, int, int], Sequence[str]]


class RandomSignature:
    """``k`` architectures drawn uniformly by ``numpy.random.default_rng(seed)``. When the space has degenerate
    architectures (``space.degenerate_mask``), ``k - 1`` are drawn from the others and the first degenerate
    architecture (in dataset order) completes the set: the research found one dead cell in the signature the
    one robust gain (models can then learn whether a device drops dead cells)."""

    def __init__(self, *, include_degenerate: bool = True) -> None:
        self.include_degenerate = include_degenerate

    def __repr__(self) -> str:
        return f"RandomSignature(include_degenerate={self.include_degenerate})"

    def __call__(self, train: LatencyDataset, k: int, seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        n = len(train.archs)
        if not 1 <= k <= n:
            raise InvalidInputError(f"signature size must be in 1..{n}, got {k}")
        degenerate = np.flatnonzero(train.degenerate)
        if self.include_degenerate and degenerate.size and k >= 2:
            live = np.flatnonzero(~train.degenerate)
            picks = rng.choice(live, size=k - 1, replace=False)
            rows = [int(degenerate[0]), *picks.tolist()]
        else:
            rows = rng.choice(n, size=k, replace=False).tolist()
        return [train.archs[i] for i in rows]


class MethodSignature:
    """The product's signature selection (:func:`nas_latency.signature.select_signature`) run on the training
    devices only: ``method`` is one of ``SELECTION_METHODS`` (the shipped default is what ``signature`` uses)."""

    def __init__(self, method: str) -> None:
        from nas_latency.signature import SELECTION_METHODS

        if method not in SELECTION_METHODS:
            raise InvalidInputError(f"unknown signature method {method!r}; methods: {', '.join(SELECTION_METHODS)}")
        self.method = method

    def __repr__(self) -> str:
        return f"MethodSignature({self.method!r})"

    def __call__(self, train: LatencyDataset, k: int, seed: int) -> list[str]:
        from nas_latency.signature import select_signature
        from search_spaces import get_space

        features = get_space(train.space).model_features(train.archs) if self.method == "informative" else None
        return list(select_signature(self.method, train.latency_ms, list(train.archs), k, seed=seed,
                                     features=features, degenerate_mask=train.degenerate))


def _check_signature(dataset: LatencyDataset, signature: Sequence[str], k: int, selector: Any) -> np.ndarray:
    archs = list(signature)
    if len(archs) != k or len(set(archs)) != k:
        raise InvalidInputError(f"signature selector {selector!r} returned {len(archs)} archs "
                                f"({len(set(archs))} distinct); expected {k} distinct")
    return dataset.arch_indices(archs)


# ---- leave-device-out -------------------------------------------------------------------------------------------
def default_featurizer(space_name: str) -> Featurizer:
    """``space.model_features`` where the space has it (the features the shipped models are trained on), else
    ``space.featurize``."""
    from search_spaces import get_space

    space = get_space(space_name)
    method = getattr(space, "model_features", None)
    return method if method is not None else space.featurize


def _subset(features: FeatureMatrix, rows: np.ndarray) -> FeatureMatrix:
    return FeatureMatrix(features.names, features.values[rows], tuple(features.rows[i] for i in rows.tolist()))


def leave_device_out(
    dataset: LatencyDataset,
    models: Mapping[str, ModelFactory],
    *,
    budget: int,
    seeds: Sequence[int] = (0, 1, 2),
    selector: SignatureSelector | None = None,
    features: FeatureMatrix | Mapping[str, FeatureMatrix] | None = None,
    holdout: Sequence[str] | None = None,
    keep_predictions: bool = True,
    progress: ProgressCallback | None = None,
    exclude_same: str | None = None,
    scoring_latency_ms: np.ndarray | None = None,
    scored_against: str = "measured",
    twins: bool = False,
    held_out_scale: float = 1.0,
    held_out_spike: float = 1.0,
    held_out_noise: float = 0.0,
) -> EvaluationResult:
    """Leave-device-out evaluation of every model in ``models`` (name -> factory of an unfitted model).

    For each held-out group (``holdout``: group or device names, default every group), the training dataset is
    the other groups' devices; ``selector(train, budget, seed)`` picks the signature for each seed (the same
    signatures serve every model, so models are compared on paired draws); each model is fitted once on the
    training devices and adapted, per seed, on each held-out device's latencies at the signature archs; it then
    predicts every arch and is scored on :func:`scoring_sets` (signature archs never scored).

    ``exclude_same``: a key of the devices' info (``"kind"``: GPU, CPU, mobile), or several joined by ``+``: the
    training devices of a held-out group also exclude every device whose value of it is one of the held-out devices'
    values, so a device is onboarded with a model that has seen no device of its kind (an unseen *kind* of hardware,
    not only an unseen device); devices lacking the fact train none (:func:`training_devices`). ``features``: one
    :class:`FeatureMatrix` for all models, or one per model name, with rows in dataset order; default
    :func:`default_featurizer`. ``progress(done, total, message)`` is called after each model fit and each
    adaptation.

    ``scoring_latency_ms`` (same shape as ``dataset.latency_ms``, named ``scored_against``): score the predictions
    against these latencies instead of the measured ones, e.g. the measurements with their drift removed
    (:mod:`~nas_latency.evaluate.drift`). Training, signatures and onboarding still use the measured latencies.

    ``held_out_scale``: multiply every held-out device's latencies, the signature measurements it is onboarded with
    and those it is scored against, by this factor F: the same device F times slower (F > 1) or faster, while
    the training devices stay as measured. A model whose rankings do not depend on a device's overall speed scores
    the same for every factor.

    ``held_out_spike``: multiply one of every held-out device's K signature measurements by this factor (which one:
    :func:`spiked_position`, drawn per seed and device), as a throttled or preempted run would: a model that
    onboards the device on the other measurements scores as with none spiked. The truth stays as measured (the
    signature archs are never scored).

    ``held_out_noise``: multiply each of every held-out device's K signature measurements by ``exp(σ z)`` with
    this σ and ``z`` standard normal (:func:`measurement_noise`, drawn per seed and device, the same for every
    model): a device timed with noise of log standard deviation σ (0.05: about ±5 %), as one short run per
    network on a busy machine would be. The truth stays as measured.

    ``twins``: also score on the ``"twins"`` set, the architectures that spell the same network as another one
    (:mod:`~nas_latency.evaluate.retest`; NAS-Bench-201 only), where a second measurement of each network can be
    scored too.
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
        raise InvalidInputError(f"budget must be an integer, got {budget!r}")
    if budget < 3:
        raise InvalidInputError(f"budget must be at least 3 signature measurements, got {budget}")
    if budget >= len(dataset.archs):
        raise InvalidInputError(f"budget {budget} leaves nothing to score: {dataset.space} has {len(dataset.archs)} archs")
    for name, factor in (("held_out_scale", held_out_scale), ("held_out_spike", held_out_spike)):
        if not (_is_finite_real(factor) and factor > 0):
            raise InvalidInputError(f"{name} must be a positive finite number, got {factor!r}")
    if not (_is_finite_real(held_out_noise) and held_out_noise >= 0):
        raise InvalidInputError(f"held_out_noise must be a finite log standard deviation >= 0, got {held_out_noise!r}")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise InvalidInputError(f"seeds must be a non-empty list of distinct integers, got {seeds}")
    if not models:
        raise InvalidInputError("no models to evaluate")
    if (scoring_latency_ms is None) != (scored_against == "measured"):
        raise InvalidInputError("give scoring_latency_ms exactly when scored_against names something other than "
                                f"'measured' (got scored_against={scored_against!r})")
    if scoring_latency_ms is not None:
        scoring_latency_ms = np.array(scoring_latency_ms, dtype=np.float64)
        if scoring_latency_ms.shape != dataset.latency_ms.shape:
            raise InvalidInputError(f"scoring latencies of shape {scoring_latency_ms.shape} for a dataset of shape "
                                    f"{dataset.latency_ms.shape}")
        if not np.array_equal(np.isfinite(scoring_latency_ms), np.isfinite(dataset.latency_ms)):
            raise InvalidInputError("scoring latencies must be measured exactly where the dataset's are")
        if (scoring_latency_ms[np.isfinite(scoring_latency_ms)] <= 0).any():
            raise InvalidInputError("scoring latencies must be positive")
        scoring_latency_ms.setflags(write=False)
    selector = selector if selector is not None else RandomSignature()
    groups = _resolve_holdout(dataset, holdout)
    if len(dataset.group_names) < 2:
        raise InvalidInputError(f"dataset {dataset.space}: leave-device-out needs at least 2 device groups")

    twin_set = twin_rows(dataset.space, dataset.archs) if twins else np.empty(0, dtype=np.intp)
    if twins and not twin_set.size:
        raise InvalidInputError(f"dataset {dataset.space}: no architecture has its twin in the dataset")
    feature_map = _resolve_features(dataset, list(models), features)
    training = {group: training_devices(dataset, group, exclude_same) for group in groups}
    result = EvaluationResult(dataset=dataset, budget=int(budget), seeds=seeds, models=list(models),
                              selector=repr(selector), held_out_groups=groups, exclude_same=exclude_same,
                              training_devices=training, scored_against=scored_against,
                              scoring_latency_ms=scoring_latency_ms, extra_sets=("twins",) if twins else (),
                              held_out_scale=float(held_out_scale), held_out_spike=float(held_out_spike),
                              held_out_noise=float(held_out_noise))
    result.timings = {name: {"fit_s": 0.0, "adapt_predict_s": 0.0, "fits": 0, "adaptations": 0} for name in models}
    n_test = sum(len(dataset.devices_of(g)) for g in groups)
    total = len(models) * (len(groups) + len(seeds) * n_test)
    done = 0

    for group in groups:
        test_devices = dataset.devices_of(group)
        train = dataset.with_devices(training[group])
        signature_rows: dict[int, np.ndarray] = {}
        for seed in seeds:
            signature = list(selector(train, int(budget), seed))
            signature_rows[seed] = _check_signature(dataset, signature, int(budget), selector)
            result.signatures.setdefault(seed, {})[group] = signature
        for name, factory in models.items():
            feats = feature_map[name]
            start = time.perf_counter()
            model = factory()
            model.fit(feats, train.latency_ms)
            result.timings[name]["fit_s"] += time.perf_counter() - start
            result.timings[name]["fits"] += 1
            done += 1
            if progress:
                progress(done, total, f"{name}: fitted without {group}")
            for seed in seeds:
                rows = signature_rows[seed]
                sig_features = _subset(feats, rows)
                for device in test_devices:
                    y = dataset.latency_of(device) * result.held_out_scale
                    start = time.perf_counter()
                    measured = np.isfinite(y[rows])
                    if not measured.all():
                        raise FailedPreconditionError(
                            f"{device} has no latency for {int((~measured).sum())} signature archs "
                            f"(first {dataset.archs[int(rows[~measured][0])]!r}); choose another signature"
                        )
                    measurements = y[rows]
                    if result.held_out_spike != 1.0:
                        measurements = measurements.copy()
                        measurements[spiked_position(seed, device, len(rows))] *= result.held_out_spike
                    if result.held_out_noise > 0:
                        measurements = measurements * measurement_noise(seed, device, len(rows),
                                                                        result.held_out_noise)
                    adaptation = model.adapt(sig_features, measurements)
                    predicted = np.asarray(model.predict(feats, adaptation), dtype=np.float64)
                    result.timings[name]["adapt_predict_s"] += time.perf_counter() - start
                    result.timings[name]["adaptations"] += 1
                    _check_prediction(predicted, name, device, len(dataset.archs))
                    std_log = _predictive_std(model, feats, adaptation)
                    truth = result.truth_of(device)
                    for scoring in result.scoring_sets:
                        query = _query_rows(scoring, dataset.arch_ids, truth, rows, twin_set)
                        metrics = summarize(truth[query], predicted[query])
                        result.scores.append(DeviceScore(name, seed, device, group, scoring, int(query.size), metrics))
                        if std_log is not None and query.size:
                            error = np.abs(np.log(truth[query] / predicted[query]))
                            result.intervals.append(IntervalCoverage(
                                name, seed, device, scoring,
                                {key: float(np.mean(error <= z * std_log[query])) for key, z in INTERVALS.items()},
                                float(np.median(std_log[query]))))
                    if keep_predictions and seed == seeds[0]:
                        result.predictions[(name, device)] = Prediction(name, device, seed, rows, predicted)
                    done += 1
                    if progress:
                        progress(done, total, f"{name}: adapted to {device} (seed {seed})")
    return result


def _is_finite_real(value: object) -> bool:
    """A finite int or float (not a bool)."""
    return not isinstance(value, bool) and isinstance(value, (int, float, np.floating)) and math.isfinite(value)


def _query_rows(scoring: ScoringSet, arch_ids: np.ndarray, truth: np.ndarray, signature_rows: np.ndarray,
                twin_set: np.ndarray) -> np.ndarray:
    if scoring == "help":
        return help_query_indices(arch_ids, truth, signature_rows)
    if scoring == "twins":
        return np.setdiff1d(twin_set[np.isfinite(truth[twin_set])], signature_rows)
    return all_query_indices(truth, signature_rows)


def training_devices(dataset: LatencyDataset, group: str, exclude_same: str | None) -> list[str]:
    """The devices a held-out ``group``'s models are fitted on: every other group's, less (``exclude_same``) the
    devices that share the info value ``exclude_same`` with a held-out device. ``exclude_same`` may join several
    facts with ``+`` (``cpu+max_freq_ghz``: the same values of all of them). A device that lacks one of the facts
    cannot be told apart from the held-out device, so it trains no held-out device; a held-out device that lacks
    one is compared with no other (its training devices are those that have the facts)."""
    others = [d for d, g in zip(dataset.devices, dataset.groups) if g != group]
    if exclude_same is None:
        return others
    facts = exclude_same.split("+")
    for fact in facts:
        if not fact or all(is_missing(dataset.info.get(d, {}).get(fact)) for d in dataset.devices):
            raise InvalidInputError(f"exclude_same={exclude_same!r}: no such fact {fact!r} in the {dataset.space} "
                                    f"device info (facts: {', '.join(known_facts(dataset))})")

    held = {fact_values(dataset, d, facts) for d in dataset.devices_of(group)} - {None}
    kept = [d for d in others if fact_values(dataset, d, facts) not in held | {None}]
    if len(kept) < 2:
        raise FailedPreconditionError(f"holding out {group} and every device with {exclude_same} in "
                                      f"{sorted(map(str, held))} leaves {len(kept)} training device(s); at least 2 "
                                      f"are needed")
    return kept


def _predictive_std(model: CrossDeviceModel, features: FeatureMatrix, adaptation: Any) -> np.ndarray | None:
    """The model's predictive standard deviation of each log latency, or None when it gives none."""
    try:
        return np.asarray(model.predict_with_uncertainty(features, adaptation)[1], dtype=np.float64)
    except FailedPreconditionError:
        return None


def _resolve_holdout(dataset: LatencyDataset, holdout: Sequence[str] | None) -> list[str]:
    if holdout is None:
        return dataset.group_names
    groups: list[str] = []
    for name in holdout:
        if name in dataset.group_names:
            group = name
        elif name in dataset.devices:  # a device names its whole group
            group = dataset.groups[dataset.devices.index(name)]
        else:
            raise NotFoundError(
                f"dataset {dataset.space}: {name!r} is neither a device nor a device group; "
                f"groups: {', '.join(dataset.group_names)}"
            )
        if group not in groups:
            groups.append(group)
    if not groups:
        raise InvalidInputError("no device group to hold out")
    return groups


def _resolve_features(
    dataset: LatencyDataset, names: list[str], features: FeatureMatrix | Mapping[str, FeatureMatrix] | None
) -> dict[str, FeatureMatrix]:
    if features is None:
        shared = default_featurizer(dataset.space)(dataset.archs)
        mapping = {name: shared for name in names}
    elif isinstance(features, FeatureMatrix):
        mapping = {name: features for name in names}
    else:
        missing = [n for n in names if n not in features]
        if missing:
            raise InvalidInputError(f"no features given for models {', '.join(missing)}")
        mapping = {name: features[name] for name in names}
    for name, matrix in mapping.items():
        if matrix.values.shape[0] != len(dataset.archs):
            raise InvalidInputError(
                f"features for {name}: {matrix.values.shape[0]} rows but the dataset has {len(dataset.archs)} archs"
            )
        if matrix.rows and tuple(matrix.rows) != tuple(dataset.archs):
            first = next(i for i, (a, b) in enumerate(zip(matrix.rows, dataset.archs)) if a != b)
            raise InvalidInputError(f"features for {name}: rows are not in dataset order (row {first} is "
                                    f"{matrix.rows[first]!r}, the dataset has {dataset.archs[first]!r})")
    return mapping


def _check_prediction(predicted: np.ndarray, model: str, device: str, n: int) -> None:
    if predicted.shape != (n,):
        raise FailedPreconditionError(f"{model} predicted {predicted.shape} latencies on {device}, expected ({n},)")
    bad = ~np.isfinite(predicted)
    if bad.any():
        raise FailedPreconditionError(
            f"{model} predicted {int(bad.sum())} non-finite latencies on {device} (first at row {int(np.flatnonzero(bad)[0])})"
        )


__all__ = [
    "Featurizer",
    "MethodSignature",
    "ModelFactory",
    "ProgressCallback",
    "RandomSignature",
    "SignatureSelector",
    "default_featurizer",
    "leave_device_out",
    "training_devices",
]
