"""Store fixtures: every behavioural test runs on a real SQLite file and on the real local PostgreSQL.

PostgreSQL tests get a fresh schema each (``?schema=t_<random>``), dropped afterwards. The server is taken from
``NAS_LATENCY_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``, as on CI); if it cannot be
reached the tests fail, naming it, rather than being skipped.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from nas_latency.store import Store, open_store

PG_URL = os.environ.get("NAS_LATENCY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def pg_admin_connect():  # type: ignore[no-untyped-def]
    import psycopg

    try:
        return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"the store tests need PostgreSQL at {PG_URL} (set NAS_LATENCY_TEST_PG_URL to another server): {exc}",
            pytrace=False,
        )


def _pg_schema_url() -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with pg_admin_connect():
        pass  # fail early and clearly if the server is down
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}schema={schema}"
    finally:
        with pg_admin_connect() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of a fresh, empty store: a SQLite file in ``tmp_path`` or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite://{(tmp_path / 'store' / 'store.sqlite').as_posix()}"
    else:
        yield from _pg_schema_url()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema URL (for PostgreSQL-only tests)."""
    yield from _pg_schema_url()


@pytest.fixture
def make_store(store_url: str) -> Iterator[Callable[..., Store]]:
    """Opens stores on ``store_url`` (as many as asked) and closes them all at teardown."""
    opened: list[Store] = []

    def make(**kwargs: object) -> Store:
        store = open_store(store_url, **kwargs)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store()


@pytest.fixture
def raw_sql(store_url: str) -> Callable[[str], list[tuple]]:
    """Runs one SQL statement directly on the database behind ``store_url`` (bypassing the store), committed."""
    from nas_latency.store.url import parse_store_url

    parsed = parse_store_url(store_url)

    def run(statement: str) -> list[tuple]:
        if parsed.dialect == "sqlite":
            import sqlite3

            conn = sqlite3.connect(parsed.path, isolation_level=None)
            try:
                return list(conn.execute(statement).fetchall())
            finally:
                conn.close()
        with pg_admin_connect() as conn:
            conn.execute(f'SET search_path TO "{parsed.schema}"')
            cur = conn.execute(statement)
            return list(cur.fetchall()) if cur.description else []

    return run
