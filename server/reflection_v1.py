"""gRPC server reflection under both of its names: ``grpc.reflection.v1`` (stable) and ``grpc.reflection.v1alpha``.

grpcio-reflection serves v1alpha only; newer tools (grpcurl, grpcui, Postman, grpc-java's v1 client) ask v1 first.
The v1 protocol is v1alpha renamed: ``grpc/reflection/v1/reflection.proto`` has the same messages with the same
fields and numbers, in package ``grpc.reflection.v1``. So one servicer answers both. The v1 method decodes a request
with the v1alpha message class and encodes the v1alpha response, the same bytes a v1 message with those fields
encodes to. The v1 file (the v1alpha descriptor with its package renamed) joins the default descriptor pool, so a
client can also ask the server to describe the v1 service.
"""

from __future__ import annotations

from typing import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1_PACKAGE = "grpc.reflection.v1"
V1_FILE = "grpc/reflection/v1/reflection.proto"
V1_SERVICE_NAME = f"{V1_PACKAGE}.ServerReflection"
V1ALPHA_SERVICE_NAME = reflection.SERVICE_NAME
_V1ALPHA_PACKAGE = reflection_pb2.DESCRIPTOR.package


def v1_file_descriptor_proto() -> descriptor_pb2.FileDescriptorProto:
    """``grpc/reflection/v1/reflection.proto``: the v1alpha file with every name moved to package v1, and the
    v1 file's own language options."""
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old, new = f".{_V1ALPHA_PACKAGE}.", f".{V1_PACKAGE}."
    proto.name, proto.package = V1_FILE, V1_PACKAGE
    for message in proto.message_type:
        for f in message.field:
            if f.type_name.startswith(old):
                f.type_name = new + f.type_name[len(old):]
    for service in proto.service:
        for method in service.method:
            method.input_type = new + method.input_type[len(old):]
            method.output_type = new + method.output_type[len(old):]
    proto.ClearField("options")
    proto.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
    proto.options.java_multiple_files = True
    proto.options.java_package = "io.grpc.reflection.v1"
    proto.options.java_outer_classname = "ServerReflectionProto"
    proto.options.objc_class_prefix = "GRPC"
    return proto


def add_v1_file(pool: descriptor_pool.DescriptorPool | None = None) -> None:
    """Add the v1 file to ``pool`` (default: protobuf's default pool) unless it is there."""
    pool = pool or descriptor_pool.Default()
    try:
        pool.FindFileByName(V1_FILE)
    except KeyError:
        pool.AddSerializedFile(v1_file_descriptor_proto().SerializeToString())


def enable_server_reflection(service_names: Iterable[str], server: grpc.Server) -> None:
    """Serve reflection for ``service_names`` (and the two reflection services) under v1 and v1alpha."""
    add_v1_file()
    servicer = reflection.ReflectionServicer((*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.method_handlers_generic_handler(V1_SERVICE_NAME, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        ),
    })
    server.add_generic_rpc_handlers((v1,))
