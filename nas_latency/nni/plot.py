"""The accuracy / latency scatter of a search, with its Pareto front and the budget (PNG, matplotlib Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.plotting import pyplot, save_figure

if TYPE_CHECKING:
    from nas_latency.nni.search import SearchResult


def plot_search(path: str | Path, result: "SearchResult", *, title: str = "", metric_label: str = "accuracy (%)",
                background: tuple[Sequence[float], Sequence[float], str] | None = None,
                chosen_measured_ms: float | None = None,
                best_measured: tuple[float, float] | None = None) -> Path:
    """Every evaluated sample (predicted latency, metric), the front of the non-dominated ones, the budget line
    and the chosen sample. ``background = (latency_ms, metric, label)`` draws other points underneath (e.g. the
    whole space at its measured latency) with their own front; ``chosen_measured_ms`` marks the chosen
    sample's measured latency too; ``best_measured = (latency_ms, metric)`` marks the best point the
    measurements allow under the budget. Returns the path written (parent folders are created)."""
    from nas_latency.evaluate.metrics import pareto_front

    scored = [t for t in result.trials if t.metric is not None]
    if not scored:
        raise InvalidInputError("plot_search: the search evaluated no sample with a metric")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.8))
    if background is not None:
        bg_lat = np.asarray(background[0], dtype=np.float64)
        bg_acc = np.asarray(background[1], dtype=np.float64)
        ok = np.isfinite(bg_lat) & np.isfinite(bg_acc) & (bg_lat > 0)
        bg_lat, bg_acc = bg_lat[ok], bg_acc[ok]
        ax.scatter(bg_lat, bg_acc, s=3, c="0.82", label=background[2], zorder=1, rasterized=True)
        front = pareto_front(bg_lat, bg_acc)
        ax.step(bg_lat[front], bg_acc[front], where="post", color="0.45", lw=1.0, ls="--",
                label=f"front of {background[2]}", zorder=2)
    lat = np.array([t.predicted_latency_ms for t in scored])
    acc = np.array([t.metric for t in scored], dtype=np.float64)
    ax.scatter(lat, acc, s=12, c="tab:blue", alpha=0.7, label=f"evaluated ({len(scored)} trials, predicted latency)",
               zorder=3)
    front = pareto_front(lat, acc)
    ax.step(lat[front], acc[front], where="post", color="tab:blue", lw=1.5, label="Pareto front of the search",
            zorder=4)
    if result.max_latency_ms is not None:
        ax.axvline(result.max_latency_ms, color="tab:red", lw=1.2, label=f"budget {result.max_latency_ms:g} ms")
    chosen = result.chosen
    if chosen is not None and chosen.metric is not None:
        ax.scatter([chosen.predicted_latency_ms], [chosen.metric], marker="*", s=220, c="tab:orange",
                   edgecolors="k", zorder=6, label="chosen (predicted)")
        if chosen_measured_ms is not None:
            ax.scatter([chosen_measured_ms], [chosen.metric], marker="*", s=220, facecolors="none",
                       edgecolors="tab:orange", linewidths=1.5, zorder=6, label="chosen (measured)")
            ax.plot([chosen.predicted_latency_ms, chosen_measured_ms], [chosen.metric] * 2,
                    color="tab:orange", lw=1.0, zorder=5)
    if best_measured is not None:
        ax.scatter([best_measured[0]], [best_measured[1]], marker="D", s=60, c="tab:green", edgecolors="k", zorder=6,
                   label="best under budget (measured)")
    top = max(float(acc.max()), best_measured[1] if best_measured is not None else -np.inf)
    ax.set_ylim(max(float(acc.min()), top - 15.0) - 0.5, top + 1.0)
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel(metric_label)
    ax.set_title(title or f"{result.strategy} search: {len(result.trials)} trials, {result.rejected} rejected",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, path, dpi=130)
