"""The store: devices, their measurements, idempotency records and model artifacts, in SQLite or PostgreSQL.

Rules every method keeps:

- **One write, one transaction.** Each writing method runs in a single transaction that is committed before it
  returns; on any error it is rolled back completely. SQLite runs in WAL mode with ``synchronous=FULL``, so an
  acknowledged write survives a process kill or a power cut; PostgreSQL commits with its default durability.
- **Measurement uniqueness.** At most one row per ``(device, space, arch, source)``. A re-measured
  architecture replaces the previous value *from the same source*; values from different sources (say
  ``register`` and ``contribute``) are kept side by side and :meth:`Store.measurements` returns them all
  (ordered by ``arch``, then ``source``). Callers that want one value per arch pick a source or combine.
- **Idempotent contributions.** :meth:`Store.add_measurements` with a ``request_id`` records the id with a
  digest of ``(device, space, source, rows)`` in the same transaction as the rows. The same id again writes
  nothing and answers ``duplicate_request=True`` with the original counts; the same id with other content raises
  :class:`~nas_latency.errors.ConflictError`. Concurrent retries on several replicas are safe: the second waits
  for the first and then sees its record.
- **Thread safety.** A :class:`Store` is safe to share between threads (a server's thread pool). It keeps a
  small pool of connections; each call borrows one for its whole transaction and gives it back, so calls run
  concurrently up to ``max_connections`` and queue beyond. ``sqlite:///:memory:`` uses a single connection.
  After ``fork()`` the child silently drops the inherited connections and opens its own.
- **Several processes or replicas** may open the same SQLite file or PostgreSQL schema; each sees the others'
  committed writes. Concurrent writers to one device are serialized (a row lock on the device in PostgreSQL,
  the database write lock in SQLite); artifact versions are allocated under a per-name lock.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping, Sequence

from nas_latency.errors import ConflictError, FailedPreconditionError, InvalidInputError, NotFoundError
from nas_latency.store import schema
from nas_latency.store.backends import Backend, make_backend
from nas_latency.store.home import default_store_url
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
from nas_latency.store.url import StoreURL, parse_store_url
from nas_latency.store.validate import (
    ARTIFACT_NAME_PATTERN,
    SOURCE_PATTERN,
    check_device,
    check_name,
    check_positive_int,
    check_request_id,
    check_rows,
    check_source,
    check_space,
    from_json,
    to_json,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_CONNECTIONS = 8
#: artifacts named ``<device><separator>...`` belong to that device and are deleted with it
DEVICE_ARTIFACT_SEPARATOR = "/"
_KNOWN_NAMES_SHOWN = 5

_MEASUREMENT_COLUMNS = (
    "device, space, arch, latency_ms, n_runs, iqr_ms, cv, source, environment, request_id, created_at"
)
_INSERT_MEASUREMENT = f"INSERT INTO measurements ({_MEASUREMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_UPSERT_MEASUREMENT = _INSERT_MEASUREMENT + (
    " ON CONFLICT (device, space, arch, source) DO UPDATE SET latency_ms = excluded.latency_ms,"
    " n_runs = excluded.n_runs, iqr_ms = excluded.iqr_ms, cv = excluded.cv, environment = excluded.environment,"
    " request_id = excluded.request_id, created_at = excluded.created_at"
)
_ARTIFACT_INFO_COLUMNS = "space, name, version, kind, manifest, size_bytes, sha256, created_at"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class _DuplicateRequest(Exception):
    """Internal: aborts the transaction of an add whose request id is already recorded."""

    def __init__(self, prior: tuple[Any, ...]) -> None:
        super().__init__("duplicate request")
        self.prior = prior


class _Tx:
    """A cursor bound to one transaction, speaking ``?`` placeholders on every backend."""

    def __init__(self, backend: Backend, cursor: Any) -> None:
        self._backend = backend
        self.cursor = cursor

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        self.cursor.execute(self._backend.sql(statement), tuple(params))
        return self.cursor

    def executemany(self, statement: str, params: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(p) for p in params]
        if rows:
            self.cursor.executemany(self._backend.sql(statement), rows)

    def one(self, statement: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        return self.execute(statement, params).fetchone()

    def all(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.execute(statement, params).fetchall())


class _Pool:
    """Connections borrowed for one transaction at a time; at most ``size`` open at once."""

    def __init__(self, backend: Backend, size: int) -> None:
        self._backend = backend
        self._size = size
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[Any] = []
        self._inherited: list[Any] = []
        self._closed = False
        self._pid = os.getpid()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        self._check_open()
        self._slots.acquire()
        try:
            with self._lock:
                if self._pid != os.getpid():  # forked: the parent's connections are not ours to use or close;
                    self._inherited.extend(self._idle)  # keep them referenced so no finalizer closes them here
                    self._idle = []
                    self._pid = os.getpid()
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                self._check_open()
                conn = self._backend.connect()
            try:
                yield conn
            finally:
                keep = self._backend.reset(conn)
                stale: list[Any] = []
                with self._lock:
                    if keep and not self._closed and self._pid == os.getpid():
                        self._idle.append(conn)
                        conn = None
                    elif not keep:  # a dead connection (server restart?): its idle siblings are likely dead too
                        stale, self._idle = self._idle, []
                for dead in ([conn] if conn is not None else []) + stale:
                    self._backend.close(dead)
        finally:
            self._slots.release()

    def _check_open(self) -> None:
        if self._closed:
            raise FailedPreconditionError(f"the store {self._backend.url.redacted} is closed")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        if self._pid == os.getpid():
            for conn in idle:
                self._backend.close(conn)


def open_store(url: str | None = None, *, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> Store:
    """Open (creating tables if missing) the store at ``url``.

    ``None`` means ``sqlite:///<NAS_LATENCY_HOME>/store.sqlite`` (the directory is created on demand). See
    :mod:`nas_latency.store.url` for the accepted URLs. Raises :class:`InvalidInputError` for a bad URL,
    :class:`~nas_latency.errors.StoreUnavailableError` when the database cannot be reached (the message shows
    the URL without its password) and :class:`FailedPreconditionError` for a store of a newer schema version.
    """
    return Store(parse_store_url(default_store_url() if url is None else url), max_connections=max_connections)


class Store:
    """Devices, measurements, request ids and artifacts in one database; see the module docstring for the rules.

    Use as a context manager or call :meth:`close`. Thread-safe.
    """

    def __init__(self, url: StoreURL, *, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        size = check_positive_int(max_connections, "max_connections")
        self._url = url
        self._backend = make_backend(url)
        self._pool = _Pool(self._backend, 1 if url.is_memory else size)
        try:
            self._initialize_schema()
        except BaseException:
            self._pool.close()
            raise

    # ---- lifecycle ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The store URL, password removed."""
        return self._url.redacted

    @property
    def dialect(self) -> str:
        return self._url.dialect

    def close(self) -> None:
        """Close idle connections; later calls raise :class:`FailedPreconditionError`. Idempotent."""
        self._pool.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[_Tx]:
        backend = self._backend
        try:
            with self._pool.connection() as conn:
                cursor = conn.cursor()
                try:
                    with backend.transaction(conn, write=write):
                        yield _Tx(backend, cursor)
                finally:
                    cursor.close()
        except Exception as exc:
            translated = backend.translate(exc)
            if translated is None:
                raise
            raise translated from exc

    def _initialize_schema(self) -> None:
        dialect = self._url.dialect
        with self._tx(write=True) as tx:
            self._backend.prepare(tx.cursor)
            if self._backend.has_table(tx.cursor, "schema_version"):
                versions = [row[0] for row in tx.all("SELECT version FROM schema_version")]
            else:
                tx.execute(schema.version_table_ddl(dialect))
                versions = []
            if len(versions) > 1:
                raise FailedPreconditionError(
                    f"store {self.url} is damaged: its schema_version table holds {len(versions)} rows"
                )
            if not versions:
                for statement in schema.create_ddl(dialect):
                    tx.execute(statement)
                tx.execute("INSERT INTO schema_version (version) VALUES (?)", (schema.SCHEMA_VERSION,))
                logger.info("created store %s (schema version %d)", self.url, schema.SCHEMA_VERSION)
                return
            version = int(versions[0])
            if version > schema.SCHEMA_VERSION:
                raise FailedPreconditionError(
                    f"store {self.url} has schema version {version}, newer than the {schema.SCHEMA_VERSION} this "
                    "nas-latency understands; upgrade nas-latency to open it"
                )
            if version < 1:
                raise FailedPreconditionError(f"store {self.url} has an invalid schema version {version}")
            while version < schema.SCHEMA_VERSION:
                for statement in schema.migration_ddl(version, dialect):
                    tx.execute(statement)
                version += 1
                tx.execute("UPDATE schema_version SET version = ?", (version,))
                logger.info("migrated store %s to schema version %d", self.url, version)

    # ---- devices ------------------------------------------------------------------------------------
    def upsert_device(
        self, name: str, *, description: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> Device:
        """Create the device, or update it. ``None`` leaves a field as it is (empty for a new device)."""
        name = check_device(name)
        if description is not None and not isinstance(description, str):
            raise InvalidInputError(f"description of device {name!r} must be a string, got {description!r}")
        metadata_json = to_json(metadata, f"metadata of device {name!r}")
        now = self._backend.ts_param(_now())
        with self._tx(write=True) as tx:
            tx.execute(
                "INSERT INTO devices (name, description, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (name, description or "", metadata_json or "{}", now, now),
            )
            row = tx.one(
                "UPDATE devices SET description = COALESCE(CAST(? AS TEXT), description),"
                " metadata = COALESCE(CAST(? AS TEXT), metadata), updated_at = ? WHERE name = ?"
                " RETURNING name, description, metadata, created_at, updated_at",
                (description, metadata_json, now, name),
            )
        assert row is not None
        return self._device(row)

    def get_device(self, name: str) -> Device:
        """The device; :class:`NotFoundError` (listing similar known names) if it is not registered."""
        name = check_device(name)
        with self._tx(write=False) as tx:
            row = tx.one(
                "SELECT name, description, metadata, created_at, updated_at FROM devices WHERE name = ?", (name,)
            )
            if row is None:
                raise self._device_not_found(tx, name)
        return self._device(row)

    def list_devices(self, space: str | None = None) -> list[DeviceSummary]:
        """Every device (by name), or only those with measurements in ``space``; counts cover all spaces."""
        params: tuple[Any, ...] = ()
        where = ""
        if space is not None:
            where = " WHERE d.name IN (SELECT device FROM measurements WHERE space = ?)"
            params = (check_space(space),)
        with self._tx(write=False) as tx:
            rows = tx.all(
                "SELECT d.name, d.description, d.created_at, m.space, COUNT(DISTINCT m.arch)"
                " FROM devices d LEFT JOIN measurements m ON m.device = d.name" + where +
                " GROUP BY d.name, d.description, d.created_at, m.space ORDER BY d.name, m.space",
                params,
            )
        heads: dict[str, tuple[str, datetime]] = {}
        counts: dict[str, dict[str, int]] = {}
        for name, description, created_at, row_space, count in rows:
            if name not in heads:
                heads[name] = (description, self._backend.ts_value(created_at))
                counts[name] = {}
            if row_space is not None:
                counts[name][row_space] = int(count)
        return [DeviceSummary(name, desc, created, counts[name]) for name, (desc, created) in heads.items()]

    def delete_device(self, name: str) -> None:
        """Delete the device with its measurements, request records and the artifacts that belong to it (every
        version of those named ``<device>/...``, e.g. ``bench device``'s layer models); :class:`NotFoundError` if
        unknown. A device registered again under the name starts without any of them."""
        name = check_device(name)
        prefix = f"{name}{DEVICE_ARTIFACT_SEPARATOR}"
        with self._tx(write=True) as tx:
            if tx.execute("DELETE FROM devices WHERE name = ?", (name,)).rowcount == 0:
                raise self._device_not_found(tx, name)
            tx.execute("DELETE FROM artifacts WHERE substr(name, 1, ?) = ?", (len(prefix), prefix))

    # ---- measurements -------------------------------------------------------------------------------
    def replace_measurements(
        self, device: str, space: str, rows: Iterable[MeasurementRow], *, source: str
    ) -> ReplaceResult:
        """Register semantics: the device's rows for ``(space, source)`` become exactly ``rows``.

        Rows of other sources and other spaces are untouched. An empty ``rows`` clears them.
        """
        device, space, source = check_device(device), check_space(space), check_source(source)
        clean = check_rows(rows, allow_empty=True)
        now = self._backend.ts_param(_now())
        new = {row.arch for row in clean}
        with self._tx(write=True) as tx:
            self._lock_device(tx, device)
            existing = self._archs(tx, device, space, source)
            tx.execute(
                "DELETE FROM measurements WHERE device = ? AND space = ? AND source = ?", (device, space, source)
            )
            tx.executemany(_INSERT_MEASUREMENT, (self._row_params(device, space, source, r, None, now) for r in clean))
        return ReplaceResult(inserted=len(new - existing), replaced=len(new & existing), removed=len(existing - new))

    def add_measurements(
        self,
        device: str,
        space: str,
        rows: Iterable[MeasurementRow],
        *,
        source: str,
        request_id: str | None = None,
    ) -> AddResult:
        """Contribute semantics: upsert ``rows`` (same-source values for the same arch are replaced).

        With ``request_id`` the call is idempotent: an id seen before writes nothing and returns
        ``duplicate_request=True`` (with the original counts); an id seen before with different
        ``(device, space, source, rows)`` raises :class:`ConflictError`. ``rows`` must not be empty.
        """
        device, space, source = check_device(device), check_space(space), check_source(source)
        rid = None if request_id is None else check_request_id(request_id)
        clean = check_rows(rows, allow_empty=False)
        digest = _content_digest(device, space, source, clean)
        now = self._backend.ts_param(_now())
        try:
            with self._tx(write=True) as tx:
                self._lock_device(tx, device)
                existing = self._archs(tx, device, space, source)
                replaced = sum(row.arch in existing for row in clean)
                inserted = len(clean) - replaced
                if rid is not None:
                    recorded = tx.execute(
                        "INSERT INTO requests (request_id, device, space, source, content_sha256, n_rows, inserted,"
                        " replaced, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING",
                        (rid, device, space, source, digest, len(clean), inserted, replaced, now),
                    ).rowcount
                    if recorded == 0:
                        prior = tx.one(
                            "SELECT device, space, source, content_sha256, inserted, replaced FROM requests"
                            " WHERE request_id = ?",
                            (rid,),
                        )
                        assert prior is not None
                        raise _DuplicateRequest(prior)
                tx.executemany(
                    _UPSERT_MEASUREMENT, (self._row_params(device, space, source, r, rid, now) for r in clean)
                )
        except _DuplicateRequest as dup:
            p_device, p_space, p_source, p_digest, p_inserted, p_replaced = dup.prior
            if p_digest != digest:
                raise ConflictError(
                    f"request_id {rid!r} was already used for different measurements (device {p_device!r}, space "
                    f"{p_space!r}, source {p_source!r}); use a new request id for new content"
                ) from None
            return AddResult(inserted=int(p_inserted), replaced=int(p_replaced), duplicate_request=True)
        return AddResult(inserted=inserted, replaced=replaced)

    def measurements(self, device: str, space: str, *, source: str | None = None) -> list[Measurement]:
        """The device's measurements in ``space`` (all sources, or one), ordered by arch then source.

        :class:`NotFoundError` if the device is not registered; an empty list if it has none in ``space``.
        """
        device, space = check_device(device), check_space(space)
        sql = f"SELECT {_MEASUREMENT_COLUMNS} FROM measurements WHERE device = ? AND space = ?"
        params: tuple[Any, ...] = (device, space)
        if source is not None:
            sql += " AND source = ?"
            params += (check_source(source),)
        with self._tx(write=False) as tx:
            if tx.one("SELECT name FROM devices WHERE name = ?", (device,)) is None:
                raise self._device_not_found(tx, device)
            rows = tx.all(sql + " ORDER BY arch, source", params)
        ts = self._backend.ts_value
        return [
            Measurement(d, s, a, float(lat), n, iqr, cv, src, from_json(env), rid, ts(created))
            for d, s, a, lat, n, iqr, cv, src, env, rid, created in rows
        ]

    def devices_with_measurements(self, space: str, min_rows: int = 1) -> list[str]:
        """Names (sorted) of devices with at least ``min_rows`` distinct architectures measured in ``space``."""
        space = check_space(space)
        min_rows = check_positive_int(min_rows, "min_rows")
        with self._tx(write=False) as tx:
            rows = tx.all(
                "SELECT device FROM measurements WHERE space = ? GROUP BY device HAVING COUNT(DISTINCT arch) >= ?"
                " ORDER BY device",
                (space, min_rows),
            )
        return [row[0] for row in rows]

    # ---- artifacts ----------------------------------------------------------------------------------
    def put_artifact(
        self, space: str, name: str, *, kind: str, manifest: Mapping[str, Any], blob: bytes
    ) -> ArtifactRef:
        """Store a new version (previous latest + 1, starting at 1) of artifact ``(space, name)``. The same kind,
        manifest and bytes as the latest version are not stored again (two replicas that trained the same model on
        an empty store): the latest version's reference is returned."""
        space = check_space(space)
        name = check_name(name, "artifact name", ARTIFACT_NAME_PATTERN)
        kind = check_name(kind, "artifact kind", SOURCE_PATTERN)
        if manifest is None:
            raise InvalidInputError(f"manifest of artifact {space}/{name} must be a JSON object, got None")
        manifest_json = to_json(manifest, f"manifest of artifact {space}/{name}")
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise InvalidInputError(f"blob of artifact {space}/{name} must be bytes, got {type(blob).__name__}")
        data = bytes(blob)
        sha256 = hashlib.sha256(data).hexdigest()
        now = self._backend.ts_param(_now())
        with self._tx(write=True) as tx:
            self._backend.lock(tx.cursor, f"nas-latency:artifact:{space}:{name}")
            latest = tx.one("SELECT version, kind, manifest, sha256 FROM artifacts WHERE space = ? AND name = ?"
                            " ORDER BY version DESC LIMIT 1", (space, name))
            if latest is not None and (latest[1], latest[3]) == (kind, sha256) and latest[2] == manifest_json:
                return ArtifactRef(space=space, name=name, version=int(latest[0]), sha256=sha256)
            version = int(latest[0]) + 1 if latest is not None else 1
            tx.execute(
                "INSERT INTO artifacts (space, name, version, kind, manifest, blob, size_bytes, sha256, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (space, name, version, kind, manifest_json, data, len(data), sha256, now),
            )
        return ArtifactRef(space=space, name=name, version=version, sha256=sha256)

    def get_artifact(self, space: str, name: str, version: int | None = None) -> Artifact:
        """One version (the latest by default), blob checked against its sha256; :class:`NotFoundError`."""
        space = check_space(space)
        name = check_name(name, "artifact name", ARTIFACT_NAME_PATTERN)
        columns = "space, name, version, kind, manifest, blob, sha256, created_at"
        with self._tx(write=False) as tx:
            if version is None:
                row = tx.one(
                    f"SELECT {columns} FROM artifacts WHERE space = ? AND name = ? ORDER BY version DESC LIMIT 1",
                    (space, name),
                )
            else:
                version = check_positive_int(version, "artifact version")
                row = tx.one(
                    f"SELECT {columns} FROM artifacts WHERE space = ? AND name = ? AND version = ?",
                    (space, name, version),
                )
            if row is None:
                raise self._artifact_not_found(tx, space, name, version)
        r_space, r_name, r_version, kind, manifest, blob, sha256, created_at = row
        data = bytes(blob)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise FailedPreconditionError(
                f"artifact {space}/{name} version {r_version} in {self.url} is corrupt: its bytes do not match "
                f"sha256 {sha256}"
            )
        created = self._backend.ts_value(created_at)
        return Artifact(r_space, r_name, int(r_version), kind, json.loads(manifest), data, sha256, created)

    def list_artifacts(self, space: str | None = None, *, latest_only: bool = False) -> list[ArtifactInfo]:
        """Artifact versions without blobs, ordered by (space, name, version); optionally only the latest ones."""
        clauses: list[str] = []
        params: list[Any] = []
        if space is not None:
            clauses.append("a.space = ?")
            params.append(check_space(space))
        if latest_only:
            clauses.append(
                "a.version = (SELECT MAX(b.version) FROM artifacts b WHERE b.space = a.space AND b.name = a.name)"
            )
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        columns = ", ".join(f"a.{c.strip()}" for c in _ARTIFACT_INFO_COLUMNS.split(","))
        with self._tx(write=False) as tx:
            rows = tx.all(f"SELECT {columns} FROM artifacts a{where} ORDER BY a.space, a.name, a.version", params)
        ts = self._backend.ts_value
        return [
            ArtifactInfo(s, n, int(v), k, json.loads(m), int(size), sha, ts(created))
            for s, n, v, k, m, size, sha, created in rows
        ]

    # ---- helpers ------------------------------------------------------------------------------------
    def _device(self, row: tuple[Any, ...]) -> Device:
        name, description, metadata, created_at, updated_at = row
        ts = self._backend.ts_value
        return Device(name, description, json.loads(metadata), ts(created_at), ts(updated_at))

    def _lock_device(self, tx: _Tx, device: str) -> None:
        if tx.one("SELECT name FROM devices WHERE name = ?" + self._backend.for_update, (device,)) is None:
            raise self._device_not_found(tx, device)

    @staticmethod
    def _archs(tx: _Tx, device: str, space: str, source: str) -> set[str]:
        rows = tx.all(
            "SELECT arch FROM measurements WHERE device = ? AND space = ? AND source = ?", (device, space, source)
        )
        return {row[0] for row in rows}

    @staticmethod
    def _row_params(
        device: str, space: str, source: str, row: MeasurementRow, request_id: str | None, now: Any
    ) -> tuple[Any, ...]:
        environment = to_json(row.environment, "environment")
        return (device, space, row.arch, row.latency_ms, row.n_runs, row.iqr_ms, row.cv, source, environment,
                request_id, now)

    def _device_not_found(self, tx: _Tx, name: str) -> NotFoundError:
        known = [row[0] for row in tx.all("SELECT name FROM devices ORDER BY name")]
        if not known:
            return NotFoundError(f"device {name!r} is not registered; no devices are registered in {self.url}")
        close = difflib.get_close_matches(name, known, n=_KNOWN_NAMES_SHOWN, cutoff=0.5)
        shown = close + [k for k in known if k not in close][: _KNOWN_NAMES_SHOWN - len(close)]
        more = f" and {len(known) - len(shown)} more" if len(known) > len(shown) else ""
        return NotFoundError(f"device {name!r} is not registered; known devices: {', '.join(shown)}{more}")

    def _artifact_not_found(self, tx: _Tx, space: str, name: str, version: int | None) -> NotFoundError:
        versions = [row[0] for row in tx.all(
            "SELECT version FROM artifacts WHERE space = ? AND name = ? ORDER BY version", (space, name)
        )]
        if versions and version is not None:
            return NotFoundError(
                f"artifact {space}/{name} has no version {version}; versions: {', '.join(map(str, versions))}"
            )
        names = [
            row[0] for row in tx.all("SELECT DISTINCT name FROM artifacts WHERE space = ? ORDER BY name", (space,))
        ]
        more = len(names) - _KNOWN_NAMES_SHOWN
        listed = ", ".join(names[:_KNOWN_NAMES_SHOWN]) + (f" and {more} more" if more > 0 else "")
        known = f"artifacts in space {space!r}: {listed}" if names else f"no artifacts in space {space!r}"
        return NotFoundError(f"artifact {space}/{name} not found; {known}")


def _content_digest(device: str, space: str, source: str, rows: Sequence[MeasurementRow]) -> str:
    """Order-independent digest of an add request's content (what a reused request id is compared on)."""
    body = {
        "device": device,
        "space": space,
        "source": source,
        "rows": sorted(
            [r.arch, r.latency_ms, r.n_runs, r.iqr_ms, r.cv, r.environment] for r in rows
        ),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
