"""Evaluation of latency predictors: error, rank-correlation, top-k and Pareto-front metrics (numpy only)."""

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

__all__ = [
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
