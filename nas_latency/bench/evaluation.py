"""Evaluate a device's stacked models on whole networks measured on this machine and never used for fitting.

The networks: NAS-Bench-201 and FBNet samples (a seed of their own; the device's signature architectures and
the architectures whose layers seeded the micro-kernel prior are excluded) and the classic networks of
:mod:`nas_latency.bench.classic`. Each network is measured ``passes`` times, in separate passes over the whole
list (so load that changes over minutes shows up), and its latency is the mean of the pass medians.

Reported per model: MAPE, the share within ±10 %, Spearman and Kendall (all networks, and per group), next to the
measurement noise of the same networks: their within-pass CV, and the *test-retest* error between two passes (the
MAPE and ±10 % share of pass 2 against pass 1) — a model cannot be shown to be better than that floor. Written as
JSON, Markdown and a predicted-vs-measured PNG (one panel per model).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from nas_latency import __version__
from nas_latency.bench.block_items import space_network_items
from nas_latency.bench.classic import CLASSIC_NETWORKS, classic_network
from nas_latency.bench.device import (
    NETWORK_SPACE,
    SIGNATURE_SPACE,
    check_timer,
    device_bench_info,
    load_stacked_models,
    source_for,
)
from nas_latency.bench.items import BenchItem
from nas_latency.bench.protocol import PROTOCOLS, environment_record, execution_context
from nas_latency.bench.runners import make_runner
from nas_latency.bench.sweep import Progress, measurement_rows, run_sweep
from nas_latency.errors import FailedPreconditionError, InvalidInputError
from nas_latency.evaluate.metrics import summarize
from nas_latency.models.layer_mapping import MappingModel
from nas_latency.models.layer_stacked import StackedNetworkModel
from nas_latency.plotting import pyplot, save_figure
from nas_latency.store import Store

log = logging.getLogger(__name__)

PRIOR_SEED = 1234  # the seed kernel_items.prior_layers samples its architectures with
GROUPS = ("nasbench201", "fbnet", "classic")
TARGETS = {"mape_pct": 5.0, "within_10pct": 0.95, "spearman": 0.98}
FORMAT_VERSION = 1


@dataclass(frozen=True)
class EvaluationOptions:
    device: str
    n_nasbench201: int = 20
    n_fbnet: int = 16
    classic: tuple[str, ...] = tuple(CLASSIC_NETWORKS)
    seed: int = 2024
    passes: int = 2
    quick: bool = False
    models: tuple[str, ...] | None = None
    pin_cpus: tuple[int, ...] | None = None
    timer: str | None = None  # default: the timer the device was onboarded with

    def check(self) -> None:
        for name in ("n_nasbench201", "n_fbnet"):
            if getattr(self, name) < 0:
                raise InvalidInputError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.passes < 1:
            raise InvalidInputError(f"passes must be >= 1, got {self.passes}")
        unknown = sorted(set(self.classic) - set(CLASSIC_NETWORKS))
        if unknown:
            raise InvalidInputError(f"unknown classic networks {unknown}; known: {', '.join(CLASSIC_NETWORKS)}")
        if self.n_nasbench201 + self.n_fbnet + len(self.classic) < 3:
            raise InvalidInputError("evaluate at least 3 networks")


def evaluation_items(options: EvaluationOptions, exclude: set[str]) -> list[tuple[str, BenchItem]]:
    """``(group, item)`` for every evaluation network."""
    from search_spaces import get_space

    out: list[tuple[str, BenchItem]] = []
    for group, n in (("nasbench201", options.n_nasbench201), ("fbnet", options.n_fbnet)):
        if n == 0:
            continue
        space = get_space(group)
        banned = exclude | set(space.sample(40, seed=PRIOR_SEED))
        archs = [a for a in space.sample(n + len(banned), seed=options.seed) if a not in banned][:n]
        out += [(group, item) for item in space_network_items(group, archs)]
    for name in options.classic:
        network = classic_network(name)
        out.append(("classic", BenchItem(f"classic/{network.name}", "network", network, "classic")))
    return out


@dataclass
class EvaluationResult:
    device: str
    runtime: str
    environment: dict[str, Any]
    names: list[str]
    groups: list[str]
    macs: list[int]
    passes_ms: np.ndarray  # (passes, n)
    cv: np.ndarray  # (passes, n) within-pass CV
    stable: np.ndarray  # (passes, n)
    cpu_passes_ms: np.ndarray  # (passes, n) median CPU time of the measuring thread (NaN where not reported)
    cpu_share: np.ndarray  # (passes, n) CPU time / wall time (NaN where not reported)
    predicted_ms: dict[str, np.ndarray]
    failures: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def measured_ms(self) -> np.ndarray:
        """The reference latency: the mean over passes of each pass's median."""
        return self.passes_ms.mean(axis=0)

    @property
    def fastest_pass_ms(self) -> np.ndarray:
        """Each network's fastest pass median: the statistic the kernels are fitted on (closest to an unloaded
        machine when other processes slow some passes down)."""
        return self.passes_ms.min(axis=0)

    def noise(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "cv_median": float(np.median(self.cv)), "cv_p90": float(np.percentile(self.cv, 90)),
            "cv_max": float(self.cv.max()), "stable_fraction": float(self.stable.mean()), "passes": len(self.passes_ms),
        }
        if np.isfinite(self.cpu_share).all():
            out.update(cpu_share_median=float(np.median(self.cpu_share)), cpu_share_min=float(self.cpu_share.min()))
        if len(self.passes_ms) >= 2:
            first, second = self.passes_ms[0], self.passes_ms[1]
            retest = summarize(first, second)
            out.update(retest_mape_pct=retest["mape_pct"], retest_within_10pct=retest["within_10pct"],
                       retest_spearman=retest["spearman"],
                       retest_max_pct=float(100 * np.max(np.abs(second - first) / first)))
        return out

    def metrics(self, *, reference: str = "median") -> dict[str, dict[str, Any]]:
        """Per model: the summary metrics (all networks and per group) against ``reference`` (``"median"``: the
        mean of the pass medians; ``"fastest_pass"``; ``"cpu"``: the mean of the pass medians of the measuring
        thread's CPU time, empty if the runtime does not report it)."""
        truth = {"median": self.measured_ms, "fastest_pass": self.fastest_pass_ms,
                 "cpu": self.cpu_passes_ms.mean(axis=0)}[reference]
        if not np.all(np.isfinite(truth)):
            return {}
        groups = np.asarray(self.groups)
        out: dict[str, dict[str, Any]] = {}
        for name, predicted in self.predicted_ms.items():
            row: dict[str, Any] = dict(summarize(truth, predicted))
            for group in GROUPS:
                rows = groups == group
                if rows.sum() >= 2:
                    g = summarize(truth[rows], predicted[rows])
                    row[f"{group}.mape_pct"] = g["mape_pct"]
                    row[f"{group}.within_10pct"] = g["within_10pct"]
                    row[f"{group}.spearman"] = g["spearman"]
                elif rows.sum() == 1:
                    row[f"{group}.mape_pct"] = float(100 * abs(predicted[rows][0] - truth[rows][0]) / truth[rows][0])
            row["meets_targets"] = bool(row["mape_pct"] <= TARGETS["mape_pct"]
                                        and row["within_10pct"] >= TARGETS["within_10pct"]
                                        and row["spearman"] >= TARGETS["spearman"])
            out[name] = row
        return out

    def best_model(self) -> str:
        metrics = self.metrics()
        return min(metrics, key=lambda m: metrics[m]["mape_pct"])

    def to_document(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION, "package_version": __version__, "device": self.device,
            "runtime": self.runtime, "environment": self.environment, "n_networks": len(self.names),
            "groups": {g: int(sum(1 for x in self.groups if x == g)) for g in GROUPS},
            "targets": TARGETS, "noise": self.noise(), "metrics": self.metrics(), "best_model": self.best_model(),
            "metrics_vs_fastest_pass": self.metrics(reference="fastest_pass"),
            "metrics_vs_cpu_time": self.metrics(reference="cpu"),
            "networks": [
                {"name": n, "group": g, "macs": int(m), "measured_ms": float(t),
                 "fastest_pass_ms": float(self.fastest_pass_ms[i]),
                 "cpu_passes_ms": [float(v) for v in self.cpu_passes_ms[:, i]],
                 "cpu_share": [float(v) for v in self.cpu_share[:, i]],
                 "passes_ms": [float(v) for v in self.passes_ms[:, i]], "cv": [float(v) for v in self.cv[:, i]],
                 **{f"pred.{model}": float(p[i]) for model, p in self.predicted_ms.items()}}
                for i, (n, g, m, t) in enumerate(zip(self.names, self.groups, self.macs, self.measured_ms))
            ],
            "failures": self.failures, "elapsed_s": round(self.elapsed_s, 1),
        }


