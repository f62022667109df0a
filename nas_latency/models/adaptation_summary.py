"""What an onboarded device's adaptation says about the device, in words: which member model explains it, by what
errors, whether it drops degenerate architectures, whether its speed lies outside the training devices' range, and
which of its measurements were left out because the others disagree with them.

The shipped models nest
(``clamp_speed(degenerate_aware(drop_outliers(loo_select(without_costs(blr_evidence),cost_nnls,pruned_cost_nnls))))``),
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
_TRANSPARENT = ("without_costs", "degenerate_aware", "clamp_speed", "drop_outliers")
#: a member whose weight is at least this is reported as the device's model (weights sum to 1)
WHOLE_WEIGHT = 0.999


@dataclass(frozen=True)
class LeftOutMeasurement:
    """A measurement the model left out (``drop_outliers``): the arch, its measured latency, and the latency the
    device's other measurements predict for it."""

    arch: str
    measured_ms: float
    predicted_ms: float

    def __str__(self) -> str:
        ratio = self.measured_ms / self.predicted_ms
        return (f"{self.arch} (measured {self.measured_ms:.4g} ms, {ratio:.3g} times the {self.predicted_ms:.4g} ms "
                "the other measurements predict)")


@dataclass(frozen=True)
class AdaptationSummary:
    """``model``: the member model that explains the device (or the weighted mix); ``detail``: the evidence, e.g.
    each member's leave-one-out error; ``drops_degenerate``: whether the device reports near-zero latencies for
    architectures that compute nothing (None: the model does not ask); ``left_out``: the measurements left out as
    outliers (worth measuring again)."""

    model: str
    detail: str
    drops_degenerate: bool | None
    left_out: tuple[LeftOutMeasurement, ...] = ()


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


def _left_out(entries: Any, rows: Sequence[int], archs: Sequence[str] | None) -> list[LeftOutMeasurement]:
    """``drop_outliers``' record of the measurements it left out, each named by its arch or, without ``archs`` (the
    measured archs in the order the model was adapted on them), as "measurement N". ``rows``: the device's
    measurement behind each row ``drop_outliers`` saw."""
    out = []
    for entry in entries if isinstance(entries, list) else []:
        row = rows[int(entry["row"])]
        arch = archs[row] if archs is not None and row < len(archs) else f"measurement {row + 1}"
        out.append(LeftOutMeasurement(arch, float(entry["measured_ms"]), float(entry["predicted_ms"])))
    return out


def summarize_adaptation(adaptation: DeviceAdaptation, archs: Sequence[str] | None = None) -> AdaptationSummary:
    """See the module docstring. ``archs``: the measured archs, in the order of the adaptation's measurements
    (names the measurements left out)."""
    node: Mapping[str, Any] = {"model_kind": adaptation.model_kind, "info": adaptation.info}
    drops: bool | None = None
    notes: list[str] = []
    left_out: list[LeftOutMeasurement] = []
    rows = list(range(adaptation.n_measurements))  # the device's measurement behind each one this level sees
    while str(node.get("model_kind")) in _TRANSPARENT and isinstance((node.get("info") or {}).get("base"), Mapping):
        info = node["info"]
        if node["model_kind"] == "degenerate_aware":
            drops = bool(info.get("drops_degenerate"))
            if isinstance(info.get("base_rows"), list):  # its base saw these only
                rows = [rows[int(i)] for i in info["base_rows"]]
            if info.get("degenerate_untested"):
                notes.append("too few live measurements to test whether it drops degenerate architectures")
            if info.get("costs_pruned"):
                notes.append("it drops dead cells, so its price lists price only the layers whose values are read")
        if node["model_kind"] == "clamp_speed" and float(info.get("shift", 0.0)) != 0.0:
            factor = math.exp(-float(info["shift"]))  # > 1: slower than the range allows
            notes.append(f"{max(factor, 1.0 / factor):.3g} times {'slower' if factor > 1 else 'faster'} than the "
                         "training devices' range allows: onboarded at its edge, predictions scaled back")
        if node["model_kind"] == "drop_outliers" and info.get("outliers"):
            left_out = _left_out(info["outliers"], rows, archs)
            notes.append(f"left out {len(left_out)} measurement{'s' if len(left_out) > 1 else ''} the others "
                         "disagree with: " + "; ".join(map(str, left_out)))
        node = info["base"]
    info = node.get("info") or {}
    members = info.get("members")
    weights = info.get("device_weights")
    if not (isinstance(members, list) and isinstance(weights, list) and len(members) == len(weights)):
        return AdaptationSummary(member_name(node), "; ".join(notes), drops, tuple(left_out))
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
    return AdaptationSummary(_mix(names, [float(w) for w in weights]), "; ".join(evidence + notes), drops,
                             tuple(left_out))


__all__ = ["AdaptationSummary", "LeftOutMeasurement", "WHOLE_WEIGHT", "member_name", "summarize_adaptation"]
