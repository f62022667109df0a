"""``python -m nas_latency.mainjob --sweep``: the main job's target measured across held-out devices and budgets.

For every device of ``--devices`` (each held out of training and onboarded from its 10 signature measurements, as
:func:`~nas_latency.mainjob.prepare_holdout` does) and every budget at a quantile of its measured latencies, the
NNI search runs with the embedded predictor and is judged against the bundled measurements
(:func:`~nas_latency.mainjob.judge`). Next to the search, the sweep judges the choices that say where its misses
come from: the same rule over every arch's predictions (no search), the arch most likely to meet the target under
the predictive uncertainty (``nas-latency choose``), each accuracy tolerance, the in-device ceiling's out-of-fold
predictions and a second measurement of the same networks; and what measuring the choice and choosing again buys
(:func:`~nas_latency.evaluate.choice_loop.choose_measure_add`, the bundled latency standing in for a measurement).
"""

from __future__ import annotations

import argparse
from typing import Any, Sequence

import numpy as np

from nas_latency.data import nb201_accuracy
from nas_latency.evaluate.budget_choice import (
    ACCURACY_GAP_POINTS,
    best_under_budget,
    budget_choices_met,
    meets_target,
    most_likely_to_meet,
    with_measurements,
)
from nas_latency.evaluate.ceiling import fold_assignment, out_of_fold_log_predictions, ridge_fit_predict
from nas_latency.evaluate.choice_loop import LOOP_RULES, choose_measure_add
from nas_latency.evaluate.protocols import default_featurizer
from nas_latency.evaluate.retest import both_orders, twin_pairs
from nas_latency.mainjob import SPACE, Outcome, bundled_latency, judge, prepare_holdout, report_progress
from nas_latency.nni.search import choose, search_nasbench201

#: the sweep also judges the search's trials chosen as ``--accuracy-tolerance P`` would, for each of these P
SWEEP_TOLERANCES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
#: the sweep's measure-and-choose-again loop adds at most this many measurements to a device per budget
LOOP_MAX_ADDED = 5


def run_sweep(args: argparse.Namespace) -> list[Outcome]:
    """Steps 2, 3 and 5 for every device of ``--devices`` and budget of ``--quantiles``, judged; each outcome
    also says whether the same rule applied exhaustively to the predictions of every arch (no search) met the
    target, which separates the predictor's misses from the search's. Two references say what the measurements
    allow: the same choice made on a second measurement of the same networks (the archs with a twin,
    :mod:`~nas_latency.evaluate.retest`), and on the in-device ceiling's out-of-fold predictions
    (:mod:`~nas_latency.evaluate.ceiling`), which saw 80 % of the device's own measurements."""
    outcomes = []
    valid = nb201_accuracy("cifar10_valid_acc")
    for device in args.devices:
        predictor, name, signature = prepare_holdout(device, exclude_same=args.exclude_same)
        try:
            measured = bundled_latency(device)
            values = np.array(list(measured.values()))
            archs = list(measured)
            predicted, log_std = predictor.predict_with_uncertainty(SPACE, archs, device=name)
            judged, judged_std, _ = with_measurements(archs, predicted, log_std, signature)
            accuracy = np.array([valid[a] for a in archs])
            first, second = both_orders(twin_pairs(SPACE, archs))
            twin_archs = [archs[i] for i in first]
            retest_met = budget_choices_met(twin_archs, values[first], values[second], valid,
                                            quantiles=args.quantiles)
            predicted_met = budget_choices_met(twin_archs, values[first], np.asarray(predicted)[first], valid,
                                               quantiles=args.quantiles)
            X = default_featurizer(SPACE)(archs).values
            ceiling = np.exp(out_of_fold_log_predictions(X, values, fold_assignment(len(archs), 5, args.seed),
                                                         ridge_fit_predict(X, 1e-2)))
            ceiling_met = budget_choices_met(archs, values, ceiling, valid, quantiles=args.quantiles)
            for k, q in enumerate(args.quantiles):
                budget = round(float(np.quantile(values, q)), 3)
                result, _ = search_nasbench201(device=name, max_latency_ms=budget, trials=args.trials,
                                               strategy=args.strategy, seed=args.seed, predictor=predictor,
                                               tolerance=args.accuracy_tolerance)
                outcome = judge(device, result, measured)
                exhaustive, _ = best_under_budget(archs, predicted, valid, budget)
                if exhaustive is not None:
                    outcome.exhaustive_arch = exhaustive
                    outcome.exhaustive_ok = meets_target(measured[exhaustive], valid[exhaustive], budget,
                                                         outcome.best_accuracy)
                likely = most_likely_to_meet(accuracy, judged, judged_std, budget)
                if likely is not None:
                    outcome.likely_arch = archs[likely]
                    outcome.likely_ok = meets_target(values[likely], accuracy[likely], budget, outcome.best_accuracy)
                for rule in LOOP_RULES:
                    looping = f"{name}-{rule}-{k}"  # a device per budget and rule: its added measurements its own
                    predictor.register_device(looping, SPACE, signature)
                    loop = choose_measure_add(predictor, looping, SPACE, archs, accuracy, measured.__getitem__,
                                              budget, max_added=LOOP_MAX_ADDED, rule=rule)
                    ok = loop.arch is not None and meets_target(measured[loop.arch], valid[loop.arch], budget,
                                                                outcome.best_accuracy)
                    if rule == "most_likely":
                        outcome.loop_ok, outcome.loop_added = ok, len(loop.added)
                    else:
                        outcome.loop_accurate_ok, outcome.loop_accurate_added = ok, len(loop.added)
                outcome.search_likely_ok = likely_among_trials_ok(result, measured, valid, budget,
                                                                   outcome.best_accuracy)
                outcome.tolerance_ok = tolerances_ok(result, measured, valid, budget, outcome.best_accuracy)
                outcome.twins_retest_ok, outcome.twins_predicted_ok = retest_met[k], predicted_met[k]
                outcome.ceiling_ok = ceiling_met[k]
                outcomes.append(outcome)
                report_progress("sweep", f"{device} budget {budget} ms (q{q:g}): gap {outcome.gap:.2f}, measured "
                                   f"{outcome.measured_latency_ms:.2f} ms, {'ok' if outcome.ok else 'MISSED'}")
        finally:
            predictor.close()
    return outcomes


