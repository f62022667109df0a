"""``nas-latency describe``: the per-layer table of one network (shapes, MACs, parameters, bytes)."""

from __future__ import annotations

import argparse
import json
import sys

from nas_latency.commands.common import add_format_argument, report_skipped, resolve_network, write_document, write_rows
from nas_latency.ir import Network

LAYER_COLUMNS = [
    "name", "op", "inputs", "input_shapes", "output_shape", "kernel", "stride", "groups",
    "macs", "params", "bytes_read", "bytes_written", "arithmetic_intensity",
]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "describe",
        help="per-layer table of a network",
        description="Describe an architecture of a space (with --space), an ONNX file or a layer-table JSON "
        "(a path ending in .onnx/.json, or @path).",
    )
    parser.add_argument("target", help="architecture id of --space, or an .onnx / .json file (or @file)")
    parser.add_argument("--space", help="search space of the architecture id")
    parser.add_argument("--summary", action="store_true", help="print only the network totals")
    parser.add_argument("--dtype-bytes", type=int, default=4, choices=(1, 2, 4, 8), help="bytes per element")
    parser.add_argument(
        "--on-unsupported", choices=("error", "skip"), default="error",
        help="for files: fail on an operator the IR cannot represent (default), or skip it and report it",
    )
    add_format_argument(parser)
    parser.set_defaults(handler=run)


def layer_rows(network: Network, dtype_bytes: int) -> list[dict[str, object]]:
    rows = []
    for layer in network.layers:
        rows.append(
            {
                "name": layer.name,
                "op": layer.op.value,
                "inputs": ",".join(layer.inputs),
                "input_shapes": " ".join("x".join(map(str, s)) for s in layer.input_shapes),
                "output_shape": list(layer.output_shape),
                "kernel": list(layer.kernel) if layer.kernel else "",
                "stride": list(layer.stride) if layer.stride else "",
                "groups": layer.groups,
                "macs": layer.macs,
                "params": layer.params,
                "bytes_read": layer.bytes_read(dtype_bytes),
                "bytes_written": layer.bytes_written(dtype_bytes),
                "arithmetic_intensity": round(layer.arithmetic_intensity(dtype_bytes), 4),
            }
        )
    return rows


def totals(network: Network, dtype_bytes: int) -> dict[str, object]:
    return {
        "network": network.name,
        "input_shape": list(network.inputs[0].shape),
        "layers": len(network.layers),
        "macs": network.macs,
        "params": network.params,
        "bytes_read": network.bytes_read(dtype_bytes),
        "bytes_written": network.bytes_written(dtype_bytes),
        "arithmetic_intensity": round(network.arithmetic_intensity(dtype_bytes), 4),
    }


def run(args: argparse.Namespace) -> int:
    resolved = resolve_network(args.target, args.space, args.on_unsupported)
    report_skipped(resolved.skipped, resolved.source)
    network = resolved.network
    summary = totals(network, args.dtype_bytes) | {"skipped_operators": len(resolved.skipped)}
    skipped = [{"node": item.node, "operator": item.operator, "reason": item.reason} for item in resolved.skipped]
    if args.summary:
        write_document(summary, args.format)
        return 0
    rows = layer_rows(network, args.dtype_bytes)
    if args.format == "json":
        sys.stdout.write(json.dumps({"summary": summary, "layers": rows, "skipped": skipped}, indent=2) + "\n")
        return 0
    write_rows(rows, LAYER_COLUMNS, args.format)
    if args.format == "table":
        print(
            f"total: {summary['layers']} layers, {summary['macs']:,} MACs, {summary['params']:,} params, "
            f"{summary['bytes_read']:,} bytes read, {summary['bytes_written']:,} bytes written",
            file=sys.stderr,
        )
    return 0
