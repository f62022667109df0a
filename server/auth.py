"""Bearer-token authorization of writes.

A server started with ``--token-file F`` requires ``authorization: Bearer <token>`` metadata on every write RPC
(:data:`WRITE_METHODS`): without it the call fails UNAUTHENTICATED (reason TOKEN_MISSING), with another token
PERMISSION_DENIED (reason TOKEN_INVALID). Reads are open. Without a token file every call is allowed (a lab
server on a trusted network); combine a token with TLS (``--tls-cert/--tls-key``) anywhere else, since a bearer
token on a plaintext channel can be read by anyone on the path.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Iterable

from nas_latency.errors import InvalidInputError, PermissionDeniedError, UnauthenticatedError

#: RPC names (of ``nas_latency.v1.LatencyService``) that change state and so need the token
WRITE_METHODS: frozenset[str] = frozenset({"RegisterDevice", "ContributeMeasurements", "RemoveDevice", "TrainModel"})

_SCHEME = "bearer "


class TokenAuth:
    """Checks the bearer token of write calls. ``TokenAuth(None)`` allows everything."""

    def __init__(self, token: str | None) -> None:
        if token is not None and (not token or any(c.isspace() for c in token)):
            raise InvalidInputError("the server token must be non-empty and contain no whitespace")
        self._token = token.encode() if token is not None else None

    @classmethod
    def from_file(cls, path: str | Path | None) -> "TokenAuth":
        """The token is the file's content with surrounding whitespace stripped."""
        if path is None:
            return cls(None)
        try:
            token = Path(path).read_text().strip()
        except OSError as exc:
            raise InvalidInputError(f"{path}: cannot read the token file ({exc.strerror})") from None
        if not token:
            raise InvalidInputError(f"{path}: the token file is empty")
        return cls(token)

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def check(self, method: str, metadata: Iterable[tuple[str, str | bytes]]) -> None:
        """Raise unless ``method`` is a read, or the metadata carries the server's token."""
        if self._token is None or method not in WRITE_METHODS:
            return
        header = None
        for key, value in metadata:
            if key == "authorization":
                header = value.decode() if isinstance(value, bytes) else value
                break
        if header is None:
            raise UnauthenticatedError(
                f"{method} changes state and this server requires a token: send `authorization: Bearer <token>`",
                reason="TOKEN_MISSING",
            )
        if not header.lower().startswith(_SCHEME):
            raise UnauthenticatedError("the authorization metadata must be `Bearer <token>`", reason="TOKEN_MISSING")
        given = header[len(_SCHEME):].strip().encode()
        if not hmac.compare_digest(given, self._token):
            raise PermissionDeniedError(f"{method}: the token is not valid for this server", reason="TOKEN_INVALID")
