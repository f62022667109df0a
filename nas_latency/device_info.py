"""What a predictor (embedded or remote) says about a registered device and about measurements added to it. A
module of its own so the gRPC client can use it without importing the embedded predictor's dependencies."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceInfo:
    """A registered device in one space."""

    name: str
    space: str
    description: str
    n_measurements: int


@dataclass(frozen=True)
class ContributionResult:
    """Outcome of ``contribute_measurements`` (:class:`~nas_latency.predictor.Predictor` and
    :class:`~nas_latency.client.LatencyClient`).

    ``inserted``: architectures newly measured (for this device, space and source); ``replaced``: architectures
    whose earlier contributed value these replaced; ``duplicate_request``: the request id was seen before, so
    nothing was written and the counts are the first call's; ``model_refitted``: the device's model was adapted to
    all its measurements now (not when it has fewer than the models need).
    """

    inserted: int
    replaced: int
    duplicate_request: bool
    device: DeviceInfo
    model_refitted: bool
