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
