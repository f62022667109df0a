"""The one place that maps the project's exceptions to gRPC status codes with a ``google.rpc.ErrorInfo`` reason.

Every RPC handler goes through :func:`abort`. The client (:mod:`nas_latency.client`) reads the code and the
ErrorInfo back and raises the same typed exception with the same ``reason``.

============================================  ====================  ==============================================
exception (``nas_latency``)                   status code           ErrorInfo reason
============================================  ====================  ==============================================
``UnsupportedOperatorError``                  INVALID_ARGUMENT      UNSUPPORTED_OPERATOR (metadata: node, operator)
``LimitExceededError``                        INVALID_ARGUMENT      LIMIT_EXCEEDED (metadata: limit, value, maximum)
``InvalidInputError``                         INVALID_ARGUMENT      INVALID_INPUT
``NotFoundError``                             NOT_FOUND             NOT_FOUND
``ConflictError``                             ALREADY_EXISTS        CONFLICT
``StoreUnavailableError``                     UNAVAILABLE           STORE_UNAVAILABLE
``FailedPreconditionError``                   FAILED_PRECONDITION   FAILED_PRECONDITION (MODEL_NOT_FITTED, ...)
``UnauthenticatedError``                      UNAUTHENTICATED       TOKEN_MISSING
``PermissionDeniedError``                     PERMISSION_DENIED     TOKEN_INVALID
``DeadlineExceededError``                     DEADLINE_EXCEEDED     DEADLINE_EXCEEDED, MODELS_LOADING
any other exception (a bug)                   INTERNAL              INTERNAL (details only in the server log)
============================================  ====================  ==============================================

A subclass keeps its own ``reason`` (e.g. ``NotFittedError`` is FAILED_PRECONDITION with MODEL_NOT_FITTED).
"""

from __future__ import annotations

import logging
import uuid
from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from nas_latency.errors import (
    ConflictError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidInputError,
    LimitExceededError,
    NasLatencyError,
    NotFoundError,
    PermissionDeniedError,
    StoreUnavailableError,
    UnauthenticatedError,
    UnsupportedOperatorError,
)
from nas_latency.rpc_errors import ERROR_DOMAIN, error_metadata

log = logging.getLogger(__name__)

#: exception class -> status code; the first matching entry wins, so subclasses come before their bases.
STATUS_CODES: tuple[tuple[type[NasLatencyError], grpc.StatusCode], ...] = (
    (UnsupportedOperatorError, grpc.StatusCode.INVALID_ARGUMENT),
    (LimitExceededError, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (ConflictError, grpc.StatusCode.ALREADY_EXISTS),
    (StoreUnavailableError, grpc.StatusCode.UNAVAILABLE),
    (FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (DeadlineExceededError, grpc.StatusCode.DEADLINE_EXCEEDED),
)

INTERNAL_REASON = "INTERNAL"
#: longest status message and ErrorInfo metadata value sent, in characters: the status travels in the response
#: trailers (the message twice, once base64-encoded inside the details), which clients cap at 8–16 KiB, so an
#: error quoting a huge input would arrive as RESOURCE_EXHAUSTED instead of itself
MAX_MESSAGE_CHARS = 1_024
MAX_METADATA_CHARS = 256


def clip(text: str, maximum: int) -> str:
    """``text``, cut to ``maximum`` characters with a note of how many were left out."""
    if len(text) <= maximum:
        return text
    note = f" … [{len(text) - maximum} more characters]"
    return text[:maximum] + note


def status_code(exc: BaseException) -> grpc.StatusCode:
    """The canonical code of ``exc`` (INTERNAL for anything that is not one of the project's errors)."""
    for cls, code in STATUS_CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def to_status(exc: BaseException) -> status_pb2.Status:
    """``exc`` as a ``google.rpc.Status`` with one ``ErrorInfo`` detail (domain ``nas-latency``).

    Errors that are not the project's (bugs) become INTERNAL with an incident id; their message and traceback go
    to the server log only.
    """
    code = status_code(exc)
    if isinstance(exc, NasLatencyError) and code is not grpc.StatusCode.INTERNAL:
        reason, message, metadata = exc.reason, exc.message, error_metadata(exc)
    else:
        incident = uuid.uuid4().hex[:12]
        log.error("internal error (incident %s)", incident, exc_info=exc, extra={"incident": incident})
        reason, message, metadata = INTERNAL_REASON, f"internal server error (incident {incident})", {}
    message = clip(message, MAX_MESSAGE_CHARS)
    metadata = {key: clip(value, MAX_METADATA_CHARS) for key, value in metadata.items()}
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata))
    return status_pb2.Status(code=code.value[0], message=message, details=[detail])


def abort(context: grpc.ServicerContext, exc: BaseException) -> NoReturn:
    """End the RPC with the status of ``exc`` (raises, as ``context.abort`` does)."""
    context.abort_with_status(rpc_status.to_status(to_status(exc)))
    raise AssertionError("unreachable: abort_with_status raises")  # pragma: no cover


assert code_pb2.INVALID_ARGUMENT == grpc.StatusCode.INVALID_ARGUMENT.value[0]  # the two numberings agree
