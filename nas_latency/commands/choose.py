"""``nas-latency choose``: of candidates whose accuracy is known, the one most likely to meet a latency budget on a
device while losing at most ``--accuracy-gap`` points to the best candidate truly within it.

The most accurate candidate *predicted* within a budget sits at the budget, so a few percent of prediction error
decide whether it truly fits. Each candidate's measured latency is taken as log-normal around its prediction with
the model's predictive standard deviation, and the choice is the candidate predicted within the budget with the
highest probability of the target (:func:`nas_latency.evaluate.budget_choice.target_ranking`). The most accurate
candidate predicted within the budget is printed beside it.

A candidate the device has measured (its registered and added measurements, or the ``--signature``) is taken at
its measurement (:func:`~nas_latency.evaluate.budget_choice.with_measurements`): so the loop "choose, measure the
choice, ``devices add`` the measurement, choose again" never offers an arch measured over the budget twice.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

import numpy as np

from nas_latency.commands.common import add_device_arguments, add_format_argument, write_document, write_rows
from nas_latency.commands.onboarding import add_store_argument, open_predictor
from nas_latency.errors import FailedPreconditionError, InvalidInputError

CHOOSE_COLUMNS = ["rank", "arch", "accuracy", "predicted_ms", "measured_ms", "log_std", "p_within_budget",
                  "p_meets_target"]
#: NAS-Bench-201 accuracies the command takes as candidates when --candidates is not given
NB201_METRICS = ("cifar10_valid_acc", "cifar10_test_acc")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "choose",
        help="the candidate most likely to meet a latency budget within an accuracy gap of the best",
        description="Of candidates with known accuracies (--candidates CSV arch,accuracy; for nasbench201 by default "
        "every architecture with its bundled CIFAR-10 accuracy), choose the one most likely to be truly within "
        "--max-latency-ms on the device and within --accuracy-gap points of the most accurate candidate truly "
        "within it, by the model's predictive uncertainty. Only candidates predicted within the budget are "
        "ranked. The probabilities treat the candidates' errors as independent, so where many crowd the budget "
        "they understate the chance of the target: compare candidates by them. A candidate the device has measured "
        "is taken at its measurement (measured_ms). The most accurate candidate predicted within the budget is "
        "shown beside it.",
    )
    parser.add_argument("--space", required=True)
    add_device_arguments(parser)
    parser.add_argument("--max-latency-ms", type=float, required=True, metavar="L", help="latency budget (ms)")
    parser.add_argument("--candidates", metavar="FILE",
                        help="CSV with header arch,accuracy (- for stdin); default for nasbench201: every "
                        "architecture with the bundled --metric")
    parser.add_argument("--metric", choices=NB201_METRICS, default="cifar10_valid_acc",
                        help="nasbench201 without --candidates: the bundled accuracy (default cifar10_valid_acc)")
    parser.add_argument("--accuracy-gap", type=float, default=None, metavar="P",
                        help="accuracy points the choice may lose to the best candidate truly within the budget "
                        "(default 0.5)")
    parser.add_argument("--limit", type=int, default=None,
                        help="print only the N most likely (default: 10 for table and json, all for csv)")
    add_store_argument(parser)
    add_format_argument(parser)
    parser.set_defaults(handler=run)


def read_candidates_csv(space: Any, source: str) -> tuple[list[str], np.ndarray]:
    """``arch,accuracy`` rows: canonical, distinct architectures and finite accuracies (errors name the row)."""
    from nas_latency.measurements import csv_table, read_text

    text, where = read_text(source, what="candidates")
    header, table = csv_table(text, where=where)
    if header != ["arch", "accuracy"]:
        raise InvalidInputError(f"{where}: row 1: header must be `arch,accuracy`, got {','.join(header)!r}")
    archs: list[str] = []
    accuracy: list[float] = []
    first_row: dict[str, int] = {}
    for number, record in table:
        try:
            arch = space.canonical(record[0].strip())
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: row {number}: {exc}") from None
        if arch in first_row:
            raise InvalidInputError(f"{where}: row {number}: arch {record[0].strip()!r} repeats row "
                                    f"{first_row[arch]}")
        try:
            value = float(record[1])
        except ValueError:
            raise InvalidInputError(f"{where}: row {number}: accuracy {record[1].strip()!r} is not a number") from None
        if not math.isfinite(value):
            raise InvalidInputError(f"{where}: row {number}: accuracy must be finite, got {record[1].strip()!r}")
        first_row[arch] = number
        archs.append(arch)
        accuracy.append(value)
    if not archs:
        raise InvalidInputError(f"{where}: no candidates (expected rows arch,accuracy after the header)")
    return archs, np.asarray(accuracy, dtype=np.float64)


def bundled_candidates(space: Any, metric: str) -> tuple[list[str], np.ndarray]:
    """Every NAS-Bench-201 architecture with its bundled accuracy ``metric``."""
    from nas_latency.data import nb201_accuracy

    if space.name != "nasbench201":
        raise InvalidInputError(f"--candidates is required for {space.name}: only nasbench201 bundles accuracies")
    lookup = nb201_accuracy(metric)
    archs = sorted(lookup)
    return archs, np.array([lookup[a] for a in archs], dtype=np.float64)


def _row(arch: str, accuracy: float, predicted_ms: float, measured_ms: float | None, log_std: float,
         log_within: float, log_target: float) -> dict[str, Any]:
    return {"arch": arch, "accuracy": accuracy, "predicted_ms": round(predicted_ms, 6),
            "measured_ms": None if measured_ms is None else round(measured_ms, 6), "log_std": round(log_std, 6),
            "p_within_budget": round(math.exp(log_within), 6), "p_meets_target": round(math.exp(log_target), 6)}


def _latency_text(row: dict[str, Any]) -> str:
    if row["measured_ms"] is not None:
        return f"measured {row['measured_ms']:.4g} ms, predicted {row['predicted_ms']:.4g} ms"
    return f"predicted {row['predicted_ms']:.4g} ms"


def run(args: argparse.Namespace) -> int:
    from nas_latency.evaluate.budget_choice import (
        ACCURACY_GAP_POINTS,
        log_within_budget,
        most_accurate_of,
        target_ranking,
        with_measurements,
    )
    from nas_latency.measurements import read_measurements_csv
    from search_spaces import get_space

    gap = ACCURACY_GAP_POINTS if args.accuracy_gap is None else args.accuracy_gap
    if not (math.isfinite(args.max_latency_ms) and args.max_latency_ms > 0):
        raise InvalidInputError(f"--max-latency-ms must be a positive number, got {args.max_latency_ms}")
    if not (math.isfinite(gap) and gap >= 0):
        raise InvalidInputError(f"--accuracy-gap must be >= 0, got {gap}")
    if args.limit is not None and args.limit < 0:
        raise InvalidInputError(f"--limit must be >= 0, got {args.limit}")
    if args.candidates == "-" and args.signature == "-":
        raise InvalidInputError("only one of --candidates, --signature can read stdin")
    space = get_space(args.space)
    archs, accuracy = (read_candidates_csv(space, args.candidates) if args.candidates
                       else bundled_candidates(space, args.metric))
    signature = read_measurements_csv(space, args.signature) if args.signature else None
    with open_predictor(args) as predictor:
        predicted, log_std = predictor.predict_with_uncertainty(space.name, archs, device=args.device,
                                                                signature=signature)
        measured = (signature if signature is not None
                    else predictor.device_measurements(args.device, space.name)).as_mapping()
    predicted = np.asarray(predicted, dtype=np.float64)
    latency, judged_std, is_measured = with_measurements(archs, predicted, np.asarray(log_std), measured)
    order, log_target = target_ranking(accuracy, latency, judged_std, args.max_latency_ms, gap_points=gap)
    log_within = log_within_budget(latency, judged_std, args.max_latency_ms)
    if order.size == 0:
        raise FailedPreconditionError(
            f"no candidate is predicted within {args.max_latency_ms} ms on {args.device or 'the signature device'}: "
            f"the fastest is predicted at {latency.min():.4g} ms; raise the budget")

    def row(i: int) -> dict[str, Any]:
        return _row(archs[i], float(accuracy[i]), float(predicted[i]), float(latency[i]) if is_measured[i] else None,
                    float(log_std[i]), float(log_within[i]), float(log_target[i]))

    rows = [{"rank": k + 1, **row(i)} for k, i in enumerate(order)]
    chosen = rows[0]
    plain = most_accurate_of(order, accuracy, latency)
    limit = args.limit if args.limit is not None else (None if args.format == "csv" else 10)
    shown = rows if not limit else rows[:limit]
    if args.format == "csv":
        write_rows(shown, CHOOSE_COLUMNS, "csv")
        return 0
    document: dict[str, Any] = {
        "space": space.name, "device": args.device or "(signature)", "max_latency_ms": args.max_latency_ms,
        "accuracy_gap": gap, "n_candidates": len(archs), "n_predicted_within": int(order.size), "chosen": chosen,
        "n_measured": int(is_measured.sum()), "most_accurate_predicted_within": row(plain),
    }
    if args.format == "json":
        write_document({**document, "ranking": shown}, "json")
        return 0
    write_rows(shown, CHOOSE_COLUMNS, "table")
    if limit and len(rows) > limit:
        sys.stdout.write(f"... {len(rows) - limit} more (use --limit 0 for all)\n")
    sys.stdout.write(f"\nchosen: {chosen['arch']} (accuracy {chosen['accuracy']:g}, {_latency_text(chosen)}): "
                     f"within {args.max_latency_ms:g} ms with probability "
                     f"{chosen['p_within_budget']:.3f}, meets the target (within budget and at most {gap:g} points "
                     f"below the best candidate within it) with probability {chosen['p_meets_target']:.3f}\n")
    alt = document["most_accurate_predicted_within"]
    sys.stdout.write(f"most accurate predicted within the budget: {alt['arch']} (accuracy {alt['accuracy']:g}, "
                     f"{_latency_text(alt)}): probabilities {alt['p_within_budget']:.3f} / "
                     f"{alt['p_meets_target']:.3f}\n")
    return 0
