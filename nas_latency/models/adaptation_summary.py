"""What an onboarded device's adaptation says about the device, in words: which member model explains it, by what
errors, whether it drops degenerate architectures, and whether its speed lies outside the training devices' range.

The shipped models nest
(``clamp_speed(degenerate_aware(loo_select(without_costs(blr_evidence),cost_nnls,pruned_cost_nnls)))``),
and every level records its facts in the adaptation's ``info`` (:class:`~nas_latency.models.base.DeviceAdaptation`).
:func:`summarize_adaptation` walks that record; it reads nothing else, so it serves a stored or a fresh adaptation
alike. ``devices show`` prints it, locally and over gRPC.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from nas_latency.models.base import DeviceAdaptation

#: wrappers that only pass their base through (named by their base in a summary)
_TRANSPARENT = ("without_costs", "degenerate_aware", "clamp_speed")
#: a member whose weight is at least this is reported as the device's model (weights sum to 1)
WHOLE_WEIGHT = 0.999


@dataclass(frozen=True)
class AdaptationSummary:
    """``model``: the member model that explains the device (or the weighted mix); ``detail``: the evidence, e.g.
    each member's leave-one-out error; ``drops_degenerate``: whether the device reports near-zero latencies for
    architectures that compute nothing (None: the model does not ask)."""

    model: str
    detail: str
    drops_degenerate: bool | None


def member_name(entry: Mapping[str, Any]) -> str:
    """A member's model named as a spec, wrappers that only pass their base through left out."""
    kind = str(entry.get("model_kind", "?"))
    info = entry.get("info") or {}
    if kind in _TRANSPARENT and isinstance(info.get("base"), Mapping):
        return member_name(info["base"])
    members = info.get("members")
    if isinstance(members, list) and members:
        return f"{kind}({','.join(member_name(m) for m in members)})"
    return kind


def _mix(names: Sequence[str], weights: Sequence[float]) -> str:
    best = max(range(len(weights)), key=lambda i: weights[i])
    if weights[best] >= WHOLE_WEIGHT:
        return names[best]
    return ", ".join(f"{name} {weight:.2f}" for name, weight in zip(names, weights) if weight >= 0.005)


def summarize_adaptation(adaptation: DeviceAdaptation) -> AdaptationSummary:
    """See the module docstring."""
    node: Mapping[str, Any] = {"model_kind": adaptation.model_kind, "info": adaptation.info}
    drops: bool | None = None
    notes: list[str] = []
    while str(node.get("model_kind")) in _TRANSPARENT and isinstance((node.get("info") or {}).get("base"), Mapping):
        info = node["info"]
        if node["model_kind"] == "degenerate_aware":
            drops = bool(info.get("drops_degenerate"))
            if info.get("degenerate_untested"):
                notes.append("too few live measurements to test whether it drops degenerate architectures")
        if node["model_kind"] == "clamp_speed" and float(info.get("shift", 0.0)) != 0.0:
            factor = math.exp(-float(info["shift"]))
            notes.append(f"{factor:.3g} times {'slower' if factor > 1 else 'faster'} than the training devices' range "
                         "allows: onboarded at its edge, predictions scaled back")
        node = info["base"]
    info = node.get("info") or {}
    members = info.get("members")
    weights = info.get("device_weights")
    if not (isinstance(members, list) and isinstance(weights, list) and len(members) == len(weights)):
        return AdaptationSummary(member_name(node), "; ".join(notes), drops)
    names = [member_name(m) for m in members]
    evidence: list[str] = []
    errors = info.get("leave_one_out_log_mse")
    if isinstance(errors, list) and len(errors) == len(names):
        evidence.append("leave-one-out mean square of the ln error: "
                        + ", ".join(f"{name} {error:.3g}" for name, error in zip(names, errors)))
    if info.get("weighted_by"):  # e.g. "F-test at 0.05: members[2]": the member named
        rule = re.sub(r"members\[(\d+)\]", lambda m: names[int(m.group(1))] if int(m.group(1)) < len(names)
                      else m.group(0), str(info["weighted_by"]))
        evidence.append(f"weighed by {rule}")
    return AdaptationSummary(_mix(names, [float(w) for w in weights]), "; ".join(evidence + notes), drops)


__all__ = ["AdaptationSummary", "WHOLE_WEIGHT", "member_name", "summarize_adaptation"]
