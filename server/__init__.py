"""The gRPC latency server (``nas-latency serve``): the ``nas_latency.v1.LatencyService`` over the embedded
predictor and its store.

- :mod:`server.app`: ``create_server(address, registry) -> (server, port)``, health checking, reflection
  (:mod:`server.reflection_v1`: v1 and v1alpha),
  ``serve`` (SIGTERM/SIGINT: graceful stop) and JSON logs;
- :mod:`server.service`: the RPC handlers;
- :mod:`server.registry`: adapted models keyed by device signature vectors, nearest known devices;
- :mod:`server.auth`: the bearer token of writes; :mod:`server.limits`: per-request bounds;
- :mod:`server.errors`: the one mapping of the project's exceptions to status codes and ErrorInfo reasons.

It depends on ``nas_latency`` (never the other way round; the ``serve`` command imports it only when run).
"""
