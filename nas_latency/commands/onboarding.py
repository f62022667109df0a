"""Device onboarding: ``signature``, ``devices register|add|list|show|remove``, ``predict`` and ``models train|list``.

These follow the contract of ARCHITECTURE.md so a shell script can drive them; state lives in the store
(``--store URL``, default SQLite in ``NAS_LATENCY_HOME``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from nas_latency.commands.common import (
    add_format_argument,
    locate_bad_arch,
    read_arch_lines,
    report_skipped,
    write_rows,
)
from nas_latency.errors import InvalidInputError, NotFoundError


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="URL", help="store URL (default: SQLite in NAS_LATENCY_HOME)")
    parser.add_argument("--server", metavar="HOST:PORT", help="run against a nas-latency server instead of in-process")
    parser.add_argument("--token-file", metavar="F", help="with --server: the token writes need (or $NAS_LATENCY_TOKEN)")


class StderrProgress:
    """A progress bar on stderr for model training (tqdm), so stdout carries only results."""

    def __init__(self) -> None:
        self._bar: Any = None

    def __call__(self, label: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=total, file=sys.stderr, desc="training built-in model", leave=True)
        self._bar.set_postfix_str(label)
        self._bar.n = done
        self._bar.refresh()
        if done >= total:
            self._bar.close()
            self._bar = None


def open_predictor(args: argparse.Namespace):  # noqa: ANN201 - returns Predictor or LatencyClient (lazy imports)
    if getattr(args, "server", None):
        from nas_latency.client import LatencyClient

        if args.store:
            raise InvalidInputError("give either --store (in-process) or --server (remote), not both")
        return LatencyClient(args.server, token_file=args.token_file)
    from nas_latency.predictor import Predictor

    return Predictor(store_url=args.store, progress=StderrProgress())


def register(subparsers: argparse._SubParsersAction) -> None:
    sig = subparsers.add_parser("signature", help="the architectures a new device should measure")
    sig.add_argument("--space", required=True)
    sig.add_argument("--size", type=int, default=10,
                     help="number of architectures, most informative first (default 10; at most 64, the length "
                          "of the order a built-in model stores)")
    add_store_argument(sig)
    add_format_argument(sig, default="json")
    sig.set_defaults(handler=run_signature)

    devices = subparsers.add_parser("devices", help="register and inspect devices")
    actions = devices.add_subparsers(dest="action", required=True, metavar="ACTION")
    reg = actions.add_parser("register", help="register a device from measured latencies")
    reg.add_argument("name")
    reg.add_argument("--space", required=True)
    reg.add_argument("--measurements", required=True, help="CSV with header arch,latency_ms (or - for stdin)")
    reg.add_argument("--description", help="free text, e.g. the runtime and precision")
    add_store_argument(reg)
    add_format_argument(reg)
    reg.set_defaults(handler=run_register)
    add = actions.add_parser("add", help="add measurements to a registered device, keeping its earlier ones")
    add.add_argument("name")
    add.add_argument("--space", required=True)
    add.add_argument("--measurements", required=True,
                     help="CSV with header arch,latency_ms (or - for stdin); at least one row; an arch measured "
                          "again replaces its earlier added value")
    add.add_argument("--request-id", metavar="ID",
                     help="makes the call safe to retry: the same id again writes nothing (the same id with other "
                          "rows is an error)")
    add.add_argument("--environment", metavar="JSON",
                     help='a JSON object stored with the rows, e.g. \'{"runtime": "tflite 2.16", "threads": 4}\'')
    add_store_argument(add)
    add_format_argument(add)
    add.set_defaults(handler=run_add)
    lst = actions.add_parser("list", help="registered devices")
    lst.add_argument("--space")
    add_store_argument(lst)
    add_format_argument(lst)
    lst.set_defaults(handler=run_list)
    show = actions.add_parser("show", help="one device")
    show.add_argument("name")
    show.add_argument("--space", required=True)
    add_store_argument(show)
    add_format_argument(show)
    show.set_defaults(handler=run_show)
    remove = actions.add_parser("remove", help="delete a device, its measurements and its artifacts (e.g. the "
                                               "layer models of bench device)")
    remove.add_argument("name")
    add_store_argument(remove)
    remove.set_defaults(handler=run_remove)

    pred = subparsers.add_parser("predict", help="predict latencies on a device")
    pred.add_argument("--space", required=True)
    who = pred.add_mutually_exclusive_group(required=True)
    who.add_argument("--device", help="a registered device")
    who.add_argument("--signature", metavar="CSV", help="measurements arch,latency_ms of an unregistered device")
    pred.add_argument("--archs", required=True,
                      help="one architecture id per line, or a network file @model.onnx / @layers.json (a "
                           "relative path is relative to this file's folder; the estimate is the space's model "
                           "where it takes arbitrary networks, else a power law of MACs), or - for stdin")
    pred.add_argument("--on-unsupported", choices=("error", "skip"), default="error",
                      help="for network files: fail on an operator the IR cannot represent (default), or skip it "
                           "and report it on stderr")
    pred.add_argument("--uncertainty", action="store_true",
                      help="also print latency_log_std (the predictive standard deviation of ln latency) and the "
                           "95 %% interval low95_ms, high95_ms (architecture ids only)")
    add_store_argument(pred)
    add_format_argument(pred, default="csv")
    pred.set_defaults(handler=run_predict)

    models = subparsers.add_parser("models", help="train and list the built-in models")
    maction = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = maction.add_parser("train", help="(re)train a space's built-in model on every device with data")
    train.add_argument("--space", required=True)
    train.add_argument("--model", help="model spec, e.g. blr, geo_ensemble(nnls_mix,blr) or "
                       "loo_select(without_costs(blr),cost_nnls,significance=0.01): models, the models they "
                       "combine, then their settings as name=value (default: the space's)")
    train.add_argument("--exclude-device", action="append", default=[], metavar="NAME",
                       help="leave this bundled device out of training (to onboard it later as if new); repeatable")
    add_store_argument(train)
    add_format_argument(train)
    train.set_defaults(handler=run_train)
    mlist = maction.add_parser("list", help="stored models")
    add_store_argument(mlist)
    add_format_argument(mlist)
    mlist.set_defaults(handler=run_models_list)


def run_signature(args: argparse.Namespace) -> int:
    from search_spaces import get_space

    space = get_space(args.space).name
    with open_predictor(args) as predictor:
        archs = predictor.signature_set(space, args.size)
    if args.format == "json":
        sys.stdout.write(json.dumps({"space": space, "archs": archs}, indent=2) + "\n")
    else:
        write_rows([{"arch": a} for a in archs], ["arch"], args.format)
    return 0


def run_register(args: argparse.Namespace) -> int:
    from nas_latency.measurements import read_measurements_csv
    from nas_latency.store.validate import check_device
    from search_spaces import get_space

    space = get_space(args.space)
    check_device(args.name)
    measured = read_measurements_csv(space, args.measurements)
    with open_predictor(args) as predictor:
        before = _measurement_count(predictor, args.name, space.name)
        info = predictor.register_device(args.name, space.name, measured, description=args.description)
        explained = predictor.explained_device(args.name, space.name)
    kept = info.n_measurements - len(measured.archs)  # archs measured only by `devices add`: registering keeps them
    if before and kept:
        print(f"note: {args.name}'s registered {space.name} measurements were replaced by these {len(measured.archs)}; "
              f"the {kept} other archs added with `devices add` stay ({info.n_measurements} in all)", file=sys.stderr)
    elif before:
        print(f"note: {args.name}'s {before} earlier {space.name} measurements were replaced by these "
              f"{info.n_measurements} (registering replaces a device's measurements in the space)", file=sys.stderr)
    for measurement in explained.left_out if explained else ():
        print(f"note: the model leaves out the measurement of {measurement}: the device's other measurements "
              "disagree with it; measure it again (a throttled or preempted run?)", file=sys.stderr)
    write_rows([info.__dict__], ["name", "space", "n_measurements", "description"], args.format)
    return 0


def run_add(args: argparse.Namespace) -> int:
    from nas_latency.measurements import environment_from_json, read_measurements_csv
    from nas_latency.store.validate import check_device
    from search_spaces import get_space

    space = get_space(args.space)
    check_device(args.name)
    environment = None if args.environment is None else environment_from_json(args.environment, what="--environment")
    measured = read_measurements_csv(space, args.measurements, min_rows=1)
    with open_predictor(args) as predictor:
        result = predictor.contribute_measurements(args.name, space.name, measured.as_mapping(),
                                                   request_id=args.request_id, environment=environment)
        explained = predictor.explained_device(args.name, space.name)
    if result.duplicate_request:
        print(f"note: request id {args.request_id!r} was used before with these rows; nothing was written",
              file=sys.stderr)
    for measurement in explained.left_out if explained else ():
        print(f"note: the model leaves out the measurement of {measurement}: the device's other measurements "
              "disagree with it; measure it again (a throttled or preempted run?)", file=sys.stderr)
    info = result.device
    row = {**info.__dict__, "inserted": result.inserted, "replaced": result.replaced,
           "duplicate_request": result.duplicate_request, "model_refitted": result.model_refitted}
    write_rows([row], ["name", "space", "n_measurements", "inserted", "replaced", "duplicate_request",
                       "model_refitted"], args.format)
    return 0


def run_list(args: argparse.Namespace) -> int:
    with open_predictor(args) as predictor:
        infos = predictor.devices(args.space)
    write_rows([i.__dict__ for i in infos], ["name", "space", "n_measurements", "description"], args.format)
    return 0


def _measurement_count(predictor: Any, name: str, space: str) -> int:
    """How many measurements ``name`` has in ``space`` (0 for a device not registered)."""
    try:
        return predictor.device(name, space).n_measurements
    except NotFoundError:
        return 0


def run_show(args: argparse.Namespace) -> int:
    with open_predictor(args) as predictor:
        info = predictor.device(args.name, args.space)
        if info.n_measurements == 0:
            raise NotFoundError(f"device {info.name!r} has no measurements in space {info.space!r} (`nas-latency "
                                f"devices list` shows its spaces)")
        # how the built-in model explains the device: the member its measurements chose, and why
        explained = predictor.explained_device(args.name, args.space)
    row = {**info.__dict__, "model": explained.model if explained else "",
           "drops_degenerate": explained.drops_degenerate if explained else None,
           "model_detail": explained.detail if explained else "",
           "left_out_archs": ";".join(m.arch for m in explained.left_out) if explained else ""}
    write_rows([row], ["name", "space", "n_measurements", "description", "model", "drops_degenerate", "model_detail",
                       "left_out_archs"], args.format)
    return 0


def run_remove(args: argparse.Namespace) -> int:
    with open_predictor(args) as predictor:
        predictor.store.get_device(args.name)
        predictor.remove_device(args.name)
    print(f"removed device {args.name}", file=sys.stderr)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from nas_latency.frontends import load_network_file
    from nas_latency.macs_power_law import MACS_MODEL
    from nas_latency.measurements import read_measurements_csv
    from search_spaces import get_space

    space = get_space(args.space)
    if args.signature == "-" and args.archs == "-":
        raise InvalidInputError("--signature and --archs cannot both read stdin")
    lines = read_arch_lines(args.archs)
    archs = [arch for _, arch in lines]
    signature = read_measurements_csv(space, args.signature) if args.signature else None
    files = [i for i, a in enumerate(archs) if a.startswith("@")]
    if files and args.uncertainty:
        raise InvalidInputError(f"--uncertainty covers architecture ids only; line {lines[files[0]][0]} is a "
                                f"network file ({archs[files[0]]})")
    networks = []
    folder = Path(args.archs).parent if args.archs != "-" else Path.cwd()
    for i in files:
        path = folder / archs[i][1:]  # an absolute path stays itself
        conversion = load_network_file(path, on_unsupported=args.on_unsupported)
        report_skipped(conversion.skipped, str(path))
        networks.append(conversion.network)
    with open_predictor(args) as predictor:
        latency_ms = np.zeros(len(archs))
        std_log = np.zeros(len(archs))
        ids = [i for i, a in enumerate(archs) if not a.startswith("@")]
        try:
            if ids and args.uncertainty:
                latency_ms[ids], std_log[ids] = predictor.predict_with_uncertainty(
                    space.name, [archs[i] for i in ids], device=args.device, signature=signature)
            elif ids:
                latency_ms[ids] = predictor.predict(space.name, [archs[i] for i in ids], device=args.device,
                                                    signature=signature)
        except InvalidInputError as exc:
            locate_bad_arch(space, lines, args.archs, exc)
        if files:
            result = predictor.predict_networks(space.name, networks, device=args.device, signature=signature)
            latency_ms[files] = result.latency_ms
            if result.model == MACS_MODEL:
                print(f"note: the {space.name} model predicts its own architecture ids only; the {len(files)} "
                      f"network file(s) are estimated by {MACS_MODEL}, a power law of MACs fitted to the device's "
                      f"{space.name} measurements (a coarse baseline)", file=sys.stderr)
    rows = [{"arch": a, "latency_ms": round(float(v), 6)} for a, v in zip(archs, latency_ms)]
    columns = ["arch", "latency_ms"]
    if args.uncertainty:
        for row, value, std in zip(rows, latency_ms, std_log):
            row.update({"latency_log_std": round(float(std), 6),
                        "low95_ms": round(float(value * np.exp(-1.959964 * std)), 6),
                        "high95_ms": round(float(value * np.exp(1.959964 * std)), 6)})
        columns += ["latency_log_std", "low95_ms", "high95_ms"]
    write_rows(rows, columns, args.format)
    return 0


def run_train(args: argparse.Namespace) -> int:
    from search_spaces import get_space

    space = get_space(args.space).name
    start = time.perf_counter()
    with open_predictor(args) as predictor:
        bundle = predictor.train(space, model_spec=args.model, exclude_devices=args.exclude_device)
    row = {
        "space": space,
        "model": bundle.model_spec,
        "training_devices": len(bundle.training_devices),
        "wall_s": round(time.perf_counter() - start, 2),
    }
    write_rows([row], list(row), args.format)
    return 0


def run_models_list(args: argparse.Namespace) -> int:
    with open_predictor(args) as predictor:
        infos = predictor.store.list_artifacts()
    rows = [
        {"space": i.space, "name": i.name, "version": i.version, "kind": i.kind,
         "model": i.manifest.get("params", {}).get("model_spec", ""), "size_bytes": i.size_bytes,
         "created_at": i.created_at.isoformat(timespec="seconds")}
        for i in infos
    ]
    write_rows(rows, ["space", "name", "version", "kind", "model", "size_bytes", "created_at"], args.format)
    return 0
