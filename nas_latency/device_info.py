"""What a predictor (embedded or remote) says about a registered device. A module of its own so the gRPC client
can use it without importing the embedded predictor's dependencies."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceInfo:
    """A registered device in one space."""

    name: str
    space: str
    description: str
    n_measurements: int
