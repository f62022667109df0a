"""Reading measured latencies (`arch,latency_ms` CSV) for a search space, with row-level validation.

Everything is checked before anything is written: unknown or malformed architectures, NaN, zero or negative
latencies, duplicates and too few rows are errors naming the row (1-based, header = row 1).
"""

from __future__ import annotations

import csv
import io
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from nas_latency.errors import InvalidInputError, NasLatencyError
from search_spaces import SearchSpace

MIN_MEASUREMENTS = 3
HEADER = ("arch", "latency_ms")


@dataclass(frozen=True)
class MeasuredArchs:
    """Validated measurements of one space: canonical arch ids and their latencies, in input order."""

    space: str
    archs: tuple[str, ...]
    latency_ms: tuple[float, ...]

    def as_mapping(self) -> dict[str, float]:
        return dict(zip(self.archs, self.latency_ms))


def _read_text(source: str) -> tuple[str, str]:
    if source == "-":
        return sys.stdin.read(), "stdin"
    try:
        return Path(source).read_text(), source
    except OSError as exc:
        raise InvalidInputError(f"{source}: cannot read measurements ({exc.strerror})") from None


def validate_measurements(
    space: SearchSpace, rows: Sequence[tuple[int, str, object]], *, where: str, min_rows: int = MIN_MEASUREMENTS
) -> MeasuredArchs:
    """Check ``(row_number, arch, latency)`` triples against ``space``; messages name ``row_number``."""
    archs: list[str] = []
    latencies: list[float] = []
    seen: dict[str, int] = {}
    for row, arch, value in rows:
        try:
            canonical = space.canonical(str(arch).strip())
        except NasLatencyError as exc:
            raise InvalidInputError(f"{where}: row {row}: {exc}") from None
        try:
            latency = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidInputError(f"{where}: row {row}: latency_ms {value!r} is not a number") from None
        if not math.isfinite(latency) or latency <= 0:
            raise InvalidInputError(f"{where}: row {row}: latency_ms must be a finite number > 0, got {value!r}")
        if canonical in seen:
            raise InvalidInputError(
                f"{where}: row {row}: architecture {canonical!r} is measured twice (also row {seen[canonical]})"
            )
        seen[canonical] = row
        archs.append(canonical)
        latencies.append(latency)
    if len(archs) < min_rows:
        raise InvalidInputError(f"{where}: {len(archs)} measurements; at least {min_rows} are needed")
    return MeasuredArchs(space.name, tuple(archs), tuple(latencies))


def read_measurements_csv(space: SearchSpace, source: str, *, min_rows: int = MIN_MEASUREMENTS) -> MeasuredArchs:
    """Parse a CSV file (or ``-`` for stdin) with header ``arch,latency_ms``."""
    text, where = _read_text(source)
    return parse_measurements_csv(space, text, where=where, min_rows=min_rows)


def parse_measurements_csv(space: SearchSpace, text: str, *, where: str, min_rows: int = MIN_MEASUREMENTS) -> MeasuredArchs:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInputError(f"{where}: empty file; expected a header `arch,latency_ms`") from None
    header = [h.strip() for h in header]
    if tuple(header) != HEADER:
        raise InvalidInputError(f"{where}: row 1: header must be `arch,latency_ms`, got {','.join(header)!r}")
    rows: list[tuple[int, str, object]] = []
    for number, record in enumerate(reader, start=2):
        if not record or all(not cell.strip() for cell in record):
            continue
        if len(record) != 2:
            raise InvalidInputError(f"{where}: row {number}: expected 2 columns (arch,latency_ms), got {len(record)}")
        rows.append((number, record[0], record[1].strip()))
    return validate_measurements(space, rows, where=where, min_rows=min_rows)


def measurements_from_mapping(space: SearchSpace, mapping: Mapping[str, float], *, where: str = "signature",
                              min_rows: int = MIN_MEASUREMENTS) -> MeasuredArchs:
    rows = [(number, arch, value) for number, (arch, value) in enumerate(mapping.items(), start=1)]
    return validate_measurements(space, rows, where=where, min_rows=min_rows)