def _diagnostic_models(stacked: dict[str, StackedNetworkModel]) -> dict[str, StackedNetworkModel]:
    """Variants of the mixed model that show what each part contributes: ANNETTE's discrete mapping, no mapping at
    all (every weight 1), and no footprint corrections (hot micro-kernels only)."""
    name = "mixed" if "mixed" in stacked else next(iter(stacked))
    base = stacked[name]
    no_mapping = MappingModel(runtime="torch").fit([])

    def variant(mapping: MappingModel, *, weighting: str = "learned", cold: bool = True) -> StackedNetworkModel:
        return StackedNetworkModel.from_parts(
            base.layer_model_, mapping, overhead_ms=base.overhead_ms_, layer_name=name,
            weighting=weighting,  # type: ignore[arg-type]
            cold_model=base.cold_model_ if cold else None, footprint=base.footprint_ if cold else None,
            context=base.context_ if cold else None)

    return {
        f"{name}/discrete": variant(base.mapping_, weighting="discrete"),
        f"{name}/no_mapping": variant(no_mapping),
        f"{name}/hot_only": variant(base.mapping_, cold=False),
    }


def run_evaluation(store: Store, options: EvaluationOptions, *, progress: Progress | None = None) -> EvaluationResult:
    """Measure the evaluation networks with the device's runtime and compare every stacked model with them."""
    options.check()
    import time

    start = time.perf_counter()
    info = device_bench_info(store, options.device)
    runtime = str(info["bench_runtime"])
    threads = int(info.get("environment", {}).get("threads", 1))
    timer = options.timer or str(info.get("bench_timer", "wall"))
    check_timer(timer, threads=threads, runtime=runtime)
    stacked = load_stacked_models(store, options.device, options.models)
    models = {**stacked, **_diagnostic_models(stacked)}
    exclude = {m.arch for m in store.measurements(options.device, SIGNATURE_SPACE)}
    items = evaluation_items(options, exclude)
    runner = make_runner(runtime, threads=threads)
    protocol = replace(PROTOCOLS["quick"] if options.quick else PROTOCOLS["network"], timer=timer)
    environment = environment_record(runtime=runtime, threads=threads, pin_cpus=options.pin_cpus,
                                     extra={"runner": runner.info(), "network_protocol": protocol.to_dict(),
                                            "passes": options.passes, "timer": timer})
    passes = []
    with execution_context(threads=threads, pin_cpus=options.pin_cpus):
        for p in range(options.passes):
            passes.append(run_sweep([item for _, item in items], runner, protocol, progress=progress,
                                    label=f"networks, pass {p + 1}/{options.passes}"))
    environment["loadavg_after"] = environment_record(runtime=runtime, threads=threads)["loadavg"]
    ok = set.intersection(*({m.item.key for m in r.measured} for r in passes))
    failures = sorted({f"{item.key}: {why}" for r in passes for item, why in r.failed})
    kept = [(g, item) for g, item in items if item.key in ok]
    if len(kept) < 3:
        raise FailedPreconditionError(f"only {len(kept)} evaluation networks could be measured: {failures[:3]}")
    per_pass = [r.by_key() for r in passes]
    networks = [item.network for _, item in kept]
    result = EvaluationResult(
        device=options.device, runtime=runtime, environment=environment,
        names=[item.key for _, item in kept], groups=[g for g, _ in kept], macs=[n.macs for n in networks],
        passes_ms=np.array([[stats[item.key].median_ms for _, item in kept] for stats in per_pass]),
        cv=np.array([[stats[item.key].cv for _, item in kept] for stats in per_pass]),
        stable=np.array([[stats[item.key].stable for _, item in kept] for stats in per_pass]),
        cpu_passes_ms=np.array([[_nan(stats[item.key].cpu_median_ms) for _, item in kept] for stats in per_pass]),
        cpu_share=np.array([[_nan(stats[item.key].cpu_share) for _, item in kept] for stats in per_pass]),
        predicted_ms={name: model.predict_networks(networks) for name, model in models.items()},
        failures=failures,
    )
    # the measurements go to the store (first pass's statistics, the mean latency over passes)
    rows = measurement_rows(passes[0].measured, environment, arch=lambda item: _stored_arch(item))
    mean = dict(zip(result.names, result.measured_ms))
    rows = [type(r)(r.arch, float(mean[_key_of(r.arch)]), r.n_runs, r.iqr_ms, r.cv, r.environment)
            for r in rows if _key_of(r.arch) in mean]
    store.add_measurements(options.device, NETWORK_SPACE, rows, source=source_for(runtime))
    result.elapsed_s = time.perf_counter() - start
    return result


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _stored_arch(item: BenchItem) -> str:
    if item.origin.startswith("space:"):
        return f"{item.origin[len('space:'):]}/{item.key}"
    return item.key