def likely_among_trials_ok(result: Any, measured: dict[str, float], valid: dict[str, float], budget: float,
                           best_accuracy: float) -> bool | None:
    """Does the trial most likely to meet the target, by the rule of ``nas-latency choose`` over only the search's
    evaluated trials, meet it? None where a trial has no standard deviation or none is predicted within."""
    trials = [t for t in result.trials if t.metric is not None]
    if not trials or any(t.predicted_log_std is None for t in trials):
        return None
    index = most_likely_to_meet([t.metric for t in trials], [t.predicted_latency_ms for t in trials],
                                [t.predicted_log_std for t in trials], budget)
    if index is None:
        return None
    arch = trials[index].arch
    return meets_target(measured[arch], valid[arch], budget, best_accuracy)


def tolerances_ok(result: Any, measured: dict[str, float], valid: dict[str, float], budget: float,
                  best_accuracy: float) -> dict[float, bool]:
    """For each P of :data:`SWEEP_TOLERANCES`: does the trial ``--accuracy-tolerance P`` picks (the fastest
    predicted within P points of the most accurate evaluated) meet the target?"""
    out: dict[float, bool] = {}
    for tolerance in SWEEP_TOLERANCES:
        chosen = choose(result.trials, tolerance)
        if chosen is not None and chosen.arch is not None:
            out[tolerance] = meets_target(measured[chosen.arch], valid[chosen.arch], budget, best_accuracy)
    return out


def print_tolerances(outcomes: Sequence[Outcome]) -> None:
    """Per device, how often the trial each ``--accuracy-tolerance`` would pick met the target."""
    judged = [o for o in outcomes if o.tolerance_ok]
    if not judged:
        return
    print("\nthe same searches, their trials chosen as `--accuracy-tolerance P` would (the fastest predicted within P "
          "points of the most accurate): target met, per device")
    print("| device | " + " | ".join(f"P = {p:g}" for p in SWEEP_TOLERANCES) + " |")
    print("|---|" + "---|" * len(SWEEP_TOLERANCES))
    devices = list(dict.fromkeys(o.device for o in judged))
    for device in devices + ["all"]:
        mine = [o for o in judged if device in ("all", o.device)]
        cells = [f"{sum(o.tolerance_ok.get(p, False) for o in mine)}/{len(mine)}" for p in SWEEP_TOLERANCES]
        print(f"| {device} | " + " | ".join(cells) + " |")


