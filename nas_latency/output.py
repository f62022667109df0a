"""Render result rows for the CLI: an aligned text table, JSON or CSV. Results go to stdout only."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Literal, Mapping, Sequence

OutputFormat = Literal["table", "json", "csv"]
FORMATS: tuple[OutputFormat, ...] = ("table", "json", "csv")


def _cell(value: Any) -> str:
    if value is None:  # a missing value: an empty cell, not the word None
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.6g}" if abs(value) < 1e6 or not value.is_integer() else f"{int(value)}"
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def render_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: OutputFormat) -> str:
    """Rows as text: ``table`` aligns columns, ``csv`` has a header, ``json`` is a list of objects."""
    if fmt == "json":
        return json.dumps([{c: _jsonable(r.get(c)) for c in columns} for r in rows], indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow([_cell(r.get(c, "")) for c in columns])
        return buffer.getvalue()
    cells = [[_cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines) + "\n"


def render_document(document: Mapping[str, Any], fmt: OutputFormat) -> str:
    """A single result object: JSON as is, table/csv as ``key value`` rows."""
    if fmt == "json":
        return json.dumps({k: _jsonable(v) for k, v in document.items()}, indent=2) + "\n"
    rows = [{"key": k, "value": v} for k, v in document.items()]
    return render_rows(rows, ["key", "value"], fmt)
