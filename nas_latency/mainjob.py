"""The main job (``make run``): onboard a device as if it were new, serve it, search under a latency budget.

1. set up: state under ``NAS_LATENCY_HOME`` (its own store, ``mainjob/nasbench201-without-<device>.sqlite``, so
   the default store's built-in model is left alone);
2. load, or train from the bundled data, the NAS-Bench-201 built-in model **without** the chosen bundled device;
3. onboard that device from 10 measurements, as a new device would be: its latencies on the model's 10-arch
   signature set, read from the bundled table, registered as ``<device>-new``;
4. start the gRPC server on ``127.0.0.1`` (a free port), in this process, and wait until it is SERVING;
5. run the NNI 3.0 search (NNI's ``NasBench201`` space, the bundled CIFAR-10 validation accuracy as evaluator,
   ``Chain(strategy, Filter(latency ≤ budget))``) whose profiler queries that server;
6. print the chosen architecture, its predicted and bundled measured latency, its accuracy, and the best
   architecture the bundled measurements allow under the budget; write the Pareto plot to ``reports/``;
   stop the server.

``--sweep`` repeats steps 2, 3 and 5 for several held-out devices and budgets (quantiles of each device's
measured latencies) and prints a table, with the embedded predictor (identical answers to the server's): see
:mod:`~nas_latency.search_sweep`.
Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from nas_latency.evaluate.budget_choice import ACCURACY_GAP_POINTS, BUDGET_QUANTILES, meets_target

log = logging.getLogger(__name__)

SPACE = "nasbench201"
DEFAULT_DEVICE = "gold_6240"
DEFAULT_BUDGET_MS = 10.0
DEFAULT_TRIALS = 300
DEFAULT_TOLERANCE = 0.0
SIGNATURE_SIZE = 10
DEFAULT_SWEEP_DEVICES = ("gold_6240", "silver_4114", "titanx_1", "1080ti_256", "samsung_a50", "samsung_s7",
                         "essential_ph_1", "pixel3")
DEFAULT_SWEEP_QUANTILES = BUDGET_QUANTILES


def report_progress(step: str, message: str) -> None:
    print(f"[{step}] {message}", file=sys.stderr, flush=True)


# ---- steps -----------------------------------------------------------------------------------------------------------
def holdout_store_url(device: str, exclude_same: str | None = None) -> str:
    """The main job's store for ``device`` held out (under ``NAS_LATENCY_HOME``), with every device that shares
    the facts ``exclude_same`` with it (:func:`training_devices`) when given."""
    from nas_latency.store.home import nas_latency_home

    folder = nas_latency_home() / "mainjob"
    folder.mkdir(mode=0o700, exist_ok=True)
    suffix = "" if exclude_same is None else "-and-same-" + exclude_same.replace("+", "-")
    return f"sqlite://{(folder / f'{SPACE}-without-{device}{suffix}.sqlite').as_posix()}"


def training_devices(device: str, exclude_same: str | None = None) -> list[str]:
    """The bundled NAS-Bench-201 devices a model for ``device`` held out is trained on: every other one, less
    (``exclude_same``, e.g. ``kind``) those that share those device facts with it, as ``evaluate --exclude-same``
    leaves them out."""
    from nas_latency.evaluate.datasets import load_latency_dataset
    from nas_latency.evaluate.protocols import training_devices as protocol_training_devices

    dataset = load_latency_dataset(SPACE)
    return protocol_training_devices(dataset, dataset.groups[dataset.devices.index(device)], exclude_same)


def bundled_latency(device: str) -> dict[str, float]:
    """arch → the bundled measured latency (ms) of ``device`` (a column of the NAS-Bench-201 table)."""
    from nas_latency.data import device_columns, load_table
    from nas_latency.errors import NotFoundError

    if device not in device_columns("nb201_latency"):
        raise NotFoundError(f"{device!r} is not a bundled NAS-Bench-201 device; bundled: "
                            f"{', '.join(device_columns('nb201_latency'))}")
    frame = load_table("nb201_latency")
    return dict(zip(frame["arch_string"].astype(str), frame[device].astype(float)))


def prepare_holdout(device: str, *, store_url: str | None = None,
                    exclude_same: str | None = None) -> tuple[Any, str, dict[str, float]]:
    """Steps 2 and 3: a predictor whose built-in model never saw ``device`` (loaded, or trained now; with
    ``exclude_same``, nor any device that shares those facts with it), with ``<device>-new`` registered from its
    10 signature measurements. Returns (predictor, new name, signature)."""
    from nas_latency.builtin_models import BUNDLE_NAME, DEFAULT_MODEL_SPECS
    from nas_latency.errors import NotFoundError
    from nas_latency.predictor import Predictor

    training = training_devices(device, exclude_same)
    url = store_url or holdout_store_url(device, exclude_same)
    predictor = Predictor(store_url=url)
    try:
        stored = predictor.store.get_artifact(SPACE, BUNDLE_NAME)
    except NotFoundError:
        stored = None
    start = time.perf_counter()
    current = (stored is not None and set(predictor.bundle(SPACE).training_devices) == set(training)
               and predictor.bundle(SPACE).model_spec == DEFAULT_MODEL_SPECS[SPACE])
    without = device if exclude_same is None else f"{device} and every device of its {exclude_same}"
    if current:
        report_progress("2/6", f"loaded the {SPACE} built-in model trained without {without} ({url})")
    else:  # none yet, or one of an earlier release's model spec: this store is the main job's own
        report_progress("2/6", f"training the {SPACE} built-in model on the bundled devices except {without} ...")
        from nas_latency.data import device_columns

        predictor.train(SPACE, exclude_devices=[d for d in device_columns("nb201_latency") if d not in training])
        report_progress("2/6", f"trained in {time.perf_counter() - start:.1f} s")
    bundle = predictor.bundle(SPACE)
    if device in bundle.training_devices:  # never onboard a device the model was trained on
        raise RuntimeError(f"the built-in model in {url} was trained on {device}")
    measured = bundled_latency(device)
    signature_archs = predictor.signature_set(SPACE, SIGNATURE_SIZE)
    signature = {arch: measured[arch] for arch in signature_archs}
    name = f"{device}-new"
    predictor.register_device(name, SPACE, signature, description=f"{device} onboarded from {SIGNATURE_SIZE} "
                                                                     f"bundled measurements (held out of training)")
    report_progress("3/6", f"onboarded {name} from its {len(signature)} signature measurements "
                     f"(training devices: {', '.join(bundle.training_devices)})")
    return predictor, name, signature


@dataclass
class Outcome:
    """One search, judged against the bundled measurements."""

    device: str
    max_latency_ms: float
    arch: str
    predicted_latency_ms: float
    measured_latency_ms: float
    accuracy: float
    test_accuracy: float
    best_arch: str
    best_accuracy: float
    best_measured_ms: float
    trials: int
    rejected: int
    wall_s: float
    #: the most accurate of ALL the space's archs predicted within the budget (no search), and whether that choice
    #: met the target; None where not computed
    exhaustive_arch: str | None = None
    exhaustive_ok: bool | None = None
    #: the arch of ALL the space's archs predicted within the budget most likely to meet the target under the
    #: model's predictive uncertainty (no search; :func:`~nas_latency.evaluate.budget_choice.most_likely_to_meet`),
    #: and whether it met it; None where not computed
    likely_arch: str | None = None
    likely_ok: bool | None = None
    #: the same rule over only the archs the search evaluated (their accuracies are all it knows); None where not
    #: computed
    search_likely_ok: bool | None = None
    #: for each accuracy tolerance P (``--accuracy-tolerance``), did the search's trial chosen with it meet the
    #: target (the search itself does not depend on P); empty where not computed
    tolerance_ok: dict[float, bool] = field(default_factory=dict)
    #: the model's probability that the chosen arch is within the budget (None without a standard deviation)
    probability_within_budget: float | None = None
    #: on the archs with a twin (the same network under another string), budget at the same quantile of their
    #: measured latencies: did choosing by the twins' measurements, and by the predictions, meet the target
    twins_retest_ok: bool | None = None
    twins_predicted_ok: bool | None = None
    #: budget at the same quantile: did the exhaustive choice on the in-device ceiling's out-of-fold predictions
    #: (a ridge fitted on 80 % of the device's own measurements, predicting the other 20 %) meet the target
    ceiling_ok: bool | None = None
    #: choose as ``nas-latency choose`` does, measure the choice (its bundled latency) and, while it measures over
    #: the budget, add it to the device and choose again (:func:`~nas_latency.evaluate.choice_loop.choose_measure_add`):
    #: did the last choice meet the target, and how many measurements were added; None where not computed
    loop_ok: bool | None = None
    loop_added: int | None = None
    #: the same loop choosing the most accurate arch predicted (or measured) within the budget each time
    loop_accurate_ok: bool | None = None
    loop_accurate_added: int | None = None

    @property
    def meets_budget(self) -> bool:
        return self.measured_latency_ms <= self.max_latency_ms

    @property
    def gap(self) -> float:
        return self.best_accuracy - self.accuracy

    @property
    def ok(self) -> bool:
        return self.meets_budget and self.gap <= ACCURACY_GAP_POINTS

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "meets_budget": self.meets_budget, "accuracy_gap": round(self.gap, 4),
                "target_met": self.ok}


def judge(device: str, result: Any, measured: dict[str, float]) -> Outcome:
    from nas_latency.data import nb201_accuracy
    from nas_latency.errors import FailedPreconditionError, InvalidInputError
    from nas_latency.evaluate.budget_choice import best_under_budget

    valid = nb201_accuracy("cifar10_valid_acc")
    test = nb201_accuracy("cifar10_test_acc")
    chosen = result.chosen
    if chosen is None:
        raise FailedPreconditionError(f"the search on {device} evaluated nothing under {result.max_latency_ms} ms: "
                                      f"every one of the {result.proposed} proposed was predicted over it")
    archs = list(measured)
    best_arch, best_acc = best_under_budget(archs, [measured[a] for a in archs], valid, result.max_latency_ms)
    if best_arch is None or best_acc is None:
        raise InvalidInputError(f"no bundled arch of {device} is measured under {result.max_latency_ms} ms: "
                                f"the target cannot be judged; raise --max-latency-ms")
    return Outcome(device, result.max_latency_ms, chosen.arch, chosen.predicted_latency_ms, measured[chosen.arch],
                   valid[chosen.arch], test[chosen.arch], best_arch, best_acc, measured[best_arch], len(result.trials),
                   result.rejected, result.wall_s,
                   probability_within_budget=chosen.probability_within(result.max_latency_ms))


def likely_choice(backend: Any, device: str, max_latency_ms: float) -> str | None:
    """Of every NAS-Bench-201 arch, the one predicted within ``max_latency_ms`` on ``device`` most likely to meet
    the target under the model's predictive uncertainty (what ``nas-latency choose`` picks); None where no arch
    is predicted within the budget."""
    from nas_latency.data import nb201_accuracy
    from nas_latency.evaluate.budget_choice import most_likely_to_meet, with_measurements

    valid = nb201_accuracy("cifar10_valid_acc")
    archs = sorted(valid)
    predicted, log_std = backend.predict_with_uncertainty(SPACE, archs, device=device)
    latency, std, _ = with_measurements(archs, predicted, log_std,
                                        backend.device_measurements(device, SPACE).as_mapping())
    index = most_likely_to_meet([valid[a] for a in archs], latency, std, max_latency_ms)
    return None if index is None else archs[index]


# ---- the main job ----------------------------------------------------------------------------------------------------
def run_main(args: argparse.Namespace) -> dict[str, Any]:
    from nas_latency.store.home import nas_latency_home

    home = nas_latency_home()
    report_progress("1/6", f"NAS_LATENCY_HOME={home}; importing NNI 3.0 ...")
    from nas_latency.nni.search import search_nasbench201  # imports NNI (a few seconds)

    predictor, name, _ = prepare_holdout(args.device, exclude_same=args.exclude_same)
    store_url = predictor.store.url
    predictor.close()

    from nas_latency.client import LatencyClient
    from server.app import create_server, stop_server
    from server.registry import ModelRegistry

    registry = ModelRegistry(store_url=store_url, spaces=[SPACE])
    server, port = create_server("127.0.0.1:0", registry)
    server.start()
    address = f"127.0.0.1:{port}"
    try:
        with LatencyClient(address) as client:
            client.wait_until_serving(timeout_s=300)
            report_progress("4/6", f"gRPC server SERVING on {address} (store {store_url})")
            report_progress("5/6", f"NNI {args.strategy} search: {args.trials} trials, budget {args.max_latency_ms} ms on "
                             f"{name}, profiler -> {address}")
            result, profiler = search_nasbench201(device=name, max_latency_ms=args.max_latency_ms, trials=args.trials,
                                                  strategy=args.strategy, seed=args.seed, predictor=client,
                                                  tolerance=args.accuracy_tolerance)
            report_progress("5/6", f"done in {result.wall_s:.2f} s: {len(result.trials)} evaluated, {result.rejected} "
                             f"rejected by the constraint, {profiler.stats.backend_calls} Predict calls to the server")
            likely = likely_choice(client, name, args.max_latency_ms)
    finally:
        stop_server(server, grace_s=2.0)
        report_progress("6/6", "server stopped")
    measured = bundled_latency(args.device)
    outcome = judge(args.device, result, measured)
    plot_path: Path | None = Path(args.reports_dir) / f"nni_search_{args.device}_{args.max_latency_ms:g}ms.png"
    plot_error = None
    from nas_latency.data import nb201_accuracy
    from nas_latency.errors import FailedPreconditionError
    from nas_latency.nni.plot import plot_search

    valid = nb201_accuracy("cifar10_valid_acc")
    archs = list(measured)
    try:
        plot_search(plot_path, result, metric_label="CIFAR-10 validation accuracy (%)",  # type: ignore[arg-type]
                    title=f"NAS-Bench-201 on {args.device} (held out, onboarded from {SIGNATURE_SIZE} measurements): "
                          f"NNI {args.strategy}, {len(result.trials)} trials",
                    background=([measured[a] for a in archs], [valid[a] for a in archs], "all archs, measured"),
                    chosen_measured_ms=outcome.measured_latency_ms,
                    best_measured=(outcome.best_measured_ms, outcome.best_accuracy))
    except FailedPreconditionError as exc:  # matplotlib missing: say so, and fail the job at the end
        plot_path, plot_error = None, str(exc)
    document = {**outcome.to_dict(), "server": address, "strategy": args.strategy, "seed": args.seed,
                "accuracy_tolerance": args.accuracy_tolerance, "plot": str(plot_path) if plot_path else None,
                "plot_error": plot_error,
                "most_accurate_found": result.best.arch if result.best else None}
    if likely is not None:
        document["likely_arch"] = likely
        document["likely_measured_ms"] = measured[likely]
        document["likely_accuracy"] = valid[likely]
        document["likely_target_met"] = meets_target(measured[likely], valid[likely], args.max_latency_ms,
                                                     outcome.best_accuracy)
    return document


def print_main(document: dict[str, Any]) -> None:
    d = document
    lines = [
        f"device            {d['device']} (held out of training; onboarded from {SIGNATURE_SIZE} measurements)",
        f"budget            {d['max_latency_ms']:g} ms",
        f"search            NNI {d['strategy']}, {d['trials']} trials evaluated, {d['rejected']} rejected by the "
        f"constraint, {d['wall_s']:.2f} s (profiler through {d['server']})",
        f"chosen arch       {d['arch']}",
        f"  latency         predicted {d['predicted_latency_ms']:.3f} ms, bundled measured "
        f"{d['measured_latency_ms']:.3f} ms -> {'meets' if d['meets_budget'] else 'EXCEEDS'} the budget"
        + ("" if d.get("probability_within_budget") is None
           else f" (the model gave it {d['probability_within_budget']:.2f} to be within)"),
        f"  accuracy        {d['accuracy']:.2f} % CIFAR-10 valid ({d['test_accuracy']:.2f} % test)",
        f"best possible     {d['best_arch']}",
        f"  (bundled data)  {d['best_accuracy']:.2f} % valid at measured {d['best_measured_ms']:.3f} ms",
        f"gap               {d['accuracy_gap']:.2f} points (target: meets the budget and gap <= {ACCURACY_GAP_POINTS:g}: "
        f"{'met' if d['target_met'] else 'NOT met'})",
        *([] if d.get("likely_arch") is None else [
            f"most likely       {d['likely_arch']} (of all archs, by the predictive uncertainty: `nas-latency "
            f"choose`)",
            f"  (bundled data)  {d['likely_accuracy']:.2f} % valid at measured {d['likely_measured_ms']:.3f} ms: "
            f"target {'met' if d['likely_target_met'] else 'NOT met'}"]),
        f"plot              {d['plot'] or 'NOT written: ' + str(d['plot_error'])}",
    ]
    print("\n".join(lines))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nas_latency.mainjob", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=DEFAULT_DEVICE,
                        help=f"bundled device to hold out (default {DEFAULT_DEVICE})")
    parser.add_argument("--max-latency-ms", type=float, default=DEFAULT_BUDGET_MS,
                        help=f"latency budget (default {DEFAULT_BUDGET_MS})")
    parser.add_argument("--trials", type=int, default=DEFAULT_TRIALS)
    parser.add_argument("--strategy", choices=("evolution", "random", "tpe"), default="evolution")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accuracy-tolerance", type=float, default=DEFAULT_TOLERANCE)
    parser.add_argument("--reports-dir", default="reports", help="where the plot goes (default reports/)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--exclude-same", metavar="FACT",
                        help="also hold out every device sharing this fact with the held-out one (e.g. kind: an "
                             "unseen kind of hardware), as `nas-latency evaluate --exclude-same`")
    parser.add_argument("--sweep", action="store_true", help="held-out devices x budgets, embedded; a table")
    parser.add_argument("--devices", nargs="+", default=list(DEFAULT_SWEEP_DEVICES), help="--sweep: devices")
    parser.add_argument("--quantiles", nargs="+", type=float, default=list(DEFAULT_SWEEP_QUANTILES),
                        help="--sweep: budgets as quantiles of each device's measured latencies")
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    """Everything a run can be refused for, before it trains a model or starts a server."""
    from nas_latency.commands.search import check_search_arguments
    from nas_latency.data import device_columns
    from nas_latency.errors import InvalidInputError, NotFoundError

    bundled = device_columns("nb201_latency")
    for device in args.devices if args.sweep else [args.device]:
        if device not in bundled:
            raise NotFoundError(f"{device!r} is not a bundled NAS-Bench-201 device; bundled: {', '.join(bundled)}")
    check_search_arguments(args)
    if args.exclude_same is not None:  # an unknown fact, or too few devices left, fails before anything is trained
        for device in args.devices if args.sweep else [args.device]:
            training_devices(device, args.exclude_same)
    if args.sweep and not all(0 < q < 1 for q in args.quantiles):
        raise InvalidInputError(f"--quantiles must lie in (0, 1), got {args.quantiles}")


def main(argv: Sequence[str] | None = None) -> int:
    from nas_latency.cli import exit_code
    from nas_latency.errors import NasLatencyError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return _run(args)
    except NasLatencyError as exc:  # as the CLI reports it: one line, exit 2 for bad input
        print(f"error: {exc}", file=sys.stderr)
        return exit_code(exc)


def _run(args: argparse.Namespace) -> int:
    check_arguments(args)
    start = time.perf_counter()
    if args.sweep:
        from nas_latency.search_sweep import print_sweep, run_sweep

        outcomes = run_sweep(args)
        if args.format == "json":
            print(json.dumps([o.to_dict() for o in outcomes], indent=2))
        else:
            print_sweep(outcomes, args)
    else:
        document = run_main(args)
        if args.format == "json":
            print(json.dumps(document, indent=2))
        else:
            print_main(document)
        if document["plot_error"]:
            print(f"error: the Pareto plot was not written: {document['plot_error']}", file=sys.stderr)
            return 1
    report_progress("done", f"{time.perf_counter() - start:.1f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
