"""The estimate for arbitrary networks on a space whose built-in model takes only its own architecture ids.

``ln latency_ms = a + b · ln MACs``, fitted to the device's measurements in that space. A coarse baseline,
labelled ``macs_loglinear`` wherever it answers (the server's response, the NNI profiler, the CLI's stderr), so
nobody mistakes it for the built-in model. Two guards keep ten measurements from turning it upside down:

* architectures the space marks as degenerate (NAS-Bench-201's dead cells: the MACs are counted, but a device
  may not run them, and pixel3 measures 0.004 ms for 114 M of them) are left out of the fit;
* the line is Siegel's repeated median, not least squares, and its slope is never negative (more work never
  takes less time): with the slope at 0 the estimate is the measurements' median.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.ir import IR_FEATURE_NAMES, Network
from nas_latency.measurements import MeasuredArchs
from nas_latency.models.linalg import repeated_median_line
from search_spaces import SearchSpace

#: the name the estimate answers under
MACS_MODEL = "macs_loglinear"


def _log_macs(macs: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(macs, dtype=np.float64), 1.0))


@dataclass(frozen=True)
class MacsPowerLaw:
    """``latency_ms = exp(intercept) · MACs^slope``, fitted to ``n_fitted`` measurements."""

    intercept: float
    slope: float
    n_fitted: int

    def predict(self, networks: Sequence[Network]) -> np.ndarray:
        macs = np.array([float(net.macs) for net in networks], dtype=np.float64)
        return np.exp(self.intercept + self.slope * _log_macs(macs))


def fit_macs_power_law(space: SearchSpace, measured: MeasuredArchs) -> MacsPowerLaw:
    """The power law of MACs through ``measured`` (a device's measurements in ``space``), leaving out the
    architectures ``space.degenerate_mask`` marks."""
    archs = list(measured.archs)
    live = ~np.asarray(space.degenerate_mask(archs), dtype=bool)
    if int(live.sum()) < 2:
        raise InvalidInputError(
            f"{MACS_MODEL} needs at least 2 measured {space.name} architectures that are not degenerate "
            f"(dead cells), got {int(live.sum())} of {len(archs)}")
    macs = space.ir_features([a for a, keep in zip(archs, live) if keep])[:, IR_FEATURE_NAMES.index("total.macs")]
    log_latency = np.log(np.asarray(measured.latency_ms, dtype=np.float64)[live])
    intercept, slope = repeated_median_line(_log_macs(macs), log_latency)
    if slope < 0:
        intercept, slope = float(np.median(log_latency)), 0.0
    return MacsPowerLaw(intercept, slope, int(live.sum()))
