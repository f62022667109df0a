"""Bounds on what one request may ask for: message size, architectures, networks, layers, measurements.

Counts over a bound raise :class:`~nas_latency.errors.LimitExceededError` (INVALID_ARGUMENT, reason
LIMIT_EXCEEDED, with the limit's name, the value and the maximum in the ErrorInfo metadata) before any work is
done. A message over ``max_message_bytes`` never reaches a handler: gRPC itself rejects it with
RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Iterable

from nas_latency.errors import InvalidInputError, LimitExceededError

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Per-request bounds (all inclusive)."""

    #: largest request or response message, in bytes (gRPC's receive and send limits)
    max_message_bytes: int = 64 * MIB
    #: architecture ids in one Predict request (all of NAS-Bench-201 is 15,625)
    max_archs_per_request: int = 100_000
    #: arbitrary networks (layer tables or ONNX models) in one Predict request
    max_networks_per_request: int = 64
    #: layers of one network (layer table, or the IR an ONNX model converts to)
    max_layers_per_network: int = 10_000
    #: measurements in one RegisterDevice or ContributeMeasurements request, or in an inline signature
    max_measurements_per_request: int = 100_000
    #: architectures one GetSignatureSet may ask for
    max_signature_size: int = 1_000
    #: characters of one identifier: an architecture id, a device or space name, a request id
    max_identifier_chars: int = 4_096
    #: characters of one free-text field: a device description, a contribution's environment_json
    max_text_chars: int = 65_536

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidInputError(f"limit {f.name} must be a positive integer, got {value!r}")

    def check(self, limit: str, value: int, *, what: str) -> None:
        """Raise :class:`LimitExceededError` when ``value`` exceeds the limit called ``limit``."""
        maximum = getattr(self, limit)
        if value > maximum:
            raise LimitExceededError(
                f"{what}: {value} is over the server's limit of {maximum} ({limit})",
                limit=limit, value=value, maximum=maximum,
            )

    def check_length(self, limit: str, texts: Iterable[str], *, what: str) -> None:
        """Raise :class:`LimitExceededError` when the longest of ``texts`` has more characters than the limit
        called ``limit`` allows (the value reported is that length)."""
        self.check(limit, max(map(len, texts), default=0), what=f"{what}: characters")

    def grpc_options(self) -> list[tuple[str, int]]:
        return [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
        ]
