"""``nas-latency spaces``: the registered search spaces."""

from __future__ import annotations

import argparse

from nas_latency.commands.common import add_format_argument, write_rows


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("spaces", help="list the search spaces")
    add_format_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from search_spaces import get_space, space_names

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
