"""Every malformed request gets a canonical status code with an ErrorInfo reason, the client raises the matching
typed exception, and the server stays up. Plus the one mapping, both ways, for every error class."""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import grpc
import onnx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nas_latency.client import (
    DeadlineExceededError,
    LatencyClient,
    LimitExceededError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from nas_latency.errors import (
    ConflictError,
    FailedPreconditionError,
    InvalidInputError,
    NasLatencyError,
    NotFoundError,
    StoreUnavailableError,
    UnsupportedOperatorError,
)
from nas_latency.ir import NetworkBuilder, network_to_dict
from nas_latency.rpc_errors import ERROR_DOMAIN, error_from_rpc
from nas_latency.v1 import latency_service_pb2 as pb
from nas_latency.v1 import latency_service_pb2_grpc as pb_grpc
from nas_latency.v1 import resources_pb2 as r
from server import errors
from server.auth import WRITE_METHODS
from server.limits import MIB, Limits

SPACE = "nasbench201"
TOKEN = "s3cret-token"
LIMITS = Limits(max_archs_per_request=1000, max_layers_per_network=64, max_networks_per_request=4,
                max_message_bytes=4 * MIB, max_measurements_per_request=500)
GOOD_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, bundle_artifact: Any, signature_archs: list[str],
           helpers: Any) -> Iterator[Any]:
    """One server for the module: a token, small limits, and a registered device `dev1`."""
    url = helpers.seed(f"sqlite://{tmp_path_factory.mktemp('errors') / 'store.sqlite'}", bundle_artifact)
    running = helpers.start_server(url, token=TOKEN, limits=LIMITS)
    running.client(token=TOKEN).register_device("dev1", SPACE, helpers.bundled_measurements(signature_archs))
    yield running
    running.stop()


@pytest.fixture
def client(shared: Any) -> LatencyClient:
    return shared.client()


@pytest.fixture
def writer(shared: Any) -> LatencyClient:
    return shared.client(token=TOKEN)


@pytest.fixture
def stub(shared: Any) -> Iterator[pb_grpc.LatencyServiceStub]:
    with grpc.insecure_channel(shared.address) as channel:
        yield pb_grpc.LatencyServiceStub(channel)


def assert_still_serving(shared: Any, signature_archs: list[str]) -> None:
    with grpc.insecure_channel(shared.address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    values = shared.client().predict(SPACE, [GOOD_ARCH], device="dev1")
    assert values.shape == (1,) and values[0] > 0


def corrupt_onnx() -> bytes:
    return b"\x08\x07\x12\x04junk\xff\xff\xff" * 10


def unsupported_onnx() -> bytes:
    """A valid ONNX model whose one node (Einsum) the IR cannot represent."""
    helper = onnx.helper
    graph = helper.make_graph(
        [helper.make_node("Einsum", ["x", "x"], ["y"], name="the_einsum", equation="ij,ij->ij")], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 2])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def relu_chain(n_layers: int) -> dict[str, Any]:
    b = NetworkBuilder("chain")
    x = b.input((1, 8, 4, 4), name="input")
    for _ in range(n_layers):
        x = b.relu(x)
    return network_to_dict(b.build())


def _raw_predict(address: str) -> Callable[[bytes], Any]:
    """Send ``data`` as the Predict request's bytes, unparsed (the generated stub would serialize a message)."""
    def call(data: bytes) -> Any:
        with grpc.insecure_channel(address) as channel:
            predict = channel.unary_unary("/nas_latency.v1.LatencyService/Predict",
                                          request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw)
            return predict(data, timeout=10)
    return call


