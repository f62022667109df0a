"""The store's tables, written once and rendered per dialect.

``SCHEMA_VERSION`` is the version this code writes and understands. A store whose ``schema_version`` table
holds a larger number was written by a newer nas-latency and is refused (:class:`FailedPreconditionError`)
without being touched. When the version moves, add a step to ``MIGRATIONS`` (from version N to N+1).

Key text columns use the ``"C"`` collation on PostgreSQL so that ``ORDER BY`` is bytewise, exactly as SQLite's
default ``BINARY`` collation: both backends list architectures in the same order.
"""

from __future__ import annotations

from typing import Final

from nas_latency.store.url import Dialect

SCHEMA_VERSION: Final = 1

_TYPES: Final[dict[Dialect, dict[str, str]]] = {
    "sqlite": {
        "id": "INTEGER PRIMARY KEY",
        "key": "TEXT",
        "text": "TEXT",
        "real": "REAL",
        "int": "INTEGER",
        "ts": "TEXT",  # ISO 8601, UTC
        "blob": "BLOB",
    },
    "postgresql": {
        "id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "key": 'TEXT COLLATE "C"',
        "text": "TEXT",
        "real": "DOUBLE PRECISION",
        "int": "BIGINT",
        "ts": "TIMESTAMPTZ",
        "blob": "BYTEA",
    },
}

VERSION_TABLE: Final = "CREATE TABLE IF NOT EXISTS schema_version (version {int} NOT NULL)"

_TABLES_V1: Final = (
    """CREATE TABLE IF NOT EXISTS devices (
        name {key} PRIMARY KEY,
        description {text} NOT NULL DEFAULT '',
        metadata {text} NOT NULL DEFAULT '{{}}',
        created_at {ts} NOT NULL,
        updated_at {ts} NOT NULL
    )""",
    # One row per (device, space, arch, source): a re-measured arch replaces the previous value from the same
    # source; values from different sources live side by side.
    """CREATE TABLE IF NOT EXISTS measurements (
        id {id},
        device {key} NOT NULL REFERENCES devices(name) ON DELETE CASCADE,
        space {key} NOT NULL,
        arch {key} NOT NULL,
        latency_ms {real} NOT NULL CHECK (latency_ms > 0),
        n_runs {int},
        iqr_ms {real},
        cv {real},
        source {key} NOT NULL,
        environment {text},
        request_id {key},
        created_at {ts} NOT NULL,
        UNIQUE (device, space, arch, source)
    )""",
    "CREATE INDEX IF NOT EXISTS measurements_by_space ON measurements (space, device, arch)",
    # One row per accepted add_measurements request id: makes contributions idempotent.
    """CREATE TABLE IF NOT EXISTS requests (
        request_id {key} PRIMARY KEY,
        device {key} NOT NULL REFERENCES devices(name) ON DELETE CASCADE,
        space {key} NOT NULL,
        source {key} NOT NULL,
        content_sha256 {key} NOT NULL,
        n_rows {int} NOT NULL,
        inserted {int} NOT NULL,
        replaced {int} NOT NULL,
        created_at {ts} NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS requests_by_device ON requests (device)",
    """CREATE TABLE IF NOT EXISTS artifacts (
        id {id},
        space {key} NOT NULL,
        name {key} NOT NULL,
        version {int} NOT NULL CHECK (version >= 1),
        kind {key} NOT NULL,
        manifest {text} NOT NULL,
        blob {blob} NOT NULL,
        size_bytes {int} NOT NULL,
        sha256 {key} NOT NULL,
        created_at {ts} NOT NULL,
        UNIQUE (space, name, version)
    )""",
)

MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {}
"""``MIGRATIONS[n]``: statements that take a version-``n`` store to version ``n + 1``."""


def render(statement: str, dialect: Dialect) -> str:
    """``statement`` with its ``{type}`` placeholders filled in for ``dialect``."""
    return statement.format(**_TYPES[dialect])


def version_table_ddl(dialect: Dialect) -> str:
    return render(VERSION_TABLE, dialect)


def create_ddl(dialect: Dialect) -> list[str]:
    """The statements that create every table of the current version (idempotent)."""
    return [render(statement, dialect) for statement in _TABLES_V1]


def migration_ddl(from_version: int, dialect: Dialect) -> list[str]:
    return [render(statement, dialect) for statement in MIGRATIONS.get(from_version, ())]
