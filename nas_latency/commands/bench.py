"""``nas-latency bench space|device|evaluate``: measure latency on this machine and fit its layer models.

``bench space``
    measure whole networks of a search space (``--sample N`` or ``--archs FILE``); prints ``arch,latency_ms``
    (what ``devices register --measurements`` reads; ``--details`` adds IQR, CV, runs, stability and CPU share);
    with ``--device`` the rows also go to the store with all their statistics.
``bench device --name NAME [--quick]``
    onboard this machine: micro-kernel and block sweeps, layer and mapping models, signature set, registration.
``bench evaluate --name NAME``
    measure ≥ 40 whole networks never used for fitting and report every model's MAPE, ±10 %, Spearman next to
    the measurement noise (JSON, Markdown and PNG in ``--out``; the model table on stdout).

Progress bars go to stderr; results to stdout. Exit codes: 0 ok, 1 failure, 2 bad arguments or input.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any, Callable

from nas_latency.commands.common import (
    add_format_argument,
    check_writable_folder,
    read_archs,
    write_document,
    write_rows,
)
from nas_latency.errors import InvalidInputError


def _int_at_least(minimum: int, expected: str) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum`` (``expected`` words the error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "an integer >= 0")


def _add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    from nas_latency.bench.runners import RUNTIMES

    parser.add_argument("--runtime", choices=RUNTIMES, default="torch",
                        help="torch eager (default), onnxruntime (CPU) or cuda (CUDA events; needs a GPU)")
    parser.add_argument("--threads", type=_positive_int, default=1, help="intra-op threads (default 1)")
    parser.add_argument("--pin", metavar="CPUS", help="pin the measuring thread to these CPUs, e.g. '1' or '0-1'")
    _add_timer_argument(parser)


def _add_timer_argument(parser: argparse.ArgumentParser, default: str | None = "wall") -> None:
    first = ("the timer the device was onboarded with (default), " if default is None else "wall time (default), ")
    parser.add_argument("--timer", choices=("wall", "cpu"), default=default,
                        help=first + "wall time or the CPU time of the measuring thread (one thread only: leaves out "
                             "the time other processes held the CPU)")


def _add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="URL", help="store URL (default: SQLite in NAS_LATENCY_HOME)")


class _Bars:
    """One tqdm bar per phase label, on stderr."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._label: str | None = None

    def __call__(self, label: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if label != self._label:
            self.close()
            self._bar = tqdm(total=total, desc=label, file=sys.stderr, leave=True, dynamic_ncols=True)
            self._label = label
        self._bar.n = done
        self._bar.refresh()
        if done >= total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar = None
        self._label = None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="measure latency on this machine; fit and evaluate its layer models")
    actions = parser.add_subparsers(dest="bench_action", required=True, metavar="ACTION")

    space = actions.add_parser("space", help="measure whole networks of a search space")
    space.add_argument("--space", required=True)
    which = space.add_mutually_exclusive_group(required=True)
    which.add_argument("--sample", type=_positive_int, metavar="N", help="measure N architectures sampled uniformly")
    which.add_argument("--archs", metavar="FILE", help="architectures to measure, one per line (- for stdin)")
    space.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    space.add_argument("--quick", action="store_true", help="short protocol (a few repetitions)")
    space.add_argument("--rounds", type=_positive_int, default=1, metavar="R",
                       help="measure every architecture in R interleaved rounds (chunks of 64, each round over the "
                            "chunk, alternating direction) and pool them, so a device that drifts during the run "
                            "shifts every architecture a little instead of a block of them a lot (default 1)")
    space.add_argument("--device", metavar="NAME", help="also store the measurements for this device")
    space.add_argument("--details", action="store_true",
                       help="add iqr_ms, cv, n_runs, rounds, stable and cpu_share columns (without it the CSV is "
                            "`arch,latency_ms`, as `devices register --measurements` reads it)")
    _add_runtime_arguments(space)
    _add_store_argument(space)
    add_format_argument(space, default="csv")
    space.set_defaults(handler=run_space)

    device = actions.add_parser("device", help="onboard this machine: sweeps, layer models, signature set")
    device.add_argument("--name", required=True, help="the device name to register")
    device.add_argument("--quick", action="store_true", help="tiny sweeps and short protocol (tests, smoke runs)")
    device.add_argument("--seed", type=int, default=0)
    device.add_argument("--description", help="free text (default: CPU model, runtime, threads)")
    device.add_argument("--adaptive-rounds", type=_non_negative_int, help="adaptive resampling rounds "
                        "(default 1 with --quick, 2 otherwise)")
    device.add_argument("--no-register", action="store_true",
                        help="skip the signature set and the registration in nasbench201")
    _add_runtime_arguments(device)
    _add_store_argument(device)
    add_format_argument(device, default="table")
    device.set_defaults(handler=run_device)

    evaluate = actions.add_parser("evaluate", help="evaluate a device's layer models on whole networks measured here")
    evaluate.add_argument("--name", required=True, help="a device onboarded with `bench device`")
    evaluate.add_argument("--nasbench201", type=_non_negative_int, default=20, metavar="N",
                          help="NAS-Bench-201 networks (default 20)")
    evaluate.add_argument("--fbnet", type=_non_negative_int, default=16, metavar="N",
                          help="FBNet networks (default 16)")
    evaluate.add_argument("--classic", default="all",
                          help="classic networks: 'all' (default), 'none' or a comma-separated list")
    evaluate.add_argument("--passes", type=_positive_int, default=2, help="measurement passes (default 2)")
    evaluate.add_argument("--seed", type=int, default=2024)
    evaluate.add_argument("--models", help="comma-separated layer models (default: all the device has)")
    evaluate.add_argument("--quick", action="store_true", help="short protocol (a few repetitions)")
    evaluate.add_argument("--out", metavar="DIR", help="write the report (JSON, Markdown, PNG) here")
    evaluate.add_argument("--pin", metavar="CPUS", help="pin the measuring thread to these CPUs")
    _add_timer_argument(evaluate, default=None)
    _add_store_argument(evaluate)
    add_format_argument(evaluate, default="table")
    evaluate.set_defaults(handler=run_evaluate)


