"""Generated Python code of the gRPC contract ``proto/nas_latency/v1/*.proto`` (package ``nas_latency.v1``).

Do not edit the ``*_pb2*.py`` / ``*_pb2.pyi`` files: ``make proto`` regenerates them, and
``tests/server/test_proto_drift.py`` fails when they differ from what the pinned ``grpcio-tools`` generates.
This module lives at ``nas_latency/v1`` because the proto package path (``nas_latency/v1``) is also the import
path the generated code uses for its cross-file imports.
"""
