"""Server fixtures: real servers on port 0 (in this process, or `nas-latency serve` subprocesses) over real SQLite
files and real PostgreSQL schemas.

The NAS-Bench-201 built-in model is trained once per session into a template store; every test store starts
with a copy of that artifact, so servers load it instead of training. PostgreSQL comes from
``NAS_LATENCY_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``); each test gets its own
``?schema=``, dropped afterwards. If PostgreSQL cannot be reached the tests fail, naming it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from nas_latency.builtin_models import BUNDLE_NAME, bundled_training_table
from nas_latency.client import LatencyClient
from nas_latency.store import Artifact, open_store
from search_spaces import get_space
from server.app import create_server, stop_server
from server.auth import TokenAuth
from server.limits import Limits
from server.registry import ModelRegistry

PG_URL = os.environ.get("NAS_LATENCY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
SPACE = "nasbench201"
TOKEN = "s3cret-token"
BACKENDS = ("sqlite", "postgresql")


# ---- stores ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def bundle_artifact(tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    """The NAS-Bench-201 built-in model, trained once for the session."""
    from nas_latency.predictor import Predictor

    url = f"sqlite://{tmp_path_factory.mktemp('template') / 'template.sqlite'}"
    with Predictor(store_url=url) as predictor:
        predictor.bundle(SPACE)
    with open_store(url) as store:
        return store.get_artifact(SPACE, BUNDLE_NAME)


def seed(url: str, artifact: Artifact) -> str:
    """Put the built-in model into the (empty) store at ``url``; return the url."""
    with open_store(url) as store:
        store.put_artifact(artifact.space, artifact.name, kind=artifact.kind, manifest=artifact.manifest,
                           blob=artifact.blob)
    return url


def pg_connect():  # type: ignore[no-untyped-def]
    import psycopg

    try:
        return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"the server tests need PostgreSQL at {PG_URL} (set NAS_LATENCY_TEST_PG_URL): {exc}",
                    pytrace=False)


@pytest.fixture
def make_pg_url(bundle_artifact: Artifact) -> Iterator[Callable[[], str]]:
    """Fresh seeded PostgreSQL schemas (as many as asked), dropped at teardown."""
    schemas: list[str] = []

    def make() -> str:
        schema = f"t_srv_{uuid.uuid4().hex[:12]}"
        with pg_connect():
            pass
        schemas.append(schema)
        sep = "&" if "?" in PG_URL else "?"
        return seed(f"{PG_URL}{sep}schema={schema}", bundle_artifact)

    yield make
    with pg_connect() as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path, bundle_artifact: Artifact) -> str:
    return seed(f"sqlite://{tmp_path / 'store' / 'store.sqlite'}", bundle_artifact)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path, bundle_artifact: Artifact) -> str:
    """A fresh seeded store: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        return seed(f"sqlite://{tmp_path / 'store' / 'store.sqlite'}", bundle_artifact)
    return request.getfixturevalue("make_pg_url")()


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAS_LATENCY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NAS_LATENCY_TOKEN", raising=False)


# ---- measurements ---------------------------------------------------------------------------------------------------
def bundled_measurements(archs: list[str], device_column: int = 0, scale: float = 1.0) -> dict[str, float]:
    """Latencies of a bundled NB201 device (column ``device_column``) on ``archs``, times ``scale``."""
    table = bundled_training_table(get_space(SPACE))
    position = {arch: i for i, arch in enumerate(table.archs)}
    return {a: float(table.latency_ms[position[a], device_column]) * scale for a in archs}


@pytest.fixture(scope="session")
def signature_archs(bundle_artifact: Artifact) -> list[str]:
    from nas_latency.models.artifacts import artifact_from_bytes

    return list(artifact_from_bytes(bundle_artifact.blob, source="test").extra["signature_order"][:10])


@pytest.fixture(scope="session")
def sample_archs() -> list[str]:
    archs = get_space(SPACE).measured_archs()
    rng = np.random.default_rng(7)
    return [archs[i] for i in rng.choice(len(archs), 200, replace=False)]


