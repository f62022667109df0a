"""``nas-latency rank``: candidates sorted by predicted latency on one device and, given measurements, how well
that order matches them (Spearman, Kendall tau-b, top-k overlap, latency/accuracy Pareto-front recall)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict
from typing import Any

import numpy as np

from nas_latency.commands.common import (
    add_device_arguments,
    add_format_argument,
    locate_bad_arch,
    read_arch_lines,
    write_rows,
)
from nas_latency.commands.onboarding import add_store_argument, open_predictor
from nas_latency.errors import InvalidInputError

RANK_COLUMNS = ["rank", "arch", "predicted_ms", "measured_ms", "accuracy", "on_true_front", "on_predicted_front"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rank",
        help="sort candidates by predicted latency; score the order against measurements",
        description="Predict the latency of candidate architectures on a device (registered with --device, or "
        "described inline by --signature), sort them, and with --measured report Spearman, Kendall tau-b, "
        "top-k overlap and Pareto-front recall (accuracy: NAS-Bench-201's bundled CIFAR-10 valid accuracy, or "
        "an `accuracy` column in the measured CSV).",
    )
    parser.add_argument("--space", required=True)
    add_device_arguments(parser)
    parser.add_argument("--archs", metavar="FILE",
                        help="candidates, one per line, or - for stdin (default: the measured archs, else every "
                        "architecture of the space with bundled measurements)")
    parser.add_argument("--measured", metavar="FILE",
                        help="CSV with header arch,latency_ms[,accuracy]: measured latencies of candidates")
    parser.add_argument("--top-k", type=int, default=10, help="k of the top-k overlap (default 10)")
    parser.add_argument("--limit", type=int, default=None,
                        help="print only the N predicted fastest (default: 25 for table, all for csv/json)")
    add_store_argument(parser)
    add_format_argument(parser)
    parser.set_defaults(handler=run)


def read_measured_csv(space: Any, source: str) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """``arch,latency_ms[,accuracy]`` rows (validated, canonical archs); accuracy None without that column."""
    from nas_latency.measurements import csv_table, read_text, validate_measurements

    text, where = read_text(source)
    header, table = csv_table(text, where=where)
    if header[:2] != ["arch", "latency_ms"] or len(header) > 3 or (len(header) == 3 and header[2] != "accuracy"):
        raise InvalidInputError(f"{where}: row 1: header must be `arch,latency_ms` or `arch,latency_ms,accuracy`, "
                                f"got {','.join(header)!r}")
    rows: list[tuple[int, str, object]] = []
    accuracy: list[float] = []
    for number, record in table:
        rows.append((number, record[0], record[1].strip()))
        if len(header) == 3:
            cell = record[2].strip()
            try:
                value = float(cell) if cell else math.nan
            except ValueError:
                raise InvalidInputError(f"{where}: row {number}: accuracy {cell!r} is not a number") from None
            accuracy.append(value)
    measured = validate_measurements(space, rows, where=where, min_rows=2)
    return list(measured.archs), np.asarray(measured.latency_ms), (np.asarray(accuracy) if len(header) == 3 else None)


def nb201_accuracy(archs: list[str]) -> np.ndarray:
    """NAS-Bench-201 CIFAR-10 valid accuracy (mean over seeds) of each arch, from the bundled table (NaN for an
    arch it lacks)."""
    from nas_latency.data import nb201_accuracy as accuracy_by_arch

    lookup = accuracy_by_arch("cifar10_valid_acc")
    return np.array([lookup.get(a, math.nan) for a in archs], dtype=np.float64)


def run(args: argparse.Namespace) -> int:
    from nas_latency.evaluate.ranking import rank_report
    from nas_latency.measurements import read_measurements_csv
    from search_spaces import get_space

    if args.top_k < 1:
        raise InvalidInputError(f"--top-k must be at least 1, got {args.top_k}")
    if args.limit is not None and args.limit < 0:
        raise InvalidInputError(f"--limit must be >= 0, got {args.limit}")
    stdin_users = [name for name in ("archs", "measured", "signature") if getattr(args, name) == "-"]
    if len(stdin_users) > 1:
        raise InvalidInputError(f"only one of --{', --'.join(stdin_users)} can read stdin")
    space = get_space(args.space)

    measured_archs, measured_ms, measured_acc = (
        read_measured_csv(space, args.measured) if args.measured else ([], np.zeros(0), None)
    )
    if args.archs:
        lines = read_arch_lines(args.archs)
        try:
            archs = [space.canonical(a) for _, a in lines]
        except InvalidInputError as exc:
            locate_bad_arch(space, lines, args.archs, exc)
        if len(set(archs)) != len(archs):
            raise InvalidInputError(f"{args.archs}: candidates are not distinct")
    elif measured_archs:
        archs = measured_archs
    else:
        archs = space.measured_archs()
    signature = read_measurements_csv(space, args.signature) if args.signature else None

    with open_predictor(args) as predictor:
        predicted = predictor.predict(space.name, archs, device=args.device, signature=signature)

    by_arch = dict(zip(measured_archs, measured_ms.tolist()))
    measured = np.array([by_arch.get(a, math.nan) for a in archs]) if args.measured else None
    if args.measured:
        candidates = set(archs)
        missing = sum(a not in candidates for a in measured_archs)
        if missing:
            print(f"note: {missing} measured archs are not among the candidates and are ignored", file=sys.stderr)
    accuracy: np.ndarray | None = None
    note = None
    if measured_acc is not None:
        acc_by_arch = dict(zip(measured_archs, measured_acc.tolist()))
        accuracy = np.array([acc_by_arch.get(a, math.nan) for a in archs])
    elif space.name == "nasbench201":
        accuracy = nb201_accuracy(archs)
    else:
        note = (f"not applicable: no accuracies for {space.name} (add an `accuracy` column to the measured CSV)")
    report = rank_report(archs, predicted, measured, accuracy, args.top_k, accuracy_note=note)

    limit = args.limit if args.limit is not None else (25 if args.format == "table" else None)
    shown = report.ranking if not limit else report.ranking[:limit]
    rows = [asdict(r) for r in shown]
    if args.format == "json":
        document = {"space": space.name, "device": args.device or "(signature)", "top_k": report.top_k,
                    "n_candidates": report.n_candidates, "n_measured": report.n_measured,
                    "metrics": report.metrics, "not_applicable": report.not_applicable, "ranking": rows}
        sys.stdout.write(json.dumps(document, indent=2, allow_nan=False) + "\n")
        return 0
    write_rows(rows, RANK_COLUMNS, args.format)
    if args.format == "table":
        if limit and report.n_candidates > limit:
            sys.stdout.write(f"... {report.n_candidates - limit} more (use --limit 0 for all)\n")
        sys.stdout.write("\n")
        write_rows(report.metric_rows(), ["metric", "value", "note"], "table")
    else:  # csv: the ranking is the result; the metrics go to stderr so the CSV stays one table
        for row in report.metric_rows():
            print(f"{row['metric']}: {row['value']} {row['note']}".rstrip(), file=sys.stderr)
    return 0