def print_sweep(outcomes: Sequence[Outcome], args: argparse.Namespace) -> None:
    print("| device | budget ms | chosen: predicted ms | measured ms | meets | valid acc | best under budget | gap | "
          "target met | exhaustive choice met | trials | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for o in outcomes:
        print(f"| {o.device} | {o.max_latency_ms:g} | {o.predicted_latency_ms:.2f} | {o.measured_latency_ms:.2f} | "
              f"{'yes' if o.meets_budget else 'NO'} | {o.accuracy:.2f} | {o.best_accuracy:.2f} | {o.gap:.2f} | "
              f"{'yes' if o.ok else 'no'} | {'-' if o.exhaustive_ok is None else 'yes' if o.exhaustive_ok else 'no'} | "
              f"{o.trials} | {o.wall_s:.2f} |")
    n = len(outcomes)
    print(f"\n{sum(o.ok for o in outcomes)}/{n} met the target; {sum(o.meets_budget for o in outcomes)}/{n} within "
          f"budget; {sum(o.gap <= ACCURACY_GAP_POINTS for o in outcomes)}/{n} within {ACCURACY_GAP_POINTS:g} points; median search "
          f"{float(np.median([o.wall_s for o in outcomes])):.2f} s ({args.strategy}, seed {args.seed}, tolerance "
          f"{args.accuracy_tolerance}"
          + ("" if args.exclude_same is None else f"; trained without every device of the held-out one's "
                                                  f"{args.exclude_same}") + ")")
    judged = [o for o in outcomes if o.probability_within_budget is not None]
    if judged:
        print(f"the model gave the chosen archs a mean probability of "
              f"{float(np.mean([o.probability_within_budget for o in judged])):.2f} to be within the budget; "
              f"{sum(o.meets_budget for o in judged)}/{len(judged)} were")
    exhaustive = [o.exhaustive_ok for o in outcomes if o.exhaustive_ok is not None]
    print(f"exhaustive choice over the predictions of every arch: {sum(exhaustive)}/{len(exhaustive)} met the target")
    likely = [o.likely_ok for o in outcomes if o.likely_ok is not None]
    if likely:
        print(f"exhaustive choice of the arch most likely to meet the target under the predictive uncertainty "
              f"(`nas-latency choose`): {sum(likely)}/{len(likely)} met the target")
    for what, ok_of, added_of in (
            ("the same", lambda o: o.loop_ok, lambda o: o.loop_added),
            ("the most accurate arch predicted within the budget (as the exhaustive choice), the same way",
             lambda o: o.loop_accurate_ok, lambda o: o.loop_accurate_added)):
        looped = [o for o in outcomes if ok_of(o) is not None]
        if looped:
            added = [added_of(o) or 0 for o in looped]
            print(f"{what}, each choice measured (its bundled latency) and, while over the budget, added to the device "
                  f"and chosen again (at most {LOOP_MAX_ADDED} added): {sum(ok_of(o) for o in looped)}/{len(looped)} "
                  f"met the target; measurements added: {sum(added)} in all, {max(added)} at most, none for "
                  f"{added.count(0)}/{len(looped)}")
    search_likely = [o.search_likely_ok for o in outcomes if o.search_likely_ok is not None]
    if search_likely:
        print(f"the same rule over only the archs the search evaluated (instead of its most accurate): "
              f"{sum(search_likely)}/{len(search_likely)} met the target")
    ceiling = [o.ceiling_ok for o in outcomes if o.ceiling_ok is not None]
    if ceiling:
        print(f"exhaustive choice over the in-device ceiling's out-of-fold predictions (a ridge on 80 % of the "
              f"device's own measurements): {sum(ceiling)}/{len(ceiling)} met the target")
    retest = [o.twins_retest_ok for o in outcomes if o.twins_retest_ok is not None]
    twin_predicted = [o.twins_predicted_ok for o in outcomes if o.twins_predicted_ok is not None]
    if retest:
        print(f"on the archs that spell the same network as another arch (budgets at the same quantiles of their "
              f"latencies), the exhaustive choice met the target {sum(twin_predicted)}/{len(twin_predicted)} times by "
              f"the predictions and {sum(retest)}/{len(retest)} times by a second measurement (each arch's twin's)")
    print_tolerances(outcomes)
