"""Which architectures a held-out device is scored on: HELP's query set (:func:`help_query_indices`) for the
spaces HELP evaluated, and every measured architecture (:func:`all_query_indices`); the signature architectures
are never scored."""

from __future__ import annotations

from typing import Final, Literal, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError

ScoringSet = Literal["help", "all", "twins"]

#: Spaces scored on HELP's query set as well as on all architectures.
HELP_SPACES: Final[frozenset[str]] = frozenset({"nasbench201", "fbnet"})
#: HELP's query architectures: official index ``HELP_QUERY_RANGE[0] .. HELP_QUERY_RANGE[1] - 1``.
HELP_QUERY_RANGE: Final[tuple[int, int]] = (900, 1900)
#: Share of the query set dropped at each end (fastest and slowest on the scored device).
HELP_TRIM_FRACTION: Final[float] = 0.1


def help_query_indices(
    arch_ids: np.ndarray,
    latency_ms: np.ndarray,
    signature_rows: Sequence[int] | np.ndarray = (),
    *,
    id_range: tuple[int, int] = HELP_QUERY_RANGE,
    trim_fraction: float = HELP_TRIM_FRACTION,
) -> np.ndarray:
    """Rows of HELP's query set on one device: official index in ``id_range`` (half-open), measured, without
    the ``round(trim_fraction * n)`` fastest and as many slowest on *this* device (ties broken by row order),
    then without the signature rows. Sorted row positions."""
    ids = np.asarray(arch_ids)
    y = np.asarray(latency_ms, dtype=np.float64)
    if ids.shape != y.shape:
        raise InvalidInputError(f"help_query_indices: {ids.shape} arch ids but latencies of shape {y.shape}")
    if not 0 <= trim_fraction < 0.5:
        raise InvalidInputError(f"help_query_indices: trim_fraction must be in [0, 0.5), got {trim_fraction}")
    rows = np.flatnonzero((ids >= id_range[0]) & (ids < id_range[1]) & np.isfinite(y))
    rows = rows[np.argsort(ids[rows], kind="stable")]  # by official index, so tie-breaking is well defined
    drop = int(round(trim_fraction * rows.size))
    order = np.argsort(y[rows], kind="stable")
    kept = rows[order[drop: rows.size - drop]]
    return np.setdiff1d(kept, np.asarray(signature_rows, dtype=np.intp))


def all_query_indices(latency_ms: np.ndarray, signature_rows: Sequence[int] | np.ndarray = ()) -> np.ndarray:
    """Every measured row except the signature rows."""
    rows = np.flatnonzero(np.isfinite(np.asarray(latency_ms, dtype=np.float64)))
    return np.setdiff1d(rows, np.asarray(signature_rows, dtype=np.intp))


def scoring_sets(space: str) -> tuple[ScoringSet, ...]:
    return ("help", "all") if space in HELP_SPACES else ("all",)


__all__ = [
    "HELP_QUERY_RANGE",
    "HELP_SPACES",
    "HELP_TRIM_FRACTION",
    "ScoringSet",
    "all_query_indices",
    "help_query_indices",
    "scoring_sets",
]