# ---- in-process servers ---------------------------------------------------------------------------------------------
@dataclass
class Running:
    """A started in-process server."""

    server: Any
    port: int
    registry: ModelRegistry
    clients: list[LatencyClient] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> LatencyClient:
        kwargs.setdefault("timeout_s", 60)
        client = LatencyClient(self.address, **kwargs)
        self.clients.append(client)
        return client

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        stop_server(self.server, grace_s=1)


def start_server(store_url: str, *, token: str | None = None, limits: Limits | None = None,
                 registry: ModelRegistry | None = None, wait: bool = True, **registry_kwargs: Any) -> Running:
    registry = registry or ModelRegistry(store_url=store_url, spaces=[SPACE], **registry_kwargs)
    server, port = create_server("127.0.0.1:0", registry, auth=TokenAuth(token), limits=limits, max_workers=16)
    server.start()
    running = Running(server, port, registry)
    if wait:
        running.client().wait_until_serving(timeout_s=120)
    return running


@pytest.fixture
def serve() -> Iterator[Callable[..., Running]]:
    """Starts in-process servers (``serve(store_url, token=..., limits=...)``); all stopped at teardown."""
    started: list[Running] = []

    def make(store_url: str, **kwargs: Any) -> Running:
        running = start_server(store_url, **kwargs)
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


# ---- subprocess servers ---------------------------------------------------------------------------------------------
@dataclass
class Spawned:
    """A `nas-latency serve` subprocess; ``logs`` collects its JSON log lines."""

    proc: subprocess.Popen
    address: str
    logs: list[dict[str, Any]]
    raw: list[str]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [entry for entry in list(self.logs) if entry.get("event") == name]

    def terminate(self, timeout_s: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)


def spawn_server(store_url: str, *extra: str, home: Path) -> Spawned:
    command = [sys.executable, "-m", "nas_latency.cli", "serve", "--address", "127.0.0.1:0", "--store", store_url,
               "--spaces", SPACE, *extra]
    env = dict(os.environ, NAS_LATENCY_HOME=str(home))
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    logs: list[dict[str, Any]] = []
    raw: list[str] = []
    listening = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            raw.append(line)
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            logs.append(entry)
            if entry.get("event") == "listening":
                listening.set()
        listening.set()

    threading.Thread(target=read, daemon=True).start()
    addresses = [e["address"] for e in logs if e.get("event") == "listening"] if listening.wait(120) else []
    if not addresses:
        proc.kill()
        raise AssertionError(f"server did not start (exit {proc.wait(10)}):\n{''.join(raw)[-4000:]}")
    address = addresses[0]
    return Spawned(proc, address, logs, raw)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Spawned]]:
    """Starts `nas-latency serve` subprocesses (``spawn(store_url, *args)``); all killed at teardown."""
    spawned: list[Spawned] = []

    def make(store_url: str, *extra: str) -> Spawned:
        server = spawn_server(store_url, *extra, home=tmp_path / "server-home")
        spawned.append(server)
        return server

    yield make
    for server in spawned:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(10)


def wait_until(predicate: Callable[[], bool], timeout_s: float = 30, interval_s: float = 0.05) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(interval_s)


@pytest.fixture(name="bundled_measurements")
def _bundled_measurements_fixture() -> Callable[..., dict[str, float]]:
    """``bundled_measurements(archs, device_column=0, scale=1.0)``: a bundled device's latencies on ``archs``."""
    return bundled_measurements


@pytest.fixture(name="wait_until")
def _wait_until_fixture() -> Callable[..., None]:
    return wait_until


@pytest.fixture(scope="session")
def helpers() -> Any:
    """The module-level helpers, for fixtures of a wider scope than ``serve``/``spawn``."""
    from types import SimpleNamespace

    return SimpleNamespace(seed=seed, start_server=start_server, spawn_server=spawn_server,
                           bundled_measurements=bundled_measurements, wait_until=wait_until)
