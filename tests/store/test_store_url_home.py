"""Store URLs, NAS_LATENCY_HOME resolution, the default store, SQLite settings, unreachable servers."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from nas_latency.errors import FailedPreconditionError, InvalidInputError, StoreUnavailableError
from nas_latency.store import (
    HOME_ENV,
    MeasurementRow,
    default_store_url,
    nas_latency_home,
    open_store,
    parse_store_url,
    redact,
)


# ---- URLs ---------------------------------------------------------------------------------------------
def test_sqlite_urls() -> None:
    parsed = parse_store_url("sqlite:///abs/dir/store.sqlite")
    assert (parsed.dialect, parsed.path, parsed.is_memory) == ("sqlite", "/abs/dir/store.sqlite", False)
    assert parse_store_url("sqlite:////abs/store.sqlite").path == "/abs/store.sqlite"
    assert parse_store_url("sqlite:///abs/with%20space.sqlite").path == "/abs/with space.sqlite"
    assert parse_store_url("SQLITE:///abs/x.db").dialect == "sqlite"
    assert parse_store_url("sqlite:///:memory:").is_memory


def test_postgresql_urls() -> None:
    parsed = parse_store_url("postgresql://postgres@127.0.0.1:5432/test?schema=my_schema&sslmode=disable")
    assert (parsed.dialect, parsed.schema) == ("postgresql", "my_schema")
    assert parsed.conninfo is not None and "schema" not in parsed.conninfo
    assert "sslmode=disable" in parsed.conninfo and "connect_timeout=10" in parsed.conninfo
    assert parse_store_url("postgres://h/db?connect_timeout=3").conninfo == "postgresql://h/db?connect_timeout=3"
    assert parse_store_url("postgresql://h/db").schema is None
    secret = parse_store_url("postgresql://alice:s3cret@db.example:5433/lab")
    assert secret.redacted == "postgresql://alice:***@db.example:5433/lab"
    assert redact("postgresql://alice@h/db") == "postgresql://alice@h/db"


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("", "non-empty"),
        ("/abs/path/store.sqlite", "has no scheme"),
        ("mysql://u@h/db", "unsupported store URL scheme 'mysql'.*expected 'sqlite' or 'postgresql'"),
        ("http://u:pw@h/db", r"unsupported store URL scheme 'http' in 'http://u:\*\*\*@h/db'"),
        ("sqlite://host/path.db", "has a host part 'host'"),
        ("sqlite:///", "absolute file path"),
        ("sqlite:///dir/", "names a directory"),
        ("sqlite:///x.db?mode=ro", "takes no query parameters"),
        ("postgresql://", "neither a host nor a database"),
        ("postgresql://h:notaport/db", "bad port"),
        ("postgresql://h/db?schema=bad-name", "schema 'bad-name' must match"),
        ("postgresql://h/db?schema=", "schema '' must match"),
    ],
)
def test_bad_urls(url: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        parse_store_url(url)
    with pytest.raises(InvalidInputError):
        open_store(url)


def test_unreachable_postgresql_is_a_clear_error_without_password() -> None:
    url = "postgresql://postgres:topsecret@127.0.0.1:1/test?connect_timeout=2"
    with pytest.raises(StoreUnavailableError) as info:
        open_store(url)
    message = info.value.message
    assert "postgresql://postgres:***@127.0.0.1:1/test" in message and "cannot connect" in message
    assert "topsecret" not in message and "topsecret" not in repr(info.value.__cause__)
    assert info.value.reason == "STORE_UNAVAILABLE" and isinstance(info.value, FailedPreconditionError)


# ---- NAS_LATENCY_HOME ---------------------------------------------------------------------------------
def test_home_from_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "custom" / "home"
    monkeypatch.setenv(HOME_ENV, str(target))
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert nas_latency_home(create=False) == target and not target.exists()
    assert nas_latency_home() == target and target.is_dir()
    assert default_store_url() == f"sqlite://{target}/store.sqlite"
    assert not (tmp_path / "user").exists()


def test_home_default_and_tilde(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(HOME_ENV, raising=False)
    assert nas_latency_home() == tmp_path / ".nas-latency"
    assert (tmp_path / ".nas-latency").is_dir()
    monkeypatch.setenv(HOME_ENV, "")  # empty means unset
    assert nas_latency_home() == tmp_path / ".nas-latency"
    monkeypatch.setenv(HOME_ENV, "~/elsewhere")
    assert nas_latency_home() == tmp_path / "elsewhere"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(HOME_ENV, "relative")
    assert nas_latency_home() == tmp_path / "relative"  # made absolute once


def test_home_that_is_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "file"))
    with pytest.raises(FailedPreconditionError, match="not a directory"):
        nas_latency_home()


def test_open_store_default_lives_in_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "h"))
    with open_store() as store:
        store.upsert_device("dev")
        assert store.url == f"sqlite://{tmp_path}/h/store.sqlite"
    assert (tmp_path / "h" / "store.sqlite").is_file()
    with open_store(None) as store:
        assert store.get_device("dev").name == "dev"


# ---- SQLite specifics ---------------------------------------------------------------------------------
def test_sqlite_file_uses_wal_and_creates_parents(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "store.sqlite"
    with open_store(f"sqlite://{path}") as store:
        store.upsert_device("dev")
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_sqlite_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not a database file at all" * 100)
    with pytest.raises(FailedPreconditionError, match="junk.sqlite"):
        open_store(f"sqlite://{path}")


def test_sqlite_memory_store_is_shared_by_threads() -> None:
    with open_store("sqlite:///:memory:") as store:
        store.upsert_device("dev")
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for i in range(10):
                    store.add_measurements("dev", "nb", [MeasurementRow(f"t{t}-{i}", 1.0)], source="s")
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(store.measurements("dev", "nb")) == 40
    with open_store("sqlite:///:memory:") as other:  # a private database each time
        assert other.list_devices() == []
