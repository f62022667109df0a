"""Typed gRPC client of the nas-latency server, with the interface of the embedded :class:`~nas_latency.predictor.Predictor`.

>>> from nas_latency.client import LatencyClient
>>> with LatencyClient("127.0.0.1:50051") as client:            # doctest: +SKIP
...     archs = client.signature_set("nasbench201", 10)
...     client.register_device("pixel4", "nasbench201", measured)  # {arch: latency_ms}
...     latency_ms = client.predict("nasbench201", archs, device="pixel4")   # numpy array, ms

What the two share (``signature_set``, ``register_device``, ``contribute_measurements``, ``device``, ``devices``,
``device_model``, ``explained_device``, ``device_measurements``, ``remove_device``, ``predict``,
``predict_with_uncertainty``, ``train``, ``spaces``, ``store.get_device`` / ``store.list_artifacts``) takes the
same arguments and returns the same values (``predict_networks`` too, the client's also taking ONNX models as
bytes and answering with the server's estimator); a server error is raised as the same typed exception
(``NotFoundError``, ``InvalidInputError``, ...) with the same ``reason``, read from the status's
``google.rpc.ErrorInfo``. The client adds what only a server has: :meth:`LatencyClient.predict_detailed`
(uncertainty, the estimator's name, the nearest known devices) and :meth:`LatencyClient.stream_predict`.

The errors only a remote call can meet (a missing or wrong token, an exceeded limit or deadline, an unreachable
server) are part of the one hierarchy of :mod:`nas_latency.errors` and are importable from here too; the mapping
of a failed call to them is :func:`~nas_latency.rpc_errors.error_from_rpc`, the messages both ends share are
:mod:`nas_latency.messages`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Literal, Mapping, Sequence

import grpc
import numpy as np

from nas_latency.device_info import ContributionResult
from nas_latency.errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidInputError,
    LimitExceededError,
    PermissionDeniedError,
    ServerUnavailableError,
    UnauthenticatedError,
)
from nas_latency.messages import layer_table_message, measurement_lists
from nas_latency.rpc_errors import error_from_rpc

if TYPE_CHECKING:
    from nas_latency.device_info import DeviceInfo
    from nas_latency.ir import Network as IRNetwork
    from nas_latency.measurements import MeasuredArchs
    from nas_latency.models.adaptation_summary import AdaptationSummary
    from nas_latency.store.types import ArtifactInfo, Device, DeviceSummary, MeasurementRow

#: the deadline of every call unless the client is given another (seconds)
DEFAULT_TIMEOUT_S = 300.0
#: largest message the client sends or accepts (bytes); the server has its own limit
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
TOKEN_ENV = "NAS_LATENCY_TOKEN"


# ---- results that only the server gives ----------------------------------------------------------------------------
@dataclass(frozen=True)
class NearestDevice:
    """A known device close to the one a prediction is for."""

    name: str
    kind: Literal["registered", "bundled"]
    #: RMS over the space's signature archs of ln(latency of the requested device / latency of this one)
    rms_log_ratio: float


@dataclass(frozen=True)
class RemotePrediction:
    """Latencies (ms, in input order) and what the server says about them."""

    latency_ms: np.ndarray
    #: standard deviation of ln(latency) per input, when asked for and the model has one
    latency_log_std: np.ndarray | None
    #: the estimator: ``builtin:<spec>`` for space archs, ``macs_loglinear`` for arbitrary networks
    model: str
    #: devices with the same key share one adapted model
    signature_key: str
    nearest_devices: tuple[NearestDevice, ...]


@dataclass(frozen=True)
class TrainedModel:
    """What :meth:`LatencyClient.train` returns: the fields of a built-in bundle a caller reads remotely."""

    space: str
    model_spec: str
    training_devices: list[str]
    version: int


@dataclass(frozen=True)
class AdaptedModelInfo:
    """An adapted model the answering server holds (devices with one signature share it)."""

    space: str
    signature_key: str
    device_names: tuple[str, ...]
    n_measurements: int


# ---- conversions of replies ----------------------------------------------------------------------------------------
_KINDS = {1: "registered", 2: "bundled"}


def _timestamp(ts: Any) -> datetime:
    return ts.ToDatetime(tzinfo=timezone.utc)


def _device_info(name: str, space: str, description: str, n_measurements: int) -> "DeviceInfo":
    from nas_latency.device_info import DeviceInfo

    return DeviceInfo(name, space, description, int(n_measurements))


def _device_info_from_message(message: Any) -> "DeviceInfo":
    return _device_info(message.name, message.space, message.description, message.n_measurements)


def _artifact_info(message: Any) -> "ArtifactInfo":
    from nas_latency.store.types import ArtifactInfo

    manifest = json.loads(message.manifest_json) if message.manifest_json else {}
    return ArtifactInfo(message.space, message.name, int(message.version), message.kind, manifest,
                        int(message.size_bytes), message.sha256, _timestamp(message.create_time))


class RemoteStore:
    """The read side of :attr:`Predictor.store` that a remote caller may use, answered by the server."""

    def __init__(self, client: "LatencyClient") -> None:
        self._client = client

    @property
    def url(self) -> str:
        return f"grpc://{self._client.address}"

    def get_device(self, name: str) -> "Device":
        from nas_latency.store.types import Device

        message = self._client._get_device(name)
        return Device(message.name, message.description, json.loads(message.metadata_json or "{}"),
                      _timestamp(message.create_time), _timestamp(message.update_time))

    def list_devices(self, space: str | None = None) -> list["DeviceSummary"]:
        from nas_latency.store.types import DeviceSummary

        return [DeviceSummary(d.name, d.description, _timestamp(d.create_time), dict(sorted(d.measurement_counts.items())))
                for d in self._client._list_devices(space)]

    def list_artifacts(self, space: str | None = None, *, latest_only: bool = False) -> list["ArtifactInfo"]:
        infos = [_artifact_info(m) for m in self._client._list_models(space).models]
        if latest_only:
            latest: dict[tuple[str, str], int] = {}
            for info in infos:
                latest[(info.space, info.name)] = max(latest.get((info.space, info.name), 0), info.version)
            infos = [i for i in infos if i.version == latest[(i.space, i.name)]]
        return infos


# ---- the client ----------------------------------------------------------------------------------------------------
class LatencyClient:
    """A connection to a nas-latency server (``HOST:PORT``). Thread-safe; use as a context manager or ``close()``.

    ``token`` (or the content of ``token_file``, or ``$NAS_LATENCY_TOKEN``) is sent as ``authorization: Bearer``
    metadata; servers started with ``--token-file`` need it for writes. ``tls_ca_file`` switches to TLS, trusting
    that CA (or the system roots with ``tls=True``). Every call has a deadline of ``timeout_s`` seconds (``None`` =
    none); ``wait_for_ready`` makes calls wait for a server that is not up yet (within the deadline) instead of
    failing at once.
    """

    def __init__(self, address: str, *, token: str | None = None, token_file: str | Path | None = None,
                 timeout_s: float | None = DEFAULT_TIMEOUT_S, tls: bool = False, tls_ca_file: str | Path | None = None,
                 tls_server_name: str | None = None, wait_for_ready: bool = False,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        from nas_latency.v1 import latency_service_pb2_grpc

        if not isinstance(address, str) or ":" not in address:
            raise InvalidInputError(f"server address must be HOST:PORT, got {address!r}")
        self.address = address
        if token is None and token_file is not None:
            try:
                token = Path(token_file).read_text().strip()
            except OSError as exc:
                raise InvalidInputError(f"{token_file}: cannot read the token file ({exc.strerror})") from None
        if token is None:
            token = os.environ.get(TOKEN_ENV) or None
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout_s = timeout_s
        self.wait_for_ready = wait_for_ready
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes)]
        if tls_server_name:
            options.append(("grpc.ssl_target_name_override", tls_server_name))
        if tls or tls_ca_file is not None:
            root = Path(tls_ca_file).read_bytes() if tls_ca_file is not None else None
            self._channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=root), options)
        else:
            self._channel = grpc.insecure_channel(address, options)
        self._stub = latency_service_pb2_grpc.LatencyServiceStub(self._channel)
        self.store = RemoteStore(self)

    # ---- lifecycle -------------------------------------------------------------------------------------------------
    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "LatencyClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LatencyClient({self.address!r})"

    def wait_until_serving(self, timeout_s: float = 60.0, service: str = "") -> None:
        """Block until the server's health check says SERVING (models loaded); :class:`DeadlineExceededError`."""
        import time

        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self._channel)
        end = time.monotonic() + timeout_s
        last = "no answer"
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceededError(f"server {self.address} not SERVING after {timeout_s} s ({last})")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=min(remaining, 5.0),
                                   wait_for_ready=True)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.RpcError as exc:
                last = f"{exc.code().name}: {exc.details()}"
            time.sleep(min(0.05, max(remaining, 0)))

    def _call(self, method: Callable[..., Any], request: Any, timeout_s: float | None = None) -> Any:
        try:
            return method(request, timeout=timeout_s if timeout_s is not None else self.timeout_s,
                          metadata=self._metadata, wait_for_ready=self.wait_for_ready)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    # ---- spaces and models -----------------------------------------------------------------------------------------
    def spaces(self) -> list[str]:
        return [s.name for s in self.space_infos()]

    def space_infos(self) -> list[Any]:
        """``nas_latency.v1.SpaceInfo`` messages: name, input shape, whether the model is loaded..."""
        from nas_latency.v1 import latency_service_pb2 as pb

        return list(self._call(self._stub.ListSpaces, pb.ListSpacesRequest()).spaces)

    def signature_set(self, space: str, size: int) -> list[str]:
        """The architectures a new device should measure, most informative first."""
        from nas_latency.v1 import latency_service_pb2 as pb

        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidInputError(f"signature size must be at least 1, got {size!r}")
        return list(self._call(self._stub.GetSignatureSet, pb.GetSignatureSetRequest(space=space, size=size)).archs)

    def train(self, space: str, *, model_spec: str | None = None, exclude_devices: Sequence[str] = ()) -> TrainedModel:
        """Retrain the space's built-in model on the server (on every device in its store with enough data, minus
        ``exclude_devices``); every replica picks up the new version."""
        from nas_latency.v1 import latency_service_pb2 as pb

        request = pb.TrainModelRequest(space=space, model_spec=model_spec or "", exclude_devices=list(exclude_devices))
        reply = self._call(self._stub.TrainModel, request, timeout_s=max(self.timeout_s or 0, 3600.0))
        return TrainedModel(reply.model.space, reply.model.model_spec, list(reply.training_devices),
                            int(reply.model.version))

    def _list_models(self, space: str | None) -> Any:
        from nas_latency.v1 import latency_service_pb2 as pb

        return self._call(self._stub.ListModels, pb.ListModelsRequest(space=space or ""))

    def models(self, space: str | None = None) -> list["ArtifactInfo"]:
        """Stored model artifacts (as ``Store.list_artifacts``)."""
        return self.store.list_artifacts(space)

    def adapted_models(self, space: str | None = None) -> list[AdaptedModelInfo]:
        """Adapted models the answering server holds in memory."""
        return [AdaptedModelInfo(m.space, m.signature_key, tuple(m.device_names), int(m.n_measurements))
                for m in self._list_models(space).adapted_models]

    # ---- devices -----------------------------------------------------------------------------------------------------
    def register_device(self, name: str, space: str, measurements: Mapping[str, float] | Any, *,
                        description: str | None = None) -> "DeviceInfo":
        """Register (or re-register) ``name`` in ``space``; the measurements replace its registered ones there."""
        from nas_latency.v1 import latency_service_pb2 as pb
        from nas_latency.v1 import resources_pb2 as r

        archs, values = measurement_lists(measurements)
        request = pb.RegisterDeviceRequest(name=name, space=space, measurements=r.Measurements(archs=archs, latency_ms=values))
        if description is not None:
            request.description = description
        return _device_info_from_message(self._call(self._stub.RegisterDevice, request).device)

    def contribute_measurements(self, device: str, space: str,
                                measurements: Mapping[str, float] | Iterable["MeasurementRow"], *,
                                request_id: str | None = None,
                                environment: Mapping[str, Any] | None = None) -> ContributionResult:
        """Add measurements of a registered device (committed before this returns; refits its model).

        Give a ``request_id`` (a UUID) to make retries safe: the same id again writes nothing and returns the first
        answer with ``duplicate_request=True``; the same id with other content raises :class:`ConflictError`.
        """
        from nas_latency.v1 import latency_service_pb2 as pb
        from nas_latency.v1 import resources_pb2 as r

        records = []
        if isinstance(measurements, Mapping):
            archs, values = measurement_lists(measurements)
            records = [r.MeasurementRecord(arch=a, latency_ms=v) for a, v in zip(archs, values)]
        else:
            for row in measurements:
                record = r.MeasurementRecord(arch=row.arch, latency_ms=float(row.latency_ms))
                for key in ("n_runs", "iqr_ms", "cv"):
                    if getattr(row, key, None) is not None:
                        setattr(record, key, getattr(row, key))
                records.append(record)
        request = pb.ContributeMeasurementsRequest(
            device=device, space=space, measurements=records, request_id=request_id or "",
            environment_json=json.dumps(dict(environment)) if environment else "",
        )
        reply = self._call(self._stub.ContributeMeasurements, request)
        return ContributionResult(int(reply.inserted), int(reply.replaced), bool(reply.duplicate_request),
                                  _device_info_from_message(reply.device), bool(reply.model_refitted))

    @staticmethod
    def _get_device_request(name: str, space: str | None) -> Any:
        from nas_latency.v1 import latency_service_pb2 as pb

        return pb.GetDeviceRequest(name=name, space=space or "")

    def _get_device(self, name: str, space: str | None = None) -> Any:
        return self._call(self._stub.GetDevice, self._get_device_request(name, space)).device

    def _list_devices(self, space: str | None) -> list[Any]:
        from nas_latency.v1 import latency_service_pb2 as pb

        return list(self._call(self._stub.ListDevices, pb.ListDevicesRequest(space=space or "")).devices)

    def device(self, name: str, space: str) -> "DeviceInfo":
        message = self._get_device(name, space)
        return _device_info(message.name, space, message.description, message.measurement_counts.get(space, 0))

    def device_measurements(self, name: str, space: str) -> "MeasuredArchs":
        """The device's measurements in ``space`` as the server's models see them (as
        :meth:`Predictor.device_measurements`: one latency per arch; NotFoundError for an unknown device,
        FailedPreconditionError with fewer than 3 there)."""
        from nas_latency.measurements import MeasuredArchs
        from nas_latency.v1 import latency_service_pb2 as pb

        reply = self._call(self._stub.GetDevice, pb.GetDeviceRequest(name=name, space=space, include_measurements=True))
        return MeasuredArchs(space, tuple(reply.measurements.archs), tuple(reply.measurements.latency_ms))

    def device_model(self, name: str, space: str) -> "AdaptationSummary":
        """How the server's built-in model for ``space`` explains the device (as :meth:`Predictor.device_model`);
        FailedPreconditionError when the device has too few measurements there."""
        from nas_latency.measurements import check_enough_to_explain

        explained, count = self._explained_device(name, space)
        if explained is None:
            check_enough_to_explain(name, space, count)
            raise FailedPreconditionError(f"server {self.address} did not say how its model explains device "
                                          f"{name!r} in space {space!r} ({count} measurements there): a server "
                                          "older than the GetDevice model summary?")
        return explained

    def explained_device(self, name: str, space: str) -> "AdaptationSummary | None":
        """:meth:`device_model`, or ``None`` while the device has too few measurements in ``space`` (as
        :meth:`Predictor.explained_device`)."""
        return self._explained_device(name, space)[0]

    def _explained_device(self, name: str, space: str) -> tuple["AdaptationSummary | None", int]:
        from nas_latency.models.adaptation_summary import AdaptationSummary, LeftOutMeasurement

        response = self._call(self._stub.GetDevice, self._get_device_request(name, space))
        count = response.device.measurement_counts.get(space, 0)
        if not response.HasField("model"):
            return None, count
        drops = response.model.drops_degenerate if response.model.HasField("drops_degenerate") else None
        left_out = tuple(LeftOutMeasurement(m.arch, m.measured_ms, m.predicted_ms) for m in response.model.left_out)
        return AdaptationSummary(response.model.model, response.model.detail, drops, left_out), count

    def devices(self, space: str | None = None) -> list["DeviceInfo"]:
        infos = []
        for message in self._list_devices(space):
            for name, count in sorted(message.measurement_counts.items()):
                if space is None or name == space:
                    infos.append(_device_info(message.name, name, message.description, count))
        return infos

    def remove_device(self, name: str) -> None:
        from nas_latency.v1 import latency_service_pb2 as pb

        self._call(self._stub.RemoveDevice, pb.RemoveDeviceRequest(name=name))

    # ---- prediction ------------------------------------------------------------------------------------------------
    @staticmethod
    def _selector(device: str | None, signature: Mapping[str, float] | Any | None) -> Any:
        from nas_latency.v1 import resources_pb2 as r

        if (device is None) == (signature is None):
            raise InvalidInputError("give exactly one of device (a registered name) or signature (measurements)")
        if device is not None:
            return r.DeviceSelector(name=device)
        archs, values = measurement_lists(signature)
        return r.DeviceSelector(signature=r.Measurements(archs=archs, latency_ms=values))

    @staticmethod
    def _prediction(reply: Any) -> RemotePrediction:
        n = len(reply.latency_ms)
        latency = np.fromiter(reply.latency_ms, dtype=np.float64, count=n)
        std = np.fromiter(reply.latency_log_std, dtype=np.float64, count=n) if len(reply.latency_log_std) else None
        nearest = tuple(NearestDevice(d.name, _KINDS.get(d.kind, "registered"), d.rms_log_ratio)  # type: ignore[arg-type]
                        for d in reply.nearest_devices)
        return RemotePrediction(latency, std, reply.model, reply.signature_key, nearest)

    def _predict_request(self, space: str, archs: Sequence[str], device: str | None,
                         signature: Mapping[str, float] | Any | None, include_uncertainty: bool) -> Any:
        from nas_latency.v1 import latency_service_pb2 as pb

        if isinstance(archs, str):
            raise InvalidInputError("archs must be a sequence of architecture ids, not one string")
        return pb.PredictRequest(space=space, device=self._selector(device, signature), archs=archs,
                                 include_uncertainty=include_uncertainty)

    def predict(self, space: str, archs: Sequence[str], *, device: str | None = None,
                signature: Mapping[str, float] | Any | None = None) -> np.ndarray:
        """Latency in ms of each arch, in order, on ``device`` (registered) or the device of ``signature``."""
        request = self._predict_request(space, archs, device, signature, False)
        reply = self._call(self._stub.Predict, request)
        return np.fromiter(reply.latency_ms, dtype=np.float64, count=len(reply.latency_ms))

    def predict_detailed(self, space: str, archs: Sequence[str], *, device: str | None = None,
                         signature: Mapping[str, float] | Any | None = None,
                         include_uncertainty: bool = False) -> RemotePrediction:
        """:meth:`predict` with the estimator's name, the nearest known devices and (if asked) uncertainties."""
        request = self._predict_request(space, archs, device, signature, include_uncertainty)
        return self._prediction(self._call(self._stub.Predict, request))

    def predict_with_uncertainty(self, space: str, archs: Sequence[str], *, device: str | None = None,
                                 signature: Mapping[str, float] | Any | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict` and the standard deviation of each predicted ln latency, as
        :meth:`nas_latency.predictor.Predictor.predict_with_uncertainty` (``FailedPreconditionError`` when the
        server's model gives none)."""
        if not isinstance(archs, str) and len(archs) == 0:
            return np.zeros(0), np.zeros(0)
        result = self.predict_detailed(space, archs, device=device, signature=signature, include_uncertainty=True)
        if result.latency_log_std is None:
            raise FailedPreconditionError(f"the server's {space} model ({result.model}) gives no uncertainty")
        return result.latency_ms, result.latency_log_std

    def predict_networks(self, space: str, networks: Sequence["IRNetwork | bytes | Mapping[str, Any]"], *,
                         device: str | None = None, signature: Mapping[str, float] | Any | None = None) -> RemotePrediction:
        """Latencies of arbitrary networks: IR networks or layer-table dicts (sent as layer tables) or ONNX model
        bytes. The device's measurements in ``space`` adapt the estimator, named in the result's ``model``."""
        from nas_latency.v1 import latency_service_pb2 as pb
        from nas_latency.v1 import resources_pb2 as r

        messages = []
        for net in networks:
            if isinstance(net, (bytes, bytearray, memoryview)):
                messages.append(r.Network(onnx_model=bytes(net)))
            elif isinstance(net, Mapping):
                messages.append(r.Network(name=str(net.get("name", "")), layer_table=layer_table_message(net)))
            else:
                from nas_latency.ir import network_to_dict

                messages.append(r.Network(name=net.name, layer_table=layer_table_message(network_to_dict(net))))
        request = pb.PredictRequest(space=space, device=self._selector(device, signature), networks=messages)
        return self._prediction(self._call(self._stub.Predict, request))

    def stream_predict(self, batches: Iterable[Sequence[str]], *, space: str, device: str | None = None,
                       signature: Mapping[str, float] | Any | None = None,
                       timeout_s: float | None = None) -> Iterator[np.ndarray]:
        """Predict batch after batch over one bidirectional stream (for search loops); yields one array per batch,
        in order. ``timeout_s`` bounds the whole stream (default: no deadline)."""
        from nas_latency.v1 import latency_service_pb2 as pb

        selector = self._selector(device, signature)

        def requests() -> Iterator[Any]:
            for i, archs in enumerate(batches):
                if isinstance(archs, str):
                    raise InvalidInputError("each batch must be a sequence of architecture ids, not one string")
                yield pb.StreamPredictRequest(sequence_id=i, predict=pb.PredictRequest(space=space, device=selector,
                                                                                      archs=archs))

        call = self._stub.StreamPredict(requests(), timeout=timeout_s, metadata=self._metadata,
                                        wait_for_ready=self.wait_for_ready)
        try:
            for reply in call:
                values = reply.predict.latency_ms
                yield np.fromiter(values, dtype=np.float64, count=len(values))
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None
        finally:
            call.cancel()


__all__ = [
    "AdaptedModelInfo",
    "ContributionResult",
    "DeadlineExceededError",
    "LatencyClient",
    "LimitExceededError",
    "NearestDevice",
    "PermissionDeniedError",
    "RemotePrediction",
    "RemoteStore",
    "ServerUnavailableError",
    "TrainedModel",
    "UnauthenticatedError",
    "error_from_rpc",
]
