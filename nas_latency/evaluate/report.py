"""Reports of a leave-device-out run: a Markdown summary for people, a JSON document for machines, and a
predicted-vs-measured PNG of the best model (see :mod:`nas_latency.evaluate.plot`)."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from nas_latency import __version__
from nas_latency.evaluate.metrics import SUMMARY_KEYS
from nas_latency.evaluate.results import EvaluationResult
from nas_latency.evaluate.scoring_sets import HELP_QUERY_RANGE, HELP_TRIM_FRACTION

logger = logging.getLogger(__name__)

#: Column titles of the metrics in Markdown tables.
METRIC_TITLES: Mapping[str, str] = {
    "spearman": "Spearman",
    "kendall": "Kendall τ-b",
    "mape_pct": "MAPE %",
    "within_10pct": "within ±10 %",
    "r2": "R² (ms)",
}
SET_TITLES: Mapping[str, str] = {
    "help": (f"HELP query set (index {HELP_QUERY_RANGE[0]}–{HELP_QUERY_RANGE[1] - 1}, "
             f"{HELP_TRIM_FRACTION:.0%} fastest and slowest on each device dropped, signature archs dropped)"),
    "all": "all architectures except the signature archs",
    "twins": ("the architectures that spell the same network as another one (NAS-Bench-201: edge 1→2 `none`, "
              "branches swapped; each such network measured twice), signature archs dropped; "
              "`evaluate --retest` scores the second measurements on them"),
}
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    json: Path
    png: Path | None


def report_stem(space: str, budget: int, exclude_same: str | None = None, run_statistic: str = "published",
                scored_against: str = "measured", held_out_scale: float = 1.0, held_out_spike: float = 1.0,
                held_out_noise: float = 0.0, simulated_devices: int = 0) -> str:
    """Base name of the report files: ``evaluate_<space>_k<K>``, then ``_without_same_<fact>`` when devices
    sharing ``exclude_same`` with the held-out one were left out of training too, ``_run_<statistic>`` when
    the latencies are not the published table's, ``_held_out_x<F>`` when the held-out devices' latencies were
    multiplied by ``F``, ``_spike_x<F>`` when one of their signature measurements was, ``_noise_<σ>`` when all of them carried
    timing noise of log standard deviation σ, ``_simulated_<N>`` when the held-out devices were N simulated accelerators
    (:mod:`~nas_latency.evaluate.simulated`), and ``_scored_<truth>`` when the predictions were not scored against the measured
    latencies."""
    stem = f"evaluate_{space}_k{budget}"
    if exclude_same is not None:
        stem += f"_without_same_{exclude_same}"
    if run_statistic != "published":
        stem += f"_run_{run_statistic}"
    if held_out_scale != 1.0:
        stem += f"_held_out_x{held_out_scale:g}"
    if held_out_spike != 1.0:
        stem += f"_spike_x{held_out_spike:g}"
    if held_out_noise > 0:
        stem += f"_noise_{held_out_noise:g}"
    if simulated_devices:
        stem += f"_simulated_{simulated_devices}"
    return stem if scored_against == "measured" else f"{stem}_scored_{scored_against}"


# ---- JSON -------------------------------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def retest_rows(result: EvaluationResult) -> list[dict[str, Any]]:
    """With the ``twins`` set: per held-out device, the twins' second measurements scored against the latencies the
    run was scored against (:func:`~nas_latency.evaluate.retest.retest_agreement`); empty without the set."""
    if "twins" not in result.scoring_sets:
        return []
    from dataclasses import replace

    from nas_latency.evaluate.retest import retest_agreement

    dataset = result.dataset
    held = set(result.held_out_devices)
    if result.scoring_latency_ms is not None:
        dataset = replace(dataset, latency_ms=result.scoring_latency_ms)
    dataset = dataset.with_devices([d for d in dataset.devices if d in held])
    return [{"device": r.device, "n_pairs": r.n_pairs, "median_abs_log_diff": r.median_abs_log_diff,
             **dict(r.metrics), "noise_only_within_10pct": r.noise_only_within_10pct}
            for r in retest_agreement(dataset)]


def result_document(result: EvaluationResult, *, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The whole run as plain JSON-able data (NaN becomes ``null``)."""
    dataset = result.dataset
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "protocol": "leave-device-out" if result.exclude_same is None else f"leave-same-{result.exclude_same}-out",
        "exclude_same": result.exclude_same,
        "run_statistic": result.dataset.run_statistic,
        "scored_against": result.scored_against,
        "held_out_scale": result.held_out_scale,
        "held_out_spike": result.held_out_spike,
        "held_out_noise": result.held_out_noise,
        "training_devices": result.training_devices,
        "space": dataset.space,
        "budget": result.budget,
        "seeds": result.seeds,
        "models": result.models,
        "best_model": result.best_model(),
        "selector": result.selector,
        "scoring_sets": {s: SET_TITLES[s] for s in result.scoring_sets},
        "metrics": {k: METRIC_TITLES[k] for k in SUMMARY_KEYS},
        "dataset": {
            "n_archs": len(dataset.archs),
            "devices": dataset.devices,
            "groups": dict(zip(dataset.devices, dataset.groups)),
            "n_groups": len(dataset.group_names),
            "device_info": dataset.info,
            "n_degenerate_archs": int(dataset.degenerate.sum()),
            "degenerate_source": dataset.degenerate_source,
            "excluded_archs": [
                {"arch_id": e.arch_id, "name": e.name, "reason": e.reason} for e in dataset.excluded
            ],
        },
        "held_out_groups": result.held_out_groups,
        "summary": result.summary(),
        "calibration": result.calibration(),
        "per_device": result.per_device(),
        "scores": [
            {"model": s.model, "seed": s.seed, "device": s.device, "group": s.group, "set": s.scoring_set,
             "n_scored": s.n_scored, **dict(s.metrics)}
            for s in result.scores
        ],
        "signatures": {str(seed): groups for seed, groups in result.signatures.items()},
        "timings": result.timings,
    }
    if "twins" in result.scoring_sets:
        document["retest"] = retest_rows(result)
    if result.nested_choices:
        document["nested_choices"] = result.nested_choices
    if extra:
        document.update(extra)
    return _jsonable(document)


