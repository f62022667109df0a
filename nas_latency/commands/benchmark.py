"""``nas-latency benchmark ...``: speed figures, printed (benchmarks are not tests)."""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from nas_latency.commands.common import add_format_argument, write_document
from nas_latency.commands.benchmark_predict import register_predict_benchmark
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
    register_server_benchmark(kinds)
    register_predict_benchmark(kinds)


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


# ---- nas-latency benchmark server ------------------------------------------------------------------------------------
SERVER_TARGETS = {"single_p50_ms": 1.0, "single_p99_ms": 5.0, "batch_archs_per_s": 200_000}


def register_server_benchmark(kinds: argparse._SubParsersAction) -> None:
    server = kinds.add_parser(
        "server", help="time the gRPC server over loopback, the load coming from other processes than the server"
    )
    server.add_argument("--address", help="HOST:PORT of a running server (default: start one in a subprocess)")
    server.add_argument("--store", metavar="URL",
                        help="store of the server started here (default: a temporary SQLite file)")
    server.add_argument("--token-file", metavar="F", help="token of --address, if it needs one for writes")
    server.add_argument("--space", default="nasbench201")
    server.add_argument("--single", type=int, default=3000, help="sequential single-arch Predict calls (default 3000)")
    server.add_argument("--batch-sizes", type=int, nargs="+", default=[1000, 2000, 5000, 10000],
                        help="archs per batched Predict (default 1000 2000 5000 10000)")
    server.add_argument("--batch-repeats", type=int, default=20, help="calls per batch size (default 20)")
    server.add_argument("--clients", type=int, default=8, help="concurrent client processes (default 8)")
    server.add_argument("--duration-s", type=float, default=5.0, help="length of the concurrent run (default 5)")
    add_format_argument(server)
    server.set_defaults(handler=run_server_benchmark)


def _percentile_ms(seconds: list[float], q: float) -> float:
    import numpy as np

    return round(float(np.percentile(np.asarray(seconds) * 1e3, q)), 3)


def _start_server(store_url: str, space: str) -> tuple[object, str]:
    """A `nas-latency serve` subprocess on a free loopback port; returns it and its address."""
    import json
    import subprocess
    import threading

    command = [sys.executable, "-m", "nas_latency.cli", "serve", "--address", "127.0.0.1:0", "--store", store_url,
               "--spaces", space]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    address: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if not ready.is_set():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") == "listening":
                    address.append(event["address"])
                    ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(300) or not address:
        proc.kill()
        raise InvalidInputError(f"the benchmark server did not start (exit code {proc.poll()})")
    return proc, address[0]


def _concurrent_client(address: str, space: str, device: str, archs: list[str], duration_s: float,
                       start_at: float, token_file: str | None) -> list[float]:
    """One client process: single-arch Predict calls in a closed loop; returns each call's seconds."""
    import random

    from nas_latency.client import LatencyClient

    rng = random.Random(hash(device) ^ id(archs))
    with LatencyClient(address, token_file=token_file) as client:
        for _ in range(50):  # warm the channel
            client.predict(space, [rng.choice(archs)], device=device)
        while time.time() < start_at:
            time.sleep(0.001)
        seconds = []
        end = time.perf_counter() + duration_s
        while (now := time.perf_counter()) < end:
            client.predict(space, [rng.choice(archs)], device=device)
            seconds.append(time.perf_counter() - now)
    return seconds


