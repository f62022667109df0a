"""Server lifecycle: ``create_server`` (service, health checking, reflection v1 and v1alpha), ``serve`` (signals, logs).

>>> registry = ModelRegistry(store_url="sqlite:///tmp/store.sqlite", spaces=["nasbench201"])  # doctest: +SKIP
>>> server, port = create_server("127.0.0.1:0", registry)                                    # doctest: +SKIP
>>> server.start()                                                                           # doctest: +SKIP

Health (``grpc.health.v1``, for ``""`` and ``nas_latency.v1.LatencyService``) is NOT_SERVING until the
registry has loaded the models of its spaces, then SERVING; on shutdown it turns NOT_SERVING first, so a load
balancer stops sending, and in-flight calls get ``grace_s`` seconds to finish. Logs are JSON lines on stderr.
"""

from __future__ import annotations

import gc
import json
import logging
import signal
import sys
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from nas_latency.errors import InvalidInputError
from nas_latency.v1 import latency_service_pb2_grpc as pb_grpc
from server.auth import TokenAuth
from server.limits import Limits
from server.malformed import MalformedRequestInterceptor
from server.reflection_v1 import enable_server_reflection
from server.registry import ModelRegistry
from server.service import SERVICE_NAME, LatencyServicer

log = logging.getLogger(__name__)

DEFAULT_MAX_WORKERS = 32
DEFAULT_GRACE_S = 10.0

_HEALTH: "weakref.WeakKeyDictionary[Any, health.HealthServicer]" = weakref.WeakKeyDictionary()
_REGISTRY: "weakref.WeakKeyDictionary[Any, ModelRegistry]" = weakref.WeakKeyDictionary()


def create_server(address: str, registry: ModelRegistry, *, auth: TokenAuth | None = None,
                  limits: Limits | None = None, tls: tuple[bytes, bytes] | None = None,
                  max_workers: int = DEFAULT_MAX_WORKERS) -> tuple[grpc.Server, int]:
    """A gRPC server (not started) for ``registry`` bound to ``address`` (port 0 picks a free one).

    Starts loading the registry's models in the background at once; health turns SERVING when they are loaded.
    ``tls`` is ``(private key PEM, certificate chain PEM)``. Returns the server and the bound port.
    """
    limits = limits or Limits()
    options = limits.grpc_options() + [("grpc.so_reuseport", 0)]
    server = grpc.server(ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"), options=options,
                         interceptors=[MalformedRequestInterceptor()])
    pb_grpc.add_LatencyServiceServicer_to_server(LatencyServicer(registry, auth=auth, limits=limits), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_server_reflection((SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name), server)
    try:
        if tls is not None:
            port = server.add_secure_port(address, grpc.ssl_server_credentials([tls]))
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise InvalidInputError(f"cannot listen on {address}: {exc}") from None
    if port == 0:
        raise InvalidInputError(f"cannot listen on {address}")
    _HEALTH[server] = health_servicer
    _REGISTRY[server] = registry

    def loaded(ok: bool) -> None:
        if ok:
            gc.freeze()  # the loaded models and data never die: keep them out of every future GC pass (tail latency)
            for name in ("", SERVICE_NAME):
                health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
            log.info("models loaded; serving", extra={"event": "serving", "port": port})

    registry.start(on_loaded=loaded)
    return server, port


def stop_server(server: grpc.Server, grace_s: float = DEFAULT_GRACE_S) -> None:
    """Graceful stop: health NOT_SERVING, no new calls, ``grace_s`` for in-flight ones, then the registry closes."""
    health_servicer = _HEALTH.get(server)
    if health_servicer is not None:
        health_servicer.enter_graceful_shutdown()
    server.stop(grace_s).wait()
    registry = _REGISTRY.get(server)
    if registry is not None:
        registry.close()


# ---- logging -------------------------------------------------------------------------------------------------------
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, and every ``extra=`` field of the record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: int = logging.INFO, fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


# ---- the process -----------------------------------------------------------------------------------------------------
def serve(address: str, *, store_url: str | None = None, token_file: str | None = None,
          tls_cert: str | None = None, tls_key: str | None = None, spaces: Sequence[str] | None = None,
          limits: Limits | None = None, max_workers: int = DEFAULT_MAX_WORKERS, grace_s: float = DEFAULT_GRACE_S,
          device_ttl_s: float = 1.0, refresh_s: float = 5.0, devices_refresh_s: float = 60.0) -> int:
    """Run a server until SIGTERM or SIGINT, then stop gracefully. Returns the exit code (0)."""
    if (tls_cert is None) != (tls_key is None):
        raise InvalidInputError("give both --tls-cert and --tls-key, or neither")
    tls = None
    if tls_cert is not None and tls_key is not None:
        try:
            tls = (Path(tls_key).read_bytes(), Path(tls_cert).read_bytes())
        except OSError as exc:
            raise InvalidInputError(f"cannot read the TLS key or certificate: {exc}") from None
    auth = TokenAuth.from_file(token_file)
    registry = ModelRegistry(store_url=store_url, spaces=spaces, device_ttl_s=device_ttl_s, refresh_s=refresh_s,
                             devices_refresh_s=devices_refresh_s)
    try:
        server, port = create_server(address, registry, auth=auth, limits=limits, tls=tls, max_workers=max_workers)
    except BaseException:
        registry.close()
        raise
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        log.info("received %s; shutting down", signal.Signals(signum).name, extra={"event": "signal"})
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    server.start()
    host = address.rsplit(":", 1)[0]
    log.info("listening on %s:%d", host, port,
             extra={"event": "listening", "address": f"{host}:{port}", "port": port, "store": registry.store.url,
                    "tls": tls is not None, "token": auth.enabled, "spaces": list(registry.spaces)})
    try:
        while not stop.wait(0.5):
            pass
    finally:
        stop_server(server, grace_s)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("stopped", extra={"event": "stopped"})
    return 0
