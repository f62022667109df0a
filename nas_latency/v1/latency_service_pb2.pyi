from nas_latency.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PredictRequest(_message.Message):
    __slots__ = ("space", "device", "archs", "networks", "include_uncertainty")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    ARCHS_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_UNCERTAINTY_FIELD_NUMBER: _ClassVar[int]
    space: str
    device: _resources_pb2.DeviceSelector
    archs: _containers.RepeatedScalarFieldContainer[str]
    networks: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Network]
    include_uncertainty: bool
    def __init__(self, space: _Optional[str] = ..., device: _Optional[_Union[_resources_pb2.DeviceSelector, _Mapping]] = ..., archs: _Optional[_Iterable[str]] = ..., networks: _Optional[_Iterable[_Union[_resources_pb2.Network, _Mapping]]] = ..., include_uncertainty: _Optional[bool] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("latency_ms", "latency_log_std", "model", "signature_key", "nearest_devices")
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_LOG_STD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_KEY_FIELD_NUMBER: _ClassVar[int]
    NEAREST_DEVICES_FIELD_NUMBER: _ClassVar[int]
    latency_ms: _containers.RepeatedScalarFieldContainer[float]
    latency_log_std: _containers.RepeatedScalarFieldContainer[float]
    model: str
    signature_key: str
    nearest_devices: _containers.RepeatedCompositeFieldContainer[_resources_pb2.NearestDevice]
    def __init__(self, latency_ms: _Optional[_Iterable[float]] = ..., latency_log_std: _Optional[_Iterable[float]] = ..., model: _Optional[str] = ..., signature_key: _Optional[str] = ..., nearest_devices: _Optional[_Iterable[_Union[_resources_pb2.NearestDevice, _Mapping]]] = ...) -> None: ...

class StreamPredictRequest(_message.Message):
    __slots__ = ("predict", "sequence_id")
    PREDICT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_ID_FIELD_NUMBER: _ClassVar[int]
    predict: PredictRequest
    sequence_id: int
    def __init__(self, predict: _Optional[_Union[PredictRequest, _Mapping]] = ..., sequence_id: _Optional[int] = ...) -> None: ...

class StreamPredictResponse(_message.Message):
    __slots__ = ("predict", "sequence_id")
    PREDICT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_ID_FIELD_NUMBER: _ClassVar[int]
    predict: PredictResponse
    sequence_id: int
    def __init__(self, predict: _Optional[_Union[PredictResponse, _Mapping]] = ..., sequence_id: _Optional[int] = ...) -> None: ...

class GetSignatureSetRequest(_message.Message):
    __slots__ = ("space", "size")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    space: str
    size: int
    def __init__(self, space: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class GetSignatureSetResponse(_message.Message):
    __slots__ = ("space", "archs")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    ARCHS_FIELD_NUMBER: _ClassVar[int]
    space: str
    archs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, space: _Optional[str] = ..., archs: _Optional[_Iterable[str]] = ...) -> None: ...

class RegisterDeviceRequest(_message.Message):
    __slots__ = ("name", "space", "measurements", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    space: str
    measurements: _resources_pb2.Measurements
    description: str
    def __init__(self, name: _Optional[str] = ..., space: _Optional[str] = ..., measurements: _Optional[_Union[_resources_pb2.Measurements, _Mapping]] = ..., description: _Optional[str] = ...) -> None: ...

class RegisterDeviceResponse(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: _resources_pb2.DeviceInfo
    def __init__(self, device: _Optional[_Union[_resources_pb2.DeviceInfo, _Mapping]] = ...) -> None: ...

class ContributeMeasurementsRequest(_message.Message):
    __slots__ = ("device", "space", "measurements", "request_id", "environment_json")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    device: str
    space: str
    measurements: _containers.RepeatedCompositeFieldContainer[_resources_pb2.MeasurementRecord]
    request_id: str
    environment_json: str
    def __init__(self, device: _Optional[str] = ..., space: _Optional[str] = ..., measurements: _Optional[_Iterable[_Union[_resources_pb2.MeasurementRecord, _Mapping]]] = ..., request_id: _Optional[str] = ..., environment_json: _Optional[str] = ...) -> None: ...

class ContributeMeasurementsResponse(_message.Message):
    __slots__ = ("inserted", "replaced", "duplicate_request", "device", "model_refitted")
    INSERTED_FIELD_NUMBER: _ClassVar[int]
    REPLACED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_REQUEST_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    MODEL_REFITTED_FIELD_NUMBER: _ClassVar[int]
    inserted: int
    replaced: int
    duplicate_request: bool
    device: _resources_pb2.DeviceInfo
    model_refitted: bool
    def __init__(self, inserted: _Optional[int] = ..., replaced: _Optional[int] = ..., duplicate_request: _Optional[bool] = ..., device: _Optional[_Union[_resources_pb2.DeviceInfo, _Mapping]] = ..., model_refitted: _Optional[bool] = ...) -> None: ...

class GetDeviceRequest(_message.Message):
    __slots__ = ("name", "space", "include_measurements")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    space: str
    include_measurements: bool
    def __init__(self, name: _Optional[str] = ..., space: _Optional[str] = ..., include_measurements: _Optional[bool] = ...) -> None: ...

class GetDeviceResponse(_message.Message):
    __slots__ = ("device", "model", "measurements")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    device: _resources_pb2.Device
    model: DeviceModelSummary
    measurements: _resources_pb2.Measurements
    def __init__(self, device: _Optional[_Union[_resources_pb2.Device, _Mapping]] = ..., model: _Optional[_Union[DeviceModelSummary, _Mapping]] = ..., measurements: _Optional[_Union[_resources_pb2.Measurements, _Mapping]] = ...) -> None: ...

class DeviceModelSummary(_message.Message):
    __slots__ = ("model", "detail", "drops_degenerate", "left_out")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    DROPS_DEGENERATE_FIELD_NUMBER: _ClassVar[int]
    LEFT_OUT_FIELD_NUMBER: _ClassVar[int]
    model: str
    detail: str
    drops_degenerate: bool
    left_out: _containers.RepeatedCompositeFieldContainer[LeftOutMeasurement]
    def __init__(self, model: _Optional[str] = ..., detail: _Optional[str] = ..., drops_degenerate: _Optional[bool] = ..., left_out: _Optional[_Iterable[_Union[LeftOutMeasurement, _Mapping]]] = ...) -> None: ...

class LeftOutMeasurement(_message.Message):
    __slots__ = ("arch", "measured_ms", "predicted_ms")
    ARCH_FIELD_NUMBER: _ClassVar[int]
    MEASURED_MS_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_MS_FIELD_NUMBER: _ClassVar[int]
    arch: str
    measured_ms: float
    predicted_ms: float
    def __init__(self, arch: _Optional[str] = ..., measured_ms: _Optional[float] = ..., predicted_ms: _Optional[float] = ...) -> None: ...

class ListDevicesRequest(_message.Message):
    __slots__ = ("space",)
    SPACE_FIELD_NUMBER: _ClassVar[int]
    space: str
    def __init__(self, space: _Optional[str] = ...) -> None: ...

class ListDevicesResponse(_message.Message):
    __slots__ = ("devices",)
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Device]
    def __init__(self, devices: _Optional[_Iterable[_Union[_resources_pb2.Device, _Mapping]]] = ...) -> None: ...

class RemoveDeviceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RemoveDeviceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSpacesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSpacesResponse(_message.Message):
    __slots__ = ("spaces",)
    SPACES_FIELD_NUMBER: _ClassVar[int]
    spaces: _containers.RepeatedCompositeFieldContainer[_resources_pb2.SpaceInfo]
    def __init__(self, spaces: _Optional[_Iterable[_Union[_resources_pb2.SpaceInfo, _Mapping]]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("space",)
    SPACE_FIELD_NUMBER: _ClassVar[int]
    space: str
    def __init__(self, space: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "adapted_models")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    ADAPTED_MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_resources_pb2.ModelInfo]
    adapted_models: _containers.RepeatedCompositeFieldContainer[_resources_pb2.AdaptedModel]
    def __init__(self, models: _Optional[_Iterable[_Union[_resources_pb2.ModelInfo, _Mapping]]] = ..., adapted_models: _Optional[_Iterable[_Union[_resources_pb2.AdaptedModel, _Mapping]]] = ...) -> None: ...

class TrainModelRequest(_message.Message):
    __slots__ = ("space", "model_spec", "exclude_devices")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_DEVICES_FIELD_NUMBER: _ClassVar[int]
    space: str
    model_spec: str
    exclude_devices: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, space: _Optional[str] = ..., model_spec: _Optional[str] = ..., exclude_devices: _Optional[_Iterable[str]] = ...) -> None: ...

class TrainModelResponse(_message.Message):
    __slots__ = ("model", "training_devices")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DEVICES_FIELD_NUMBER: _ClassVar[int]
    model: _resources_pb2.ModelInfo
    training_devices: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[_Union[_resources_pb2.ModelInfo, _Mapping]] = ..., training_devices: _Optional[_Iterable[str]] = ...) -> None: ...
