"""Where nas-latency keeps its local state: ``NAS_LATENCY_HOME``, default ``~/.nas-latency``.

The directory is created on first use (mode 0700), so a fresh machine needs no manual step.
"""

from __future__ import annotations

import os
from pathlib import Path

from nas_latency.errors import FailedPreconditionError

HOME_ENV = "NAS_LATENCY_HOME"
"""Environment variable that overrides the state directory."""

DEFAULT_HOME_DIRNAME = ".nas-latency"
STORE_FILENAME = "store.sqlite"


def nas_latency_home(*, create: bool = True) -> Path:
    """The state directory: ``$NAS_LATENCY_HOME`` if set and non-empty, else ``~/.nas-latency``.

    ``~`` in the variable is expanded and a relative value is made absolute once, here. With ``create`` (the
    default) the directory and its parents are created when missing; a path that exists but is not a directory
    raises :class:`FailedPreconditionError`.
    """
    raw = os.environ.get(HOME_ENV, "").strip()
    home = Path(raw).expanduser() if raw else Path.home() / DEFAULT_HOME_DIRNAME
    home = home.absolute()
    if home.exists() and not home.is_dir():
        raise FailedPreconditionError(f"{HOME_ENV} points at {home}, which exists but is not a directory")
    if create:
        try:
            home.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise FailedPreconditionError(f"cannot create the nas-latency home directory {home}: {exc}") from exc
    return home


def default_store_url(*, create: bool = True) -> str:
    """``sqlite:///<home>/store.sqlite``: the store used when no URL is given."""
    return f"sqlite://{(nas_latency_home(create=create) / STORE_FILENAME).as_posix()}"
