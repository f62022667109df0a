"""``nas-latency evaluate``: leave-device-out evaluation of cross-device models on the bundled measurements.

Per-device table and means on stdout (``--format table|json|csv``), progress on stderr, and a report in
``--out``: ``evaluate_<space>_k<K>.md``, ``.json`` and a predicted-vs-measured ``.png`` of the best model.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np

from nas_latency.commands.common import add_format_argument, write_rows
from nas_latency.errors import InvalidInputError

#: The baseline every run includes (its row is always in the table).
BASELINE_MODEL = "flops_xdev"
#: Compared by default, besides the baseline and the model the space ships.
DEFAULT_MODELS = ("nnls_mix", "blr")
METRIC_COLUMNS = ("spearman", "kendall", "mape_pct", "within_10pct", "r2")
#: what `--score-against` accepts
SCORED_AGAINST = ("measured", "drift_removed")
#: the columns `--drift` prints per device
DRIFT_COLUMNS = ("n_measured", "lag1_autocorrelation", "residual_std_log", "drift_std_log", "largest_drift_log",
                 "drift_share")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="leave-device-out evaluation of latency models on the bundled measurements",
        description="For each held-out device group: fit on the other devices, pick K signature archs without the "
        "held-out latencies, adapt on the held-out device's latencies at them, predict every arch and score "
        "(Spearman, Kendall tau-b, MAPE, within ±10 %, R² in ms; NAS-Bench-201 and FBNet also on HELP's query "
        "set). Repeated over signature seeds. The FLOPs baseline is always included.",
    )
    parser.add_argument("--space", required=True, help="nasbench201, fbnet or ganesan_mobile")
    parser.add_argument("--budget", type=int, metavar="K",
                        help="signature size (at least 3; required unless --ceiling or --drift)")
    parser.add_argument(
        "--models", metavar="SPECS",
        help="comma-separated model specs, e.g. blr,nnls_mix,degenerate_aware(blr) (default: nnls_mix, blr and "
        f"the model the space ships); {BASELINE_MODEL} is always added",
    )
    parser.add_argument("--seeds", type=int, default=3, help="number of signature seeds, 0..N-1 (default 3)")
    parser.add_argument("--signature-method", metavar="METHOD",
                        help="how signature archs are chosen on the training devices: random, mutual_information, "
                             "spearman_greedy, kmedoids, informative (default: the one `signature` ships)")
    parser.add_argument("--holdout", metavar="NAMES",
                        help="comma-separated device groups (or devices) to hold out (default: every group)")
    parser.add_argument("--exclude-same", metavar="FACT",
                        help="also leave out of training every device whose FACT (e.g. kind: GPU, CPU, mobile; "
                             "several joined by +, e.g. cpu+max_freq_ghz) equals the held-out device's: onboarding "
                             "an unseen kind of hardware; devices lacking FACT train none")
    parser.add_argument("--ceiling", action="store_true",
                        help="instead: each device's in-device ceiling, a model (--ceiling-model) fitted by 5-fold "
                             "cross-validation on ALL of that device's measurements (no report files)")
    parser.add_argument("--ceiling-model", choices=("ridge", "lightgbm"), default="ridge",
                        help="with --ceiling: the in-device model, the linear design of the cross-device models "
                             "(ridge, default) or gradient-boosted trees (lightgbm: interactions and thresholds)")
    parser.add_argument("--drift", action="store_true",
                        help="instead: each device's drift along the order its architectures were measured in (the "
                             "benchmark index): lag-1 autocorrelation of its in-device residuals, their std, the "
                             "std of their running median over 101 measurements, and its share (no report files)")
    parser.add_argument("--retest", action="store_true",
                        help="nasbench201: alone, how well a second measurement of the same network reproduces the "
                             "first on each device (the archs that spell the same network twice, each scored "
                             "against its twin's measurement; no report files); with --budget, also score the "
                             "leave-device-out run on those archs (the 'twins' set)")
    parser.add_argument("--nested-choice", action="store_true",
                        help="also score a model chosen per held-out device among --models (not the FLOPs "
                             "baseline) by a leave-device-out run on its training devices alone: what choosing "
                             "the model is worth without seeing the held-out device (one inner run per device)")
    parser.add_argument("--score-against", choices=SCORED_AGAINST, default="measured",
                        help="score the leave-device-out predictions against the measured latencies (default) or "
                             "against them with each device's drift along the measurement order removed "
                             "(drift_removed; training and onboarding still use the measured ones)")
    parser.add_argument("--run-statistic", choices=("published", "median"), default="published",
                        help="ganesan_mobile only: 'median' trains and scores on the median of each network's 30 "
                             "bundled runs per phone file instead of the published mean (which keeps the warm-up "
                             "run and throttling spikes); default: published")
    parser.add_argument("--scale-held-out", type=float, default=1.0, metavar="F",
                        help="multiply each held-out device's latencies (the signature measurements it is onboarded "
                             "with and those it is scored against) by F: the same device F times slower (F > 1) or "
                             "faster, the training devices as measured; a model whose rankings do not depend on a "
                             "device's overall speed scores the same for every F (default 1)")
    parser.add_argument("--spike-held-out", type=float, default=1.0, metavar="F",
                        help="multiply one of each held-out device's K signature measurements (drawn per seed and "
                             "device) by F, as a throttled or preempted run would be; scored against the latencies "
                             "as measured (default 1: none)")
    parser.add_argument("--noise-held-out", type=float, default=0.0, metavar="SIGMA",
                        help="multiply each of each held-out device's K signature measurements by exp(SIGMA z), z "
                             "standard normal drawn per seed and device: timing noise of about ±SIGMA (0.05: ±5 %%); "
                             "scored against the latencies as measured (default 0: none)")
    parser.add_argument("--simulated-devices", type=int, default=0, metavar="N",
                        help="instead of the bundled devices, hold out N simulated accelerators (a roofline per "
                             "layer plus a launch overhead, parameters drawn at random; every second one prunes the "
                             "layers whose values are not read), onboarded by the models fitted on every bundled "
                             "device; see nas_latency.evaluate.simulated (default 0: none)")
    parser.add_argument("--out", default="reports", metavar="DIR", help="report directory (default: reports/)")
    parser.add_argument("--no-plot", action="store_true", help="do not write the predicted-vs-measured PNG")
    add_format_argument(parser)
    parser.set_defaults(handler=run)


# ---- model specs ------------------------------------------------------------------------------------------------
def split_specs(text: str) -> list[str]:
    """Split ``a,b(c,d),e`` on the commas outside parentheses; blanks are dropped, duplicates removed."""
    parts: list[str] = []
    depth, current = 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise InvalidInputError(f"--models: unbalanced ')' in {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise InvalidInputError(f"--models: unbalanced '(' in {text!r}")
    parts.append("".join(current).strip())
    return list(dict.fromkeys(p.replace(" ", "") for p in parts if p))


def model_factory(spec: str) -> Callable[[], Any]:
    """A factory of unfitted cross-device models for ``spec`` (``nas_latency.models.specs``); the spec is built
    once here so that an unknown model fails before any work (``NotFoundError``/``InvalidInputError``, exit 2)."""
    from nas_latency.models.base import CrossDeviceModel
    from nas_latency.models.specs import build_model

    probe = build_model(spec)
    if not isinstance(probe, CrossDeviceModel):
        raise InvalidInputError(f"model {spec!r} is a {type(probe).__name__}, not a cross-device model; "
                                "evaluate needs models that adapt to a new device")
    return lambda: build_model(spec)


def resolve_models(space: str, text: str | None) -> dict[str, Callable[[], Any]]:
    specs = split_specs(text) if text is not None else list(DEFAULT_MODELS) + _shipped_spec(space)
    if text is not None and not specs:
        raise InvalidInputError("--models is empty")
    ordered = [BASELINE_MODEL] + [s for s in specs if s != BASELINE_MODEL]
    return {spec: model_factory(spec) for spec in dict.fromkeys(ordered)}


def _shipped_spec(space: str) -> list[str]:
    try:
        from nas_latency.builtin_models import DEFAULT_MODEL_SPECS
    except ImportError:
        return []
    spec = DEFAULT_MODEL_SPECS.get(space)
    return [spec] if spec else []


# ---- progress ---------------------------------------------------------------------------------------------------
class _Progress:
    """A tqdm bar on stderr (results stay on stdout)."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self._bar: Any = None

    def __call__(self, done: int, total: int, message: str) -> None:
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=total, file=sys.stderr, desc=self.desc, mininterval=0.5, leave=True)
        self._bar.set_postfix_str(message, refresh=False)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