def run_server_benchmark(args: argparse.Namespace) -> int:
    import multiprocessing
    import os
    import random
    import tempfile

    import numpy as np

    from nas_latency.builtin_models import bundled_training_table
    from nas_latency.client import LatencyClient
    from search_spaces import get_space

    if args.single < 10 or args.batch_repeats < 1 or args.clients < 1 or args.duration_s <= 0:
        raise InvalidInputError("--single must be at least 10, --batch-repeats and --clients at least 1, "
                                "--duration-s positive")
    space = get_space(args.space)
    proc = None
    tmp = None
    address = args.address
    if address is None:
        store = args.store
        if store is None:
            tmp = tempfile.TemporaryDirectory(prefix="nas-latency-bench-")
            store = f"sqlite://{tmp.name}/store.sqlite"
        print(f"starting a server on {store} ...", file=sys.stderr)
        proc, address = _start_server(store, space.name)
    try:
        client = LatencyClient(address, token_file=args.token_file)
        start = time.perf_counter()
        client.wait_until_serving(timeout_s=600)
        load_s = time.perf_counter() - start
        # a device registered from a bundled device's latencies on the signature set
        signature = client.signature_set(space.name, 20)
        table = bundled_training_table(space)
        column = table.latency_ms[:, 0]
        position = {arch: i for i, arch in enumerate(table.archs)}
        measured = {a: float(column[position[a]]) for a in signature if np.isfinite(column[position[a]])}
        device = f"bench-{os.getpid()}"
        client.register_device(device, space.name, measured, description="nas-latency benchmark server")
        archs = space.measured_archs()
        rng = random.Random(0)

        # single-arch Predict, sequential
        for _ in range(200):
            client.predict(space.name, [rng.choice(archs)], device=device)
        single = []
        for _ in range(args.single):
            arch = [rng.choice(archs)]
            t0 = time.perf_counter()
            client.predict(space.name, arch, device=device)
            single.append(time.perf_counter() - t0)
        print(f"single-arch Predict: p50 {_percentile_ms(single, 50)} ms, p99 {_percentile_ms(single, 99)} ms",
              file=sys.stderr)

        # batches
        batches = {}
        for size in args.batch_sizes:
            batch = [archs[i] for i in np.random.default_rng(size).integers(0, len(archs), size)]
            client.predict(space.name, batch, device=device)
            times = []
            for _ in range(args.batch_repeats):
                t0 = time.perf_counter()
                client.predict(space.name, batch, device=device)
                times.append(time.perf_counter() - t0)
            batches[size] = (round(size * len(times) / sum(times)), _percentile_ms(times, 50))
            print(f"batches of {size}: {batches[size][0]} archs/s (p50 {batches[size][1]} ms per call)",
                  file=sys.stderr)

        # concurrent clients, each its own process
        context = multiprocessing.get_context("spawn")
        start_at = time.time() + 3.0 + 0.5 * args.clients
        with context.Pool(args.clients) as pool:
            results = pool.starmap(_concurrent_client, [
                (address, space.name, device, archs, args.duration_s, start_at, args.token_file)
                for _ in range(args.clients)])
        merged = [s for r in results for s in r]
        concurrent_qps = round(len(merged) / args.duration_s)
        print(f"{args.clients} concurrent clients: {concurrent_qps} calls/s, p50 {_percentile_ms(merged, 50)} ms, "
              f"p99 {_percentile_ms(merged, 99)} ms", file=sys.stderr)
        client.remove_device(device)
        client.close()
    finally:
        if proc is not None:
            proc.terminate()  # type: ignore[attr-defined]
            proc.wait(30)  # type: ignore[attr-defined]
        if tmp is not None:
            tmp.cleanup()
    best_batch = max(v[0] for v in batches.values())
    document = {
        "space": space.name,
        "address": address,
        "cpu_count": os.cpu_count(),
        "server_ready_s": round(load_s, 2),
        "single_calls": len(single),
        "single_p50_ms": _percentile_ms(single, 50),
        "single_p99_ms": _percentile_ms(single, 99),
        **{f"batch_{size}_archs_per_s": v[0] for size, v in batches.items()},
        **{f"batch_{size}_p50_ms": v[1] for size, v in batches.items()},
        "concurrent_clients": args.clients,
        "concurrent_calls_per_s": concurrent_qps,
        "concurrent_p50_ms": _percentile_ms(merged, 50),
        "concurrent_p99_ms": _percentile_ms(merged, 99),
        "target_single_p50_ms": SERVER_TARGETS["single_p50_ms"],
        "target_single_p99_ms": SERVER_TARGETS["single_p99_ms"],
        "target_batch_archs_per_s": SERVER_TARGETS["batch_archs_per_s"],
        "meets_targets": bool(_percentile_ms(single, 50) <= SERVER_TARGETS["single_p50_ms"]
                              and _percentile_ms(single, 99) <= SERVER_TARGETS["single_p99_ms"]
                              and best_batch >= SERVER_TARGETS["batch_archs_per_s"]),
    }
    write_document(document, args.format)
    return 0
