"""Per-device choice among member models by their leave-one-out errors on the device's own measurements.

Different devices are explained by different models: a GPU like the training devices by a transfer model (a mix
of the training devices, a Bayesian prior learned from them), an accelerator that runs layers one after another
by non-negative prices of the network's physical costs (:mod:`nas_latency.models.cost_nnls`), which no prior
learned from GPUs and CPUs leads to. Only the new device's measurements can tell which, so ``adapt`` asks them:
every member is adapted on the K measurements (what it predicts with) and, for each measurement ``i``, adapted
again on the other K − 1 and asked for ``i``. A member's leave-one-out error is the mean square ``MSE_m`` of
``ln y_i − ln ŷ_i``. Two ways to turn the errors into the device's member weights (the prediction is the
weighted geometric mean of the members', its uncertainty the mixture's, as in
:class:`~nas_latency.models.ensemble.GeometricEnsemble`):

``loo_select`` (``weighting="test"``)
    ``members[0]`` (the transfer model) is the default; another member replaces it only when its error is
    significantly smaller, by a one-sided F-test of the two mean squares at level ``significance`` (K and K
    degrees of freedom; 5 %: about 3 times smaller at K = 10, 2.1 times at K = 20). Without the test a device
    whose measurements are mostly noise (a phone timed in whole milliseconds) switches on noise: every model's
    leave-one-out error there is the noise, and the smallest of them is chance. Among the members that pass, the
    smallest error wins; the device uses that one member. The residuals of leave-one-out are not quite
    independent, so the level is a rule, not an exact probability.
``loo_average`` (``weighting="pseudo_bma"``)
    pseudo Bayesian model averaging (Yao, Vehtari, Simpson and Gelman, "Using stacking to average Bayesian
    predictive distributions", 2018): weights proportional to ``exp(elpd_loo)``, the members' leave-one-out log
    predictive densities, here Gaussian with the variance each member showed, so ``w_m ∝ MSE_m^(−K/2)``. A member
    twice as accurate at K = 10 gets 32 times the weight; two members about as good share the device.

Chosen by leave-device-out evaluation (docs/figures.md): on NAS-Bench-201, where the transfer model is
close to its in-device ceiling, the test keeps it unless the evidence is strong; on FBNet, where devices of an
unseen kind are far from every training device, averaging gains most.

With more than :data:`MAX_FOLDS` measurements (a device that keeps contributing), "leave one out" becomes
:data:`MAX_FOLDS` interleaved folds: each measurement is still predicted by a fit without it, at a bounded cost.
With fewer measurements than a member needs plus one there is no leave-one-out: the device uses ``members[0]``.
With fewer than ``min_choice_measurements`` (default :data:`MIN_CHOICE_MEASUREMENTS`) it uses ``members[0]`` too:
a price list with more prices than measurements predicts four or five held-out points well by chance, and with
K = 5 both ways of choosing lost to ``members[0]`` alone (NB201 and FBNet; docs/figures.md).
The adaptation's ``info`` records every member's error, the weights and how they were chosen.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy.stats import f as f_distribution

from nas_latency.errors import InvalidInputError
from nas_latency.models.base import CrossDeviceModel, DeviceAdaptation
from nas_latency.models.ensemble import GeometricEnsemble
from nas_latency.models.linalg import MAX_FOLDS, check_open_unit, cross_validation_folds, integer_setting

WEIGHTINGS: tuple[str, ...] = ("test", "pseudo_bma")
#: below this many measurements the device keeps ``members[0]``: a price list with more prices than measurements
#: can predict four or five held-out points by chance (NB201 and FBNet with K = 5, docs/figures.md), and no test
#: on so few residuals tells luck from fit
MIN_CHOICE_MEASUREMENTS = 8
#: leave-one-out mean squares are floored here before logs and ratios (a member that fits every point exactly)
MSE_FLOOR = 1e-12


def leave_one_out_log_mse(member: CrossDeviceModel, X: np.ndarray, latency_ms: np.ndarray, *,
                          max_folds: int = MAX_FOLDS) -> float:
    """Mean of ``(ln y_i − ln ŷ_i)²`` with ``ŷ_i`` from ``member`` adapted without ``i``'s fold
    (:func:`cross_validation_folds`), so a device with hundreds of measurements costs ``max_folds`` adaptations,
    not hundreds (and the Bayesian linear models need none: they have a closed form)."""
    fold = cross_validation_folds(len(latency_ms), max_folds)
    return log_mse(latency_ms, member._held_out_log_predictions(X, latency_ms, fold))


def log_mse(latency_ms: np.ndarray, log_predicted: np.ndarray) -> float:
    """Mean of ``(ln y_i − log_predicted_i)²``."""
    return float(np.mean((np.log(latency_ms) - log_predicted) ** 2))


def f_test_choice(errors: Sequence[float], n_residuals: int, significance: float) -> np.ndarray:
    """One-hot weights: ``members[0]`` unless another member's mean square is smaller by more than the F-test's
    critical ratio (then the smallest such; of members that fit to within :data:`MSE_FLOOR`, the first listed, so
    that two members that fit exactly do not choose between them by rounding)."""
    critical = float(f_distribution.ppf(1.0 - significance, n_residuals, n_residuals))
    floored = [max(float(error), MSE_FLOOR) for error in errors]
    passing = [i for i in range(1, len(errors)) if floored[i] * critical < errors[0]]
    weights = np.zeros(len(errors))
    weights[min(passing, key=lambda i: floored[i]) if passing else 0] = 1.0
    return weights


def pseudo_bma_weights(errors: Sequence[float], n_residuals: int) -> np.ndarray:
    """``w_m ∝ MSE_m^(−K/2)``, normalized (computed in logs)."""
    log_weights = -0.5 * n_residuals * np.log(np.maximum(np.asarray(errors, dtype=np.float64), MSE_FLOOR))
    weights = np.exp(log_weights - log_weights.max())
    return weights / weights.sum()


class LeaveOneOutSelection(GeometricEnsemble):
    """Member weights per device from the members' leave-one-out errors; see the module docstring."""

    kind = "loo_select"

    def __init__(self, *, members: Sequence[CrossDeviceModel], weights: Sequence[float] | None = None,
                 significance: float = 0.05, weighting: str = "test",
                 min_choice_measurements: int = MIN_CHOICE_MEASUREMENTS) -> None:
        super().__init__(members=members, weights=weights)
        self.significance = significance
        self.weighting = weighting
        self.min_choice_measurements = min_choice_measurements

    def _checked_weights(self) -> np.ndarray:
        if self.weights is not None:
            raise InvalidInputError(f"{self.kind} weighs its members per device; weights must not be given")
        check_open_unit(self.significance, "significance")
        if self.weighting not in WEIGHTINGS:
            raise InvalidInputError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {self.weighting!r}")
        integer_setting(self, "min_choice_measurements", minimum=0)
        return np.eye(len(self.members))[0]

    def _adapt(self, X: np.ndarray, latency_ms: np.ndarray) -> DeviceAdaptation:
        k = len(latency_ms)
        errors: list[float] | None = None
        too_few_to_leave_out = k - int(np.ceil(k / MAX_FOLDS)) < max(m.min_measurements for m in self.members_)
        if too_few_to_leave_out or k < self.min_choice_measurements:
            adaptation = super()._adapt(X, latency_ms)
            weights = self.weights_.copy()
            how = (f"members[0]: {k} measurements, too few to leave one out" if too_few_to_leave_out else
                   f"members[0]: {k} measurements, fewer than the {self.min_choice_measurements} a choice among "
                   "members needs")
        else:
            # each member's adaptation and its leave-one-out come from one call: a member whose adaptation solves
            # what its cross-validation needs solves it once (CrossDeviceModel._adapt_and_held_out)
            fold = cross_validation_folds(k, MAX_FOLDS)
            member_adaptations, held_out = self._members_adapted_and_held_out(X, latency_ms, fold)
            adaptation = self._adaptation(member_adaptations, k)
            errors = [log_mse(latency_ms, h) for h in held_out]
            if self.weighting == "test":
                weights = f_test_choice(errors, k, float(self.significance))
                how = f"F-test at {self.significance:g}: members[{int(np.argmax(weights))}]"
            else:
                weights, how = pseudo_bma_weights(errors, k), "pseudo-BMA of the leave-one-out errors"
        info: dict[str, Any] = {**adaptation.info, "device_weights": weights.tolist(), "weighted_by": how,
                                "leave_one_out_log_mse": errors}
        return DeviceAdaptation(
            model_kind=self.kind,
            feature_schema_hash=adaptation.feature_schema_hash,
            n_measurements=adaptation.n_measurements,
            arrays={**adaptation.arrays, "device_weights": weights},
            info=info,
        )

    def _held_out_log_predictions(self, X: np.ndarray, latency_ms: np.ndarray, fold: np.ndarray) -> np.ndarray:
        # the device weights are chosen from the measurements too: adapt per fold (the generic cross-validation)
        return CrossDeviceModel._held_out_log_predictions(self, X, latency_ms, fold)

    def _adapt_and_held_out(self, X: np.ndarray, latency_ms: np.ndarray,
                            fold: np.ndarray) -> tuple[DeviceAdaptation, np.ndarray]:
        # not the fixed-weight ensemble's: the held-out rows' weights are chosen without them
        return CrossDeviceModel._adapt_and_held_out(self, X, latency_ms, fold)

    def device_weights(self, adaptation: DeviceAdaptation) -> np.ndarray:
        weights = np.asarray(adaptation.arrays.get("device_weights", ()), dtype=np.float64)
        if weights.shape != (len(self.members_),) or not np.isclose(weights.sum(), 1.0) or (weights < 0).any():
            raise InvalidInputError(
                f"{self.kind} adaptation: device weights {weights.tolist()} do not fit {len(self.members_)} members"
            )
        return weights


class LeaveOneOutAverage(LeaveOneOutSelection):
    """``loo_average``: :class:`LeaveOneOutSelection` with ``weighting="pseudo_bma"`` (a kind of its own, so that
    model specs such as ``loo_average(without_costs(blr),cost_nnls)`` can name it)."""

    kind = "loo_average"

    def __init__(self, *, members: Sequence[CrossDeviceModel], weights: Sequence[float] | None = None,
                 weighting: str = "pseudo_bma", min_choice_measurements: int = MIN_CHOICE_MEASUREMENTS) -> None:
        super().__init__(members=members, weights=weights, weighting=weighting,
                         min_choice_measurements=min_choice_measurements)


__all__ = ["MIN_CHOICE_MEASUREMENTS", "WEIGHTINGS", "LeaveOneOutAverage", "LeaveOneOutSelection", "f_test_choice", "leave_one_out_log_mse",
           "pseudo_bma_weights"]
