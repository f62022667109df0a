"""Validation at the store boundary: every error names the row and field it is about."""

from __future__ import annotations

import json
import math
import numbers
import re
from typing import Any, Iterable, Mapping

from nas_latency.errors import InvalidInputError
from nas_latency.store.types import MeasurementRow

DEVICE_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
"""Device names: a letter or digit, then up to 127 letters, digits, ``.``, ``_`` or ``-``."""
SPACE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
"""Search-space names (``nasbench201``, ``fbnet``...)."""
SOURCE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}"
"""Measurement sources and artifact kinds (``register``, ``contribute``, ``bench:cuda``...)."""
ARTIFACT_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,255}"
"""Artifact names; ``/`` allowed so that names can nest (``device/pixel4/mlp``)."""
REQUEST_ID_PATTERN = r"[!-~]{1,200}"
"""Request ids: 1-200 printable ASCII characters, no whitespace (a UUID fits)."""
MAX_ARCH_LENGTH = 8192

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_name(value: object, what: str, pattern: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise InvalidInputError(f"{what} must match {pattern}, got {value!r}")
    return value


def check_device(value: object) -> str:
    return check_name(value, "device name", DEVICE_NAME_PATTERN)


def check_space(value: object) -> str:
    return check_name(value, "space", SPACE_PATTERN)


def check_source(value: object) -> str:
    return check_name(value, "source", SOURCE_PATTERN)


def check_request_id(value: object) -> str:
    return check_name(value, "request_id", REQUEST_ID_PATTERN)


def check_positive_int(value: object, what: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise InvalidInputError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def to_json(value: Mapping[str, Any] | None, what: str) -> str | None:
    """Canonical JSON text of a JSON object (``None`` stays ``None``)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{what} must be a JSON object (a dict), got {type(value).__name__}")
    try:
        return json.dumps(dict(value), sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} is not JSON-serializable: {exc}") from exc


def from_json(text: str | None) -> dict[str, Any] | None:
    return None if text is None else json.loads(text)


def _real(value: object, where: str, field: str, *, positive: bool, optional: bool) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"{where}: {field} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or (number <= 0 if positive else number < 0):
        raise InvalidInputError(f"{where}: {field} must be finite and {'> 0' if positive else '>= 0'}, got {value!r}")
    return number


def check_rows(rows: Iterable[MeasurementRow], *, allow_empty: bool) -> list[MeasurementRow]:
    """Validated, normalized copies of ``rows`` (plain floats and ints, canonical JSON-able environment).

    Rules: ``arch`` a non-empty string without surrounding whitespace or control characters, at most
    8192 characters, unique within the batch; ``latency_ms`` finite and > 0; ``iqr_ms`` and ``cv`` finite and
    >= 0 when given; ``n_runs`` an integer >= 1 when given; ``environment`` a JSON object when given.
    """
    if isinstance(rows, (str, bytes, Mapping)):
        raise InvalidInputError(f"rows must be an iterable of MeasurementRow, got {type(rows).__name__}")
    out: list[MeasurementRow] = []
    first_index: dict[str, int] = {}
    for index, row in enumerate(rows):
        where = f"rows[{index}]"
        if not isinstance(row, MeasurementRow):
            raise InvalidInputError(f"{where} must be a MeasurementRow, got {type(row).__name__}")
        arch = row.arch
        if not isinstance(arch, str) or not arch.strip():
            raise InvalidInputError(f"{where}: arch must be a non-empty string, got {arch!r}")
        where = f"rows[{index}] (arch {arch[:80]!r})"
        if arch != arch.strip() or _CONTROL.search(arch):
            raise InvalidInputError(f"{where}: arch has surrounding whitespace or control characters")
        if len(arch) > MAX_ARCH_LENGTH:
            raise InvalidInputError(f"{where}: arch is longer than {MAX_ARCH_LENGTH} characters")
        if arch in first_index:
            raise InvalidInputError(f"{where}: arch repeats rows[{first_index[arch]}]; give each arch once")
        first_index[arch] = index
        latency_ms = _real(row.latency_ms, where, "latency_ms", positive=True, optional=False)
        iqr_ms = _real(row.iqr_ms, where, "iqr_ms", positive=False, optional=True)
        cv = _real(row.cv, where, "cv", positive=False, optional=True)
        n_runs = None if row.n_runs is None else check_positive_int(row.n_runs, f"{where}: n_runs")
        environment = from_json(to_json(row.environment, f"{where}: environment"))
        assert latency_ms is not None
        out.append(MeasurementRow(arch, latency_ms, n_runs, iqr_ms, cv, environment))
    if not out and not allow_empty:
        raise InvalidInputError("rows is empty; give at least one measurement")
    return out