# ---- Markdown ---------------------------------------------------------------------------------------------------
def _pm(mean: float, std: float, key: str) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    digits = 1 if key == "mape_pct" else 3
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def render_markdown(result: EvaluationResult, *, png_name: str | None = None) -> str:
    """The run as Markdown: setup, excluded architectures, summary (mean ± std over signature seeds of the
    per-device mean and of the worst device), per-device tables, signatures and timings."""
    dataset = result.dataset
    n_seeds = len(result.seeds)
    title = ("Leave-device-out" if result.exclude_same is None
             else f"Leave-device-out, without the devices of the same {result.exclude_same},")
    lines = [f"# {title} evaluation: {dataset.space}, K = {result.budget}", ""]

    lines += ["## Setup", ""]
    held_devices = result.held_out_devices
    lines += [
        f"- Space `{dataset.space}`: {len(dataset.archs)} architectures × {len(dataset.devices)} devices "
        f"in {len(dataset.group_names)} hold-out groups; latencies: "
        + ("the published table." if dataset.run_statistic == "published" else
           f"the {dataset.run_statistic} of each architecture's bundled runs on each device (training and scoring)."),
        "- Scored against: " + ("the measured latencies." if result.scored_against == "measured" else
                                f"`{result.scored_against}` latencies (training, signatures and onboarding use the "
                                "measured ones" + ("; see `nas_latency.evaluate.drift`)." if result.scored_against
                                                   == "drift_removed" else ").")),
        f"- Held out, one group at a time: {len(result.held_out_groups)} groups ({len(held_devices)} devices). "
        "Each model is fitted on the other groups only"
        + ("." if result.exclude_same is None else
           f", less every device of the same `{result.exclude_same}` as the held-out one (an unseen kind of "
           f"hardware): " + "; ".join(f"{g}: {', '.join(d)}" for g, d in result.training_devices.items()) + "."),
        *([f"- Every held-out device's latencies (its signature measurements and the latencies it is scored "
            f"against) multiplied by {result.held_out_scale:g}: the same device, "
            f"{'slower' if result.held_out_scale > 1 else 'faster'}; the training devices as measured."] if result.held_out_scale != 1.0 else []),
        *([f"- One of every held-out device's {result.budget} signature measurements (drawn per seed and device) "
            f"multiplied by {result.held_out_spike:g}, as a throttled or preempted run would be; scored against the "
            "latencies as measured."] if result.held_out_spike != 1.0 else []),
        *([f"- Each of every held-out device's {result.budget} signature measurements multiplied by exp(σ z), "
           f"σ = {result.held_out_noise:g} and z standard normal (drawn per seed and device): timing noise of "
           f"about ±{100 * result.held_out_noise:.0f} %; scored against the latencies as measured."]
          if result.held_out_noise > 0 else []),
        f"- Signature: K = {result.budget} architectures per held-out device, chosen by `{result.selector}` "
        "from the training devices only; the held-out device contributes nothing but its latencies at them.",
        f"- Signature seeds: {', '.join(map(str, result.seeds))} ({n_seeds}); figures are mean ± std over seeds.",
        f"- Degenerate architectures: {int(dataset.degenerate.sum())} "
        f"({'from the space' if dataset.degenerate_source == 'space' else 'unavailable: the space has no degenerate_mask'}).",
        f"- Models: {', '.join(f'`{m}`' for m in result.models)}; best (mean Spearman on the "
        f"{result.scoring_sets[0]} set): `{result.best_model()}`.",
        "- Scoring sets:",
    ]
    lines += [f"  - `{s}`: {SET_TITLES[s]}" for s in result.scoring_sets]
    simulated = simulated_held_out(result)
    if simulated:
        lines.append(f"- Held-out devices: {len(simulated)} simulated accelerators (`nas_latency.evaluate.simulated`: "
                     "a roofline per layer plus a launch overhead, parameters drawn at random, about ±1 % timing "
                     "noise), measured on the signature archs, HELP's query range where the space has one, and a "
                     f"seeded sample: {dataset.info[simulated[0]]['n_measured']} architectures; those that prune run "
                     "only the layers whose values are read: "
                     + ", ".join(f"{d} ({'prunes' if dataset.info[d]['prunes'] else 'runs every layer'})"
                                 for d in simulated) + ".")
    integer = [d for d in held_devices if dataset.info.get(d, {}).get("integer_ms")]
    if integer:
        lines.append(f"- Whole-millisecond devices (many ties; rank metrics use average ranks): {', '.join(integer)}.")
    lines.append("")

    lines += ["## Excluded architectures", ""]
    if dataset.excluded:
        lines.append(f"{len(dataset.excluded)} measured architectures are not in the dataset and were not scored:")
        lines.append("")
        lines += _table(["id", "name", "reason"], [[str(e.arch_id), e.name, e.reason] for e in dataset.excluded])
    else:
        lines.append("None: every measured architecture is evaluated.")
    lines.append("")

    lines += [f"## Summary (mean ± std over {n_seeds} signature seed{'s' if n_seeds != 1 else ''})", ""]
    summary = result.summary()
    for scoring in result.scoring_sets:
        lines += [f"### {scoring}: {SET_TITLES[scoring]}", ""]
        header = ["model", "devices"]
        for key in SUMMARY_KEYS:
            header += [f"{METRIC_TITLES[key]} mean", f"{METRIC_TITLES[key]} worst"]
        rows = []
        for row in summary:
            if row["set"] != scoring:
                continue
            cells = [f"`{row['model']}`", str(row["devices"])]
            for key in SUMMARY_KEYS:
                cells += [_pm(row[f"{key}_mean"], row[f"{key}_mean_std"], key),
                          _pm(row[f"{key}_worst"], row[f"{key}_worst_std"], key)]
            rows.append(cells)
        lines += _table(header, rows)
        lines += ["", "\"worst\" is the lowest per-device value (the highest for MAPE), per seed, then averaged.", ""]

    calibration = result.calibration()
    if calibration:
        lines += ["## Predictive intervals", "",
                  "How often the measured latency fell inside the model's central predictive interval "
                  "`ln ŷ ± z σ` (nominal 68 % and 95 %), averaged over held-out devices and seeds, with the worst "
                  "device; and the median predicted σ of ln latency.", "",
                  "| model | set | within ±1σ (68 %) | worst | within ±1.96σ (95 %) | worst | median σ |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| `{r['model']}` | {r['set']} | {r['coverage_68']:.3f} | {r['coverage_68_worst']:.3f} | "
                  f"{r['coverage_95']:.3f} | {r['coverage_95_worst']:.3f} | {r['median_std_log']:.3f} |"
                  for r in calibration]
        lines += [""]
    lines += ["## Per device (mean ± std over seeds)", ""]
    per_device = result.per_device()
    for model in result.models:
        for scoring in result.scoring_sets:
            rows = [r for r in per_device if r["model"] == model and r["set"] == scoring]
            if not rows:
                continue
            lines += [f"### `{model}`, {scoring}", ""]
            header = ["device", "group", "n scored", *(METRIC_TITLES[k] for k in SUMMARY_KEYS)]
            body = [[r["device"], r["group"], str(r["n_scored"]), *(_pm(r[k], r[f"{k}_std"], k) for k in SUMMARY_KEYS)]
                    for r in rows]
            lines += _table(header, body)
            lines.append("")

    if result.nested_choices:
        candidates = list(next(iter(result.nested_choices.values()))["inner_spearman"])
        lines += ["## Nested choice", "",
                  "For each held-out group, the candidate with the highest mean Spearman on the "
                  f"{result.scoring_sets[0]} set in a leave-device-out run on that group's training devices alone "
                  "(same budget, seeds and signature method); `nested_choice` is scored with the chosen "
                  "candidate's predictions (`nas_latency.evaluate.nested`).", ""]
        header = ["held out", "chosen", *(f"inner: `{c}`" for c in candidates)]
        body = [[group, f"`{record['chosen']}`", *(f"{record['inner_spearman'][c]:.4f}" for c in candidates)]
                for group, record in result.nested_choices.items()]
        lines += _table(header, body)
        lines.append("")

    retest = retest_rows(result)
    if retest:
        best = result.best_model()
        model_rows = {r["device"]: r for r in per_device if r["model"] == best and r["set"] == "twins"}
        lines += ["## A second measurement of the same networks", "",
                  f"On the `twins` set, each architecture's latency predicted by `{best}` and, instead, read from its "
                  "twin's measurement (the same network under another string, measured at another time); the "
                  "last column estimates the share within ±10 % of a model with no error of its own "
                  "(`nas_latency.evaluate.retest`).", ""]
        header = ["device", "model Spearman", "second measurement Spearman", "model within ±10 %",
                  "second measurement within ±10 %", "no-error model within ±10 % (estimate)"]
        body = [[r["device"], _pm(model_rows[r["device"]]["spearman"], model_rows[r["device"]]["spearman_std"],
                                  "spearman"),
                 f"{r['spearman']:.3f}",
                 _pm(model_rows[r["device"]]["within_10pct"], model_rows[r["device"]]["within_10pct_std"],
                     "within_10pct"),
                 f"{r['within_10pct']:.3f}", f"{r['noise_only_within_10pct']:.3f}"]
                for r in retest if r["device"] in model_rows]
        lines += _table(header, body)
        lines.append("")

    if png_name:
        lines += ["## Predicted vs measured", "",
                  f"Best model `{result.best_model()}`, seed {result.seeds[0]}, log-log axes with a ±10 % band "
                  "(signature archs marked ×):", "", f"![predicted vs measured]({png_name})", ""]

    lines += ["## Signatures", ""]
    for seed, by_group in result.signatures.items():
        distinct = {tuple(v) for v in by_group.values()}
        if len(distinct) == 1:
            archs = next(iter(distinct))
            lines.append(f"- seed {seed} (every held-out group): " + ", ".join(f"`{a}`" for a in archs))
        else:
            lines.append(f"- seed {seed}:")
            lines += [f"  - without {g}: " + ", ".join(f"`{a}`" for a in archs) for g, archs in by_group.items()]
    lines.append("")

    lines += ["## Timing", ""]
    body = []
    for model, t in result.timings.items():
        fits, adaptations = int(t.get("fits", 0)), int(t.get("adaptations", 0))
        body.append([f"`{model}`", str(fits), f"{t.get('fit_s', 0.0):.2f}", str(adaptations),
                     f"{t.get('adapt_predict_s', 0.0):.2f}",
                     f"{1000 * t.get('adapt_predict_s', 0.0) / max(adaptations, 1):.1f}"])
    lines += _table(["model", "fits", "fit s (total)", "adaptations", "adapt+predict s (total)",
                     "ms per adaptation"], body)
    lines.append("")
    return "\n".join(lines)


