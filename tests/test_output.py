"""CLI rendering: a missing value is an empty cell in tables and CSV, and null in JSON."""

from __future__ import annotations

import json

from nas_latency.output import render_rows


def test_missing_values_are_empty_cells_and_json_nulls() -> None:
    rows = [{"model": "mixed", "mape_pct": 12.5, "spearman": None}]
    assert render_rows(rows, ["model", "mape_pct", "spearman"], "csv") == "model,mape_pct,spearman\nmixed,12.5,\n"
    table = render_rows(rows, ["model", "mape_pct", "spearman"], "table")
    assert "None" not in table and table.splitlines()[2].split() == ["mixed", "12.5"]
    assert json.loads(render_rows(rows, ["model", "spearman"], "json")) == [{"model": "mixed", "spearman": None}]
