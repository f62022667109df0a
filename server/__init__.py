"""The gRPC latency server: service, model registry keyed by device signature vectors, auth and limits.

It depends on ``nas_latency`` (never the other way round). The service itself lands with the server work;
until then this package holds nothing to import.
"""