# ---- output rows ------------------------------------------------------------------------------------------------
def result_rows(result: Any) -> list[dict[str, Any]]:
    """Per model and set: a row per held-out device (mean over seeds, ``*_std`` the std), then ``MEAN`` and
    ``WORST`` rows (the per-seed mean / worst over devices, as mean and std over seeds)."""
    per_device = result.per_device()
    summary = {(r["model"], r["set"]): r for r in result.summary()}
    rows: list[dict[str, Any]] = []
    for model in result.models:
        for scoring in result.scoring_sets:
            for r in per_device:
                if r["model"] == model and r["set"] == scoring:
                    rows.append(r)
            s = summary.get((model, scoring))
            if s is None:
                continue
            for label, suffix in (("MEAN", "mean"), ("WORST", "worst")):
                row: dict[str, Any] = {"model": model, "set": scoring, "device": label, "group": "",
                                       "n_scored": ""}
                for key in METRIC_COLUMNS:
                    row[key] = s[f"{key}_{suffix}"]
                    row[f"{key}_std"] = s[f"{key}_{suffix}_std"]
                rows.append(row)
    return rows


def _fmt(value: Any, key: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.1f}" if key == "mape_pct" else f"{value:.3f}"


def _write_table(result: Any) -> None:
    rows = result_rows(result)
    columns = ["model", "set", "device", "n_scored", *METRIC_COLUMNS]
    device_rows = [
        {**{c: r[c] for c in ("model", "set", "device", "n_scored")}, **{k: _fmt(r[k], k) for k in METRIC_COLUMNS}}
        for r in rows if r["device"] not in ("MEAN", "WORST")
    ]
    write_rows(device_rows, columns, "table")
    sys.stdout.write(f"\nmean and worst device over {len(result.seeds)} signature seed(s) (mean ± std):\n")
    summary_rows = [
        {"model": r["model"], "set": r["set"], "device": r["device"],
         **{k: f"{_fmt(r[k], k)} ± {_fmt(r[f'{k}_std'], k)}" for k in METRIC_COLUMNS}}
        for r in rows if r["device"] in ("MEAN", "WORST")
    ]
    write_rows(summary_rows, ["model", "set", "device", *METRIC_COLUMNS], "table")
    calibration = result.calibration()
    if calibration:
        sys.stdout.write("\npredictive intervals ln ŷ ± z σ: share of measured latencies inside, mean over devices "
                         "and seeds (nominal 0.68 / 0.95):\n")
        write_rows([{"model": r["model"], "set": r["set"], "within_1sigma": f"{r['coverage_68']:.3f}",
                     "within_1.96sigma": f"{r['coverage_95']:.3f}", "median_sigma": f"{r['median_std_log']:.3f}"}
                    for r in calibration], ["model", "set", "within_1sigma", "within_1.96sigma", "median_sigma"],
                   "table")


