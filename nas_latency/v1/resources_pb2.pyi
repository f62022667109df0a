import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KnownDeviceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KNOWN_DEVICE_KIND_UNSPECIFIED: _ClassVar[KnownDeviceKind]
    KNOWN_DEVICE_KIND_REGISTERED: _ClassVar[KnownDeviceKind]
    KNOWN_DEVICE_KIND_BUNDLED: _ClassVar[KnownDeviceKind]
KNOWN_DEVICE_KIND_UNSPECIFIED: KnownDeviceKind
KNOWN_DEVICE_KIND_REGISTERED: KnownDeviceKind
KNOWN_DEVICE_KIND_BUNDLED: KnownDeviceKind

class Measurements(_message.Message):
    __slots__ = ("archs", "latency_ms")
    ARCHS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    archs: _containers.RepeatedScalarFieldContainer[str]
    latency_ms: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, archs: _Optional[_Iterable[str]] = ..., latency_ms: _Optional[_Iterable[float]] = ...) -> None: ...

class MeasurementRecord(_message.Message):
    __slots__ = ("arch", "latency_ms", "n_runs", "iqr_ms", "cv")
    ARCH_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    N_RUNS_FIELD_NUMBER: _ClassVar[int]
    IQR_MS_FIELD_NUMBER: _ClassVar[int]
    CV_FIELD_NUMBER: _ClassVar[int]
    arch: str
    latency_ms: float
    n_runs: int
    iqr_ms: float
    cv: float
    def __init__(self, arch: _Optional[str] = ..., latency_ms: _Optional[float] = ..., n_runs: _Optional[int] = ..., iqr_ms: _Optional[float] = ..., cv: _Optional[float] = ...) -> None: ...

class DeviceSelector(_message.Message):
    __slots__ = ("name", "signature")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    name: str
    signature: Measurements
    def __init__(self, name: _Optional[str] = ..., signature: _Optional[_Union[Measurements, _Mapping]] = ...) -> None: ...

class Shape(_message.Message):
    __slots__ = ("dims",)
    DIMS_FIELD_NUMBER: _ClassVar[int]
    dims: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, dims: _Optional[_Iterable[int]] = ...) -> None: ...

class TensorSpec(_message.Message):
    __slots__ = ("name", "shape")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ...) -> None: ...

class Layer(_message.Message):
    __slots__ = ("name", "op", "inputs", "input_shapes", "output_shape", "kernel", "stride", "padding", "dilation", "groups", "bias", "affine", "count_include_pad", "ceil_mode", "axis")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHAPES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SHAPE_FIELD_NUMBER: _ClassVar[int]
    KERNEL_FIELD_NUMBER: _ClassVar[int]
    STRIDE_FIELD_NUMBER: _ClassVar[int]
    PADDING_FIELD_NUMBER: _ClassVar[int]
    DILATION_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    BIAS_FIELD_NUMBER: _ClassVar[int]
    AFFINE_FIELD_NUMBER: _ClassVar[int]
    COUNT_INCLUDE_PAD_FIELD_NUMBER: _ClassVar[int]
    CEIL_MODE_FIELD_NUMBER: _ClassVar[int]
    AXIS_FIELD_NUMBER: _ClassVar[int]
    name: str
    op: str
    inputs: _containers.RepeatedScalarFieldContainer[str]
    input_shapes: _containers.RepeatedCompositeFieldContainer[Shape]
    output_shape: _containers.RepeatedScalarFieldContainer[int]
    kernel: _containers.RepeatedScalarFieldContainer[int]
    stride: _containers.RepeatedScalarFieldContainer[int]
    padding: _containers.RepeatedScalarFieldContainer[int]
    dilation: _containers.RepeatedScalarFieldContainer[int]
    groups: int
    bias: bool
    affine: bool
    count_include_pad: bool
    ceil_mode: bool
    axis: int
    def __init__(self, name: _Optional[str] = ..., op: _Optional[str] = ..., inputs: _Optional[_Iterable[str]] = ..., input_shapes: _Optional[_Iterable[_Union[Shape, _Mapping]]] = ..., output_shape: _Optional[_Iterable[int]] = ..., kernel: _Optional[_Iterable[int]] = ..., stride: _Optional[_Iterable[int]] = ..., padding: _Optional[_Iterable[int]] = ..., dilation: _Optional[_Iterable[int]] = ..., groups: _Optional[int] = ..., bias: _Optional[bool] = ..., affine: _Optional[bool] = ..., count_include_pad: _Optional[bool] = ..., ceil_mode: _Optional[bool] = ..., axis: _Optional[int] = ...) -> None: ...

