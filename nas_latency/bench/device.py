"""Onboard this machine: micro-kernel and block sweeps, the layer and mapping models, the signature set.

:func:`onboard_device` is what ``nas-latency bench device --name NAME`` runs:

1. **calibration**: ReLU chains of 1, 3, 9 and 27 layers give the runtime's fixed cost per network call
   (``overhead_ms``, the intercept), which is removed from every kernel and block time (a layer inside a network
   does not pay it) and added back once per predicted network;
2. **micro-kernels** (grid, random, space prior), then **blocks**, each followed by its own layers so that the
   mapping model compares a block with layers measured under the same load; every measurement is taken in
   ``ROUNDS`` interleaved rounds (:func:`~nas_latency.bench.sweep.run_sweep`);
   then **cold-weight twins** of the kernels with sizeable weights (copies cycled so that the weights come from
   memory, :func:`~nas_latency.bench.memory_items.cold_kernel_items`), **footprint blocks** (chains of 1×1
   convolutions of growing total size) that calibrate how much of the cold penalty a network of a given footprint
   pays, and **context blocks** (chains of batch norm + ReLU of growing size) that calibrate what each MB of
   activations costs a layer inside a network of that footprint;
3. **adaptive resampling**: ``adaptive_rounds`` times, the mixed layer model is cross-validated (5 folds) on the
   kernels so far, and neighbours of the worst-predicted kernels are measured;
4. **models**: every layer model of :data:`~nas_latency.models.layer_stacked.LAYER_MODELS` on the kernels (hot,
   and a twin on the cold-weight times), the mapping model on the blocks, the footprint curve, one stacked network
   model per layer model;
5. **signature set**: the space's signature architectures (``Predictor.signature_set('nasbench201', 10)``) are
   measured as whole networks; they also give a first, small check of the stacked models (they were not used to
   fit them);
6. **store**: the device (with its environment as metadata), the kernel and block measurements (spaces
   ``bench.kernels`` and ``bench.blocks``, source ``bench:<runtime>``), the stacked models (artifacts
   ``bench/<NAME>/stacked/<model>``) and, last, the registration with the signature measurements
   (``Predictor.register_device``), so a run stopped on the way leaves no registered device without its models.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from nas_latency.bench.block_items import block_items, space_network_items, with_block_layers
from nas_latency.bench.calibration import CALIBRATION_LENGTHS, calibration_items, call_overhead_ms
from nas_latency.bench.items import LEVELS, BenchItem, Level, kernel_item
from nas_latency.bench.kernel_items import adaptive_kernels, kernel_sweep
from nas_latency.bench.memory_items import (
    COLD_MIN_WEIGHT_BYTES,
    COLD_PREFIX,
    cold_kernel_items,
    context_items,
    footprint_items,
)
from nas_latency.bench.protocol import (
    PROTOCOLS,
    MeasurementProtocol,
    Timer,
    environment_record,
    execution_context,
)
from nas_latency.bench.runners import make_runner
from nas_latency.bench.sweep import Measured, Progress, Statistic, SweepResult, latency_of, measurement_rows, run_sweep
from nas_latency.errors import FailedPreconditionError, InvalidInputError, NotFoundError
from nas_latency.ir import FeatureMatrix, Layer
from nas_latency.models.artifacts import artifact_from_bytes
from nas_latency.models.layer_features import LayerFeaturizer, layer_key
from nas_latency.models.layer_footprint import FootprintModel
from nas_latency.models.layer_mapping import BlockObservation, MappingModel
from nas_latency.models.layer_stacked import (
    LAYER_MODELS,
    StackedNetworkModel,
    activation_mb,
    network_footprint_bytes,
)
from nas_latency.store import Store
from nas_latency.store.store import DEVICE_ARTIFACT_SEPARATOR
from nas_latency.store.validate import check_device

log = logging.getLogger(__name__)

ARTIFACT_SPACE = "bench"
KERNEL_SPACE = "bench.kernels"
BLOCK_SPACE = "bench.blocks"
NETWORK_SPACE = "bench.networks"
SIGNATURE_SPACE = "nasbench201"
STACKED_KIND = StackedNetworkModel.kind

#: Smaller, faster model settings for ``--quick``.
QUICK_MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "statistical": {"n_estimators": 60, "min_family_samples": 1000},
    "mixed": {"n_estimators": 40},
    "resperfnet": {"epochs": 40, "width": 24, "blocks": 1},
    "lookup": {"fallback": "mixed"},
}


def source_for(runtime: str) -> str:
    return f"bench:{runtime}"


def stacked_artifact_name(device: str, model: str) -> str:
    """Named under the device (``<device>/...``), so deleting the device deletes it too."""
    return f"{device}{DEVICE_ARTIFACT_SEPARATOR}stacked/{model}"


@dataclass(frozen=True)
class DeviceOptions:
    name: str
    runtime: str = "torch"
    threads: int = 1
    pin_cpus: tuple[int, ...] | None = None
    level: Level = "full"
    seed: int = 0
    description: str | None = None
    register: bool = True
    signature_size: int = 10
    adaptive_rounds: int | None = None  # default: 1 for quick, 2 for full
    timer: Timer = "wall"

    def check(self) -> None:
        check_device(self.name)
        check_timer(self.timer, threads=self.threads, runtime=self.runtime)
        if self.level not in LEVELS:
            raise InvalidInputError(f"level must be one of {', '.join(LEVELS)}, got {self.level!r}")
        if self.signature_size < 3:
            raise InvalidInputError(f"signature size must be at least 3, got {self.signature_size}")
        if self.adaptive_rounds is not None and self.adaptive_rounds < 0:
            raise InvalidInputError(f"adaptive rounds must be >= 0, got {self.adaptive_rounds}")


@dataclass
class DeviceReport:
    """What onboarding did, for the CLI's summary (``to_document``)."""

    name: str
    runtime: str
    level: str
    environment: dict[str, Any]
    overhead_ms: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    noise: dict[str, dict[str, Any]] = field(default_factory=dict)
    phases_s: dict[str, float] = field(default_factory=dict)
    roofline: dict[str, float] = field(default_factory=dict)
    fusion_rules: list[dict[str, Any]] = field(default_factory=list)
    footprint_curve: list[dict[str, float]] = field(default_factory=list)
    context_curve: list[dict[str, float]] = field(default_factory=list)
    mapping_block_mape_pct: dict[str, float] = field(default_factory=dict)
    kernel_cv_mape_pct: dict[str, float] = field(default_factory=dict)
    signature: dict[str, float] = field(default_factory=dict)
    signature_check: dict[str, dict[str, float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)

    def to_document(self) -> dict[str, Any]:
        return {
            "device": self.name, "runtime": self.runtime, "level": self.level,
            "cpu_model": self.environment.get("cpu_model"), "threads": self.environment.get("threads"),
            "overhead_ms": round(self.overhead_ms, 5), "counts": self.counts, "noise": self.noise,
            "phases_s": {k: round(v, 2) for k, v in self.phases_s.items()},
            "total_s": round(sum(self.phases_s.values()), 2), "roofline": self.roofline,
            "fusion_rules": self.fusion_rules, "footprint_curve": self.footprint_curve,
            "context_curve": self.context_curve,
            "mapping_block_mape_pct": self.mapping_block_mape_pct,
            "kernel_cv_mape_pct": self.kernel_cv_mape_pct, "signature_check": self.signature_check,
            "failures": self.failures, "artifacts": self.artifacts,
        }


# ---- datasets from sweeps -------------------------------------------------------------------------------------
def in_network_ms(measured_ms: float, overhead_ms: float) -> float:
    """A kernel's or block's time inside a network: the call overhead removed, floored at 5 % of the measurement."""
    return max(measured_ms - overhead_ms, 0.05 * measured_ms, 1e-6)


def kernel_dataset(kernels: Sequence[Measured], overhead_ms: float) -> tuple[FeatureMatrix, np.ndarray, list[Layer]]:
    layers = [m.item.network.layers[0] for m in kernels]
    features = LayerFeaturizer().transform(layers)
    y = np.array([in_network_ms(latency_of(m.stats, KERNEL_STATISTIC), overhead_ms) for m in kernels])
    return features, y, layers


def block_observations(blocks: Sequence[Measured], kernel_ms: dict[str, float], overhead_ms: float
                       ) -> list[BlockObservation]:
    out = []
    for m in blocks:
        keys = {layer_key(layer) for layer in m.item.network.layers}
        missing = keys - set(kernel_ms)
        if missing:
            log.warning("block %s: layers %s were not measured; block left out of the mapping model",
                        m.item.key, sorted(missing)[:3])
            continue
        out.append(BlockObservation(m.item.network, in_network_ms(latency_of(m.stats, KERNEL_STATISTIC), overhead_ms),
                                    {k: kernel_ms[k] for k in keys}))
    return out


def unique_layers(blocks: Sequence[BenchItem]) -> list[Layer]:
    seen: dict[str, Layer] = {}
    for block in blocks:
        for layer in block.network.layers:
            seen.setdefault(layer_key(layer), layer)
    return list(seen.values())


def cold_dataset(features: FeatureMatrix, y: np.ndarray, layers: Sequence[Layer], cold: Sequence[Measured],
                 overhead_ms: float) -> tuple[FeatureMatrix, np.ndarray]:
    """The kernels' cold-weight times: the cold measurement where there is one, the hot time for layers with
    too few weights to have a cold twin (they pay no cold penalty); layers with sizeable weights but no cold
    measurement (block layers, adaptive kernels) are left out."""
    cold_ms = {layer_key(m.item.network.layers[0]): in_network_ms(latency_of(m.stats, KERNEL_STATISTIC), overhead_ms)
               for m in cold}
    rows, values = [], []
    for i, (key, layer) in enumerate(zip(features.rows, layers)):
        if key in cold_ms:
            rows.append(i)
            values.append(cold_ms[key])
        elif layer.weight_bytes() < COLD_MIN_WEIGHT_BYTES:
            rows.append(i)
            values.append(float(y[i]))
    subset = FeatureMatrix(features.names, features.values[rows], tuple(features.rows[i] for i in rows))
    return subset, np.asarray(values)


def _hot_cold(layers: Sequence[Measured], overhead_ms: float) -> tuple[dict[str, float], dict[str, float]]:
    hot: dict[str, float] = {}
    cold: dict[str, float] = {}
    for m in layers:
        key = layer_key(m.item.network.layers[0])
        value = in_network_ms(latency_of(m.stats, KERNEL_STATISTIC), overhead_ms)
        (cold if m.item.key.startswith(COLD_PREFIX) else hot)[key] = value
    return hot, cold


def context_points(blocks: Sequence[Measured], layers: Sequence[Measured], overhead_ms: float
                   ) -> tuple[list[float], list[float], list[float]]:
    """``(footprint bytes, κ, weight)`` of each context block: ``κ = (t_block − Σ hot) / Σ activation MB`` (ms per
    MB of activations read and written), weighted by the block's activation MB."""
    hot, _ = _hot_cold(layers, overhead_ms)
    footprints, kappas, weights = [], [], []
    for m in blocks:
        keys = [layer_key(layer) for layer in m.item.network.layers]
        if not all(k in hot for k in keys):
            continue
        h = sum(hot[k] for k in keys)
        mb = sum(activation_mb(layer) for layer in m.item.network.layers)
        t = in_network_ms(latency_of(m.stats, KERNEL_STATISTIC), overhead_ms)
        footprints.append(float(network_footprint_bytes(m.item.network)))
        kappas.append((t - h) / mb)
        weights.append(mb)
    return footprints, kappas, weights


def footprint_points(blocks: Sequence[Measured], layers: Sequence[Measured], overhead_ms: float,
                     context: FootprintModel | None = None) -> tuple[list[float], list[float], list[float]]:
    """``(footprint bytes, φ, weight)`` of each footprint block:
    ``φ = (t_block − Σ hot − κ·Σ activation MB) / (Σ cold − Σ hot)`` (κ from ``context``, 0 without), weighted by the
    block's cold penalty ``Σ (cold − hot)`` in ms (blocks whose penalty is not positive are left out)."""
    hot, cold = _hot_cold(layers, overhead_ms)
    footprints, phis, weights = [], [], []
    for m in blocks:
        keys = [layer_key(layer) for layer in m.item.network.layers]
        if not all(k in hot and k in cold for k in keys):
            continue
        h = sum(hot[k] for k in keys)
        c = sum(cold[k] for k in keys)
        if c - h <= 0:
            continue
        t = in_network_ms(latency_of(m.stats, KERNEL_STATISTIC), overhead_ms)
        footprint = float(network_footprint_bytes(m.item.network))
        kappa = 0.0 if context is None else float(context.phi(footprint))
        mb = sum(activation_mb(layer) for layer in m.item.network.layers)
        footprints.append(footprint)
        phis.append((t - h - kappa * mb) / (c - h))
        weights.append(c - h)
    return footprints, phis, weights


def _model_params(name: str, level: Level) -> dict[str, Any]:
    return dict(QUICK_MODEL_PARAMS.get(name, {})) if level == "quick" else {}


def fit_layer_models(features: FeatureMatrix, y: np.ndarray, level: Level) -> dict[str, Any]:
    return {name: cls(**_model_params(name, level)).fit(features, y) for name, cls in LAYER_MODELS.items()}


def cross_validated_errors(features: FeatureMatrix, y: np.ndarray, *, model: str = "mixed", folds: int = 5,
                           seed: int = 0, level: Level = "full") -> np.ndarray:
    """Relative error of each kernel under ``folds``-fold cross-validation of a layer model."""
    n = len(y)
    errors = np.full(n, np.nan)
    if n < 2 * folds:
        return errors
    order = np.random.default_rng(seed).permutation(n)
    cls = LAYER_MODELS[model]
    for f in range(folds):
        test = order[f::folds]
        train = np.setdiff1d(order, test)
        sub = FeatureMatrix(features.names, features.values[train], tuple(features.rows[i] for i in train))
        fitted = cls(**_model_params(model, level)).fit(sub, y[train])
        tst = FeatureMatrix(features.names, features.values[test], tuple(features.rows[i] for i in test))
        errors[test] = np.abs(fitted.predict(tst) - y[test]) / y[test]
    return errors


# ---- the pipeline ---------------------------------------------------------------------------------------------
#: What a kernel's, block's or calibration chain's time is: the median of its fastest round. Interference from
#: other processes only ever adds time (and on a loaded machine whole rounds run in a slower mode), so the fastest
#: round is the best estimate of the unloaded machine; the pooled median, IQR and CV are stored alongside.
KERNEL_STATISTIC: Statistic = "fastest_round"

#: Rounds per kernel/block measurement (interleaved, see :func:`~nas_latency.bench.sweep.run_sweep`).
ROUNDS = {"quick": 2, "full": 3}


def check_timer(timer: str, *, threads: int, runtime: str) -> None:
    """The CPU timer measures one thread: refuse it with several threads or on a GPU."""
    if timer not in ("wall", "cpu"):
        raise InvalidInputError(f"timer must be 'wall' or 'cpu', got {timer!r}")
    if timer == "cpu" and (threads != 1 or runtime == "cuda"):
        raise InvalidInputError("the cpu timer measures one CPU thread: use it with --threads 1 and a CPU runtime")


def _protocols(level: Level, timer: Timer = "wall") -> tuple[MeasurementProtocol, MeasurementProtocol]:
    """(per-round protocol of kernels and blocks, protocol of whole networks)."""
    if level == "quick":
        kernels, networks = PROTOCOLS["quick"], PROTOCOLS["quick"]
    else:
        kernels = MeasurementProtocol(warmup_runs=2, warmup_s=0.01, max_time_s=0.1, max_samples=150)
        networks = PROTOCOLS["network"]
    return replace(kernels, timer=timer), replace(networks, timer=timer)


def onboard_device(options: DeviceOptions, store: Store, *, progress: Progress | None = None) -> DeviceReport:
    """Run the whole onboarding for this machine (see the module docstring)."""
    options.check()
    runner = make_runner(options.runtime, threads=options.threads)
    kernel_protocol, network_protocol = _protocols(options.level, options.timer)
    environment = environment_record(runtime=options.runtime, threads=options.threads, pin_cpus=options.pin_cpus,
                                     extra={"runner": runner.info(), "level": options.level, "timer": options.timer,
                                            "kernel_protocol": kernel_protocol.to_dict(),
                                            "network_protocol": network_protocol.to_dict()})
    report = DeviceReport(options.name, options.runtime, options.level, environment)
    rounds = options.adaptive_rounds if options.adaptive_rounds is not None else (1 if options.level == "quick" else 2)
    phase_start = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal phase_start
        now = time.perf_counter()
        report.phases_s[name] = now - phase_start
        phase_start = now

    rounds_per_item = ROUNDS[options.level]
    with execution_context(threads=options.threads, pin_cpus=options.pin_cpus):
        # 1. calibration
        calibration = run_sweep(calibration_items(), runner, kernel_protocol, rounds=2 * rounds_per_item,
                                progress=progress, label="calibration")
        if len(calibration.measured) != len(CALIBRATION_LENGTHS):
            raise FailedPreconditionError(f"calibration failed on {options.runtime}: {calibration.failed}")
        overhead = call_overhead_ms(CALIBRATION_LENGTHS, [latency_of(m.stats, KERNEL_STATISTIC)
                                                          for m in calibration.measured])
        report.overhead_ms = overhead
        phase("calibration")

        # 2. kernels, then blocks each next to its own layers
        kernels = kernel_sweep(options.level, seed=options.seed)
        kernel_result = run_sweep(kernels, runner, kernel_protocol, rounds=rounds_per_item, progress=progress,
                                  label="micro-kernels")
        phase("kernels")
        cold_result = run_sweep(cold_kernel_items(kernels), runner, kernel_protocol, rounds=rounds_per_item, chunk=4,
                                progress=progress, label="cold-weight micro-kernels")
        footprint_blocks = footprint_items(options.level) + context_items(options.level)
        chain_layers = unique_layers(footprint_blocks)
        footprint_phase = run_sweep(
            footprint_blocks + [kernel_item(layer, "footprint_layer") for layer in chain_layers]
            + cold_kernel_items([kernel_item(layer, "footprint_layer") for layer in chain_layers]),
            runner, kernel_protocol, rounds=rounds_per_item, chunk=8, progress=progress, label="footprint blocks")
        phase("cold")
        blocks = block_items(options.level, seed=options.seed)
        block_phase = run_sweep(with_block_layers(blocks), runner, kernel_protocol, rounds=rounds_per_item,
                                progress=progress, label="blocks and their layers")
        block_result = SweepResult([m for m in block_phase.measured if m.item.kind == "block"],
                                   [f for f in block_phase.failed if f[0].kind == "block"], block_phase.elapsed_s)
        block_layers = SweepResult([m for m in block_phase.measured if m.item.kind != "block"],
                                   [f for f in block_phase.failed if f[0].kind != "block"], 0.0)
        phase("blocks")

        # 3. adaptive resampling
        adaptive = SweepResult()
        per_round, per_kernel = (3, 1) if options.level == "quick" else (45, 2)
        for r in range(rounds):
            all_kernels = kernel_result.measured + block_layers.measured + adaptive.measured
            features, y, layers = kernel_dataset(all_kernels, overhead)
            errors = cross_validated_errors(features, y, seed=options.seed + r, level=options.level)
            if not np.isfinite(errors).any():
                break
            order = np.argsort(-np.nan_to_num(errors, nan=-1.0))
            worst = [layers[i] for i in order[:per_round] if np.isfinite(errors[i])]
            new_layers = adaptive_kernels(worst, per_kernel, np.random.default_rng(options.seed + 100 + r),
                                          exclude=features.rows)
            items = [kernel_item(layer, f"adaptive{r + 1}") for layer in new_layers]
            adaptive.extend(run_sweep(items, runner, kernel_protocol, rounds=rounds_per_item, progress=progress,
                                      label=f"adaptive round {r + 1}"))
        phase("adaptive")

        # 4. models: layer models on every kernel measurement (hot, and cold-weight twins), the mapping on blocks
        # vs their own layers, the footprint curve on the footprint blocks
        all_kernels = kernel_result.measured + block_layers.measured + adaptive.measured
        features, y, kernel_layers = kernel_dataset(all_kernels, overhead)
        layer_models = fit_layer_models(features, y, options.level)
        cold_features, cold_y = cold_dataset(features, y, kernel_layers, cold_result.measured, overhead)
        cold_models = fit_layer_models(cold_features, cold_y, options.level)
        chain_blocks = [m for m in footprint_phase.measured if m.item.kind == "block"]
        chain_kernels = [m for m in footprint_phase.measured if m.item.kind != "block"]
        context = FootprintModel(upper=1.0, default_curve="flat").fit(*context_points(
            [m for m in chain_blocks if m.item.origin == "context"], chain_kernels, overhead))
        footprint = FootprintModel().fit(*footprint_points(
            [m for m in chain_blocks if m.item.origin == "footprint"], chain_kernels, overhead, context))
        local = {layer_key(m.item.network.layers[0]): in_network_ms(latency_of(m.stats, KERNEL_STATISTIC), overhead)
                 for m in block_layers.measured}
        observations = block_observations(block_result.measured, local, overhead)
        mapping = MappingModel(runtime=options.runtime).fit(observations)
        stacked = {name: StackedNetworkModel.from_parts(model, mapping, overhead_ms=overhead, layer_name=name,
                                                        cold_model=cold_models[name], footprint=footprint,
                                                        context=context)
                   for name, model in layer_models.items()}
        cv_errors = cross_validated_errors(features, y, seed=options.seed + 99, level=options.level)
        if np.isfinite(cv_errors).any():
            report.kernel_cv_mape_pct["mixed"] = float(100 * np.nanmean(cv_errors))
        if len(mapping.block_rel_errors_):
            report.mapping_block_mape_pct = {
                "mapping": float(100 * mapping.block_rel_errors_.mean()),
                "sum_of_layers": float(100 * mapping.block_rel_errors_sum_.mean()),
            }
        phase("fit")

        # 5. signature set
        signature_result = SweepResult()
        if options.register:
            from nas_latency.predictor import Predictor

            predictor = Predictor(store=store)
            archs = predictor.signature_set(SIGNATURE_SPACE, options.signature_size)
            items = space_network_items(SIGNATURE_SPACE, archs)
            signature_result = run_sweep(items, runner, network_protocol, rounds=2, progress=progress,
                                         label="signature set (2 rounds)")
            if len(signature_result.measured) < 3:
                raise FailedPreconditionError(f"only {len(signature_result.measured)} signature networks could be "
                                              f"measured on {options.runtime}: {signature_result.failed[:3]}")
            measured = {m.item.key: m.stats.median_ms for m in signature_result.measured}
            report.signature = measured
            truth = np.array(list(measured.values()))
            networks = [m.item.network for m in signature_result.measured]
            from nas_latency.evaluate.metrics import summarize

            for name, model in stacked.items():
                summary = summarize(truth, model.predict_networks(networks))
                report.signature_check[name] = {"mape_pct": summary["mape_pct"], "spearman": summary["spearman"],
                                                "within_10pct": summary["within_10pct"]}
        phase("signature")

    # 6. store
    source = source_for(options.runtime)
    metadata = {"environment": environment, "overhead_ms": overhead, "bench_runtime": options.runtime,
                "bench_level": options.level, "bench_timer": options.timer}
    store.upsert_device(options.name, description=options.description or _describe(environment), metadata=metadata)
    store.replace_measurements(
        options.name, KERNEL_SPACE,
        measurement_rows(calibration.measured + kernel_result.measured + cold_result.measured + adaptive.measured,
                         environment, statistic=KERNEL_STATISTIC), source=source)
    store.replace_measurements(options.name, BLOCK_SPACE,
                               measurement_rows(block_phase.measured + footprint_phase.measured, environment,
                                                statistic=KERNEL_STATISTIC), source=source)
    for name, model in stacked.items():
        artifact = model.to_artifact()
        ref = store.put_artifact(ARTIFACT_SPACE, stacked_artifact_name(options.name, name), kind=STACKED_KIND,
                                 manifest=artifact.manifest(), blob=artifact.to_bytes())
        report.artifacts.append(f"{ref.space}/{ref.name} v{ref.version}")
    if signature_result.measured:  # last: a run stopped before this leaves no device registered without its models
        predictor.register_device(options.name, SIGNATURE_SPACE, report.signature,
                                  description=options.description or _describe(environment))
        store.add_measurements(options.name, SIGNATURE_SPACE,
                               measurement_rows(signature_result.measured, environment), source=source)
    phase("store")

    report.counts = {
        "kernels": len(kernel_result.measured), "adaptive_kernels": len(adaptive.measured),
        "cold_kernels": len(cold_result.measured), "footprint_blocks": footprint.n_blocks_,
        "context_blocks": context.n_blocks_,
        "block_layer_kernels": len(block_layers.measured),
        "blocks": len(block_result.measured), "mapping_blocks": len(observations),
        "signature_networks": len(signature_result.measured),
        "failed": sum(len(r.failed) for r in (calibration, kernel_result, cold_result, footprint_phase, block_phase,
                                              adaptive, signature_result)),
    }
    report.noise = {"calibration": calibration.noise(), "kernels": kernel_result.noise(),
                    "cold_kernels": cold_result.noise(), "footprint": footprint_phase.noise(),
                    "blocks": block_result.noise(), "block_layers": block_layers.noise(), "adaptive": adaptive.noise(),
                    "signature": signature_result.noise()}
    roof = layer_models["roofline"]
    report.roofline = {"peak_gflops": roof.peak_flops_per_ms_ / 1e6,
                       "bandwidth_gb_s": roof.bandwidth_bytes_per_ms_ / 1e6,
                       "layer_overhead_ms": roof.overhead_ms_}
    report.fusion_rules = mapping.rules()
    report.footprint_curve = footprint.curve()
    report.context_curve = context.curve()
    report.failures = [f"{item.key}: {why}" for r in (kernel_result, cold_result, footprint_phase, block_phase,
                                                      adaptive, signature_result)
                       for item, why in r.failed]
    return report


def _describe(environment: dict[str, Any]) -> str:
    runtime = str(environment.get("runtime"))
    version = environment.get("onnxruntime" if runtime == "onnxruntime" else "torch") or "?"
    return f"{environment.get('cpu_model')}; {runtime} {version}; {environment.get('threads')} thread(s)"


def load_stacked_models(store: Store, device: str, models: Sequence[str] | None = None
                        ) -> dict[str, StackedNetworkModel]:
    """The device's stacked network models (latest versions) from the store, by layer-model name."""
    check_device(device)
    prefix = stacked_artifact_name(device, "")
    infos = [i for i in store.list_artifacts(ARTIFACT_SPACE, latest_only=True) if i.name.startswith(prefix)]
    if not infos:
        raise NotFoundError(
            f"no bench models for device {device!r} in {store.url}; "
            f"run `nas-latency bench device --name {device}` first")
    stored_names = sorted(i.name[len(prefix):] for i in infos)
    if models is not None:
        unknown = sorted(set(models) - set(stored_names))
        if unknown:
            raise NotFoundError(f"device {device!r} has no bench model(s) {unknown}; it has {stored_names}")
    out: dict[str, StackedNetworkModel] = {}
    for info in sorted(infos, key=lambda i: list(LAYER_MODELS).index(i.name[len(prefix):])
                       if i.name[len(prefix):] in LAYER_MODELS else 99):
        name = info.name[len(prefix):]
        if models is not None and name not in models:
            continue
        stored = store.get_artifact(ARTIFACT_SPACE, info.name, info.version)
        out[name] = StackedNetworkModel.from_artifact(artifact_from_bytes(stored.blob, source=info.name),
                                                      source=f"{store.url} {info.name} v{info.version}")
    return out


def device_bench_info(store: Store, device: str) -> dict[str, Any]:
    """The metadata ``bench device`` recorded for ``device`` (runtime, overhead, environment)."""
    metadata = dict(store.get_device(device).metadata)
    if "bench_runtime" not in metadata:
        raise NotFoundError(f"device {device!r} was not onboarded with `nas-latency bench device`")
    return metadata


__all__ = [
    "ARTIFACT_SPACE", "BLOCK_SPACE", "KERNEL_SPACE", "NETWORK_SPACE", "BenchItem", "DeviceOptions", "DeviceReport",
    "device_bench_info", "load_stacked_models", "onboard_device", "source_for",
]
