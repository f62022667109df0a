"""Measurements, devices, request ids and model artifacts: SQLite by default, PostgreSQL by URL.

>>> from nas_latency.store import open_store, MeasurementRow
>>> with open_store("sqlite:///:memory:") as store:
...     _ = store.upsert_device("pixel4", description="Pixel 4, TFLite CPU")
...     store.add_measurements("pixel4", "nasbench201", [MeasurementRow("|none~0|+|...|", 3.2)],
...                            source="contribute", request_id="r-1")
AddResult(inserted=1, replaced=0, duplicate_request=False)

The rules (transactions, durability, measurement uniqueness, idempotency, thread safety) are in
:mod:`nas_latency.store.store`; the URL forms in :mod:`nas_latency.store.url`.
"""

from nas_latency.store.home import HOME_ENV, default_store_url, nas_latency_home
from nas_latency.store.schema import SCHEMA_VERSION
from nas_latency.store.store import Store, open_store
from nas_latency.store.types import (
    AddResult,
    Artifact,
    ArtifactInfo,
    ArtifactRef,
    Device,
    DeviceSummary,
    Measurement,
    MeasurementRow,
    ReplaceResult,
)
from nas_latency.store.url import StoreURL, parse_store_url, redact
from nas_latency.store.validate import DEVICE_NAME_PATTERN, SPACE_PATTERN

__all__ = [
    "AddResult",
    "Artifact",
    "ArtifactInfo",
    "ArtifactRef",
    "DEVICE_NAME_PATTERN",
    "Device",
    "DeviceSummary",
    "HOME_ENV",
    "Measurement",
    "MeasurementRow",
    "ReplaceResult",
    "SCHEMA_VERSION",
    "SPACE_PATTERN",
    "Store",
    "StoreURL",
    "default_store_url",
    "nas_latency_home",
    "open_store",
    "parse_store_url",
    "redact",
]
