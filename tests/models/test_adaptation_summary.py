"""The summary of an adaptation names the member model a device's measurements chose, with the evidence."""

from __future__ import annotations

from nas_latency.models.adaptation_summary import member_name, summarize_adaptation
from nas_latency.models.base import DeviceAdaptation


def member(kind: str, **info: object) -> dict:
    return {"model_kind": kind, "n_measurements": 9, "info": info}


def selection(weights: list[float], rule: str) -> dict:
    members = [member("without_costs", base=member("blr_evidence")), member("cost_nnls"), member("pruned_cost_nnls")]
    return {"members": members, "device_weights": weights, "weighted_by": rule,
            "leave_one_out_log_mse": [0.0907, 0.0811, 0.0163]}


def test_a_chosen_member_is_named_with_every_member_s_error_and_the_rule() -> None:
    adaptation = DeviceAdaptation("degenerate_aware", "h", 10, info={
        "drops_degenerate": True, "base": {"model_kind": "loo_select", "n_measurements": 9,
                                           "info": selection([0.0, 0.0, 1.0], "F-test at 0.05: members[2]")}})
    summary = summarize_adaptation(adaptation)
    assert summary.model == "pruned_cost_nnls" and summary.drops_degenerate is True
    assert summary.detail == ("leave-one-out mean square of the ln error: blr_evidence 0.0907, cost_nnls 0.0811, "
                              "pruned_cost_nnls 0.0163; weighed by F-test at 0.05: pruned_cost_nnls")


def test_weights_that_share_the_device_are_listed() -> None:
    summary = summarize_adaptation(DeviceAdaptation("loo_average", "h", 10, info=selection(
        [0.7, 0.3, 0.0], "pseudo-BMA of the leave-one-out errors")))
    assert summary.model == "blr_evidence 0.70, cost_nnls 0.30" and summary.drops_degenerate is None


def test_a_single_model_is_named_and_wrappers_pass_through() -> None:
    nested = member("geo_ensemble", members=[member("nnls_mix_measured"), member("gp_mix")])
    assert member_name(nested) == "geo_ensemble(nnls_mix_measured,gp_mix)"
    summary = summarize_adaptation(DeviceAdaptation("degenerate_aware", "h", 3, info={
        "drops_degenerate": False, "degenerate_untested": True, "base": member("without_costs", base=member("blr"))}))
    assert summary.model == "blr" and summary.drops_degenerate is False
    assert "too few live measurements" in summary.detail
