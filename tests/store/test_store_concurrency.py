"""Threads, several Store objects, child processes killed right after a write, schema versions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import pytest

from nas_latency.errors import FailedPreconditionError
from nas_latency.store import SCHEMA_VERSION, AddResult, MeasurementRow, Store, open_store

NB = "nasbench201"


def test_one_store_shared_by_threads(make_store: Callable[..., Store]) -> None:
    store = make_store(max_connections=4)
    store.upsert_device("dev")
    n_threads, per_thread = 8, 25

    def contribute(t: int) -> AddResult:
        batch = [MeasurementRow(f"t{t}-a{i:03d}", 1.0 + i) for i in range(per_thread)]
        return store.add_measurements("dev", NB, batch, source="contribute", request_id=f"req-{t}")

    with ThreadPoolExecutor(n_threads) as pool:
        results = list(pool.map(contribute, range(n_threads)))
        # meanwhile-style readers and writers of other things
        devices = list(pool.map(lambda i: store.upsert_device(f"other-{i}").name, range(n_threads)))
    assert all(r == AddResult(per_thread, 0) for r in results)
    assert len(store.measurements("dev", NB)) == n_threads * per_thread
    assert sorted(devices) == sorted(f"other-{i}" for i in range(n_threads))


def test_concurrent_retries_of_one_request_write_once(make_store: Callable[..., Store]) -> None:
    stores = [make_store() for _ in range(4)]  # like four server replicas
    stores[0].upsert_device("dev")
    batch = [MeasurementRow(f"a{i}", 1.0 + i) for i in range(50)]
    barrier = threading.Barrier(8)

    def retry(i: int) -> AddResult:
        barrier.wait()
        return stores[i % 4].add_measurements("dev", NB, batch, source="contribute", request_id="same-request")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(retry, range(8)))
    assert sum(not r.duplicate_request for r in results) == 1
    assert {(r.inserted, r.replaced) for r in results} == {(50, 0)}
    assert len(stores[1].measurements("dev", NB)) == 50


def test_concurrent_artifact_versions_are_unique(make_store: Callable[..., Store]) -> None:
    stores = [make_store() for _ in range(4)]
    barrier = threading.Barrier(8)

    def put(i: int) -> int:
        barrier.wait()
        return stores[i % 4].put_artifact(NB, "shared", kind="mlp", manifest={"i": i}, blob=bytes([i]) * 100).version

    with ThreadPoolExecutor(8) as pool:
        versions = list(pool.map(put, range(8)))
    assert sorted(versions) == list(range(1, 9))
    for info in stores[0].list_artifacts(NB):  # each version holds the blob its writer put
        assert stores[0].get_artifact(NB, "shared", info.version).blob == bytes([info.manifest["i"]]) * 100


_CHILD = textwrap.dedent(
    """
    import sys, time
    from nas_latency.store import MeasurementRow, open_store

    store = open_store(sys.argv[1])
    store.upsert_device("child-dev", description="written by a killed process")
    result = store.add_measurements(
        "child-dev", "nasbench201", [MeasurementRow(f"arch{i}", 1.0 + i) for i in range(100)],
        source="contribute", request_id="child-request",
    )
    store.put_artifact("nasbench201", "child-model", kind="mlp", manifest={"ok": True}, blob=b"\\x00" * 4096)
    print("acknowledged", result.inserted, flush=True)
    time.sleep(60)  # killed before any cleanup could run
    """
)


def test_acknowledged_writes_survive_a_killed_process(store_url: str, tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, store_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        line = child.stdout.readline() if child.stdout else ""
        assert line.split() == ["acknowledged", "100"], (line, child.stderr.read() if child.stderr else "")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    with open_store(store_url) as store:
        assert store.get_device("child-dev").description == "written by a killed process"
        assert len(store.measurements("child-dev", NB)) == 100
        again = store.add_measurements(
            "child-dev", NB, [MeasurementRow(f"arch{i}", 1.0 + i) for i in range(100)],
            source="contribute", request_id="child-request",
        )
        assert again.duplicate_request
        assert store.get_artifact(NB, "child-model").blob == b"\x00" * 4096


def test_forked_child_uses_its_own_connections(store: Store) -> None:
    store.upsert_device("parent")  # the pool now holds an open connection
    pid = os.fork()
    if pid == 0:  # child: must not touch the parent's connection
        code = 1
        try:
            store.upsert_device("from-fork")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get_device("from-fork").name == "from-fork"
    assert store.get_device("parent").name == "parent"


def test_newer_schema_version_is_refused(make_store: Callable[..., Store], raw_sql: Callable[[str], list]) -> None:
    make_store().upsert_device("dev")
    assert raw_sql("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    raw_sql(f"UPDATE schema_version SET version = {SCHEMA_VERSION + 1}")
    with pytest.raises(FailedPreconditionError, match=rf"schema version {SCHEMA_VERSION + 1}, newer than the "
                                                      rf"{SCHEMA_VERSION} this nas-latency understands"):
        make_store()
    assert raw_sql("SELECT name FROM devices") == [("dev",)]  # untouched
    raw_sql(f"UPDATE schema_version SET version = {SCHEMA_VERSION}")
    assert make_store().get_device("dev").name == "dev"


def test_damaged_schema_version_is_refused(make_store: Callable[..., Store], raw_sql: Callable[[str], list]) -> None:
    make_store().close()
    raw_sql("INSERT INTO schema_version (version) VALUES (1)")
    with pytest.raises(FailedPreconditionError, match="damaged"):
        make_store()


def test_corrupt_artifact_is_detected(store: Store, raw_sql: Callable[[str], list]) -> None:
    store.put_artifact(NB, "m", kind="mlp", manifest={}, blob=b"good bytes")
    raw_sql("UPDATE artifacts SET sha256 = 'deadbeef'")
    with pytest.raises(FailedPreconditionError, match="corrupt"):
        store.get_artifact(NB, "m")



def test_postgresql_connection_loss_is_retryable(pg_url: str) -> None:
    """The server drops the store's connections: at most one StoreUnavailableError, then fresh connections."""
    import uuid

    import psycopg

    from nas_latency.errors import StoreUnavailableError

    app = f"nas-latency-test-{uuid.uuid4().hex[:12]}"
    with open_store(f"{pg_url}&application_name={app}") as store:
        with ThreadPoolExecutor(4) as pool:  # fill the pool with several idle connections
            list(pool.map(lambda i: store.upsert_device(f"dev{i}"), range(8)))
        admin_url = pg_url.split("?", 1)[0]
        with psycopg.connect(admin_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s", (app,)
            ).fetchone()
        assert killed is not None and killed[0] >= 1
        failures = 0
        for _ in range(3):
            try:
                assert store.get_device("dev0").name == "dev0"
            except StoreUnavailableError as exc:
                failures += 1
                assert "postgresql://postgres@127.0.0.1" in exc.message and exc.reason == "STORE_UNAVAILABLE"
        assert failures <= 1
        assert len(store.list_devices()) == 8
