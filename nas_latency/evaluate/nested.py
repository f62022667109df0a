"""A model chosen per held-out device by leave-device-out validation on the training devices alone.

Choosing the shipped model by the same leave-device-out figures that report it makes those figures optimistic:
the choice saw the held-out devices. :func:`add_nested_choice` measures what the choice is worth without that. For
each held-out group of a finished run it repeats the run *inside* the group's training devices (each of them held
out in turn, onboarded from the same budget, seeds and signature method), keeps the candidate with the highest
mean Spearman on the space's first scoring set, and scores that candidate's outer predictions on the held-out
group. The result gains a model :data:`NESTED_MODEL` whose scores are those, and records every group's inner
figures and choice in :attr:`~nas_latency.evaluate.results.EvaluationResult.nested_choices`.
"""

from __future__ import annotations

import time
from typing import Mapping

from nas_latency.errors import InvalidInputError
from nas_latency.evaluate.protocols import ModelFactory, ProgressCallback, SignatureSelector, leave_device_out
from nas_latency.evaluate.results import DeviceScore, EvaluationResult, IntervalCoverage, Prediction
from nas_latency.ir import FeatureMatrix

#: the model name of the nested choice in a result
NESTED_MODEL = "nested_choice"


def add_nested_choice(result: EvaluationResult, candidates: Mapping[str, ModelFactory], *,
                      selector: SignatureSelector, features: FeatureMatrix | None = None,
                      progress: ProgressCallback | None = None) -> EvaluationResult:
    """Add :data:`NESTED_MODEL` to ``result`` (a run that scored every candidate), choosing among ``candidates``
    per held-out group by an inner leave-device-out run on that group's training devices. Returns ``result``."""
    if len(candidates) < 2:
        raise InvalidInputError(f"a nested choice needs at least 2 candidate models, got {len(candidates)}")
    missing = [name for name in candidates if name not in result.models]
    if missing:
        raise InvalidInputError(f"the run did not score the candidates {', '.join(missing)}")
    if NESTED_MODEL in result.models:
        raise InvalidInputError(f"the run already has a {NESTED_MODEL!r} model")
    primary = result.scoring_sets[0]
    start = time.perf_counter()
    fits = 0
    for n, group in enumerate(result.held_out_groups):
        training = result.training_devices[group]
        inner = leave_device_out(result.dataset.with_devices(training), candidates, budget=result.budget,
                                 seeds=result.seeds, selector=selector, features=features, keep_predictions=False,
                                 exclude_same=result.exclude_same)
        fits += sum(int(t["fits"]) for t in inner.timings.values())
        inner_spearman = {row["model"]: float(row["spearman_mean"]) for row in inner.summary()
                          if row["set"] == primary}
        chosen = max(candidates, key=lambda name: inner_spearman[name])
        result.nested_choices[group] = {"chosen": chosen, "inner_spearman": inner_spearman,
                                        "inner_devices": list(training)}
        devices = set(result.dataset.devices_of(group))
        result.scores += [DeviceScore(NESTED_MODEL, s.seed, s.device, s.group, s.scoring_set, s.n_scored, s.metrics)
                          for s in list(result.scores) if s.model == chosen and s.device in devices]
        result.intervals += [IntervalCoverage(NESTED_MODEL, c.seed, c.device, c.scoring_set, c.coverage,
                                              c.median_std_log)
                             for c in list(result.intervals) if c.model == chosen and c.device in devices]
        for device in devices:
            kept = result.predictions.get((chosen, device))
            if kept is not None:
                result.predictions[(NESTED_MODEL, device)] = Prediction(NESTED_MODEL, device, kept.seed,
                                                                        kept.signature_rows, kept.predicted_ms)
        if progress:
            progress(n + 1, len(result.held_out_groups), f"{NESTED_MODEL}: {chosen} for {group}")
    result.models.append(NESTED_MODEL)
    result.timings[NESTED_MODEL] = {"fit_s": time.perf_counter() - start, "adapt_predict_s": 0.0, "fits": fits,
                                    "adaptations": 0}
    return result


__all__ = ["NESTED_MODEL", "add_nested_choice"]
