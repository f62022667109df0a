"""One exception hierarchy for the whole project.

Every error carries a machine-readable ``reason`` (an UPPER_SNAKE string, stable across releases) so that the
CLI can map it to an exit code and the server to a gRPC status with an ``ErrorInfo`` detail, and the client can
turn it back into the same typed exception.
"""

from __future__ import annotations


class NasLatencyError(Exception):
    """Base class of every error this project raises on purpose."""

    reason: str = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidInputError(NasLatencyError, ValueError):
    """The caller sent something malformed: a bad architecture string, a corrupt file, a bad value."""

    reason = "INVALID_INPUT"


class UnsupportedOperatorError(InvalidInputError):
    """A graph holds an operator the IR cannot represent; the message names the node."""

    reason = "UNSUPPORTED_OPERATOR"

    def __init__(self, message: str, *, node: str, operator: str) -> None:
        super().__init__(message)
        self.node = node
        self.operator = operator


class NotFoundError(NasLatencyError, LookupError):
    """A named thing (space, device, architecture, model) does not exist."""

    reason = "NOT_FOUND"


class FailedPreconditionError(NasLatencyError):
    """The system is not in a state to do this (an unfitted model, an artifact of another format version)."""

    reason = "FAILED_PRECONDITION"


class ConflictError(NasLatencyError):
    """The request contradicts state already recorded (a reused request id with different content)."""

    reason = "CONFLICT"


class StoreUnavailableError(FailedPreconditionError):
    """The store cannot be reached or is busy (a database that is down, a lock held for too long); retryable."""

    reason = "STORE_UNAVAILABLE"


# ---- errors a remote call can meet (raised by the server, re-raised by the client) -----------------------------
class LimitExceededError(InvalidInputError):
    """A request over one of the server's bounds (archs per request, layers per network, message size)."""

    reason = "LIMIT_EXCEEDED"

    def __init__(self, message: str, *, limit: str, value: int | None = None, maximum: int | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.limit = limit
        self.value = value
        self.maximum = maximum


class UnauthenticatedError(NasLatencyError):
    """A write without a token on a server that requires one."""

    reason = "UNAUTHENTICATED"


class PermissionDeniedError(NasLatencyError):
    """A write with a token the server does not accept."""

    reason = "PERMISSION_DENIED"


class DeadlineExceededError(NasLatencyError):
    """The call did not finish within its deadline (the server stops working on it too)."""

    reason = "DEADLINE_EXCEEDED"


class ServerUnavailableError(NasLatencyError):
    """The server cannot be reached, or is shutting down; retryable."""

    reason = "UNAVAILABLE"