# (id, call, exception class, status code, reason)
CASES: list[tuple[str, Callable[[Any], Any], type[Exception], grpc.StatusCode, str]] = [
    ("bad-arch-string", lambda c: c["client"].predict(SPACE, [GOOD_ARCH, "|conv~0|+|"], device="dev1"),
     InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
    ("unknown-space", lambda c: c["client"].predict("nasbench999", [GOOD_ARCH], device="dev1"),
     NotFoundError, grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
    ("unknown-device", lambda c: c["client"].predict(SPACE, [GOOD_ARCH], device="no-such-device"),
     NotFoundError, grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
    ("unknown-device-get", lambda c: c["client"].device("no-such-device", SPACE),
     NotFoundError, grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
    ("nan-latency-register", lambda c: c["writer"].register_device("dev-nan", SPACE, dict(c["nan"])),
     InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
    ("negative-latency-register", lambda c: c["writer"].register_device("dev-neg", SPACE, dict(c["negative"])),
     InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
    ("nan-latency-signature", lambda c: c["client"].predict(SPACE, [GOOD_ARCH], signature=dict(c["nan"])),
     InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
    ("negative-latency-contribute",
     lambda c: c["writer"].contribute_measurements("dev1", SPACE, {GOOD_ARCH: -1.0}, request_id="neg-1"),
     InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
    ("nan-latency-contribute",
     lambda c: c["writer"].contribute_measurements("dev1", SPACE, {GOOD_ARCH: math.nan}),
     InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
    ("too-few-measurements", lambda c: c["writer"].register_device("dev-few", SPACE, {GOOD_ARCH: 1.0}),
     InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
    ("corrupt-onnx", lambda c: c["client"].predict_networks(SPACE, [corrupt_onnx()], device="dev1"),
     InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
    ("unsupported-onnx-operator", lambda c: c["client"].predict_networks(SPACE, [unsupported_onnx()], device="dev1"),
     UnsupportedOperatorError, grpc.StatusCode.INVALID_ARGUMENT, "UNSUPPORTED_OPERATOR"),
    ("bad-layer-table", lambda c: c["client"].predict_networks(
        SPACE, [{"name": "bad", "inputs": [{"name": "x", "shape": [1, 3]}],
                 "layers": [{"name": "l", "op": "warp_drive", "inputs": ["x"], "output_shape": [1, 3]}],
                 "outputs": ["l"]}], device="dev1"),
     InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
    ("oversized-batch", lambda c: c["client"].predict(SPACE, [GOOD_ARCH] * 1001, device="dev1"),
     LimitExceededError, grpc.StatusCode.INVALID_ARGUMENT, "LIMIT_EXCEEDED"),
    ("too-many-layers", lambda c: c["client"].predict_networks(SPACE, [relu_chain(65)], device="dev1"),
     LimitExceededError, grpc.StatusCode.INVALID_ARGUMENT, "LIMIT_EXCEEDED"),
    ("too-many-networks", lambda c: c["client"].predict_networks(SPACE, [relu_chain(2)] * 5, device="dev1"),
     LimitExceededError, grpc.StatusCode.INVALID_ARGUMENT, "LIMIT_EXCEEDED"),
    ("message-too-large", lambda c: c["client"].predict_networks(SPACE, [b"\0" * (5 * MIB)], device="dev1"),
     LimitExceededError, grpc.StatusCode.RESOURCE_EXHAUSTED, "MESSAGE_TOO_LARGE"),
    ("missing-token", lambda c: c["client"].register_device("dev-x", SPACE, dict(c["good"])),
     UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING"),
    ("wrong-token", lambda c: c["wrong"].register_device("dev-x", SPACE, dict(c["good"])),
     PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED, "TOKEN_INVALID"),
    ("missing-token-contribute", lambda c: c["client"].contribute_measurements("dev1", SPACE, {GOOD_ARCH: 1.0}),
     UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING"),
    ("signature-size-zero-server", lambda c: c["stub"].GetSignatureSet(pb.GetSignatureSetRequest(space=SPACE, size=0)),
     InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
    ("measurements-without-a-space", lambda c: c["stub"].GetDevice(pb.GetDeviceRequest(name="dev1",
                                                                                    include_measurements=True)),
     InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
    ("no-device", lambda c: c["stub"].Predict(pb.PredictRequest(space=SPACE, archs=[GOOD_ARCH])),
     InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
    ("no-space", lambda c: c["stub"].Predict(pb.PredictRequest(device=r.DeviceSelector(name="dev1"), archs=[GOOD_ARCH])),
     InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
    ("archs-and-networks", lambda c: c["stub"].Predict(pb.PredictRequest(
        space=SPACE, device=r.DeviceSelector(name="dev1"), archs=[GOOD_ARCH],
        networks=[r.Network(onnx_model=corrupt_onnx())])),
     InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
    ("arch-id-too-long", lambda c: c["client"].predict(SPACE, ["z" * 70_000], device="dev1"),
     LimitExceededError, grpc.StatusCode.INVALID_ARGUMENT, "LIMIT_EXCEEDED"),
    ("description-too-long", lambda c: c["writer"].register_device("dev-long", SPACE, dict(c["good"]),
                                                                   description="D" * 70_000),
     LimitExceededError, grpc.StatusCode.INVALID_ARGUMENT, "LIMIT_EXCEEDED"),
    ("environment-too-long", lambda c: c["writer"].contribute_measurements(
        "dev1", SPACE, {GOOD_ARCH: 1.0}, environment={"note": "E" * 70_000}),
     LimitExceededError, grpc.StatusCode.INVALID_ARGUMENT, "LIMIT_EXCEEDED"),
    ("long-bad-arch-quoted-in-part", lambda c: c["client"].predict(SPACE, ["z" * 4_000], device="dev1"),
     InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
    ("long-unknown-space-quoted-in-part", lambda c: c["client"].predict("s" * 4_000, [GOOD_ARCH], device="dev1"),
     NotFoundError, grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
    ("unparseable-request-bytes", lambda c: c["raw_predict"](b"\x08\x07\x12\x04junk\xff\xff\xff"),
     InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
    ("signature-length-mismatch", lambda c: c["stub"].Predict(pb.PredictRequest(
        space=SPACE, archs=[GOOD_ARCH],
        device=r.DeviceSelector(signature=r.Measurements(archs=list(c["good"]), latency_ms=[1.0, 2.0])))),
     InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_request(case: tuple, shared: Any, client: LatencyClient, writer: LatencyClient,
                           stub: pb_grpc.LatencyServiceStub, signature_archs: list[str],
                           bundled_measurements: Callable[..., dict[str, float]]) -> None:
    _, call, exc_class, code, reason = case
    good = bundled_measurements(signature_archs)
    nan = dict(good)
    nan[signature_archs[1]] = math.nan
    negative = dict(good)
    negative[signature_archs[2]] = -3.0
    context = {"client": client, "writer": writer, "stub": stub, "good": good, "nan": nan, "negative": negative,
               "wrong": shared.client(token="not-the-token"), "raw_predict": _raw_predict(shared.address)}
    try:
        call(context)
    except grpc.RpcError as raw:  # the raw stub: read the status ourselves, then through the client's mapping
        assert raw.code() == code
        exc = error_from_rpc(raw)
    except NasLatencyError as typed:
        exc = typed
    else:
        pytest.fail("the request was accepted")
    assert type(exc) is exc_class
    assert exc.reason == reason
    assert exc.status_code == code  # type: ignore[attr-defined]
    assert exc.message
    assert len(exc.message) < 1_200  # a long input is quoted in part, so the status fits the trailers
    if isinstance(exc, UnsupportedOperatorError):
        assert (exc.node, exc.operator) == ("the_einsum", "Einsum")
    if isinstance(exc, LimitExceededError) and code is grpc.StatusCode.INVALID_ARGUMENT:
        assert exc.limit.startswith("max_") and exc.value > exc.maximum  # type: ignore[operator]
    assert_still_serving(shared, signature_archs)


def test_error_messages_name_the_problem(client: LatencyClient) -> None:
    with pytest.raises(InvalidInputError, match=r"\|conv~0\|\+\|"):
        client.predict(SPACE, ["|conv~0|+|"], device="dev1")
    with pytest.raises(NotFoundError, match="nasbench999"):
        client.signature_set("nasbench999", 3)
    with pytest.raises(LimitExceededError, match="1001 is over the server's limit of 1000"):
        client.predict(SPACE, [GOOD_ARCH] * 1001, device="dev1")


def test_unparseable_bytes_are_named_as_such_in_unary_and_streaming_calls(shared: Any) -> None:
    junk = b"\x08\x07\x12\x04junk\xff\xff\xff"
    with pytest.raises(grpc.RpcError) as unary:
        _raw_predict(shared.address)(junk)
    with grpc.insecure_channel(shared.address) as channel:
        stream = channel.stream_stream("/nas_latency.v1.LatencyService/StreamPredict",
                                       request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw)
        with pytest.raises(grpc.RpcError) as streaming:
            list(stream(iter([junk]), timeout=10))
    for raised in (unary.value, streaming.value):
        assert raised.code() == grpc.StatusCode.INVALID_ARGUMENT
        exc = error_from_rpc(raised)
        assert type(exc) is InvalidInputError
        assert "not a valid protobuf message" in exc.message and "DecodeError" in exc.message


def test_reads_need_no_token(client: LatencyClient) -> None:
    assert client.signature_set(SPACE, 3)
    assert client.predict(SPACE, [GOOD_ARCH], device="dev1")[0] > 0
    assert [d.name for d in client.devices(SPACE)] == ["dev1"]


def test_every_write_rpc_needs_the_token(stub: pb_grpc.LatencyServiceStub) -> None:
    rpcs = {m.name: m for m in pb.DESCRIPTOR.services_by_name["LatencyService"].methods}
    reads = {"Predict", "StreamPredict", "GetSignatureSet", "GetDevice", "ListDevices", "ListSpaces", "ListModels"}
    assert set(rpcs) == reads | WRITE_METHODS
    for name in sorted(WRITE_METHODS):
        request_class = getattr(pb, rpcs[name].input_type.name)
        with pytest.raises(grpc.RpcError) as info:
            getattr(stub, name)(request_class(), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, name
        assert error_from_rpc(info.value).reason == "TOKEN_MISSING"


def test_the_typed_exception_keeps_the_cli_exit_code(client: LatencyClient) -> None:
    """Bad input stays InvalidInputError/NotFoundError (CLI exit 2), auth errors are other NasLatencyErrors (1)."""
    assert issubclass(LimitExceededError, InvalidInputError)
    assert not issubclass(UnauthenticatedError, (InvalidInputError, NotFoundError))


class _FakeCall(grpc.RpcError):
    """What a failed call looks like to the client: a code, details and trailing metadata."""

    def __init__(self, status: Any) -> None:
        from grpc_status import rpc_status

        converted = rpc_status.to_status(status)
        self._code, self._details, self._trailing = converted.code, converted.details, converted.trailing_metadata

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return self._trailing


ROUND_TRIP = [
    InvalidInputError("bad arch"),
    UnsupportedOperatorError("op X unsupported", node="n1", operator="X"),
    LimitExceededError("too many", limit="max_archs_per_request", value=11, maximum=10),
    NotFoundError("no such device"),
    ConflictError("request id reused"),
    StoreUnavailableError("database down"),
    FailedPreconditionError("stale artifact"),
    FailedPreconditionError("not fitted", reason="MODEL_NOT_FITTED"),
    UnauthenticatedError("no token", reason="TOKEN_MISSING"),
    PermissionDeniedError("wrong token", reason="TOKEN_INVALID"),
    DeadlineExceededError("still loading", reason="MODELS_LOADING"),
]


@pytest.mark.parametrize("exc", ROUND_TRIP, ids=lambda e: f"{type(e).__name__}-{e.reason}")
def test_the_mapping_round_trips(exc: NasLatencyError) -> None:
    status = errors.to_status(exc)
    assert status.code == errors.status_code(exc).value[0]
    back = error_from_rpc(_FakeCall(status))
    assert type(back) is type(exc)
    assert (back.reason, back.message) == (exc.reason, exc.message)
    if isinstance(exc, UnsupportedOperatorError):
        assert (back.node, back.operator) == (exc.node, exc.operator)  # type: ignore[attr-defined]
    if isinstance(exc, LimitExceededError):
        assert (back.limit, back.value, back.maximum) == (exc.limit, exc.value, exc.maximum)  # type: ignore[attr-defined]


def test_a_bug_is_internal_without_its_details() -> None:
    status = errors.to_status(RuntimeError("secret path /etc/passwd"))
    assert status.code == grpc.StatusCode.INTERNAL.value[0]
    assert "secret" not in status.message and "incident" in status.message
    back = error_from_rpc(_FakeCall(status))
    assert type(back) is NasLatencyError and back.reason == "INTERNAL"


def test_a_status_without_error_info_maps_by_code() -> None:
    from google.rpc import status_pb2

    back = error_from_rpc(_FakeCall(status_pb2.Status(code=grpc.StatusCode.NOT_FOUND.value[0], message="gone")))
    assert type(back) is NotFoundError and back.message == "gone"
    unavailable = error_from_rpc(_FakeCall(status_pb2.Status(code=grpc.StatusCode.UNAVAILABLE.value[0], message="x")))
    assert unavailable.reason == "UNAVAILABLE"


def test_error_info_domain(shared: Any, stub: pb_grpc.LatencyServiceStub) -> None:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    with pytest.raises(grpc.RpcError) as info:
        stub.GetDevice(pb.GetDeviceRequest(name="nobody"), timeout=10)
    status = rpc_status.from_call(info.value)
    detail = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(detail)
    assert (detail.domain, detail.reason) == (ERROR_DOMAIN, "NOT_FOUND")


def test_unreachable_server_is_unavailable() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with LatencyClient(f"127.0.0.1:{port}", timeout_s=2) as client:
        with pytest.raises(NasLatencyError) as info:
            client.spaces()
    assert info.value.reason in {"UNAVAILABLE", "DEADLINE_EXCEEDED"}
