"""Reading measured latencies (`arch,latency_ms` CSV) for a search space, with row-level validation.

Everything is checked before anything is written: unknown or malformed architectures, NaN, zero or negative
latencies, duplicates and too few rows are errors naming the row (1-based, header = row 1).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from nas_latency.errors import FailedPreconditionError, InvalidInputError, NasLatencyError
from search_spaces import SearchSpace

#: a device is explained (adapted, predicted for) from this many measured archs in a space on
MIN_MEASUREMENTS = 3
HEADER = ("arch", "latency_ms")
#: the range a measured network latency can lie in, in ms: 1 ns (below it a value is a unit slip or an underflow,
#: and its logarithm sends the models' predictions to 0) to about 11.6 days
MIN_LATENCY_MS = 1e-6
MAX_LATENCY_MS = 1e9
#: a latency written as text: a plain ASCII decimal number (``7_0``, ``٧`` or ``0x1p3`` are not, though Python's
#: ``float`` reads them)
_DECIMAL = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*\Z", re.ASCII)
_NON_FINITE = re.compile(r"\s*[+-]?(nan|inf|infinity)\s*\Z", re.IGNORECASE)
BOM = "\ufeff"



def check_enough_to_explain(name: str, space: str, count: int) -> None:
    """``FailedPreconditionError`` unless ``count`` measured archs are enough for the models to explain device
    ``name`` in ``space`` (:data:`MIN_MEASUREMENTS`): a valid request that the device is not ready for."""
    if count < MIN_MEASUREMENTS:
        raise FailedPreconditionError(
            f"device {name!r} has {count} measurement(s) in space {space!r}; the models explain a device from "
            f"{MIN_MEASUREMENTS} on (contribute or register more)")


@dataclass(frozen=True)
class MeasuredArchs:
    """Validated measurements of one space: canonical arch ids and their latencies, in input order."""

    space: str
    archs: tuple[str, ...]
    latency_ms: tuple[float, ...]

    def as_mapping(self) -> dict[str, float]:
        return dict(zip(self.archs, self.latency_ms))


def read_text(source: str, *, what: str = "measurements") -> tuple[str, str]:
    """``(text, where)`` of a UTF-8 file, or of stdin for ``-``; errors name the file and ``what`` it holds."""
    if source == "-":
        return sys.stdin.read(), "stdin"
    try:
        return Path(source).read_text(encoding="utf-8"), source
    except OSError as exc:
        raise InvalidInputError(f"{source}: cannot read {what} ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{source}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def csv_table(text: str, *, where: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """``(header, rows)`` of CSV text: the header's cells stripped, and each non-blank row as (row number, cells),
    every one with as many cells as the header (else an error naming the row). A leading byte-order mark
    (spreadsheets' "CSV UTF-8"), CRLF line ends and quoted fields are accepted."""
    reader = csv.reader(io.StringIO(text.removeprefix(BOM)))
    header = [h.strip() for h in next(reader, [])]
    rows = []
    for number, record in enumerate(reader, start=2):
        if not record or all(not cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            raise InvalidInputError(f"{where}: row {number}: expected {len(header)} columns "
                                    f"({','.join(header)}), got {len(record)}")
        rows.append((number, record))
    return header, rows


def _latency(value: object, *, where: str) -> float:
    """``value`` (text from a file, or a number) as a latency in ms, or an error saying what is wrong with it."""
    if isinstance(value, str) and not (_DECIMAL.match(value) or _NON_FINITE.match(value)):
        raise InvalidInputError(f"{where}: latency_ms {value!r} is not a number (write a plain decimal number, "
                                f"such as 12.5 or 1.25e1)")
    try:
        latency = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(f"{where}: latency_ms {value!r} is not a number") from None
    if not math.isfinite(latency) or latency <= 0:
        raise InvalidInputError(f"{where}: latency_ms must be a finite number > 0, got {value!r}")
    if not MIN_LATENCY_MS <= latency <= MAX_LATENCY_MS:
        raise InvalidInputError(f"{where}: latency_ms {value!r} is outside the plausible range of a network's "
                                f"latency, {MIN_LATENCY_MS:g} to {MAX_LATENCY_MS:g} ms (is the unit ms?)")
    return latency


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
        latency = _latency(value, where=f"{where}: row {row}")
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
    text, where = read_text(source)
    return parse_measurements_csv(space, text, where=where, min_rows=min_rows)


def parse_measurements_csv(space: SearchSpace, text: str, *, where: str, min_rows: int = MIN_MEASUREMENTS) -> MeasuredArchs:
    """Rows of ``arch,latency_ms`` CSV text. A leading byte-order mark (spreadsheets' "CSV UTF-8"), CRLF line
    ends, spaces around fields, quoted fields and blank lines are accepted; anything else is an error naming the
    row."""
    if not text.removeprefix(BOM).strip():
        raise InvalidInputError(f"{where}: empty file; expected a header `arch,latency_ms`")
    header, table = csv_table(text, where=where)
    if tuple(header) != HEADER:
        raise InvalidInputError(f"{where}: row 1: header must be `arch,latency_ms`, got {','.join(header)!r}")
    rows: list[tuple[int, str, object]] = [(number, record[0], record[1].strip()) for number, record in table]
    return validate_measurements(space, rows, where=where, min_rows=min_rows)


def measurements_from_mapping(space: SearchSpace, mapping: Mapping[str, float], *, where: str = "signature",
                              min_rows: int = MIN_MEASUREMENTS) -> MeasuredArchs:
    rows = [(number, arch, value) for number, (arch, value) in enumerate(mapping.items(), start=1)]
    return validate_measurements(space, rows, where=where, min_rows=min_rows)


def environment_from_json(text: str, *, what: str) -> dict[str, Any]:
    """The JSON object ``text`` that describes how measurements were taken (runtime, versions, threads), stored
    with them; ``what`` names the field or flag it came from in the error."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{what} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value