def _with_simulated_devices(dataset: Any, n: int, selector: Any, budget: int,
                            seeds: Sequence[int]) -> tuple[Any, list[str]]:
    """The dataset with ``n`` simulated accelerators (:mod:`nas_latency.evaluate.simulated`) and the hold-out list
    that holds them out. They are measured on the signature archs the run will ask for (the selector sees the
    bundled devices only, the training devices of every simulated one), HELP's query range and a seeded sample."""
    from nas_latency.evaluate.simulated import (SIMULATED_GROUP, draw_accelerators, simulated_rows,
                                                with_simulated_devices)
    from search_spaces import get_space

    devices = draw_accelerators(n)
    required = sorted({arch for seed in seeds for arch in selector(dataset, budget, seed)})
    rows = simulated_rows(dataset, required)
    print(f"simulating {n} accelerators on {len(rows)} of {len(dataset.archs)} {dataset.space} archs",
          file=sys.stderr)
    space = get_space(dataset.space)
    networks = [space.to_ir(dataset.archs[i]) for i in rows]
    return with_simulated_devices(dataset, devices, rows, networks), [SIMULATED_GROUP]


# ---- the command ------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    import json

    from nas_latency.evaluate.datasets import load_latency_dataset
    from nas_latency.evaluate.protocols import default_featurizer, leave_device_out
    from nas_latency.evaluate.report import result_document, write_report
    from search_spaces import get_space

    if args.ceiling_model != "ridge" and not args.ceiling:
        raise InvalidInputError("--ceiling-model goes with --ceiling")
    if args.ceiling and args.drift:
        raise InvalidInputError("--ceiling and --drift are separate reports; give one")
    if args.score_against != "measured" and (args.ceiling or args.drift):
        raise InvalidInputError("--score-against goes with a leave-device-out run (--budget K), not with "
                                "--ceiling or --drift")
    for flag, factor in (("--scale-held-out", args.scale_held_out), ("--spike-held-out", args.spike_held_out)):
        if not (math.isfinite(factor) and factor > 0):
            raise InvalidInputError(f"{flag} must be a positive number, got {factor}")
    if not (math.isfinite(args.noise_held_out) and args.noise_held_out >= 0):
        raise InvalidInputError(f"--noise-held-out must be a log standard deviation >= 0, got {args.noise_held_out}")
    perturbed = [flag for flag, on in (("--scale-held-out", args.scale_held_out != 1.0),
                                       ("--spike-held-out", args.spike_held_out != 1.0),
                                       ("--noise-held-out", args.noise_held_out > 0)) if on]
    if perturbed and (args.ceiling or args.drift or args.nested_choice or args.budget is None):
        raise InvalidInputError(f"{perturbed[0]} goes with a plain leave-device-out run (--budget K), not with "
                                "--ceiling, --drift, --nested-choice or --retest alone")
    if args.nested_choice and (args.ceiling or args.drift or args.budget is None):
        raise InvalidInputError("--nested-choice goes with a leave-device-out run (--budget K)")
    if args.simulated_devices < 0:
        raise InvalidInputError(f"--simulated-devices must be a number of devices >= 0, got {args.simulated_devices}")
    if args.simulated_devices:
        alone = [flag for flag, on in (("--ceiling", args.ceiling), ("--drift", args.drift), ("--retest", args.retest),
                                       ("--nested-choice", args.nested_choice), ("--holdout", args.holdout),
                                       ("--exclude-same", args.exclude_same),
                                       ("--score-against", args.score_against != "measured"),
                                       ("--run-statistic", args.run_statistic != "published"),
                                       ("--budget", args.budget is None)) if on]
        if alone:
            raise InvalidInputError(f"--simulated-devices holds out the simulated devices, trained on every bundled "
                                    f"one: it goes with --budget K, not with {alone[0]}")
    if args.retest and (args.ceiling or args.drift):
        raise InvalidInputError("--retest goes alone or with a leave-device-out run (--budget K), not with "
                                "--ceiling or --drift")
    if args.retest and args.budget is None:
        if args.score_against != "measured":
            raise InvalidInputError("--score-against goes with a leave-device-out run (--budget K)")
        return run_retest(get_space(args.space).name, args.format)
    if args.ceiling:
        return run_ceiling(get_space(args.space).name, args.format, args.run_statistic, args.ceiling_model)
    if args.drift:
        return run_drift(get_space(args.space).name, args.format, args.run_statistic)
    if args.budget is None:
        raise InvalidInputError("--budget K is required (the signature size), except with --ceiling, --drift or "
                                "--retest")
    if args.budget < 3:
        raise InvalidInputError(f"--budget must be at least 3 signature measurements, got {args.budget}")
    if args.seeds < 1:
        raise InvalidInputError(f"--seeds must be at least 1, got {args.seeds}")
    space = get_space(args.space).name  # NotFoundError (exit 2) for an unknown space
    models = resolve_models(space, args.models)
    candidates = {name: factory for name, factory in models.items() if name != BASELINE_MODEL}
    if args.nested_choice and len(candidates) < 2:
        raise InvalidInputError(f"--nested-choice needs at least 2 models besides {BASELINE_MODEL} in --models, got "
                                f"{', '.join(candidates) or 'none'}")
    holdout = split_specs(args.holdout) if args.holdout else None

    start = time.perf_counter()
    dataset = load_latency_dataset(space, args.run_statistic)
    if args.budget >= len(dataset.archs):
        raise InvalidInputError(f"--budget {args.budget} leaves nothing to score: {space} has {len(dataset.archs)} archs")
    if dataset.excluded:
        print(f"note: {len(dataset.excluded)} measured {space} architectures cannot be featurized and are excluded "
              f"(listed in the report): {', '.join(e.name for e in dataset.excluded)}", file=sys.stderr)
    if args.retest:
        from nas_latency.evaluate.retest import twin_rows

        twin_rows(space, dataset.archs)  # refuses a space without twins before any model is fitted
    features = default_featurizer(space)(dataset.archs)
    scoring_latency_ms = None
    if args.score_against == "drift_removed":
        from nas_latency.evaluate.drift import drift_removed_latency, order_drift

        scoring_latency_ms = drift_removed_latency(dataset, order_drift(dataset, features)[0])
    print(f"{space}: {len(dataset.archs)} archs x {len(dataset.devices)} devices ({len(dataset.group_names)} groups), "
          f"{features.values.shape[1]} features; models: {', '.join(models)}", file=sys.stderr)
    if args.exclude_same:
        from nas_latency.evaluate.datasets import devices_lacking

        lacking = devices_lacking(dataset, args.exclude_same)
        if lacking:
            print(f"note: {len(lacking)} device(s) lack {args.exclude_same} in the device info and train no held-out "
                  f"device: {', '.join(lacking)}", file=sys.stderr)
    from nas_latency.builtin_models import signature_method_of
    from nas_latency.evaluate.protocols import MethodSignature

    selector = MethodSignature(args.signature_method or signature_method_of(space))
    if args.simulated_devices:
        dataset, holdout = _with_simulated_devices(dataset, args.simulated_devices, selector, args.budget,
                                                   range(args.seeds))
    progress = _Progress(f"evaluate {space} K={args.budget}")
    try:
        result = leave_device_out(dataset, models, budget=args.budget, seeds=range(args.seeds), features=features,
                                  holdout=holdout, progress=progress, selector=selector,
                                  exclude_same=args.exclude_same, scoring_latency_ms=scoring_latency_ms,
                                  scored_against=args.score_against, twins=args.retest,
                                  held_out_scale=args.scale_held_out, held_out_spike=args.spike_held_out,
                                  held_out_noise=args.noise_held_out)
    finally:
        progress.close()
    if args.nested_choice:
        from nas_latency.evaluate.nested import add_nested_choice

        nested_progress = _Progress(f"nested choice {space} K={args.budget}")
        try:
            add_nested_choice(result, candidates, selector=selector, features=features, progress=nested_progress)
        finally:
            nested_progress.close()
    elapsed = time.perf_counter() - start
    files = write_report(result, args.out, plot=not args.no_plot, extra={"wall_s": round(elapsed, 2)})
    written = [str(p) for p in (files.markdown, files.json, files.png) if p is not None]
    print(f"done in {elapsed:.1f} s; best model: {result.best_model()}; wrote {', '.join(written)}", file=sys.stderr)

    if args.format == "json":
        document = result_document(result, extra={"wall_s": round(elapsed, 2),
                                                  "files": {"markdown": str(files.markdown), "json": str(files.json),
                                                            "png": str(files.png) if files.png else None}})
        sys.stdout.write(json.dumps(document, indent=2, allow_nan=False) + "\n")
    elif args.format == "csv":
        columns = ["model", "set", "device", "group", "n_scored"]
        for key in METRIC_COLUMNS:
            columns += [key, f"{key}_std"]
        write_rows(result_rows(result), columns, "csv")
    else:
        _write_table(result)
    return 0


