"""Latency as a hard constraint or inside the objective of an NNI 3.0 search.

Hard constraint, multi-trial (a rejected sample is never submitted to the engine, so never evaluated)::

    constraint = LatencyConstraint(profiler, max_latency_ms=10.0)
    strategy = Chain(RegularizedEvolution(), latency_filter(constraint))

Hard constraint, one-shot (``RandomOneShot(filter=...)``, ENAS): :func:`range_filter` is NNI's own
``RangeProfilerFilter`` over a :class:`~nas_latency.nni.profiler.LatencyProfiler`.

Soft, in the objective: :func:`mnasnet_reward` (MnasNet, Tan et al. CVPR 2019: ``ACC × (LAT / T)^w``), and
:class:`LatencyAwareEvaluator`, which wraps any NNI evaluator and turns the accuracy it reports into that reward.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from nas_latency.errors import InvalidInputError
from nas_latency.nni._compat import import_nni

if TYPE_CHECKING:
    from nas_latency.nni.profiler import LatencyProfiler

import_nni()
from nni.nas.evaluator import Evaluator  # noqa: E402
from nni.nas.profiler import Profiler  # noqa: E402
from nni.runtime.trial_command_channel import (  # noqa: E402
    TrialCommandChannel,
    get_default_trial_command_channel,
    set_default_trial_command_channel,
)

#: MnasNet's exponent for its soft constraint (alpha = beta = -0.07)
MNASNET_SOFT_W = -0.07


@dataclass
class ConstraintDecision:
    """One decision of a :class:`LatencyConstraint`."""

    sample: dict[str, Any]
    latency_ms: float
    accepted: bool


@dataclass
class LatencyConstraint:
    """``min_latency_ms <= profiler.profile(sample) <= max_latency_ms``, remembering every decision.

    Call it on a sample (a dict) or on an NNI model (anything with ``.sample``, e.g. what ``Filter`` passes).
    """

    profiler: Profiler
    max_latency_ms: float | None = None
    min_latency_ms: float | None = None
    decisions: list[ConstraintDecision] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.max_latency_ms is None and self.min_latency_ms is None:
            raise InvalidInputError("a latency constraint needs max_latency_ms, min_latency_ms or both")
        for name in ("max_latency_ms", "min_latency_ms"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InvalidInputError(f"{name} must be a positive number of milliseconds, got {value!r}")
        if (self.max_latency_ms is not None and self.min_latency_ms is not None
                and self.min_latency_ms > self.max_latency_ms):
            raise InvalidInputError(f"min_latency_ms {self.min_latency_ms} > max_latency_ms {self.max_latency_ms}")

    def __call__(self, model_or_sample: Any) -> bool:
        sample = model_or_sample if isinstance(model_or_sample, Mapping) else getattr(model_or_sample, "sample", None)
        if not isinstance(sample, Mapping):
            raise InvalidInputError(f"expected an NNI sample or a frozen model with .sample, got {model_or_sample!r}")
        latency_ms = float(self.profiler.profile(sample))
        accepted = self.satisfied(latency_ms)
        with self._lock:
            self.decisions.append(ConstraintDecision(dict(sample), latency_ms, accepted))
        return accepted

    def satisfied(self, latency_ms: float) -> bool:
        if self.max_latency_ms is not None and latency_ms > self.max_latency_ms:
            return False
        if self.min_latency_ms is not None and latency_ms < self.min_latency_ms:
            return False
        return True

    @property
    def accepted(self) -> list[ConstraintDecision]:
        return [d for d in self.decisions if d.accepted]

    @property
    def rejected(self) -> list[ConstraintDecision]:
        return [d for d in self.decisions if not d.accepted]


def latency_filter(constraint: LatencyConstraint, *, patience: int = 1000,
                   metric_for_invalid: float | None = None, max_invalid_metrics: int | None = None) -> Any:
    """NNI's ``Filter`` middleware over ``constraint``: put it last in ``Chain(strategy, ...)``. A rejected model
    is marked Invalid and never reaches the engine. ``patience`` consecutive rejections end the search;
    ``metric_for_invalid`` (if given) is reported for rejected models, so model-based strategies (TPE) learn
    to avoid them, for the first ``max_invalid_metrics`` rejections (all by default); later ones end without a
    metric. TPE sorts its whole history for every proposal, so under a tight budget, where thousands of proposals
    are rejected, an unbounded history made 300 trials take minutes."""
    from nni.nas.strategy.middleware import Filter

    if max_invalid_metrics is not None and max_invalid_metrics < 0:
        raise InvalidInputError(f"max_invalid_metrics must be >= 0, got {max_invalid_metrics}")

    class BoundedFeedbackFilter(Filter):
        def submit_models(self, *models: Any) -> None:
            if max_invalid_metrics is not None and self._filter_count_total >= max_invalid_metrics:
                self.metric_for_invalid = None
            super().submit_models(*models)

    return BoundedFeedbackFilter(constraint, metric_for_invalid=metric_for_invalid, patience=patience)


def range_filter(profiler: Profiler, *, max_latency_ms: float | None = None,
                 min_latency_ms: float | None = None) -> Any:
    """NNI's ``RangeProfilerFilter`` (for one-shot strategies such as ``RandomOneShot(filter=...)``)."""
    from nni.nas.oneshot.pytorch.profiler import RangeProfilerFilter

    return RangeProfilerFilter(profiler, min=min_latency_ms, max=max_latency_ms)


