"""Server lifecycle: health NOT_SERVING until the models are loaded, deadlines honoured, reflection, graceful
SIGTERM with structured (JSON) logs, and the `serve` command's options."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nas_latency.client import DeadlineExceededError, LatencyClient, LimitExceededError
from nas_latency.errors import InvalidInputError
from server.registry import ModelRegistry
from server.service import SERVICE_NAME

SPACE = "nasbench201"


class GatedRegistry(ModelRegistry):
    """A registry whose loading waits for the test to open the gate (a slow model load, on demand)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()

    def load(self) -> None:
        if not self.gate.wait(60):
            raise RuntimeError("gate never opened")
        super().load()


def health_status(address: str, service: str = "") -> int:
    with grpc.insecure_channel(address) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                          timeout=10).status


def test_health_turns_serving_after_models_load_and_deadlines_hold(
        serve: Callable[..., Any], sqlite_url: str, signature_archs: list[str],
        bundled_measurements: Callable[..., dict[str, float]]) -> None:
    registry = GatedRegistry(store_url=sqlite_url, spaces=[SPACE])
    running = serve(sqlite_url, registry=registry, wait=False)
    try:
        for service in ("", SERVICE_NAME):
            assert health_status(running.address, service) == health_pb2.HealthCheckResponse.NOT_SERVING
        client = running.client(timeout_s=0.3)
        signature = bundled_measurements(signature_archs, 0)
        start = time.monotonic()
        with pytest.raises(DeadlineExceededError) as info:
            client.predict(SPACE, signature_archs[:2], signature=signature)
        assert time.monotonic() - start < 3.0
        assert info.value.reason in ("DEADLINE_EXCEEDED", "MODELS_LOADING")
        # reads that need no model answer while loading
        client = running.client()
        assert client.spaces() == ["fbnet", "ganesan_mobile", SPACE]
        assert [s.model_loaded for s in client.space_infos()] == [False, False, False]
    finally:
        registry.gate.set()
    client = running.client()
    client.wait_until_serving(timeout_s=120)
    for service in ("", SERVICE_NAME):
        assert health_status(running.address, service) == health_pb2.HealthCheckResponse.SERVING
    assert client.predict(SPACE, signature_archs[:2], signature=signature).shape == (2,)
    assert [s.model_loaded for s in client.space_infos() if s.name == SPACE] == [True]


def test_a_deadline_bounds_a_stream(serve: Callable[..., Any], sqlite_url: str, signature_archs: list[str],
                                    bundled_measurements: Callable[..., dict[str, float]]) -> None:
    running = serve(sqlite_url)
    client = running.client()
    signature = bundled_measurements(signature_archs, 0)
    # Adapt the model to this signature first (the server caches it): the 0.5 s deadline below must bound the
    # stream, not an onboarding that takes a few hundred ms on a loaded CI machine.
    assert client.predict(SPACE, signature_archs[:1], signature=signature)[0] > 0

    def slow_batches() -> Any:
        for _ in range(100):
            yield signature_archs[:3]
            time.sleep(0.05)

    start = time.monotonic()
    received = 0
    with pytest.raises(DeadlineExceededError):
        for _ in client.stream_predict(slow_batches(), space=SPACE, signature=signature, timeout_s=0.5):
            received += 1
    assert time.monotonic() - start < 3.0
    assert 1 <= received < 100
    assert client.predict(SPACE, signature_archs[1:2], signature=signature)[0] > 0  # still serving