def run_ceiling(space: str, fmt: str, run_statistic: str = "published", model: str = "ridge") -> int:
    """``evaluate --ceiling``: per-device out-of-fold metrics of an in-device model, then the mean."""
    from nas_latency.evaluate.ceiling import in_device_ceiling
    from nas_latency.evaluate.datasets import load_latency_dataset
    from nas_latency.evaluate.protocols import default_featurizer

    dataset = load_latency_dataset(space, run_statistic)
    scores = in_device_ceiling(dataset, default_featurizer(space)(dataset.archs), model=model)
    rows: list[dict[str, Any]] = [{"set": s.scoring_set, "device": s.device, "n_scored": s.n_scored,
                                   **{k: round(float(s.metrics[k]), 4) for k in METRIC_COLUMNS}} for s in scores]
    for scoring in dict.fromkeys(s.scoring_set for s in scores):
        part = [r for r in rows if r["set"] == scoring]
        rows.append({"set": scoring, "device": "MEAN", "n_scored": sum(r["n_scored"] for r in part),
                     **{k: round(float(np.nanmean([r[k] for r in part])), 4) for k in METRIC_COLUMNS}})
    print(f"{space}: in-device ceiling, {model} on log latency, 5-fold CV over each device's own "
          f"{len(dataset.archs)} archs", file=sys.stderr)
    write_rows(rows, ["set", "device", "n_scored", *METRIC_COLUMNS], fmt)  # type: ignore[arg-type]
    return 0


