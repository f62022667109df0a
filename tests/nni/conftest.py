"""Fixtures of the NNI plug-in tests: one NAS-Bench-201 store per session (built-in model trained once, a device
``probe`` registered from 10 signature measurements), and a real gRPC server on port 0 over it."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

SPACE = "nasbench201"
PROBE = "probe"
#: the bundled device whose signature measurements ``probe`` is registered with
PROBE_SOURCE = "gold_6240"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAS_LATENCY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NAS_LATENCY_TOKEN", raising=False)


@pytest.fixture(scope="session")
def nb201_store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    from nas_latency.data import load_table
    from nas_latency.predictor import Predictor

    url = f"sqlite://{tmp_path_factory.mktemp('nni-store') / 'store.sqlite'}"
    with Predictor(store_url=url) as predictor:
        archs = predictor.signature_set(SPACE, 10)
        measured = load_table("nb201_latency").set_index("arch_string")[PROBE_SOURCE]
        predictor.register_device(PROBE, SPACE, {a: float(measured[a]) for a in archs})
    return url


@pytest.fixture(scope="session")
def server_address(nb201_store_url: str) -> Iterator[str]:
    """A real server (in this process) on 127.0.0.1, port 0, serving the session store."""
    from nas_latency.client import LatencyClient
    from server.app import create_server, stop_server
    from server.registry import ModelRegistry

    registry = ModelRegistry(store_url=nb201_store_url, spaces=[SPACE])
    server, port = create_server("127.0.0.1:0", registry)
    server.start()
    address = f"127.0.0.1:{port}"
    try:
        with LatencyClient(address) as client:
            client.wait_until_serving(timeout_s=120)
        yield address
    finally:
        stop_server(server, grace_s=1.0)
