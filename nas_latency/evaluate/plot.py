"""Predicted-vs-measured scatter plots (PNG). matplotlib is imported lazily, with the non-interactive Agg
backend, so that the rest of the package never needs it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.plotting import pyplot, save_figure


def plot_predicted_vs_measured(
    path: str | Path,
    measured_ms: Mapping[str, np.ndarray],
    predicted_ms: Mapping[str, np.ndarray],
    *,
    highlight: Mapping[str, Sequence[int] | np.ndarray] | None = None,
    title: str = "",
    band_pct: float = 10.0,
    annotations: Mapping[str, str] | None = None,
) -> Path:
    """One log-log panel per device (keys of ``measured_ms``, in order): predicted against measured latency,
    the ``y = x`` line and a ``±band_pct`` % band. ``highlight[device]`` are row positions drawn on top in
    another colour (e.g. the signature archs); ``annotations[device]`` is a line of text in the panel (e.g.
    its Spearman). Non-finite or non-positive points cannot go on log axes and are left out of the panel, with
    their count in its title. Returns the path written."""
    devices = list(measured_ms)
    if not devices:
        raise InvalidInputError("plot_predicted_vs_measured: no devices to plot")
    missing = [d for d in devices if d not in predicted_ms]
    if missing:
        raise InvalidInputError(f"plot_predicted_vs_measured: no predictions for {', '.join(missing)}")
    plt = pyplot()
    from matplotlib import ticker
    ncols = min(len(devices), max(1, math.ceil(math.sqrt(len(devices)))))
    nrows = math.ceil(len(devices) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.0 * nrows), squeeze=False)
    band = band_pct / 100.0
    for ax in axes.flat[len(devices):]:
        ax.axis("off")
    for ax, device in zip(axes.flat, devices):
        y_true = np.asarray(measured_ms[device], dtype=np.float64)
        y_pred = np.asarray(predicted_ms[device], dtype=np.float64)
        if y_true.shape != y_pred.shape:
            raise InvalidInputError(f"plot_predicted_vs_measured: {device}: {y_true.shape} measured vs {y_pred.shape} predicted")
        ok = np.isfinite(y_true) & np.isfinite(y_pred) & (y_true > 0) & (y_pred > 0)
        dropped = int((~ok).sum())
        label = device if not dropped else f"{device} ({dropped} not shown: <= 0 or non-finite)"
        ax.set_title(label, fontsize=8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        if not ok.any():
            continue
        lo = float(min(y_true[ok].min(), y_pred[ok].min()))
        hi = float(max(y_true[ok].max(), y_pred[ok].max()))
        grid = np.geomspace(lo / 1.05, hi * 1.05, 64)
        ax.fill_between(grid, grid * (1 - band), grid * (1 + band), color="tab:green", alpha=0.18, linewidth=0,
                        label=f"±{band_pct:g} %")
        ax.plot(grid, grid, color="black", linewidth=0.8)
        ax.scatter(y_true[ok], y_pred[ok], s=2, alpha=0.35, color="tab:blue", rasterized=True, linewidths=0)
        if highlight is not None and device in highlight:
            rows = np.asarray(highlight[device], dtype=np.intp)
            rows = rows[ok[rows]]
            ax.scatter(y_true[rows], y_pred[rows], s=14, color="tab:red", marker="x", linewidths=0.9,
                       label="signature")
        ax.set_xlim(grid[0], grid[-1])
        ax.set_ylim(grid[0], grid[-1])
        if annotations and device in annotations:
            ax.text(0.03, 0.97, annotations[device], transform=ax.transAxes, fontsize=7, va="top")
        subs = (1.0,) if grid[-1] / grid[0] > 1e3 else (1.0, 2.0, 5.0)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(ticker.LogLocator(base=10.0, subs=subs))
            axis.set_major_formatter(ticker.FormatStrFormatter("%g"))
            axis.set_minor_formatter(ticker.NullFormatter())
        ax.tick_params(which="both", labelsize=6)
    for ax in axes[-1]:
        ax.set_xlabel("measured (ms)", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("predicted (ms)", fontsize=7)
    axes.flat[0].legend(fontsize=6, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=110)