def run_drift(space: str, fmt: str, run_statistic: str = "published") -> int:
    """``evaluate --drift``: per-device drift along the measurement order, then the mean."""
    from nas_latency.evaluate.drift import DRIFT_WINDOW, order_drift
    from nas_latency.evaluate.datasets import load_latency_dataset
    from nas_latency.evaluate.protocols import default_featurizer

    dataset = load_latency_dataset(space, run_statistic)
    _, figures = order_drift(dataset, default_featurizer(space)(dataset.archs))
    rows: list[dict[str, Any]] = [{"device": f.device, **{k: round(float(getattr(f, k)), 4) for k in DRIFT_COLUMNS}}
                                  for f in figures]
    for row in rows:
        row["n_measured"] = int(row["n_measured"])
    rows.append({"device": "MEAN", "n_measured": sum(int(r["n_measured"]) for r in rows),
                 **{k: round(float(np.mean([r[k] for r in rows])), 4) for k in DRIFT_COLUMNS[1:]}})
    print(f"{space}: in-device ridge residuals (5-fold out of fold, natural log) in measurement order (benchmark "
          f"index); drift = their running median over {DRIFT_WINDOW} measurements", file=sys.stderr)
    write_rows(rows, ["device", *DRIFT_COLUMNS], fmt)  # type: ignore[arg-type]
    return 0


