"""The tiny dialect layer: how to connect, run a transaction, spell a placeholder, and read a timestamp.

Everything else (the SQL, the rules) lives once, in :mod:`nas_latency.store.store`. Statements are written
with ``?`` placeholders and no literal ``%`` or ``?``; :meth:`Backend.sql` turns them into the driver's style.
Connections run in autocommit mode and every unit of work is an explicit transaction: ``BEGIN IMMEDIATE`` /
``BEGIN`` on SQLite (writers queue on the database lock, readers never block), ``BEGIN`` at the server's
default isolation (READ COMMITTED) on PostgreSQL, with row or advisory locks where two writers could race.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from nas_latency.errors import FailedPreconditionError, NasLatencyError, StoreUnavailableError
from nas_latency.store.url import Dialect, StoreURL

SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another process's write to finish before giving up (retryable error)."""


class Backend(ABC):
    """One database engine as the store sees it."""

    dialect: Dialect
    for_update: str = ""
    """Suffix that locks the selected rows until the transaction ends (empty where writers are serialized)."""

    def __init__(self, url: StoreURL) -> None:
        self.url = url

    @abstractmethod
    def connect(self) -> Any:
        """A new DB-API connection in autocommit mode, session settings applied."""

    @abstractmethod
    def transaction(self, conn: Any, *, write: bool) -> Any:
        """Context manager: one transaction, committed on normal exit, rolled back on any exception."""

    def sql(self, statement: str) -> str:
        return statement

    def lock(self, cur: Any, key: str) -> None:
        """Serialize transactions that pass the same ``key`` until they end (no-op where writers are serial)."""

    def prepare(self, cur: Any) -> None:
        """Run first in the schema-initialization transaction (PostgreSQL: lock, create the schema)."""

    @abstractmethod
    def has_table(self, cur: Any, name: str) -> bool:
        """Whether ``name`` exists (checked first, so that a role without CREATE rights can open a store)."""

    @abstractmethod
    def ts_param(self, value: datetime) -> Any: ...

    @abstractmethod
    def ts_value(self, value: Any) -> datetime: ...

    @abstractmethod
    def reset(self, conn: Any) -> bool:
        """Make a returned connection clean for reuse; ``False`` if it must be thrown away."""

    @abstractmethod
    def translate(self, exc: Exception) -> NasLatencyError | None:
        """The project error for a driver error, or ``None`` to let the driver error propagate (a bug)."""

    def close(self, conn: Any) -> None:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - closing a dead connection must not mask anything
            pass


class SQLiteBackend(Backend):
    """SQLite in WAL mode with ``synchronous=FULL``: a commit is on disk before the call returns."""

    dialect: Dialect = "sqlite"

    def connect(self) -> sqlite3.Connection:
        path = self.url.path
        assert path is not None
        if not self.url.is_memory:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise FailedPreconditionError(f"cannot create the directory of SQLite store {path}: {exc}") from exc
        try:
            conn = sqlite3.connect(
                path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            try:
                if not self.url.is_memory:
                    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                    if str(mode).lower() != "wal":
                        raise FailedPreconditionError(f"SQLite store {path} cannot use WAL mode (got {mode!r})")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            except BaseException:
                conn.close()
                raise
        except sqlite3.Error as exc:
            translated = self.translate(exc)
            if translated is None:
                raise
            raise translated from exc
        return conn

    @contextmanager
    def transaction(self, conn: sqlite3.Connection, *, write: bool) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def has_table(self, cur: sqlite3.Cursor, name: str) -> bool:
        cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return cur.fetchone() is not None

    def ts_param(self, value: datetime) -> str:
        return value.astimezone(timezone.utc).isoformat(timespec="microseconds")

    def ts_value(self, value: Any) -> datetime:
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)

    def reset(self, conn: sqlite3.Connection) -> bool:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return True
        except sqlite3.Error:
            return False

    def translate(self, exc: Exception) -> NasLatencyError | None:
        where = f"SQLite store {self.url.path}"
        if isinstance(exc, sqlite3.OperationalError):
            return StoreUnavailableError(f"{where} is unavailable: {exc}")
        if type(exc) is sqlite3.DatabaseError:  # "file is not a database" and the like
            return FailedPreconditionError(f"{where} is not a usable SQLite database: {exc}")
        return None


class PostgresBackend(Backend):
    """PostgreSQL through psycopg 3 (imported only when a PostgreSQL URL is opened)."""

    dialect: Dialect = "postgresql"
    for_update = " FOR UPDATE"

    def __init__(self, url: StoreURL) -> None:
        super().__init__(url)
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - psycopg is a declared dependency
            raise FailedPreconditionError(
                f"opening {url.redacted} needs psycopg 3: pip install 'psycopg[binary]>=3.2'"
            ) from exc
        self._psycopg = psycopg

    def connect(self) -> Any:
        psycopg = self._psycopg
        try:
            conn = psycopg.connect(self.url.conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise StoreUnavailableError(
                f"cannot connect to the PostgreSQL store {self.url.redacted}: {str(exc).strip()}"
            ) from exc
        try:
            conn.execute("SET TIME ZONE 'UTC'")
            if self.url.schema is not None:
                from psycopg import sql

                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.url.schema)))
        except psycopg.Error as exc:
            conn.close()
            translated = self.translate(exc)
            if translated is None:
                raise
            raise translated from exc
        return conn

    def transaction(self, conn: Any, *, write: bool) -> Any:
        return conn.transaction()

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def lock(self, cur: Any, key: str) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))

    def prepare(self, cur: Any) -> None:
        self.lock(cur, f"nas-latency:schema:{self.url.schema or ''}")
        if self.url.schema is not None:
            from psycopg import sql

            cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.url.schema,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.url.schema)))

    def has_table(self, cur: Any, name: str) -> bool:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (name,))
        row = cur.fetchone()
        return bool(row and row[0])

    def ts_param(self, value: datetime) -> datetime:
        return value

    def ts_value(self, value: Any) -> datetime:
        return value.astimezone(timezone.utc)

    def reset(self, conn: Any) -> bool:
        from psycopg.pq import TransactionStatus

        if conn.closed or conn.broken:
            return False
        try:
            if conn.info.transaction_status != TransactionStatus.IDLE:
                conn.rollback()
            return conn.info.transaction_status == TransactionStatus.IDLE
        except self._psycopg.Error:
            return False

    def translate(self, exc: Exception) -> NasLatencyError | None:
        if isinstance(exc, self._psycopg.OperationalError):  # connection lost, deadlock, serialization, ...
            return StoreUnavailableError(f"PostgreSQL store {self.url.redacted} is unavailable: {str(exc).strip()}")
        return None


def make_backend(url: StoreURL) -> Backend:
    return SQLiteBackend(url) if url.dialect == "sqlite" else PostgresBackend(url)
