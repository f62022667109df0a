"""Parsing store URLs.

Accepted forms:

- ``sqlite:///ABS/PATH`` (also ``sqlite:////ABS/PATH``): a SQLite file; missing parent directories are
  created when the store opens. Relative paths are refused (they would depend on the working directory).
- ``sqlite:///:memory:``: a private in-memory database (tests, throw-away runs).
- ``postgresql://[user[:password]@]host[:port]/dbname[?schema=NAME&libpq_param=...]`` (``postgres://`` too):
  ``schema`` selects (and on open creates) a schema and sets ``search_path`` to it; every other query
  parameter is handed to libpq unchanged (``sslmode``, ``connect_timeout``, ``application_name``...).

Error messages show :attr:`StoreURL.redacted`, never a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from nas_latency.errors import InvalidInputError

Dialect = Literal["sqlite", "postgresql"]

MEMORY_PATH = ":memory:"
_SCHEMA_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_PG_SCHEMES = ("postgresql", "postgres")
_EXAMPLES = "sqlite:///ABS/PATH/store.sqlite, sqlite:///:memory: or postgresql://USER@HOST:PORT/DB[?schema=NAME]"


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A parsed store URL.

    ``path`` is the SQLite file (or ``":memory:"``); ``conninfo`` the libpq URI without our own ``schema``
    parameter; ``schema`` the PostgreSQL schema (``None``: the server's default search path).
    """

    dialect: Dialect
    redacted: str
    path: str | None = None
    conninfo: str | None = None
    schema: str | None = None

    @property
    def is_memory(self) -> bool:
        return self.dialect == "sqlite" and self.path == MEMORY_PATH


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (best effort on malformed input)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", url)
    if parts.password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))


def parse_store_url(url: str) -> StoreURL:
    """Parse and validate ``url``; :class:`InvalidInputError` names what is wrong with it."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInputError(f"store URL must be a non-empty string (expected {_EXAMPLES}), got {url!r}")
    url = url.strip()
    shown = redact(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidInputError(f"malformed store URL {shown!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if not scheme or "://" not in url:
        raise InvalidInputError(f"store URL {shown!r} has no scheme; expected {_EXAMPLES}")
    if scheme == "sqlite":
        return _parse_sqlite(url, parts.netloc, parts.path, parts.query, shown)
    if scheme in _PG_SCHEMES:
        return _parse_postgresql(parts, shown)
    raise InvalidInputError(
        f"unsupported store URL scheme {parts.scheme!r} in {shown!r}; expected 'sqlite' or 'postgresql' ({_EXAMPLES})"
    )


def _parse_sqlite(url: str, netloc: str, raw_path: str, query: str, shown: str) -> StoreURL:
    if netloc:
        raise InvalidInputError(
            f"sqlite store URL {shown!r} has a host part {netloc!r}; use three slashes and an absolute path: "
            "sqlite:///ABS/PATH"
        )
    if query:
        raise InvalidInputError(f"sqlite store URL {shown!r} takes no query parameters")
    path = unquote(raw_path)
    if path in ("/" + MEMORY_PATH, MEMORY_PATH):
        return StoreURL(dialect="sqlite", redacted=shown, path=MEMORY_PATH)
    if not path.startswith("/") or path.rstrip("/") == "":
        raise InvalidInputError(f"sqlite store URL {shown!r} must name an absolute file path: sqlite:///ABS/PATH")
    if path.endswith("/"):
        raise InvalidInputError(f"sqlite store URL {shown!r} names a directory, not a file")
    path = "/" + path.lstrip("/")  # sqlite:////abs/path → /abs/path
    return StoreURL(dialect="sqlite", redacted=shown, path=path)


def _parse_postgresql(parts, shown: str) -> StoreURL:  # type: ignore[no-untyped-def]
    if not parts.hostname and not parts.path.strip("/"):
        raise InvalidInputError(f"postgresql store URL {shown!r} names neither a host nor a database")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise InvalidInputError(f"postgresql store URL {shown!r} has a bad port: {exc}") from exc
    schema: str | None = None
    kept: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "schema":
            if not _SCHEMA_RE.fullmatch(value):
                raise InvalidInputError(
                    f"postgresql store URL {shown!r}: schema {value!r} must match [A-Za-z_][A-Za-z0-9_]{{0,62}}"
                )
            schema = value
        else:
            kept.append((key, value))
    if not any(key == "connect_timeout" for key, _ in kept):
        kept.append(("connect_timeout", "10"))  # an unreachable server fails in seconds, not minutes
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(kept), ""))
    return StoreURL(dialect="postgresql", redacted=shown, conninfo=conninfo, schema=schema)
