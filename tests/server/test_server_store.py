"""The server over the durable store: idempotent contributions that refit the device's model, replicas on one
PostgreSQL answering identically, and no acknowledged contribution lost to a kill -9."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any, Callable

import numpy as np
import pytest

from nas_latency.client import LatencyClient
from nas_latency.errors import ConflictError, NasLatencyError
from nas_latency.predictor import Predictor
from nas_latency.store import MeasurementRow, open_store
from search_spaces import get_space

SPACE = "nasbench201"
TOKEN = "s3cret-token"


def test_contributions_are_idempotent_and_refit_the_model(serve: Callable[..., Any], store_url: str,
                                                          signature_archs: list[str], sample_archs: list[str],
                                                          bundled_measurements: Callable[..., dict[str, float]]) -> None:
    running = serve(store_url, token=TOKEN)
    client = running.client(token=TOKEN)
    client.register_device("lab-gpu", SPACE, bundled_measurements(signature_archs, 6))
    before = client.predict(SPACE, sample_archs, device="lab-gpu")

    extra = sample_archs[:25]
    rows = [MeasurementRow(a, v, n_runs=50, iqr_ms=0.01, cv=0.02)
            for a, v in bundled_measurements(extra, 6, scale=1.3).items()]
    first = client.contribute_measurements("lab-gpu", SPACE, rows, request_id="run-42", environment={"threads": 4})
    assert (first.inserted, first.replaced, first.duplicate_request, first.model_refitted) == (25, 0, False, True)
    assert first.device.n_measurements == len(set(signature_archs) | set(extra))
    again = client.contribute_measurements("lab-gpu", SPACE, rows, request_id="run-42", environment={"threads": 4})
    assert (again.inserted, again.replaced, again.duplicate_request) == (25, 0, True)
    with pytest.raises(ConflictError) as info:
        client.contribute_measurements("lab-gpu", SPACE, rows[:3], request_id="run-42")
    assert info.value.reason == "CONFLICT"

    with open_store(store_url) as store:
        stored = store.measurements("lab-gpu", SPACE, source="contribute")
    assert len(stored) == 25 and {m.request_id for m in stored} == {"run-42"}
    assert {(m.n_runs, m.iqr_ms, m.cv) for m in stored} == {(50, 0.01, 0.02)}
    assert stored[0].environment == {"threads": 4}

    after = client.predict(SPACE, sample_archs, device="lab-gpu")  # refitted at once, no ttl to wait
    assert not np.array_equal(before, after)
    with Predictor(store_url=store_url) as embedded:
        np.testing.assert_array_equal(after, embedded.predict(SPACE, sample_archs, device="lab-gpu"))


def test_two_server_processes_on_one_postgresql_answer_identically(
        spawn: Callable[..., Any], make_pg_url: Callable[[], str], signature_archs: list[str],
        sample_archs: list[str], bundled_measurements: Callable[..., dict[str, float]],
        tmp_path: Any) -> None:
    url = make_pg_url()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    a = spawn(url, "--token-file", str(token_file), "--device-ttl-s", "0")
    b = spawn(url, "--token-file", str(token_file), "--device-ttl-s", "0")
    with LatencyClient(a.address, token=TOKEN, timeout_s=120) as ca, \
            LatencyClient(b.address, token=TOKEN, timeout_s=120) as cb:
        ca.wait_until_serving(120)
        cb.wait_until_serving(120)
        ca.register_device("shared-npu", SPACE, bundled_measurements(signature_archs, 8))
        pa = ca.predict_detailed(SPACE, sample_archs, device="shared-npu")
        pb = cb.predict_detailed(SPACE, sample_archs, device="shared-npu")
        np.testing.assert_array_equal(pa.latency_ms, pb.latency_ms)
        assert pa.signature_key == pb.signature_key and pa.model == pb.model
        # a contribution through B is seen by A (device ttl 0: strict), and both still agree
        cb.contribute_measurements("shared-npu", SPACE, bundled_measurements(sample_archs[:12], 8, 0.9),
                                   request_id="b-1")
        qa = ca.predict(SPACE, sample_archs, device="shared-npu")
        qb = cb.predict(SPACE, sample_archs, device="shared-npu")
        np.testing.assert_array_equal(qa, qb)
        assert not np.array_equal(qa, pa.latency_ms)
        with Predictor(store_url=url) as embedded:
            np.testing.assert_array_equal(qa, embedded.predict(SPACE, sample_archs, device="shared-npu"))
        assert ca.device("shared-npu", SPACE) == cb.device("shared-npu", SPACE)
        # the same contribution retried on the other replica is a duplicate there too
        assert ca.contribute_measurements("shared-npu", SPACE, bundled_measurements(sample_archs[:12], 8, 0.9),
                                          request_id="b-1").duplicate_request


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_loses_no_acknowledged_contribution(backend: str, spawn: Callable[..., Any], sqlite_url: str,
                                                   make_pg_url: Callable[[], str], signature_archs: list[str],
                                                   bundled_measurements: Callable[..., dict[str, float]]) -> None:
    url = sqlite_url if backend == "sqlite" else make_pg_url()
    server = spawn(url)
    archs = get_space(SPACE).measured_archs()[:400]
    values = bundled_measurements(archs, 2)
    acknowledged: list[tuple[str, str]] = []
    failures: list[BaseException] = []
    with LatencyClient(server.address, timeout_s=30) as client:
        client.wait_until_serving(120)
        client.register_device("flaky-board", SPACE, bundled_measurements(signature_archs, 2))

        def contribute() -> None:
            for i, arch in enumerate(archs):
                request_id = f"kill9-{i}"
                try:
                    client.contribute_measurements("flaky-board", SPACE, {arch: values[arch]}, request_id=request_id)
                except NasLatencyError as exc:
                    failures.append(exc)
                    return
                acknowledged.append((request_id, arch))

        writer = threading.Thread(target=contribute)
        writer.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 40 and writer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        writer.join(60)
    assert len(acknowledged) >= 40 and failures, "the server must die in the middle of the stream"
    assert len(acknowledged) < len(archs)
    with open_store(url) as store:
        stored = {m.request_id: m for m in store.measurements("flaky-board", SPACE, source="contribute")}
    lost = [rid for rid, _ in acknowledged if rid not in stored]
    assert not lost, f"{len(lost)} acknowledged contributions lost: {lost[:5]}"
    for rid, arch in acknowledged:
        assert (stored[rid].arch, stored[rid].latency_ms) == (arch, values[arch])
    # at most the one in flight was written without its answer reaching the client
    assert len(stored) - len(acknowledged) in (0, 1)


def test_a_model_trained_on_one_replica_is_picked_up_by_the_other(
        serve: Callable[..., Any], sqlite_url: str, signature_archs: list[str], sample_archs: list[str],
        bundled_measurements: Callable[..., dict[str, float]], wait_until: Callable[..., None]) -> None:
    a = serve(sqlite_url, token=TOKEN, refresh_s=0.2)
    b = serve(sqlite_url, token=TOKEN, refresh_s=0.2)
    ca, cb = a.client(token=TOKEN), b.client(token=TOKEN)
    signature = bundled_measurements(signature_archs, 12)
    before = cb.predict_detailed(SPACE, sample_archs, signature=signature)
    spec = "blr" if before.model != "builtin:blr" else "degenerate_aware(blr)"
    trained = ca.train(SPACE, model_spec=spec)
    assert (trained.space, trained.model_spec, trained.version) == (SPACE, spec, 2)
    after_a = ca.predict_detailed(SPACE, sample_archs, signature=signature)
    assert after_a.model == f"builtin:{spec}" != before.model
    wait_until(lambda: cb.predict_detailed(SPACE, sample_archs[:1], signature=signature).model == after_a.model, 60)
    np.testing.assert_array_equal(cb.predict(SPACE, sample_archs, signature=signature), after_a.latency_ms)
    with Predictor(store_url=sqlite_url) as embedded:
        np.testing.assert_array_equal(embedded.predict(SPACE, sample_archs, signature=signature), after_a.latency_ms)
