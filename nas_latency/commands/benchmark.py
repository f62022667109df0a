"""``nas-latency benchmark ...``: speed figures, printed (benchmarks are not tests)."""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from nas_latency.commands.common import add_format_argument, write_document
from nas_latency.errors import InvalidInputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("benchmark", help="print speed figures")
    kinds = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    featurize = kinds.add_parser(
        "featurize", help="time featurizing every measured architecture of a space, in-process"
    )
    featurize.add_argument("--space", default="nasbench201")
    featurize.add_argument("--repeats", type=int, default=5, help="timed repetitions after the first (cold) call")
    add_format_argument(featurize)
    featurize.set_defaults(handler=run_featurize)


def run_featurize(args: argparse.Namespace) -> int:
    from search_spaces import get_space

    if args.repeats < 1:
        raise InvalidInputError(f"--repeats must be at least 1, got {args.repeats}")
    start = time.perf_counter()
    space = get_space(args.space)
    archs = space.measured_archs()
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    matrix = space.featurize(archs)
    cold_s = time.perf_counter() - start
    warm = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        space.featurize(archs)
        warm.append(time.perf_counter() - start)
    median_s = statistics.median(warm)
    target_s = 2.0
    document = {
        "space": space.name,
        "archs": len(archs),
        "features": len(matrix.names),
        "load_archs_s": round(load_s, 4),
        "cold_s": round(cold_s, 4),
        "warm_median_s": round(median_s, 4),
        "warm_min_s": round(min(warm), 4),
        "archs_per_s": round(len(archs) / median_s),
        "target_s": target_s,
        "meets_target": cold_s < target_s,
    }
    print(f"featurized {len(archs)} {space.name} architectures: cold {cold_s:.3f} s, warm median {median_s:.3f} s",
          file=sys.stderr)
    write_document(document, args.format)
    return 0