# ---- files ------------------------------------------------------------------------------------------------------
def write_plot(result: EvaluationResult, path: str | Path, *, model: str | None = None) -> Path:
    """The predicted-vs-measured PNG of ``model`` (default: the best) on every held-out device, first seed."""
    from nas_latency.evaluate.plot import plot_predicted_vs_measured
    from nas_latency.evaluate.metrics import spearman, within_pct

    model = model or result.best_model()
    dataset = result.dataset
    measured, predicted, highlight, notes = {}, {}, {}, {}
    for device in result.held_out_devices:
        prediction = result.predictions.get((model, device))
        if prediction is None:
            continue
        y = result.truth_of(device)
        measured[device] = y
        predicted[device] = prediction.predicted_ms
        highlight[device] = prediction.signature_rows
        rest = np.setdiff1d(np.flatnonzero(np.isfinite(y)), prediction.signature_rows)
        notes[device] = (f"Spearman {spearman(y[rest], prediction.predicted_ms[rest]):.3f}, "
                         f"±10 %: {within_pct(y[rest], prediction.predicted_ms[rest], 10.0):.0%}")
    return plot_predicted_vs_measured(
        path, measured, predicted, highlight=highlight, annotations=notes,
        title=f"{dataset.space}, K={result.budget}: {model} (seed {result.seeds[0]}), predicted vs "
              + ("measured" if result.scored_against == "measured" else f"measured, {result.scored_against}"),
    )