class LayerTable(_message.Message):
    __slots__ = ("name", "inputs", "layers", "outputs")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    inputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    layers: _containers.RepeatedCompositeFieldContainer[Layer]
    outputs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., layers: _Optional[_Iterable[_Union[Layer, _Mapping]]] = ..., outputs: _Optional[_Iterable[str]] = ...) -> None: ...

class Network(_message.Message):
    __slots__ = ("name", "layer_table", "onnx_model")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LAYER_TABLE_FIELD_NUMBER: _ClassVar[int]
    ONNX_MODEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    layer_table: LayerTable
    onnx_model: bytes
    def __init__(self, name: _Optional[str] = ..., layer_table: _Optional[_Union[LayerTable, _Mapping]] = ..., onnx_model: _Optional[bytes] = ...) -> None: ...

class NearestDevice(_message.Message):
    __slots__ = ("name", "kind", "rms_log_ratio")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RMS_LOG_RATIO_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: KnownDeviceKind
    rms_log_ratio: float
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[KnownDeviceKind, str]] = ..., rms_log_ratio: _Optional[float] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ("name", "description", "metadata_json", "create_time", "update_time", "measurement_counts")
    class MeasurementCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENT_COUNTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    metadata_json: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    measurement_counts: _containers.ScalarMap[str, int]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., metadata_json: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., measurement_counts: _Optional[_Mapping[str, int]] = ...) -> None: ...

class DeviceInfo(_message.Message):
    __slots__ = ("name", "space", "description", "n_measurements")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    N_MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    space: str
    description: str
    n_measurements: int
    def __init__(self, name: _Optional[str] = ..., space: _Optional[str] = ..., description: _Optional[str] = ..., n_measurements: _Optional[int] = ...) -> None: ...

class SpaceInfo(_message.Message):
    __slots__ = ("name", "description", "input_shape", "measured_archs", "model_loaded", "model_spec")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHAPE_FIELD_NUMBER: _ClassVar[int]
    MEASURED_ARCHS_FIELD_NUMBER: _ClassVar[int]
    MODEL_LOADED_FIELD_NUMBER: _ClassVar[int]
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    input_shape: _containers.RepeatedScalarFieldContainer[int]
    measured_archs: int
    model_loaded: bool
    model_spec: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., input_shape: _Optional[_Iterable[int]] = ..., measured_archs: _Optional[int] = ..., model_loaded: _Optional[bool] = ..., model_spec: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("space", "name", "version", "kind", "model_spec", "size_bytes", "sha256", "create_time", "manifest_json")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_JSON_FIELD_NUMBER: _ClassVar[int]
    space: str
    name: str
    version: int
    kind: str
    model_spec: str
    size_bytes: int
    sha256: str
    create_time: _timestamp_pb2.Timestamp
    manifest_json: str
    def __init__(self, space: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., kind: _Optional[str] = ..., model_spec: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., manifest_json: _Optional[str] = ...) -> None: ...

class AdaptedModel(_message.Message):
    __slots__ = ("space", "signature_key", "device_names", "n_measurements")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_KEY_FIELD_NUMBER: _ClassVar[int]
    DEVICE_NAMES_FIELD_NUMBER: _ClassVar[int]
    N_MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    space: str
    signature_key: str
    device_names: _containers.RepeatedScalarFieldContainer[str]
    n_measurements: int
    def __init__(self, space: _Optional[str] = ..., signature_key: _Optional[str] = ..., device_names: _Optional[_Iterable[str]] = ..., n_measurements: _Optional[int] = ...) -> None: ...