def _key_of(arch: str) -> str:
    return arch if arch.startswith("classic/") else arch.split("/", 1)[1]


# ---- reports ------------------------------------------------------------------------------------------------
def _fmt(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == "pct":
        return f"{value:.2f}"
    if kind == "share":
        return f"{100 * value:.1f} %"
    return f"{value:.4f}"


def render_markdown(result: EvaluationResult, *, png_name: str | None = None, command: str | None = None) -> str:
    doc = result.to_document()
    noise = doc["noise"]
    metrics = doc["metrics"]
    env = result.environment
    lines = [
        f"# Layer models on this machine: device `{result.device}` ({result.runtime})",
        "",
        f"{len(result.names)} whole networks never used for fitting "
        f"({', '.join(f'{n} {g}' for g, n in doc['groups'].items())}), "
        f"measured in {noise['passes']} pass(es) on {env.get('cpu_model')} with {env.get('threads')} thread(s); "
        f"load average {env.get('loadavg')} before, {env.get('loadavg_after')} after. "
        "The models were fitted only on micro-kernels and multi-layer blocks.",
        "",
    ]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [
        "## Measurement noise of these networks",
        "",
        f"- within-pass coefficient of variation: median {_fmt(100 * noise['cv_median'], 'pct')} %, "
        f"90th percentile {_fmt(100 * noise['cv_p90'], 'pct')} %, max {_fmt(100 * noise['cv_max'], 'pct')} %",
        f"- measurements that reached the stability criterion: {_fmt(noise['stable_fraction'], 'share')}",
    ]
    if "cpu_share_median" in noise:
        lines.append(
            f"- CPU share of the measuring thread (CPU time / wall time; 1.0 = never descheduled): median "
            f"{noise['cpu_share_median']:.3f}, lowest {noise['cpu_share_min']:.3f}")
    if "retest_mape_pct" in noise:
        lines.append(
            f"- test-retest (pass 2 vs pass 1): MAPE {_fmt(noise['retest_mape_pct'], 'pct')} %, within ±10 % "
            f"{_fmt(noise['retest_within_10pct'], 'share')}, Spearman {_fmt(noise['retest_spearman'], 'num')}, "
            f"worst {_fmt(noise['retest_max_pct'], 'pct')} % — the floor below which a model's error cannot be "
            "verified on this machine now")
    lines += [
        "",
        f"## Models (targets: MAPE ≤ {TARGETS['mape_pct']} %, within ±10 % ≥ {100 * TARGETS['within_10pct']:.0f} %, "
        f"Spearman ≥ {TARGETS['spearman']})",
        "",
        "| model | MAPE % | within ±10 % | Spearman | Kendall | NB201 MAPE % | FBNet MAPE % | classic MAPE % "
        "| targets |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in metrics.items():
        lines.append(
            f"| {name} | {_fmt(row['mape_pct'], 'pct')} | {_fmt(row['within_10pct'], 'share')} | "
            f"{_fmt(row['spearman'], 'num')} | {_fmt(row['kendall'], 'num')} | "
            f"{_fmt(row.get('nasbench201.mape_pct'), 'pct')} | {_fmt(row.get('fbnet.mape_pct'), 'pct')} | "
            f"{_fmt(row.get('classic.mape_pct'), 'pct')} | {'met' if row['meets_targets'] else 'not met'} |")
    if noise["passes"] >= 2:
        lines += _reference_table(
            "Against each network's fastest pass (the statistic the micro-kernels are fitted on, the closest to an "
            "unloaded machine when other processes slow some passes down):",
            result.metrics(reference="fastest_pass"))
    cpu_metrics = result.metrics(reference="cpu")
    if cpu_metrics and result.environment.get("timer") != "cpu":
        lines += _reference_table(
            "Against the CPU time of the measuring thread (one thread: the wall time minus the time it waited while "
            "other processes ran):",
            cpu_metrics)
    lines += [
        "",
        "`mixed/discrete` is the mixed layer model under ANNETTE's discrete mapping (a fused group costs its main "
        "layer); `mixed/no_mapping` sums every layer (weights 1: no fusion, no in-context effects); "
        "`mixed/hot_only` drops the footprint corrections (cold weights and context slowdown: micro-kernels as timed "
        "in a loop, weights and buffers in cache). "
        "The gaps to `mixed` are what the learned mapping and the footprint model contribute.",
        "",
        "## Networks",
        "",
        "| network | group | GMACs | measured ms | CV % | " + " | ".join(f"{m} ms" for m in ("mixed", "lookup")
                                                                           if m in result.predicted_ms) + " |",
        "|---|---|---|---|---|" + "---|" * sum(1 for m in ("mixed", "lookup") if m in result.predicted_ms),
    ]
    for i, name in enumerate(result.names):
        short = name if len(name) <= 48 else name[:45] + "..."
        preds = " | ".join(f"{result.predicted_ms[m][i]:.3f}" for m in ("mixed", "lookup") if m in result.predicted_ms)
        lines.append(f"| `{short}` | {result.groups[i]} | {result.macs[i] / 1e9:.3f} | {result.measured_ms[i]:.3f} | "
                     f"{100 * result.cv[0, i]:.2f} | {preds} |")
    if result.failures:
        lines += ["", "## Not measured", ""] + [f"- {f}" for f in result.failures]
    if png_name:
        lines += ["", f"![predicted vs measured]({png_name})"]
    return "\n".join(lines) + "\n"


def _reference_table(intro: str, metrics: dict[str, dict[str, Any]]) -> list[str]:
    """Report lines: ``intro`` and each model's MAPE / within ±10 % / Spearman against another reference."""
    lines = ["", intro, "", "| model | MAPE % | within ±10 % | Spearman |", "|---|---|---|---|"]
    return lines + [f"| {name} | {_fmt(row['mape_pct'], 'pct')} | {_fmt(row['within_10pct'], 'share')} | "
                    f"{_fmt(row['spearman'], 'num')} |" for name, row in metrics.items()]


def write_plot(result: EvaluationResult, path: str | Path) -> Path:
    plt = pyplot()
    from matplotlib.ticker import FuncFormatter, NullFormatter

    models = list(result.predicted_ms)
    cols = min(4, len(models))
    rows = math.ceil(len(models) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.2 * rows), squeeze=False)
    truth = result.measured_ms
    groups = np.asarray(result.groups)
    metrics = result.metrics()
    colours = {"nasbench201": "tab:blue", "fbnet": "tab:orange", "classic": "tab:green"}
    lo, hi = float(truth.min()) * 0.7, float(truth.max()) * 1.4
    for ax in axes.flat[len(models):]:
        ax.axis("off")
    for ax, model in zip(axes.flat, models):
        pred = result.predicted_ms[model]
        for group, colour in colours.items():
            rows_g = groups == group
            if rows_g.any():
                ax.scatter(truth[rows_g], pred[rows_g], s=12, c=colour, label=group, alpha=0.8)
        xs = np.array([lo, hi])
        ax.plot(xs, xs, "k-", lw=0.8)
        ax.fill_between(xs, xs * 0.9, xs * 1.1, color="grey", alpha=0.2, lw=0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_minor_formatter(NullFormatter())
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        m = metrics[model]
        ax.set_title(f"{model}\nMAPE {m['mape_pct']:.1f}%  ±10% {100 * m['within_10pct']:.0f}%  ρ {m['spearman']:.3f}",
                     fontsize=8)
        ax.set_xlabel("measured ms", fontsize=8)
        ax.set_ylabel("predicted ms", fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7, loc="upper left")
    noise = result.noise()
    fig.suptitle(f"{result.device} ({result.runtime}): median CV {100 * noise['cv_median']:.1f}%"
                 + (f", test-retest MAPE {noise['retest_mape_pct']:.1f}%" if "retest_mape_pct" in noise else ""),
                 fontsize=9)
    return save_figure(fig, path, dpi=110)


def write_report(result: EvaluationResult, out_dir: str | Path, *, plot: bool = True,
                 command: str | None = None) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bench-eval-{result.device}"
    written = []
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps(result.to_document(), indent=2, default=float) + "\n")
    written.append(json_path)
    png_name = None
    if plot:
        try:
            written.append(write_plot(result, out / f"{stem}.png"))
            png_name = f"{stem}.png"
        except ImportError as exc:  # pragma: no cover - matplotlib is installed in the dev environment
            log.warning("no plot: matplotlib is not available (%s)", exc)
    md_path = out / f"{stem}.md"
    md_path.write_text(render_markdown(result, png_name=png_name, command=command))
    written.append(md_path)
    return written


def model_rows(result: EvaluationResult) -> list[dict[str, Any]]:
    """One row per model for the CLI table."""
    noise = result.noise()
    fastest = result.metrics(reference="fastest_pass") if noise["passes"] >= 2 else {}
    cpu = result.metrics(reference="cpu")
    rows = []
    for name, row in result.metrics().items():
        rows.append({
            "model": name, "mape_pct": round(row["mape_pct"], 3), "within_10pct": round(row["within_10pct"], 4),
            "spearman": round(row["spearman"], 4), "kendall": round(row["kendall"], 4),
            "nb201_mape_pct": _round(row.get("nasbench201.mape_pct")),
            "fbnet_mape_pct": _round(row.get("fbnet.mape_pct")),
            "classic_mape_pct": _round(row.get("classic.mape_pct")), "meets_targets": row["meets_targets"],
            "mape_vs_fastest_pct": _round(fastest[name]["mape_pct"]) if name in fastest else None,
            "mape_vs_cpu_pct": _round(cpu[name]["mape_pct"]) if name in cpu else None,
            "cv_median": round(noise["cv_median"], 4), "retest_mape_pct": _round(noise.get("retest_mape_pct")),
            "cpu_share_median": _round(noise.get("cpu_share_median")),
        })
    return rows


def _round(value: Any) -> Any:
    return None if value is None else round(float(value), 3)


__all__ = ["EvaluationOptions", "EvaluationResult", "model_rows", "render_markdown", "run_evaluation",
           "write_plot", "write_report"]