# ---- handlers -------------------------------------------------------------------------------------------------
def run_space(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from nas_latency.bench.block_items import space_network_items
    from nas_latency.bench.device import check_timer
    from nas_latency.bench.protocol import PROTOCOLS, environment_record, execution_context, parse_cpus
    from nas_latency.bench.runners import make_runner
    from nas_latency.bench.sweep import measurement_rows, run_sweep
    from search_spaces import get_space

    space = get_space(args.space)
    pin = parse_cpus(args.pin)
    check_timer(args.timer, threads=args.threads, runtime=args.runtime)
    archs = space.sample(args.sample, seed=args.seed) if args.sample else read_archs(args.archs)
    if args.device:  # everything storing can fail on is checked before the measuring, not after it
        from nas_latency.store import open_store
        from nas_latency.store.validate import check_device

        check_device(args.device)
        seen: dict[str, int] = {}
        for number, arch in enumerate(archs, start=1):
            canonical = space.canonical(arch)
            if canonical in seen:
                raise InvalidInputError(f"{args.archs}: architecture {number} ({arch}) is the same as architecture "
                                        f"{seen[canonical]}: a device stores one latency per architecture")
            seen[canonical] = number
        open_store(args.store).close()
    items = space_network_items(space.name, archs)
    runner = make_runner(args.runtime, threads=args.threads)
    protocol = replace(PROTOCOLS["quick"] if args.quick else PROTOCOLS["network"], timer=args.timer)
    environment = environment_record(runtime=args.runtime, threads=args.threads, pin_cpus=pin,
                                     extra={"runner": runner.info(), "network_protocol": protocol.to_dict()})
    bars = _Bars()
    try:
        with execution_context(threads=args.threads, pin_cpus=pin):
            result = run_sweep(items, runner, protocol, rounds=args.rounds, progress=bars,
                               label=f"{space.name} networks")
    finally:
        bars.close()
    for item, why in result.failed:
        print(f"warning: not measured: {item.key}: {why}", file=sys.stderr)
    noise = result.noise()
    if result.measured:
        print(f"measured {noise['n']} networks in {noise['elapsed_s']} s; median CV {100 * noise['cv_median']:.2f} %, "
              f"90th percentile {100 * noise['cv_p90']:.2f} %, stable {100 * noise['stable_fraction']:.0f} %",
              file=sys.stderr)
    if args.device and result.measured:
        from nas_latency.bench.device import source_for
        from nas_latency.store import open_store

        with open_store(args.store) as store:
            store.upsert_device(args.device)
            added = store.add_measurements(args.device, space.name, measurement_rows(result.measured, environment),
                                           source=source_for(args.runtime))
        print(f"stored for device {args.device!r}: {added.inserted} new, {added.replaced} replaced", file=sys.stderr)
    rows = [{"arch": m.item.key, "latency_ms": round(m.stats.median_ms, 6), "iqr_ms": round(m.stats.iqr_ms, 6),
             "cv": round(m.stats.cv, 5), "n_runs": m.stats.n_runs, "rounds": len(m.stats.round_medians_ms),
             "stable": m.stats.stable,
             "cpu_share": None if m.stats.cpu_share is None else round(m.stats.cpu_share, 4)} for m in result.measured]
    columns = ["arch", "latency_ms"] + (["iqr_ms", "cv", "n_runs", "rounds", "stable", "cpu_share"]
                                        if args.details else [])
    write_rows(rows, columns, args.format)
    return 0 if not result.failed else 1


def run_device(args: argparse.Namespace) -> int:
    from nas_latency.bench.device import DeviceOptions, onboard_device
    from nas_latency.bench.protocol import parse_cpus
    from nas_latency.store import open_store

    options = DeviceOptions(
        name=args.name, runtime=args.runtime, threads=args.threads, pin_cpus=parse_cpus(args.pin),
        level="quick" if args.quick else "full", seed=args.seed, description=args.description,
        register=not args.no_register, adaptive_rounds=args.adaptive_rounds, timer=args.timer,
    )
    options.check()
    bars = _Bars()
    with open_store(args.store) as store:
        try:
            report = onboard_device(options, store, progress=bars)
        finally:
            bars.close()
    document = report.to_document()
    for failure in report.failures:
        print(f"warning: not measured: {failure}", file=sys.stderr)
    print(f"onboarded {report.name!r} ({report.runtime}, {report.level}) in {document['total_s']} s: "
          f"{report.counts.get('kernels', 0)} micro-kernels (+{report.counts.get('adaptive_kernels', 0)} adaptive), "
          f"{report.counts.get('blocks', 0)} blocks, {report.counts.get('signature_networks', 0)} signature networks; "
          f"kernel CV median {100 * report.noise['kernels'].get('cv_median', float('nan')):.2f} %", file=sys.stderr)
    if args.format == "json":
        write_document(document, "json")
        return 0
    summary: dict[str, Any] = {
        "device": report.name, "runtime": report.runtime, "level": report.level,
        "cpu_model": document["cpu_model"], "threads": document["threads"], "total_s": document["total_s"],
        "overhead_ms": document["overhead_ms"], **{f"count.{k}": v for k, v in report.counts.items()},
        "kernel_cv_median": round(report.noise["kernels"].get("cv_median", float("nan")), 4),
        "kernel_stable_fraction": round(report.noise["kernels"].get("stable_fraction", float("nan")), 3),
        "peak_gflops": round(report.roofline["peak_gflops"], 2),
        "bandwidth_gb_s": round(report.roofline["bandwidth_gb_s"], 2),
        "fused_patterns": ",".join(r["pattern"] for r in report.fusion_rules if r["fused"]) or "none",
        **{f"mapping_block_mape_pct.{k}": round(v, 2) for k, v in report.mapping_block_mape_pct.items()},
        **{f"signature_mape_pct.{k}": round(v["mape_pct"], 2) for k, v in report.signature_check.items()},
    }
    write_document(summary, args.format)
    return 0


def _classic(text: str) -> tuple[str, ...]:
    from nas_latency.bench.classic import CLASSIC_NETWORKS

    if text == "all":
        return tuple(CLASSIC_NETWORKS)
    if text == "none":
        return ()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(set(names) - set(CLASSIC_NETWORKS))
    if unknown:
        raise InvalidInputError(f"--classic: unknown networks {unknown}; known: {', '.join(CLASSIC_NETWORKS)}")
    return names


def _evaluate_command(args: argparse.Namespace) -> str:
    parts = ["nas-latency", "bench", "evaluate", "--name", args.name, "--nasbench201", str(args.nasbench201),
             "--fbnet", str(args.fbnet), "--classic", args.classic, "--passes", str(args.passes),
             "--seed", str(args.seed)]
    if args.models:
        parts += ["--models", args.models]
    if args.quick:
        parts.append("--quick")
    if args.pin:
        parts += ["--pin", args.pin]
    if args.timer:
        parts += ["--timer", args.timer]
    if args.out:
        parts += ["--out", args.out]
    return " ".join(shlex.quote(p) for p in parts)


def run_evaluate(args: argparse.Namespace) -> int:
    from nas_latency.bench.evaluation import EvaluationOptions, model_rows, run_evaluation, write_report
    from nas_latency.bench.protocol import parse_cpus
    from nas_latency.store import open_store

    options = EvaluationOptions(
        device=args.name, n_nasbench201=args.nasbench201, n_fbnet=args.fbnet, classic=_classic(args.classic),
        seed=args.seed, passes=args.passes, quick=args.quick,
        models=tuple(m.strip() for m in args.models.split(",")) if args.models else None,
        pin_cpus=parse_cpus(args.pin), timer=args.timer,
    )
    options.check()
    if args.out:  # before the measuring, which stores what it measures
        check_writable_folder(args.out, what="--out")
    bars = _Bars()
    with open_store(args.store) as store:
        try:
            result = run_evaluation(store, options, progress=bars)
        finally:
            bars.close()
    noise = result.noise()
    print(f"evaluated {len(result.names)} networks in {result.elapsed_s:.0f} s; median CV "
          f"{100 * noise['cv_median']:.2f} %" + (f", test-retest MAPE {noise['retest_mape_pct']:.2f} %"
                                                if "retest_mape_pct" in noise else ""), file=sys.stderr)
    if args.out:
        command = _evaluate_command(args)
        for path in write_report(result, Path(args.out), command=command):
            print(f"wrote {path}", file=sys.stderr)
    if args.format == "json":
        write_document(result.to_document(), "json")
    else:
        rows = model_rows(result)
        write_rows(rows, list(rows[0]), args.format)
    return 0
