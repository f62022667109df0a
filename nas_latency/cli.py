"""The ``nas-latency`` command. Results go to stdout, diagnostics to stderr.

Exit codes: 0 success, 1 failure, 2 bad usage or bad input (malformed architecture, unknown space, corrupt file).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from nas_latency import __version__
from nas_latency.commands import benchmark, describe, featurize, onboarding, spaces
from nas_latency.commands import serve
from nas_latency.commands import choose, evaluate, rank
from nas_latency.commands import bench
from nas_latency.commands import search
from nas_latency.errors import InvalidInputError, NasLatencyError, NotFoundError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

COMMANDS = (spaces, describe, featurize, onboarding, benchmark, serve, evaluate, rank, choose, bench, search)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nas-latency",
        description="Latency surrogate for hardware-aware neural architecture search.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more diagnostics on stderr")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def exit_code(exc: NasLatencyError) -> int:
    """The exit status of a command that ended with ``exc``: 2 for bad input (malformed, or naming something that
    does not exist), 1 for any other failure."""
    return EXIT_BAD_INPUT if isinstance(exc, (InvalidInputError, NotFoundError)) else EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2), format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.handler(args))
    except NasLatencyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except BrokenPipeError:  # e.g. `nas-latency featurize ... | head`
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
