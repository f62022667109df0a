"""``nas-latency featurize``: per-network features of architectures of a space."""

from __future__ import annotations

import argparse

from nas_latency.commands.common import add_format_argument, read_archs, write_rows


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("featurize", help="per-network features of architectures of a space")
    parser.add_argument("--space", required=True, help="search space (see `nas-latency spaces`)")
    parser.add_argument("--archs", required=True, help="file with one architecture id per line, or - for stdin")
    add_format_argument(parser, default="csv")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from search_spaces import get_space

    space = get_space(args.space)
    matrix = space.featurize(read_archs(args.archs))
    columns = ["arch", *matrix.names]
    rows = []
    for arch, values in zip(matrix.rows, matrix.values.tolist()):
        row: dict[str, object] = {"arch": arch}
        row.update({name: (int(v) if float(v).is_integer() else v) for name, v in zip(matrix.names, values)})
        rows.append(row)
    write_rows(rows, columns, args.format)
    return 0
