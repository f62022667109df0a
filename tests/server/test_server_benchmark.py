"""`nas-latency benchmark server` runs against a server (load from other processes) and prints its figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from nas_latency.cli import main

TOKEN = "s3cret-token"


def test_benchmark_server_prints_its_figures(serve: Callable[..., Any], sqlite_url: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    running = serve(sqlite_url, token=TOKEN)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    code = main(["benchmark", "server", "--address", running.address, "--token-file", str(token_file),
                 "--single", "30", "--batch-sizes", "1000", "2000", "--batch-repeats", "2", "--clients", "2",
                 "--duration-s", "0.5", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    figures = json.loads(out)
    assert figures["single_calls"] == 30
    assert 0 < figures["single_p50_ms"] <= figures["single_p99_ms"]
    assert figures["batch_1000_archs_per_s"] > 0 and figures["batch_2000_archs_per_s"] > 0
    assert figures["concurrent_clients"] == 2 and figures["concurrent_calls_per_s"] > 0
    assert figures["target_batch_archs_per_s"] == 200_000 and isinstance(figures["meets_targets"], bool)
    assert "single-arch Predict: p50" in err
    assert running.client().devices() == []  # the benchmark removed its device
