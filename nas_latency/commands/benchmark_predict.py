"""``nas-latency benchmark predict``: prediction speed, through the CLI and in-process."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nas_latency.commands.common import add_format_argument, write_document
from nas_latency.errors import InvalidInputError


def register_predict_benchmark(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "predict",
        help="time predicting every NAS-Bench-201 arch through the CLI (start-up included), in-process batches, "
        "and onboarding a new device from 10 measurements",
    )
    parser.add_argument("--space", default="nasbench201")
    parser.add_argument("--store", metavar="URL", help="store URL (default: a temporary SQLite store)")
    parser.add_argument("--batch", type=int, default=1_000_000, help="archs per in-process batch (default 1M)")
    parser.add_argument("--repeats", type=int, default=5)
    add_format_argument(parser)
    parser.set_defaults(handler=run_predict_benchmark)


def run_predict_benchmark(args: argparse.Namespace) -> int:
    from nas_latency.predictor import Predictor
    from search_spaces import get_space

    if args.batch < 1 or args.repeats < 1:
        raise InvalidInputError("--batch and --repeats must be at least 1")
    space = get_space(args.space)
    with tempfile.TemporaryDirectory(prefix="nas-latency-bench-") as tmp:
        store_url = args.store or f"sqlite:///{Path(tmp) / 'store.sqlite'}"
        archs = space.measured_archs()
        with Predictor(store_url=store_url) as predictor:
            signature_archs = predictor.signature_set(space.name, 10)  # trains the built-in model if needed
            rng = np.random.default_rng(0)
            signature = {a: float(v) for a, v in zip(signature_archs, rng.uniform(5, 20, len(signature_archs)))}
            predictor.register_device("bench-device", space.name, signature)

            # In-process: one warm-up call adapts the device and caches predictions for the measured archs.
            predictor.predict(space.name, archs[:10], device="bench-device")
            batch = [archs[i] for i in rng.integers(0, len(archs), args.batch)]
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                predictor.predict(space.name, batch, device="bench-device")
                times.append(time.perf_counter() - start)
            in_process_s = statistics.median(times)

            # Onboarding: a stateless prediction from a signature no device has had yet adapts the model anew.
            onboard_times = []
            for i in range(args.repeats):
                fresh = {a: v * (1.0 + 0.01 * (i + 1)) for a, v in signature.items()}
                start = time.perf_counter()
                predictor.predict(space.name, archs[:1], signature=fresh)
                onboard_times.append(time.perf_counter() - start)
            onboard_ms = 1000.0 * statistics.median(onboard_times)

        # Through the CLI: a fresh process, start-up included, every measured arch.
        archs_file = Path(tmp) / "archs.txt"
        archs_file.write_text("\n".join(archs) + "\n")
        command = [sys.executable, "-m", "nas_latency.cli", "predict", "--space", space.name, "--device",
                   "bench-device", "--archs", str(archs_file), "--store", store_url, "--format", "csv"]
        cli_times = []
        for _ in range(3):
            start = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            cli_times.append(time.perf_counter() - start)
            if result.returncode != 0:
                raise InvalidInputError(f"CLI prediction failed: {result.stderr.strip()}")
            if result.stdout.count("\n") != len(archs) + 1:
                raise InvalidInputError("CLI prediction printed the wrong number of rows")
    document = {
        "space": space.name,
        "cli_archs": len(archs),
        "cli_wall_s_median": round(statistics.median(cli_times), 3),
        "cli_wall_s_min": round(min(cli_times), 3),
        "cli_target_s": 5.0,
        "in_process_batch": args.batch,
        "in_process_s_median": round(in_process_s, 4),
        "in_process_archs_per_s": round(args.batch / in_process_s),
        "in_process_target_archs_per_s": 1_000_000,
        "onboard_measurements": len(signature),
        "onboard_ms_median": round(onboard_ms, 2),
    }
    print(f"CLI: {len(archs)} archs in {statistics.median(cli_times):.2f} s (median of 3, start-up included); "
          f"in-process: {args.batch / in_process_s:,.0f} archs/s; onboarding a new device from {len(signature)} "
          f"measurements: {onboard_ms:.1f} ms (median of {args.repeats})", file=sys.stderr)
    write_document(document, args.format)
    return 0
