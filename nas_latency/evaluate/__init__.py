"""Evaluation of latency predictors: error, rank-correlation, top-k and Pareto-front metrics (numpy only), the
leave-device-out protocol (:mod:`~nas_latency.evaluate.protocols`) on the bundled measurements
(:mod:`~nas_latency.evaluate.datasets`), scored on HELP's query set and all archs
(:mod:`~nas_latency.evaluate.scoring_sets`), its results (:mod:`~nas_latency.evaluate.results`) and reports
(:mod:`~nas_latency.evaluate.report`, :mod:`~nas_latency.evaluate.plot`), what the data allow (the in-device
:mod:`~nas_latency.evaluate.ceiling`, the :mod:`~nas_latency.evaluate.drift` along the measurement order and the
:mod:`~nas_latency.evaluate.retest` of networks measured twice), a model chosen per held-out device by validation
on the training devices alone (:mod:`~nas_latency.evaluate.nested`), latency-constrained choices judged against
measurements (:mod:`~nas_latency.evaluate.budget_choice`) and candidate ranking
(:mod:`~nas_latency.evaluate.ranking`).

The protocol and report modules import pandas and the cost models, so they are loaded on first use of their
names here, keeping ``import nas_latency.evaluate`` as light as the metrics."""

from nas_latency.evaluate.metrics import (
    SUMMARY_KEYS,
    kendall_tau_b,
    mape,
    pareto_front,
    pareto_recall,
    r2,
    rankdata_average,
    spearman,
    summarize,
    top_k_overlap,
    within_pct,
)

_LAZY = {
    "DeviceScore": "results",
    "EvaluationResult": "results",
    "ExcludedArch": "datasets",
    "LatencyDataset": "datasets",
    "RandomSignature": "protocols",
    "SignatureSelector": "protocols",
    "help_query_indices": "scoring_sets",
    "all_query_indices": "scoring_sets",
    "leave_device_out": "protocols",
    "load_latency_dataset": "datasets",
    "ReportFiles": "report",
    "render_markdown": "report",
    "result_document": "report",
    "write_report": "report",
    "plot_predicted_vs_measured": "plot",
    "RankReport": "ranking",
    "RankedArch": "ranking",
    "rank_report": "ranking",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    *sorted(_LAZY),
    "SUMMARY_KEYS",
    "kendall_tau_b",
    "mape",
    "pareto_front",
    "pareto_recall",
    "r2",
    "rankdata_average",
    "spearman",
    "summarize",
    "top_k_overlap",
    "within_pct",
]
