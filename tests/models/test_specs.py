"""Model specs: names, wrapping, members and settings (``name=value``), and the errors that name what was wrong."""

from __future__ import annotations

import pytest

from nas_latency.errors import InvalidInputError, NotFoundError
from nas_latency.builtin_models import DEFAULT_MODEL_SPECS
from nas_latency.models.cost_nnls import CostPriceModel
from nas_latency.models.gp_mix import GPMixModel
from nas_latency.models.outlier_drop import OutlierDrop
from nas_latency.models.selection import LeaveOneOutSelection
from nas_latency.models.specs import build_model, setting_value
from nas_latency.models.without_costs import WithoutCosts


def test_settings_reach_the_constructor_after_the_models() -> None:
    model = build_model("drop_outliers(loo_select(without_costs(blr), cost_nnls, significance=0.01))")
    assert isinstance(model, OutlierDrop)
    selection = model.base
    assert isinstance(selection, LeaveOneOutSelection)
    assert selection.significance == 0.01 and selection.weighting == "test"
    assert isinstance(selection.members[0], WithoutCosts) and isinstance(selection.members[1], CostPriceModel)
    assert build_model("loo_select(blr,cost_nnls)").significance == 0.05  # the class default without a setting


def test_a_model_without_members_takes_settings_alone() -> None:
    gp = build_model("gp_mix(standardize=false)")
    assert isinstance(gp, GPMixModel) and gp.standardize is False
    assert build_model("cost_nnls(cost_prefix=pruned_cost)").cost_prefix == "pruned_cost"
    several = build_model("loo_select(blr,cost_nnls,weighting=pseudo_bma,min_choice_measurements=5)")
    assert several.weighting == "pseudo_bma" and several.min_choice_measurements == 5


@pytest.mark.parametrize(("text", "value"), [
    ("0.01", 0.01), ("5", 5), ("-2", -2), ("1e-3", 1e-3), (".5", 0.5), ("true", True), ("false", False),
    ("pseudo_bma", "pseudo_bma"),
])
def test_setting_values(text: str, value: object) -> None:
    parsed = setting_value(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(("spec", "message"), [
    ("loo_select(blr,significance=0.01,cost_nnls)", "loo_select's models must come before its settings"),
    ("loo_select(blr,cost_nnls,sig=0.01)", "loo_select has no setting 'sig' (its settings: weights, significance"),
    ("loo_select(blr,cost_nnls,members=3)", "loo_select has no setting 'members'"),
    ("drop_outliers(blr,base=blr)", "drop_outliers has no setting 'base'"),
    ("loo_select(blr,cost_nnls,significance=0.01,significance=0.02)", "setting 'significance' is given twice"),
    ("gp_mix(standardize=)", "gp_mix setting 'standardize' has no value after '='"),
    ("gp_mix(standardize=,blr)", "has no value after '='"),
    ("gp_mix(3=4)", "setting name must be a word, got '3'"),
    ("loo_select(0.01)", "expected a model name, got '0.01'"),
    ("gp_mix(blr)", "gp_mix takes no models, only settings"),
    ("gp_mix(standardize=true", "missing ')'"),
    ("gp_mix(standardize=true)=", "unexpected '=' after the model"),
    ("loo_select(blr;cost_nnls)", "unexpected text at position 14"),
])
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        build_model(spec)
    assert message in str(caught.value) and repr(spec) in str(caught.value)


def test_an_unknown_model_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="unknown model kind 'bogus'"):
        build_model("loo_select(bogus,cost_nnls)")


def test_a_bad_setting_value_is_refused_when_the_model_is_fitted() -> None:
    import numpy as np

    from nas_latency.ir import FeatureMatrix

    features = FeatureMatrix(("cost.a", "b"), np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0], [4.0, 3.0]]),
                             ("w", "x", "y", "z"))
    model = build_model("loo_select(without_costs(blr),cost_nnls,significance=2)")
    with pytest.raises(InvalidInputError, match="significance"):
        model.fit(features, np.ones((4, 2)))


def test_the_shipped_phone_spec_sets_its_significance() -> None:
    model = build_model(DEFAULT_MODEL_SPECS["ganesan_mobile"])
    while not isinstance(model, LeaveOneOutSelection):
        model = model.base
    assert model.significance == 0.01
