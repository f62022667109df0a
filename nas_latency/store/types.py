"""Plain, frozen records that go in and out of a :class:`~nas_latency.store.Store`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping


@dataclass(frozen=True, slots=True)
class MeasurementRow:
    """One measured architecture, as a caller hands it to the store.

    ``latency_ms`` is the summary latency (typically the median over ``n_runs`` timed runs); ``iqr_ms`` its
    inter-quartile range and ``cv`` the coefficient of variation (std / mean) over those runs, when known.
    ``environment`` is free-form JSON-serializable context (runtime, versions, batch size, threads...).
    Validation happens in the store, which names the offending row.
    """

    arch: str
    latency_ms: float
    n_runs: int | None = None
    iqr_ms: float | None = None
    cv: float | None = None
    environment: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Measurement:
    """A stored measurement: a :class:`MeasurementRow` plus where it belongs and where it came from."""

    device: str
    space: str
    arch: str
    latency_ms: float
    n_runs: int | None
    iqr_ms: float | None
    cv: float | None
    source: str
    environment: Mapping[str, Any] | None
    request_id: str | None
    created_at: datetime

    def to_row(self) -> MeasurementRow:
        return MeasurementRow(self.arch, self.latency_ms, self.n_runs, self.iqr_ms, self.cv, self.environment)


@dataclass(frozen=True, slots=True)
class Device:
    """A registered device. ``metadata`` is free-form JSON (vendor, runtime, precision, batch size...)."""

    name: str
    description: str
    metadata: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DeviceSummary:
    """A device with, per search space, the number of distinct architectures measured on it (all sources)."""

    name: str
    description: str
    created_at: datetime
    measurement_counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def total_measurements(self) -> int:
        return sum(self.measurement_counts.values())


@dataclass(frozen=True, slots=True)
class AddResult:
    """Outcome of :meth:`Store.add_measurements`.

    ``inserted``: architectures new for this (device, space, source); ``replaced``: architectures whose previous
    value from the same source was overwritten. For a duplicate request (``duplicate_request=True``) nothing was
    written now and the counts are those recorded for the original request, so a retried RPC answers the same.
    """

    inserted: int
    replaced: int
    duplicate_request: bool = False


@dataclass(frozen=True, slots=True)
class ReplaceResult:
    """Outcome of :meth:`Store.replace_measurements`: new, overwritten, and dropped architectures."""

    inserted: int
    replaced: int
    removed: int


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """Identity of a stored artifact version."""

    space: str
    name: str
    version: int
    sha256: str


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """An artifact version without its blob (what listings return)."""

    space: str
    name: str
    version: int
    kind: str
    manifest: Mapping[str, Any]
    size_bytes: int
    sha256: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Artifact:
    """An artifact version with its bytes (checked against ``sha256`` when read)."""

    space: str
    name: str
    version: int
    kind: str
    manifest: Mapping[str, Any]
    blob: bytes = field(repr=False)
    sha256: str
    created_at: datetime

    @property
    def ref(self) -> ArtifactRef:
        return ArtifactRef(self.space, self.name, self.version, self.sha256)