def simulated_held_out(result: EvaluationResult) -> list[str]:
    """The held-out devices that are simulated accelerators."""
    from nas_latency.evaluate.simulated import SIMULATED_KIND

    return [d for d in result.held_out_devices if result.dataset.info.get(d, {}).get("kind") == SIMULATED_KIND]


def write_report(result: EvaluationResult, out_dir: str | Path, *, plot: bool = True,
                 extra: Mapping[str, Any] | None = None) -> ReportFiles:
    """Write ``<stem>.md``, ``.json`` and (with ``plot``) ``.png`` into ``out_dir`` (:func:`report_stem`)."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    stem = report_stem(result.dataset.space, result.budget, result.exclude_same, result.dataset.run_statistic,
                       result.scored_against, result.held_out_scale, result.held_out_spike,
                       result.held_out_noise, len(simulated_held_out(result)))
    png: Path | None = None
    if plot:
        if result.predictions:
            png = write_plot(result, directory / f"{stem}.png")
        else:
            logger.warning("no predictions were kept; the predicted-vs-measured plot is not written")
    md_path = directory / f"{stem}.md"
    md_path.write_text(render_markdown(result, png_name=png.name if png else None), encoding="utf-8")
    json_path = directory / f"{stem}.json"
    files = {"markdown": md_path.name, "json": json_path.name, "png": png.name if png else None}
    document = result_document(result, extra={**(extra or {}), "files": files})
    json_path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return ReportFiles(md_path, json_path, png)
