"""NNI 3.0 plug-in: latency as a profiler, a constraint, an objective and a differentiable loss.

* :class:`~nas_latency.nni.profiler.LatencyProfiler` -- an ``nni.nas.profiler.Profiler`` (embedded or ``server=``)
* :mod:`~nas_latency.nni.constraints` -- ``LatencyConstraint`` / ``latency_filter`` (``Chain(strategy, Filter)``),
  ``range_filter`` (``RangeProfilerFilter``), ``mnasnet_reward`` and ``LatencyAwareEvaluator``
* :mod:`~nas_latency.nni.latency_table` -- per-choice latency table of a model space
* :mod:`~nas_latency.nni.oneshot` -- expected-latency loss on the live alphas of DARTS / Proxyless
* :mod:`~nas_latency.nni.search` -- the in-process, latency-constrained multi-trial search

Importing this package does not import NNI; each submodule imports it (quietly) when it is imported.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "LatencyProfiler": "nas_latency.nni.profiler",
    "LatencyConstraint": "nas_latency.nni.constraints",
    "latency_filter": "nas_latency.nni.constraints",
    "range_filter": "nas_latency.nni.constraints",
    "mnasnet_reward": "nas_latency.nni.constraints",
    "LatencyAwareEvaluator": "nas_latency.nni.constraints",
    "LatencyTable": "nas_latency.nni.latency_table",
    "TableProfiler": "nas_latency.nni.latency_table",
    "build_latency_table": "nas_latency.nni.latency_table",
    "ExpectedLatency": "nas_latency.nni.oneshot",
    "LatencyPenalty": "nas_latency.nni.oneshot",
    "expected_latency": "nas_latency.nni.oneshot",
    "BundledAccuracyEvaluator": "nas_latency.nni.search",
    "SearchResult": "nas_latency.nni.search",
    "run_search": "nas_latency.nni.search",
    "search_nasbench201": "nas_latency.nni.search",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
