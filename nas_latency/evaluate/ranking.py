"""Ranking candidates by predicted latency, and how well that ranking matches measurements.

:func:`rank_report` is pure (arrays in, a :class:`RankReport` out); ``nas-latency rank`` feeds it the
predictor's latencies, an optional measured CSV and accuracies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt

from nas_latency.errors import InvalidInputError
from nas_latency.evaluate.metrics import kendall_tau_b, pareto_front, pareto_recall, spearman, top_k_overlap


@dataclass(frozen=True)
class RankedArch:
    rank: int  # 1 = predicted fastest
    arch: str
    predicted_ms: float
    measured_ms: float | None = None
    accuracy: float | None = None
    on_true_front: bool | None = None  # on the measured latency/accuracy Pareto front
    on_predicted_front: bool | None = None  # on the front built from predicted latencies


@dataclass(frozen=True)
class RankReport:
    """Candidates sorted by predicted latency (ties keep input order) and, when measurements were given, the
    agreement metrics on the measured candidates. A metric that cannot be computed is ``None`` with the reason
    in ``not_applicable``."""

    ranking: list[RankedArch]
    n_candidates: int
    n_measured: int
    top_k: int
    metrics: dict[str, float | None]
    not_applicable: dict[str, str] = field(default_factory=dict)

    def metric_rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = [
            {"metric": "candidates", "value": self.n_candidates, "note": ""},
            {"metric": "measured", "value": self.n_measured, "note": ""},
        ]
        for name, value in self.metrics.items():
            rows.append({"metric": name, "value": value if value is not None else "n/a",
                         "note": self.not_applicable.get(name, "")})
        return rows


def _vector(values: npt.ArrayLike, n: int, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.shape != (n,):
        raise InvalidInputError(f"rank_report: {what} has {arr.size} values for {n} architectures")
    return arr


def rank_report(
    archs: Sequence[str],
    predicted_ms: npt.ArrayLike,
    measured_ms: npt.ArrayLike | None = None,
    accuracy: npt.ArrayLike | None = None,
    top_k: int = 10,
    *,
    accuracy_note: str | None = None,
) -> RankReport:
    """Sort ``archs`` by ``predicted_ms`` and, with ``measured_ms`` (NaN = not measured), score the ranking on the
    measured candidates: Spearman, Kendall tau-b, top-``k`` overlap (share of the ``k`` truly fastest among the
    ``k`` predicted fastest) and, with ``accuracy`` (NaN = unknown), the recall of the measured
    latency/accuracy Pareto front by the predicted one. ``accuracy_note`` says why Pareto recall is not
    applicable when ``accuracy`` is ``None``."""
    names = [str(a) for a in archs]
    n = len(names)
    if n == 0:
        raise InvalidInputError("rank_report: no architectures to rank")
    if len(set(names)) != n:
        raise InvalidInputError("rank_report: architectures are not distinct")
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise InvalidInputError(f"rank_report: top_k must be a positive integer, got {top_k!r}")
    pred = _vector(predicted_ms, n, "predicted_ms")
    if not np.all(np.isfinite(pred)):
        raise InvalidInputError("rank_report: predicted latencies must be finite")
    meas = _vector(measured_ms, n, "measured_ms") if measured_ms is not None else np.full(n, np.nan)
    if np.any(np.isfinite(meas) & (meas <= 0)):
        raise InvalidInputError("rank_report: measured latencies must be > 0 ms")
    acc = _vector(accuracy, n, "accuracy") if accuracy is not None else np.full(n, np.nan)

    measured = np.isfinite(meas)
    rows = np.flatnonzero(measured)
    metrics: dict[str, float | None] = {"spearman": None, "kendall": None, f"top{top_k}_overlap": None,
                                        "pareto_recall": None}
    why: dict[str, str] = {}
    true_front: set[int] = set()
    pred_front: set[int] = set()
    if rows.size < 2:
        reason = "no measured latencies given" if measured_ms is None else f"{rows.size} measured candidates (need 2)"
        why.update({k: reason for k in metrics})
    else:
        yt, yp = meas[rows], pred[rows]
        metrics["spearman"] = _finite_or_none(spearman(yt, yp))
        metrics["kendall"] = _finite_or_none(kendall_tau_b(yt, yp))
        if top_k <= rows.size:
            metrics[f"top{top_k}_overlap"] = top_k_overlap(yt, yp, int(top_k))
        else:
            why[f"top{top_k}_overlap"] = f"top_k {top_k} exceeds the {rows.size} measured candidates"
        with_acc = rows[np.isfinite(acc[rows])]
        if accuracy is None:
            why["pareto_recall"] = accuracy_note or "not applicable: no accuracies for these architectures"
        elif with_acc.size < 2:
            why["pareto_recall"] = f"not applicable: {with_acc.size} measured candidates have an accuracy (need 2)"
        else:
            metrics["pareto_recall"] = pareto_recall(meas[with_acc], pred[with_acc], acc[with_acc])
            true_front = {int(with_acc[i]) for i in pareto_front(meas[with_acc], acc[with_acc])}
            pred_front = {int(with_acc[i]) for i in pareto_front(pred[with_acc], acc[with_acc])}
            if with_acc.size < rows.size:
                why["pareto_recall"] = f"on the {with_acc.size} of {rows.size} measured candidates with an accuracy"
        for key, value in metrics.items():
            if value is None and key not in why:
                why[key] = "undefined (constant input)"

    order = np.argsort(pred, kind="stable")
    ranking = [
        RankedArch(
            rank=r + 1,
            arch=names[i],
            predicted_ms=float(pred[i]),
            measured_ms=float(meas[i]) if measured[i] else None,
            accuracy=float(acc[i]) if math.isfinite(acc[i]) else None,
            on_true_front=(i in true_front) if true_front else None,
            on_predicted_front=(i in pred_front) if pred_front else None,
        )
        for r, i in enumerate(order.tolist())
    ]
    return RankReport(ranking, n, int(rows.size), int(top_k), metrics, why)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
