"""The error contract of the gRPC surface: the server sends every error as a status with a
``google.rpc.ErrorInfo`` of domain :data:`ERROR_DOMAIN` whose reason names the error and whose metadata carries its
class's fields (:func:`error_metadata`); :func:`error_from_rpc` turns a failed call back into the typed exception of
:mod:`nas_latency.errors`, the same class, reason and fields the embedded predictor raises."""

from __future__ import annotations

import grpc

from nas_latency.errors import (
    ConflictError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidInputError,
    LimitExceededError,
    NasLatencyError,
    NotFoundError,
    PermissionDeniedError,
    ServerUnavailableError,
    StoreUnavailableError,
    UnauthenticatedError,
    UnsupportedOperatorError,
)

#: ``ErrorInfo.domain`` of every error the server sends
ERROR_DOMAIN = "nas-latency"

# reason -> class, for reasons that name a class of their own
_REASON_CLASSES: dict[str, type[NasLatencyError]] = {
    cls.reason: cls
    for cls in (InvalidInputError, UnsupportedOperatorError, LimitExceededError, NotFoundError, ConflictError,
                FailedPreconditionError, StoreUnavailableError, UnauthenticatedError, PermissionDeniedError,
                DeadlineExceededError)
}
# status code -> class, for any other reason (the reason is kept on the instance)
_CODE_CLASSES: dict[grpc.StatusCode, type[NasLatencyError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidInputError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidInputError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: ConflictError,
    grpc.StatusCode.ABORTED: ConflictError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNAVAILABLE: ServerUnavailableError,
    grpc.StatusCode.CANCELLED: ServerUnavailableError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: LimitExceededError,
}


def error_metadata(exc: BaseException) -> dict[str, str]:
    """The ``ErrorInfo.metadata`` the server sends with ``exc``: the fields of its class beyond the message, which
    :func:`error_from_rpc` reads back (an unsupported operator's node and operator, an exceeded limit's name,
    value and maximum)."""
    if isinstance(exc, UnsupportedOperatorError):
        return {"node": str(exc.node), "operator": str(exc.operator)}
    if isinstance(exc, LimitExceededError):
        return {"limit": exc.limit, "value": str(exc.value), "maximum": str(exc.maximum)}
    return {}


def error_from_rpc(error: grpc.RpcError) -> NasLatencyError:
    """The typed exception for a failed call: the class its ErrorInfo reason names, else the class of its status
    code (for reasons of subclasses, e.g. MODEL_NOT_FITTED, and statuses without ErrorInfo), with the reason and
    message kept."""
    from grpc_status import rpc_status

    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = (error.details() if hasattr(error, "details") else None) or str(code)
    reason: str | None = None
    metadata: dict[str, str] = {}
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except Exception:  # a status whose details do not parse: fall back on the code
        status = None
    if status is not None:
        from google.rpc import error_details_pb2

        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                if info.domain == ERROR_DOMAIN:
                    reason, metadata = info.reason, dict(info.metadata)
                    break
    # the reason names the class when the server is ours (the domain matched); else the code decides
    cls = _REASON_CLASSES.get(reason or "") or _CODE_CLASSES.get(code, NasLatencyError)
    if cls is UnsupportedOperatorError:
        exc: NasLatencyError = UnsupportedOperatorError(message, node=metadata.get("node", ""),
                                                        operator=metadata.get("operator", ""))
    elif cls is LimitExceededError:
        exc = LimitExceededError(
            message, limit=metadata.get("limit", "max_message_bytes"),
            value=int(metadata["value"]) if metadata.get("value", "").isdigit() else None,
            maximum=int(metadata["maximum"]) if metadata.get("maximum", "").isdigit() else None,
            reason=reason or ("MESSAGE_TOO_LARGE" if code is grpc.StatusCode.RESOURCE_EXHAUSTED else None),
        )
    else:
        exc = cls(message)
    if reason:
        exc.reason = reason
    exc.status_code = code  # type: ignore[attr-defined]
    return exc


__all__ = ["ERROR_DOMAIN", "error_from_rpc", "error_metadata"]
