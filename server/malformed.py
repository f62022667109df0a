"""Requests whose bytes are not the method's protobuf message end as INVALID_ARGUMENT, not INTERNAL.

gRPC deserializes a request before any handler runs, and when the bytes do not parse it answers INTERNAL
("Exception deserializing request!") with no ErrorInfo and logs a traceback at ERROR, as for a bug. The
:class:`MalformedRequestInterceptor` wraps every method's deserializer so that a parse failure becomes a marker
value, and the method's behaviour so that the marker ends the call through :func:`server.errors.abort` with
INVALID_ARGUMENT, reason INVALID_INPUT, naming the method and the message type that did not parse.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import grpc

from nas_latency.errors import InvalidInputError
from server import errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Unparsed:
    """Stands for a request message that did not deserialize."""

    reason: str


def _safe(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # the protobuf runtime's DecodeError, or anything a custom one raises
            return _Unparsed(f"{type(exc).__name__}: {exc}")

    return parse


def _error(method: str, unparsed: _Unparsed) -> InvalidInputError:
    return InvalidInputError(f"{method}: the request is not a valid protobuf message of this method "
                             f"({unparsed.reason or 'unparseable bytes'})")


def _checked_stream(method: str, requests: Iterator[Any]) -> Iterator[Any]:
    for request in requests:
        if isinstance(request, _Unparsed):
            raise _error(method, request)
        yield request


def _wrap(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    deserializer = _safe(handler.request_deserializer)
    serializer = handler.response_serializer
    if not handler.request_streaming:
        behaviour = handler.unary_unary or handler.unary_stream

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            if isinstance(request, _Unparsed):
                log.info("%s: malformed request: %s", method, request.reason)
                errors.abort(context, _error(method, request))
            return behaviour(request, context)

        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(unary, request_deserializer=deserializer,
                                                        response_serializer=serializer)
        return grpc.unary_unary_rpc_method_handler(unary, request_deserializer=deserializer,
                                                   response_serializer=serializer)
    behaviour = handler.stream_unary or handler.stream_stream

    def streaming(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        return behaviour(_checked_stream(method, requests), context)

    if handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(streaming, request_deserializer=deserializer,
                                                     response_serializer=serializer)
    return grpc.stream_unary_rpc_method_handler(streaming, request_deserializer=deserializer,
                                                response_serializer=serializer)


class MalformedRequestInterceptor(grpc.ServerInterceptor):
    """Every method of the server: unparseable request bytes → INVALID_ARGUMENT / INVALID_INPUT. The wrapped
    handler is made once per method (the registered handlers do not change while the server runs)."""

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
                          handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        method = handler_call_details.method
        known = self._wrapped.get(method)
        if known is None or known[0] is not handler:
            known = (handler, _wrap(method, handler))
            self._wrapped[method] = known  # a benign race: two threads may wrap the same handler once each
        return known[1]
