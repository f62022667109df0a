"""Calibration chains (1, 3, 9 and 27 tiny ReLUs) measure the runtime's fixed cost per network call, which is taken out
of every kernel and block time (see :mod:`nas_latency.bench.device`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from nas_latency.bench.items import BenchItem
from nas_latency.errors import InvalidInputError
from nas_latency.ir import NetworkBuilder
from nas_latency.models.linalg import repeated_median_line

# ---- calibration --------------------------------------------------------------------------------------------
CALIBRATION_LENGTHS = (1, 3, 9, 27)


def calibration_items() -> list[BenchItem]:
    """Chains of 1, 3, 9 and 27 ReLUs on an ``(1, 8, 1, 1)`` tensor: the time of a chain is ``c + L·r``, and the
    intercept ``c`` is the runtime's fixed cost per network call (:func:`call_overhead_ms`)."""
    items = []
    for length in CALIBRATION_LENGTHS:
        b = NetworkBuilder(f"calibration;relu_chain;n={length}")
        x = b.input((1, 8, 1, 1), name="x0")
        for _ in range(length):
            x = b.relu(x)
        network = b.build()
        items.append(BenchItem(network.name, "calibration", network, "calibration"))
    return items


def call_overhead_ms(lengths: Sequence[int], times_ms: Sequence[float]) -> float:
    """The intercept of the line through ``(chain length, time)``, never negative and never more than the shortest
    chain's time. With three or more chains the line is Siegel's repeated median (each chain's median slope to the
    others, their median; the intercept the median of ``time − slope · length``), so one chain slowed by
    interference does not tilt it, as it tilts a least-squares line (the longest chain has the most leverage, and a
    slowed one used to push the intercept below zero)."""
    x = np.asarray(lengths, dtype=np.float64)
    y = np.asarray(times_ms, dtype=np.float64)
    if len(x) < 2 or len(x) != len(y):
        raise InvalidInputError(f"calibration needs at least two chain lengths with times, got {list(lengths)}")
    if len(np.unique(x)) != len(x):
        raise InvalidInputError(f"calibration chain lengths must differ, got {list(lengths)}")
    intercept, _ = repeated_median_line(x, y)
    return float(min(max(intercept, 0.0), float(y[np.argmin(x)])))
