"""``nas-latency search``: a latency-constrained NNI 3.0 multi-trial search, in this process.

The space is NNI's ``NasBench201`` hub space; the evaluator is the bundled NAS-Bench-201 CIFAR-10 accuracy (the
accuracy each network reaches when trained); a sample predicted over ``--max-latency-ms`` on ``--device`` is never
evaluated. Predictions come from the embedded predictor (``--store``) or a server (``--server``). No web server is
started and nothing is written outside ``NAS_LATENCY_HOME`` (and ``--plot FILE``).
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from nas_latency.commands.common import add_format_argument, check_writable, write_document
from nas_latency.commands.onboarding import add_store_argument, open_predictor
from nas_latency.errors import FailedPreconditionError, InvalidInputError

SEARCH_SPACES = ("nasbench201",)
STRATEGIES = ("evolution", "random", "tpe")  # = nas_latency.nni.search.STRATEGIES (not imported: NNI is slow)
METRICS = ("cifar10_valid_acc", "cifar10_test_acc")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("search", help="latency-constrained NNI 3.0 search (in-process)")
    parser.add_argument("--space", required=True, choices=SEARCH_SPACES, help="search space (NNI hub space)")
    parser.add_argument("--device", required=True, help="a registered device of the space")
    parser.add_argument("--max-latency-ms", type=float, required=True, metavar="L", help="latency budget (ms)")
    parser.add_argument("--trials", type=int, default=300, metavar="N", help="samples to evaluate (default 300)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="evolution", help="NNI strategy (default evolution)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument("--metric", choices=METRICS, default="cifar10_valid_acc",
                        help="the bundled accuracy the search maximizes (default cifar10_valid_acc)")
    parser.add_argument("--accuracy-tolerance", type=float, default=0.0, metavar="P",
                        help="report the fastest evaluated arch within P accuracy points of the most accurate one "
                             "found: latency margin against prediction error, for up to P points (default 0)")
    parser.add_argument("--plot", metavar="FILE", help="write the accuracy/latency scatter with the Pareto front (PNG)")
    parser.add_argument("--pareto", action="store_true", help="include the Pareto front of the evaluated samples")
    add_store_argument(parser)
    add_format_argument(parser, default="json")
    parser.set_defaults(handler=run)


class _TrialProgress:
    """A tqdm bar on stderr (only when stderr is a terminal: searches take about a second)."""

    def __init__(self) -> None:
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=total, file=sys.stderr, desc="trials", leave=False)
        self._bar.n = done
        self._bar.refresh()
        if done >= total:
            self._bar.close()


def check_search_arguments(args: argparse.Namespace) -> None:
    """``--trials``, ``--max-latency-ms`` and ``--accuracy-tolerance`` (also the main job's)."""
    if args.trials < 1:
        raise InvalidInputError(f"--trials must be at least 1, got {args.trials}")
    if not (math.isfinite(args.max_latency_ms) and args.max_latency_ms > 0):
        raise InvalidInputError(f"--max-latency-ms must be a positive number, got {args.max_latency_ms}")
    if not (math.isfinite(args.accuracy_tolerance) and args.accuracy_tolerance >= 0):
        raise InvalidInputError(f"--accuracy-tolerance must be >= 0, got {args.accuracy_tolerance}")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def run(args: argparse.Namespace) -> int:
    check_search_arguments(args)
    if args.plot:
        check_writable(args.plot, what="--plot")
    from nas_latency.data import nb201_accuracy
    from nas_latency.nni.search import search_nasbench201

    progress = _TrialProgress()
    with open_predictor(args) as predictor:
        predictor.device(args.device, args.space)  # NotFoundError (exit 2) before NNI starts
        result, profiler = search_nasbench201(device=args.device, max_latency_ms=args.max_latency_ms,
                                              trials=args.trials, strategy=args.strategy, seed=args.seed,
                                              predictor=predictor, metric=args.metric, progress=progress,
                                              tolerance=args.accuracy_tolerance)
    chosen, best = result.chosen, result.best
    if chosen is None or best is None:
        raise FailedPreconditionError(
            f"no architecture evaluated: every one of the {result.proposed} proposed was predicted over "
            f"{args.max_latency_ms} ms on {args.device}; raise the budget"
        )
    test = nb201_accuracy("cifar10_test_acc")
    document: dict[str, Any] = {
        "arch": chosen.arch,
        "predicted_latency_ms": round(chosen.predicted_latency_ms, 6),
        "predicted_log_std": _rounded(chosen.predicted_log_std),
        "probability_within_budget": _rounded(chosen.probability_within(args.max_latency_ms)),
        "accuracy": chosen.metric,
        "metric": args.metric,
        "test_accuracy": test[chosen.arch] if chosen.arch in test else None,
        "trials": len(result.trials),
        "rejected": result.rejected,
        "wall_s": round(result.wall_s, 3),
        "space": args.space,
        "device": args.device,
        "max_latency_ms": args.max_latency_ms,
        "strategy": args.strategy,
        "seed": args.seed,
        "sample": chosen.sample,
        "accuracy_tolerance": args.accuracy_tolerance,
        "most_accurate_found": {"arch": best.arch, "predicted_latency_ms": round(best.predicted_latency_ms, 6),
                                "accuracy": best.metric},
        "backend": f"server {args.server}" if args.server else "embedded",
        "backend_calls": profiler.stats.backend_calls,
    }
    if args.pareto:
        document["pareto"] = [{"arch": t.arch, "predicted_latency_ms": round(t.predicted_latency_ms, 6),
                               "accuracy": t.metric} for t in result.pareto()]
    if args.plot:
        from nas_latency.nni.plot import plot_search

        document["plot"] = str(plot_search(
            args.plot, result, title=f"{args.space} on {args.device}: {args.strategy}, {len(result.trials)} trials",
            metric_label=f"{args.metric} (%)"))
    write_document(document, args.format)
    return 0
