"""``nas-latency spaces``: the registered search spaces."""

from __future__ import annotations

import argparse

from nas_latency.commands.common import add_format_argument, write_rows


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("spaces", help="list the search spaces")
    parser.add_argument("--server", metavar="HOST:PORT",
                        help="list a nas-latency server's spaces (and whether their models are loaded there)")
    add_format_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from search_spaces import get_space, space_names

    if args.server:
        return _run_remote(args)
    rows = []
    for name in space_names():
        space = get_space(name)
        rows.append(
            {
                "space": name,
                "input_shape": list(space.input_shape()),
                "measured_archs": len(space.measured_archs()),
                "description": space.description,
            }
        )
    write_rows(rows, ["space", "input_shape", "measured_archs", "description"], args.format)
    return 0


def _run_remote(args: argparse.Namespace) -> int:
    from nas_latency.client import LatencyClient

    with LatencyClient(args.server) as client:
        infos = client.space_infos()
    rows = [{"space": i.name, "input_shape": list(i.input_shape), "measured_archs": i.measured_archs,
             "description": i.description, "model_loaded": i.model_loaded, "model_spec": i.model_spec}
            for i in infos]
    write_rows(rows, ["space", "input_shape", "measured_archs", "description", "model_loaded", "model_spec"],
               args.format)
    return 0
