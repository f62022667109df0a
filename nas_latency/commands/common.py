"""Helpers shared by CLI commands: reading architecture lists, resolving a network target, writing results."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from nas_latency.errors import InvalidInputError
from nas_latency.ir import Network
from nas_latency.output import FORMATS, OutputFormat, render_document, render_rows


def add_format_argument(parser: argparse.ArgumentParser, default: OutputFormat = "table") -> None:
    parser.add_argument("--format", choices=FORMATS, default=default, help=f"output format (default: {default})")


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device NAME`` or ``--signature FILE``: the device a command predicts for, registered or inline."""
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--device", help="a registered device (see `nas-latency devices list`)")
    target.add_argument("--signature", metavar="FILE",
                        help="CSV arch,latency_ms of an unregistered device (at least 3 rows)")


def write_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: OutputFormat) -> None:
    sys.stdout.write(render_rows(rows, columns, fmt))


def write_document(document: Mapping[str, Any], fmt: OutputFormat) -> None:
    sys.stdout.write(render_document(document, fmt))


def read_arch_lines(source: str) -> list[tuple[int, str]]:
    """``(line number, architecture id)``, one per line, from a file or ``-`` (stdin). Blank lines are ignored;
    surrounding whitespace is stripped. An empty list is an error."""
    if source == "-":
        text = sys.stdin.read()
        where = "stdin"
    else:
        path = Path(source)
        try:
            text = path.read_text()
        except OSError as exc:
            raise InvalidInputError(f"{source}: cannot read architecture list ({exc.strerror})") from None
        where = source
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise InvalidInputError(f"{where}: no architectures (expected one per line)")
    return lines


def read_archs(source: str) -> list[str]:
    """Architecture ids, one per line (see :func:`read_arch_lines`)."""
    return [arch for _, arch in read_arch_lines(source)]


def locate_bad_arch(space: Any, lines: Sequence[tuple[int, str]], source: str, error: InvalidInputError) -> None:
    """Re-raise ``error`` (a prediction refused an architecture id) naming the list and the line of the first id
    ``space`` does not accept; ``error`` itself if every id is accepted."""
    where = "stdin" if source == "-" else source
    for number, arch in lines:
        if arch.startswith("@"):
            continue
        try:
            space.canonical(arch)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: line {number}: {exc.message}") from None
    raise error


@dataclass(frozen=True)
class ResolvedTarget:
    network: Network
    skipped: tuple[Any, ...]
    source: str


def resolve_network(target: str, space_name: str | None, on_unsupported: str) -> ResolvedTarget:
    """A network from an architecture id of ``space_name``, or a file: ``@path`` or a path ending in
    ``.onnx`` (ONNX model) or ``.json`` (layer table)."""
    path_text = target[1:] if target.startswith("@") else target
    is_file = target.startswith("@") or path_text.lower().endswith((".onnx", ".json"))
    if is_file:
        from nas_latency.frontends import load_network_file

        conversion = load_network_file(path_text, on_unsupported=on_unsupported)
        return ResolvedTarget(conversion.network, tuple(conversion.skipped), path_text)
    if space_name is None:
        raise InvalidInputError(
            f"{target!r} is not an .onnx or .json file; to describe an architecture id give --space"
        )
    from search_spaces import get_space

    space = get_space(space_name)
    arch = space.canonical(target)
    return ResolvedTarget(space.to_ir(arch), (), arch)


def report_skipped(skipped: Sequence[Any], source: str) -> None:
    """Diagnostics on stderr for every operator a frontend skipped on request."""
    if not skipped:
        return
    print(f"warning: {source}: skipped {len(skipped)} unsupported operator(s):", file=sys.stderr)
    for item in skipped:
        print(f"  {item.node}: {item.operator} ({item.reason})", file=sys.stderr)


def check_writable(path: str | Path, *, what: str) -> Path:
    """Refuse, before any work, an output file that cannot be written (its folder is made if missing). An
    existing file is left as it is; a probe file made here is removed."""
    path = Path(path)
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab"):
            pass
    except OSError as exc:
        raise InvalidInputError(f"{what} {path}: cannot be written ({exc.strerror or exc})") from None
    if not existed:
        path.unlink()
    return path


def check_writable_folder(path: str | Path, *, what: str) -> Path:
    """Refuse, before any work, an output folder that cannot be made or written (a probe file is made and
    removed)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".nas-latency-write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InvalidInputError(f"{what} {path}: cannot be written ({exc.strerror or exc})") from None
    return path