def mnasnet_reward(accuracy: float, latency_ms: float, target_ms: float, *, w: float = MNASNET_SOFT_W,
                   hard: bool = False) -> float:
    """MnasNet's objective ``accuracy × (latency / target)^w``. Soft (default): ``w`` on both sides of the target
    (MnasNet's alpha = beta = -0.07). ``hard=True``: exponent 0 at or under the target and -1 over it."""
    if not (target_ms > 0 and latency_ms > 0):
        raise InvalidInputError(f"mnasnet_reward needs positive latency and target, got {latency_ms} and {target_ms}")
    exponent = (0.0 if latency_ms <= target_ms else -1.0) if hard else w
    return float(accuracy) * (latency_ms / target_ms) ** exponent


class _RewardChannel(TrialCommandChannel):
    """Passes everything through to ``inner``, rewriting FINAL metrics with ``transform``."""

    def __init__(self, inner: TrialCommandChannel, transform: Callable[[Any], Any]) -> None:
        self.inner = inner
        self.transform = transform

    def receive_parameter(self) -> Any:
        return self.inner.receive_parameter()

    def send_metric(self, type: str, parameter_id: Any, trial_job_id: str,  # noqa: A002 (NNI's name)
                    sequence: int, value: Any) -> None:
        if type == "FINAL":
            value = self.transform(value)
        self.inner.send_metric(type=type, parameter_id=parameter_id,  # type: ignore[arg-type]
                               trial_job_id=trial_job_id, sequence=sequence, value=value)


class LatencyAwareEvaluator(Evaluator):
    """Wraps any NNI evaluator: the final metric it reports (a float, or a dict's ``"default"``) becomes
    ``mnasnet_reward(metric, latency_ms, target_ms, w=w, hard=hard)``, with the sample's latency from
    ``profiler``; a dict metric keeps the raw value as ``"accuracy"`` and gains ``"latency_ms"``."""

    def __init__(self, evaluator: Evaluator, profiler: "LatencyProfiler | Profiler", *, target_ms: float,
                 w: float = MNASNET_SOFT_W, hard: bool = False) -> None:
        if not target_ms > 0:
            raise InvalidInputError(f"target_ms must be positive, got {target_ms}")
        self.evaluator = evaluator
        self.profiler = profiler
        self.target_ms = float(target_ms)
        self.w = float(w)
        self.hard = hard

    def extra_repr(self) -> str:
        return f"{self.evaluator!r}, target_ms={self.target_ms}, w={self.w}, hard={self.hard}"

    def evaluate(self, model: Any) -> Any:
        return self.evaluator.evaluate(model)

    def _execute(self, model: Any) -> Any:
        sample = getattr(model, "sample", None)
        if not isinstance(sample, Mapping):
            raise InvalidInputError("LatencyAwareEvaluator needs a frozen model with a sample")
        latency_ms = float(self.profiler.profile(sample))

        def transform(value: Any) -> Any:
            if isinstance(value, Mapping):
                raw = float(value["default"])
                reward = mnasnet_reward(raw, latency_ms, self.target_ms, w=self.w, hard=self.hard)
                return {**value, "default": reward, "accuracy": raw, "latency_ms": latency_ms}
            return mnasnet_reward(float(value), latency_ms, self.target_ms, w=self.w, hard=self.hard)

        previous = get_default_trial_command_channel()
        set_default_trial_command_channel(_RewardChannel(previous, transform))
        try:
            return self.evaluator._execute(model)
        finally:
            set_default_trial_command_channel(previous)