def run_retest(space: str, fmt: str) -> int:
    """``evaluate --retest``: per device, each twin arch's measurement scored against its twin's, then the mean."""
    from nas_latency.data import nb201_accuracy
    from nas_latency.evaluate.budget_choice import BUDGET_QUANTILES
    from nas_latency.evaluate.datasets import load_latency_dataset
    from nas_latency.evaluate.retest import retest_agreement, twin_pairs

    dataset = load_latency_dataset(space)
    twin_pairs(space, dataset.archs)  # a space without twins is refused before the accuracies are read
    scores = retest_agreement(dataset, nb201_accuracy() if space == "nasbench201" else None)
    rows: list[dict[str, Any]] = []
    for score in scores:
        row: dict[str, Any] = {"device": score.device, "n_pairs": score.n_pairs,
                               "median_abs_log_diff": round(score.median_abs_log_diff, 4),
                               **{k: round(float(score.metrics[k]), 4) for k in METRIC_COLUMNS},
                               "noise_only_within_10pct": round(score.noise_only_within_10pct, 4)}
        if score.budget_choices is not None:
            row["budget_choices_met"] = sum(score.budget_choices)
        rows.append(row)
    numeric = ["median_abs_log_diff", *METRIC_COLUMNS, "noise_only_within_10pct"]
    rows.append({"device": "MEAN", "n_pairs": sum(r["n_pairs"] for r in rows),
                 **{k: round(float(np.mean([r[k] for r in rows])), 4) for k in numeric},
                 **({"budget_choices_met": sum(r["budget_choices_met"] for r in rows)}
                    if all("budget_choices_met" in r for r in rows) else {})})
    print(f"{space}: each arch that spells the same network as its twin, scored against the twin's measurement "
          f"(both orders of every pair); noise_only_within_10pct: the share of pairs whose |ln difference| / √2 is "
          f"within ln 1.1, an estimate of what a model without error of its own would reach; budget_choices_met: "
          f"of {len(BUDGET_QUANTILES)} budgets per device (at the "
          f"{'/'.join(f'{q:.0%}' for q in BUDGET_QUANTILES)} quantiles of the twins' latencies), the most accurate "
          f"arch whose twin measured within the budget measured within it too and within 0.5 accuracy points of the "
          f"best that did (MEAN row: the total)", file=sys.stderr)
    columns = ["device", "n_pairs", *numeric] + (["budget_choices_met"] if "budget_choices_met" in rows[-1] else [])
    write_rows(rows, columns, fmt)  # type: ignore[arg-type]
    return 0


__all__ = ["BASELINE_MODEL", "DEFAULT_MODELS", "model_factory", "register", "resolve_models", "run", "split_specs"]
