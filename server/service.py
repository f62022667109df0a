"""``nas_latency.v1.LatencyService``: requests in, validated against the limits, answered by the registry.

Every handler runs through :func:`_rpc`: the token check for writes, the deadline check, the one error mapping
(:func:`server.errors.abort`) and a structured log line (DEBUG for successful reads, INFO for writes, WARNING for
failures). Handlers convert messages to library types and back and hold no state of their own.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from typing import Any, Callable, Iterator, TypeVar

import grpc

from nas_latency.builtin_models import BUNDLE_NAME
from nas_latency.device_info import DeviceInfo
from nas_latency.errors import DeadlineExceededError, InvalidInputError, NasLatencyError
from nas_latency.measurements import environment_from_json, validate_measurements
from nas_latency.messages import layer_table_dict
from nas_latency.store import MeasurementRow
from nas_latency.v1 import latency_service_pb2 as pb
from nas_latency.v1 import latency_service_pb2_grpc as pb_grpc
from nas_latency.v1 import resources_pb2 as r
from search_spaces import get_space, space_names
from server import errors
from server.auth import WRITE_METHODS, TokenAuth
from server.limits import Limits
from server.registry import ModelRegistry, Prediction

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["LatencyService"].full_name
_KIND_VALUES = {"registered": r.KNOWN_DEVICE_KIND_REGISTERED, "bundled": r.KNOWN_DEVICE_KIND_BUNDLED}

F = TypeVar("F", bound=Callable[..., Any])


def _check_deadline(context: grpc.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise DeadlineExceededError("the deadline passed before the server could answer")
    return remaining


def _peer(context: grpc.ServicerContext) -> str:
    try:
        return context.peer()
    except Exception:  # pragma: no cover - a context without a peer
        return ""


def _rpc(name: str) -> Callable[[F], F]:
    """Wrap a unary handler: auth for writes, deadline, error mapping, one log line."""
    write = name in WRITE_METHODS

    def decorate(handler: F) -> F:
        @functools.wraps(handler)
        def wrapper(self: "LatencyServicer", request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            try:
                if write and self.auth.enabled:
                    self.auth.check(name, context.invocation_metadata())
                _check_deadline(context)
                reply = handler(self, request, context)
            except Exception as exc:  # every failure goes through the one mapping
                self._log_failure(name, exc, start, context)
                errors.abort(context, exc)
            if write or log.isEnabledFor(logging.DEBUG):
                log.log(logging.INFO if write else logging.DEBUG, "%s ok", name,
                        extra={"event": "rpc", "method": name, "code": "OK", "peer": _peer(context),
                               "duration_ms": round((time.perf_counter() - start) * 1e3, 3)})
            return reply

        return wrapper  # type: ignore[return-value]

    return decorate


def _device_info(info: DeviceInfo) -> r.DeviceInfo:
    return r.DeviceInfo(name=info.name, space=info.space, description=info.description,
                        n_measurements=info.n_measurements)


def _timestamp(value: Any) -> Any:
    from google.protobuf import timestamp_pb2

    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def _model_info(info: Any) -> r.ModelInfo:
    params = info.manifest.get("params", {}) if isinstance(info.manifest, dict) else {}
    return r.ModelInfo(space=info.space, name=info.name, version=info.version, kind=info.kind,
                       model_spec=str(params.get("model_spec", "")), size_bytes=info.size_bytes, sha256=info.sha256,
                       create_time=_timestamp(info.created_at), manifest_json=json.dumps(info.manifest, sort_keys=True))


class LatencyServicer(pb_grpc.LatencyServiceServicer):
    """The service over a :class:`ModelRegistry`."""

    def __init__(self, registry: ModelRegistry, *, auth: TokenAuth | None = None, limits: Limits | None = None) -> None:
        self.registry = registry
        self.auth = auth or TokenAuth(None)
        self.limits = limits or Limits()

    def _log_failure(self, name: str, exc: BaseException, start: float, context: grpc.ServicerContext) -> None:
        code = errors.status_code(exc)
        fields = {"event": "rpc", "method": name, "code": code.name, "peer": _peer(context),
                  "duration_ms": round((time.perf_counter() - start) * 1e3, 3),
                  "reason": getattr(exc, "reason", errors.INTERNAL_REASON)}
        if isinstance(exc, NasLatencyError) and code is not grpc.StatusCode.INTERNAL:
            log.info("%s failed: %s", name, exc, extra=fields)
        else:
            log.warning("%s failed with an internal error", name, extra=fields)

    # ---- prediction ------------------------------------------------------------------------------------------------
    def _selector(self, selector: r.DeviceSelector) -> tuple[str | None, tuple[Any, Any] | None]:
        which = selector.WhichOneof("device")
        if which == "name":
            if not selector.name:
                raise InvalidInputError("device.name is empty")
            self.limits.check_length("max_identifier_chars", [selector.name], what="device.name")
            return selector.name, None
        if which == "signature":
            sig = selector.signature
            self.limits.check("max_measurements_per_request", len(sig.archs), what="inline signature measurements")
            self.limits.check_length("max_identifier_chars", sig.archs, what="inline signature archs")
            return None, (sig.archs, sig.latency_ms)
        raise InvalidInputError("device is required: a registered name or an inline signature")

    def _network(self, index: int, message: r.Network) -> Any:
        where = f"networks[{index}]" + (f" ({message.name!r})" if message.name else "")
        fmt = message.WhichOneof("format")
        if fmt == "layer_table":
            self.limits.check("max_layers_per_network", len(message.layer_table.layers), what=f"{where}: layers")
            from nas_latency.ir import network_from_dict

            return network_from_dict(layer_table_dict(message.layer_table), source=where)
        if fmt == "onnx_model":
            from nas_latency.frontends import onnx_to_ir

            if not message.onnx_model:
                raise InvalidInputError(f"{where}: onnx_model is empty")
            network = onnx_to_ir(message.onnx_model, name=message.name or None).network
            self.limits.check("max_layers_per_network", len(network.layers), what=f"{where}: layers")
            return network
        raise InvalidInputError(f"{where}: give a layer_table or onnx_model")

    def _predict(self, request: pb.PredictRequest, context: grpc.ServicerContext) -> pb.PredictResponse:
        if not request.space:
            raise InvalidInputError("space is required")
        n_archs, n_networks = len(request.archs), len(request.networks)
        if n_archs and n_networks:
            raise InvalidInputError("give either archs or networks in one request, not both")
        self.limits.check("max_archs_per_request", n_archs, what="archs in one request")
        self.limits.check("max_networks_per_request", n_networks, what="networks in one request")
        self.limits.check_length("max_identifier_chars", [request.space, *request.archs], what="space and archs")
        device, signature = self._selector(request.device)
        self.registry.wait_loaded(_check_deadline(context))
        prediction: Prediction
        if n_networks:
            networks = [self._network(i, m) for i, m in enumerate(request.networks)]
            prediction = self.registry.predict_networks(request.space, networks, device=device, signature=signature)
        else:
            prediction = self.registry.predict_archs(request.space, request.archs, device=device, signature=signature,
                                                     include_uncertainty=request.include_uncertainty)
        reply = pb.PredictResponse(latency_ms=prediction.latency_ms.tolist(), model=prediction.model,
                                   signature_key=prediction.signature_key)
        if prediction.latency_log_std is not None:
            reply.latency_log_std.extend(prediction.latency_log_std.tolist())
        for near in prediction.nearest_devices:
            reply.nearest_devices.add(name=near.name, kind=_KIND_VALUES[near.kind], rms_log_ratio=near.rms_log_ratio)
        return reply

    @_rpc("Predict")
    def Predict(self, request: pb.PredictRequest, context: grpc.ServicerContext) -> pb.PredictResponse:
        return self._predict(request, context)

    def StreamPredict(self, request_iterator: Iterator[pb.StreamPredictRequest],
                      context: grpc.ServicerContext) -> Iterator[pb.StreamPredictResponse]:
        start = time.perf_counter()
        count = 0
        try:
            for message in request_iterator:
                _check_deadline(context)
                reply = self._predict(message.predict, context)
                count += 1
                yield pb.StreamPredictResponse(predict=reply, sequence_id=message.sequence_id)
        except Exception as exc:
            if not context.is_active():  # the client went away (cancelled or past its deadline): nothing to send
                log.debug("StreamPredict ended by the client after %d messages", count)
                return
            self._log_failure("StreamPredict", exc, start, context)
            errors.abort(context, exc)
        log.debug("StreamPredict done", extra={"event": "rpc", "method": "StreamPredict", "code": "OK",
                                               "messages": count,
                                               "duration_ms": round((time.perf_counter() - start) * 1e3, 3)})

    @_rpc("GetSignatureSet")
    def GetSignatureSet(self, request: pb.GetSignatureSetRequest,
                        context: grpc.ServicerContext) -> pb.GetSignatureSetResponse:
        space = get_space(request.space).name
        if request.size < 1:
            raise InvalidInputError(f"signature size must be at least 1, got {request.size}")
        self.limits.check("max_signature_size", request.size, what="signature size")
        self.registry.wait_loaded(_check_deadline(context))
        return pb.GetSignatureSetResponse(space=space, archs=self.registry.signature_set(space, request.size))

    # ---- devices ---------------------------------------------------------------------------------------------------
    @_rpc("RegisterDevice")
    def RegisterDevice(self, request: pb.RegisterDeviceRequest,
                       context: grpc.ServicerContext) -> pb.RegisterDeviceResponse:
        space = get_space(request.space)
        m = request.measurements
        self.limits.check("max_measurements_per_request", len(m.archs), what="measurements in one request")
        self.limits.check_length("max_identifier_chars", [request.name, *m.archs], what="device name and archs")
        self.limits.check_length("max_text_chars", [request.description], what="description")
        if len(m.archs) != len(m.latency_ms):
            raise InvalidInputError(f"measurements: {len(m.archs)} archs but {len(m.latency_ms)} latencies")
        rows = [(i, arch, value) for i, (arch, value) in enumerate(zip(m.archs, m.latency_ms), start=1)]
        measured = validate_measurements(space, rows, where=f"measurements of {request.name}")
        self.registry.wait_loaded(_check_deadline(context))
        description = request.description if request.HasField("description") else None
        info = self.registry.register_device(request.name, space.name, measured, description=description)
        return pb.RegisterDeviceResponse(device=_device_info(info))

    @_rpc("ContributeMeasurements")
    def ContributeMeasurements(self, request: pb.ContributeMeasurementsRequest,
                               context: grpc.ServicerContext) -> pb.ContributeMeasurementsResponse:
        space = get_space(request.space)
        records = request.measurements
        self.limits.check("max_measurements_per_request", len(records), what="measurements in one request")
        self.limits.check_length("max_identifier_chars", [request.device, request.request_id,
                                                          *(rec.arch for rec in records)],
                                 what="device name, request id and archs")
        self.limits.check_length("max_text_chars", [request.environment_json], what="environment_json")
        rows = [(i, rec.arch, rec.latency_ms) for i, rec in enumerate(records, start=1)]
        measured = validate_measurements(space, rows, where=f"contribution to {request.device}", min_rows=1)
        environment = (environment_from_json(request.environment_json, what="environment_json")
                       if request.environment_json else None)
        store_rows = [
            MeasurementRow(arch, latency,
                           rec.n_runs if rec.HasField("n_runs") else None,
                           rec.iqr_ms if rec.HasField("iqr_ms") else None,
                           rec.cv if rec.HasField("cv") else None,
                           environment)
            for arch, latency, rec in zip(measured.archs, measured.latency_ms, records)
        ]
        result, info, refitted = self.registry.contribute(request.device, space.name, store_rows,
                                                          request_id=request.request_id or None)
        return pb.ContributeMeasurementsResponse(inserted=result.inserted, replaced=result.replaced,
                                                 duplicate_request=result.duplicate_request,
                                                 device=_device_info(info), model_refitted=refitted)

    def _device_message(self, summary: Any, device: Any = None) -> r.Device:
        message = r.Device(name=summary.name, description=summary.description,
                           create_time=_timestamp(summary.created_at),
                           measurement_counts={k: int(v) for k, v in summary.measurement_counts.items()})
        if device is not None:
            message.metadata_json = json.dumps(dict(device.metadata), sort_keys=True)
            message.update_time.CopyFrom(_timestamp(device.updated_at))
        return message

    @_rpc("GetDevice")
    def GetDevice(self, request: pb.GetDeviceRequest, context: grpc.ServicerContext) -> pb.GetDeviceResponse:
        store = self.registry.store
        device = store.get_device(request.name)  # NotFoundError (with similar names) first, as in-process
        space = get_space(request.space).name if request.space else None
        if request.include_measurements and space is None:
            raise InvalidInputError("include_measurements needs a space: a device's measurements are per space")
        summary = next(s for s in store.list_devices() if s.name == device.name)
        response = pb.GetDeviceResponse(device=self._device_message(summary, device))
        explained = self.registry.predictor.explained_device(device.name, space) if space is not None else None
        if explained is not None:
            response.model.CopyFrom(pb.DeviceModelSummary(
                model=explained.model, detail=explained.detail,
                left_out=[pb.LeftOutMeasurement(arch=m.arch, measured_ms=m.measured_ms, predicted_ms=m.predicted_ms)
                          for m in explained.left_out]))
            if explained.drops_degenerate is not None:
                response.model.drops_degenerate = explained.drops_degenerate
        if request.include_measurements:
            measured = self.registry.predictor.device_measurements(device.name, space)
            response.measurements.CopyFrom(r.Measurements(archs=measured.archs, latency_ms=measured.latency_ms))
        return response

    @_rpc("ListDevices")
    def ListDevices(self, request: pb.ListDevicesRequest, context: grpc.ServicerContext) -> pb.ListDevicesResponse:
        space = get_space(request.space).name if request.space else None
        return pb.ListDevicesResponse(devices=[self._device_message(s) for s in self.registry.store.list_devices(space)])

    @_rpc("RemoveDevice")
    def RemoveDevice(self, request: pb.RemoveDeviceRequest, context: grpc.ServicerContext) -> pb.RemoveDeviceResponse:
        self.registry.remove_device(request.name)
        return pb.RemoveDeviceResponse()

    # ---- spaces and models -------------------------------------------------------------------------------------------
    @_rpc("ListSpaces")
    def ListSpaces(self, request: pb.ListSpacesRequest, context: grpc.ServicerContext) -> pb.ListSpacesResponse:
        spaces = []
        for name in space_names():
            space = get_space(name)
            loaded, model = self.registry.space_state(name)
            spaces.append(r.SpaceInfo(name=name, description=space.description, input_shape=list(space.input_shape()),
                                      measured_archs=len(space.measured_archs()), model_loaded=loaded,
                                      model_spec=model.removeprefix("builtin:")))
        return pb.ListSpacesResponse(spaces=spaces)

    @_rpc("ListModels")
    def ListModels(self, request: pb.ListModelsRequest, context: grpc.ServicerContext) -> pb.ListModelsResponse:
        space = get_space(request.space).name if request.space else None
        models = [_model_info(i) for i in self.registry.store.list_artifacts(space)]
        adapted = [r.AdaptedModel(space=s, signature_key=k, device_names=list(names), n_measurements=n)
                   for s, k, names, n in self.registry.adapted_models(space)]
        return pb.ListModelsResponse(models=models, adapted_models=adapted)

    @_rpc("TrainModel")
    def TrainModel(self, request: pb.TrainModelRequest, context: grpc.ServicerContext) -> pb.TrainModelResponse:
        space = get_space(request.space).name
        self.registry.wait_loaded(_check_deadline(context))
        bundle = self.registry.train(space, model_spec=request.model_spec or None,
                                     exclude_devices=list(request.exclude_devices))
        latest = [i for i in self.registry.store.list_artifacts(space, latest_only=True) if i.name == BUNDLE_NAME]
        return pb.TrainModelResponse(model=_model_info(latest[0]) if latest else None,
                                     training_devices=list(bundle.training_devices))