def test_reflection_lists_the_services(serve: Callable[..., Any], sqlite_url: str) -> None:
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    running = serve(sqlite_url)
    with grpc.insecure_channel(running.address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {SERVICE_NAME, "grpc.health.v1.Health"} <= services
        predict = database.FindFileContainingSymbol(SERVICE_NAME)
        assert predict.package == "nas_latency.v1"


def test_reflection_v1_answers_with_the_stable_protocol(serve: Callable[..., Any], sqlite_url: str) -> None:
    """A client of grpc.reflection.v1 (messages from the v1 file the server describes) lists the services and gets
    the files that describe them, the v1 service's own included."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    from server.reflection_v1 import V1_FILE, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME, v1_file_descriptor_proto

    pool = descriptor_pool.DescriptorPool()  # the client's own: nothing of the server's process
    pool.AddSerializedFile(v1_file_descriptor_proto().SerializeToString())
    request_type, response_type = (
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"grpc.reflection.v1.{name}"))
        for name in ("ServerReflectionRequest", "ServerReflectionResponse"))
    running = serve(sqlite_url)
    with grpc.insecure_channel(running.address) as channel:
        call = channel.stream_stream(f"/{V1_SERVICE_NAME}/ServerReflectionInfo",
                                     request_serializer=request_type.SerializeToString,
                                     response_deserializer=response_type.FromString)
        listed, predict_file, v1_file, missing = call(iter([
            request_type(list_services=""),
            request_type(file_containing_symbol=SERVICE_NAME),
            request_type(file_containing_symbol=V1_SERVICE_NAME),
            request_type(file_containing_symbol="no.such.Symbol"),
        ]), timeout=30)
    assert {s.name for s in listed.list_services_response.service} == {
        SERVICE_NAME, "grpc.health.v1.Health", V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME}
    files = {}
    for blob in (*predict_file.file_descriptor_response.file_descriptor_proto,
                 *v1_file.file_descriptor_response.file_descriptor_proto):
        proto = descriptor_pb2.FileDescriptorProto.FromString(blob)
        files[proto.name] = proto
    assert any(p.package == "nas_latency.v1" and any(s.name == "LatencyService" for s in p.service)
               for p in files.values())
    v1 = files[V1_FILE]
    assert v1.package == "grpc.reflection.v1"
    assert [m.input_type for m in v1.service[0].method] == [".grpc.reflection.v1.ServerReflectionRequest"]
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert missing.original_request.file_containing_symbol == "no.such.Symbol"


def test_sigterm_stops_gracefully_with_json_logs(spawn: Callable[..., Any], sqlite_url: str,
                                                 signature_archs: list[str],
                                                 bundled_measurements: Callable[..., dict[str, float]]) -> None:
    server = spawn(sqlite_url, "--grace-s", "5", "--devices-refresh-s", "30", "--max-identifier-chars", "200")
    with LatencyClient(server.address, timeout_s=60) as client:
        client.wait_until_serving(120)
        signature = bundled_measurements(signature_archs, 0)
        stream = client.stream_predict(iter([signature_archs[:2]] * 3), space=SPACE, signature=signature)
        assert len(list(stream)) == 3
        with pytest.raises(LimitExceededError, match="max_identifier_chars"):  # the option reached the limits
            client.predict(SPACE, ["x" * 201], signature=signature)
    assert server.terminate(timeout_s=30) == 0
    assert all(entry.get("ts") and entry.get("level") and "msg" in entry for entry in server.logs)
    assert len(server.logs) == len([line for line in server.raw if line.strip()]), "every log line is JSON"
    events = [entry.get("event") for entry in server.logs]
    for event in ("listening", "space_loaded", "serving", "signal", "stopped"):
        assert event in events, event
    assert events.index("signal") < events.index("stopped")
    listening = server.events("listening")[0]
    assert listening["tls"] is False and listening["token"] is False and listening["spaces"] == [SPACE]


def test_serve_rejects_bad_options(sqlite_url: str, tmp_path: Any) -> None:
    from nas_latency.cli import main

    assert main(["serve", "--store", sqlite_url, "--tls-cert", str(tmp_path / "cert.pem")]) == 2
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    assert main(["serve", "--store", sqlite_url, "--token-file", str(empty)]) == 2
    with pytest.raises(InvalidInputError):
        from server.limits import Limits

        Limits(max_archs_per_request=0)


def test_tls_with_a_token(sqlite_url: str, tmp_path: Any, signature_archs: list[str],
                          bundled_measurements: Callable[..., dict[str, float]]) -> None:
    """`--tls-cert/--tls-key`: a client trusting the certificate works (the token travels encrypted); a plaintext
    client does not get through."""
    import shutil
    import subprocess

    from nas_latency.client import ServerUnavailableError
    from server.app import create_server, stop_server
    from server.auth import TokenAuth

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the TLS test needs the openssl command", pytrace=False)
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    registry = ModelRegistry(store_url=sqlite_url, spaces=[SPACE])
    server, port = create_server("127.0.0.1:0", registry, auth=TokenAuth("tls-token"),
                                 tls=(key.read_bytes(), cert.read_bytes()))
    server.start()
    try:
        with LatencyClient(f"localhost:{port}", tls_ca_file=cert, token="tls-token", timeout_s=60) as client:
            client.wait_until_serving(120)
            info = client.register_device("tls-dev", SPACE, bundled_measurements(signature_archs, 0))
            assert info.n_measurements == len(signature_archs)
            assert client.predict(SPACE, signature_archs[:2], device="tls-dev").shape == (2,)
        with LatencyClient(f"127.0.0.1:{port}", timeout_s=3) as plain:
            with pytest.raises(ServerUnavailableError):
                plain.spaces()
    finally:
        stop_server(server, 1)
