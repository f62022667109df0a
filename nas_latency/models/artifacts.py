"""Model artifacts without pickle: a JSON manifest plus arrays in an ``.npz`` (loaded with ``allow_pickle=False``).

The manifest records the format version, the model kind, its constructor parameters, the feature-schema hash
and the package version. Loading checks all of them and refuses a mismatch with a message saying what differs.
Artifacts are also kept as bytes (a zip of ``manifest.json`` + ``arrays.npz``) so a store can hold them as blobs.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from nas_latency import __version__
from nas_latency.errors import FailedPreconditionError, InvalidInputError

ARTIFACT_FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
ARRAYS_NAME = "arrays.npz"


@dataclass(frozen=True)
class Artifact:
    """What a model saves: its kind, constructor params, feature schema and learned arrays."""

    kind: str
    params: Mapping[str, Any]
    feature_schema_hash: str
    arrays: Mapping[str, np.ndarray]
    extra: Mapping[str, Any] = field(default_factory=dict)  # JSON-able learned state that is not an array
    package_version: str = __version__
    format_version: int = ARTIFACT_FORMAT_VERSION

    def manifest(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "kind": self.kind,
            "params": dict(self.params),
            "feature_schema_hash": self.feature_schema_hash,
            "package_version": self.package_version,
            "arrays": sorted(self.arrays),
            "extra": dict(self.extra),
        }

    def to_bytes(self) -> bytes:
        arrays = io.BytesIO()
        for name, value in self.arrays.items():
            if np.asarray(value).dtype == object:
                raise InvalidInputError(f"artifact array {name!r} has dtype object, which cannot be saved without pickle")
        np.savez_compressed(arrays, **{k: np.asarray(v) for k, v in self.arrays.items()})
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(MANIFEST_NAME, json.dumps(self.manifest(), indent=2, sort_keys=True))
            archive.writestr(ARRAYS_NAME, arrays.getvalue())
        return buffer.getvalue()

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (a single file holding manifest and arrays)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(path)
        return path


def artifact_from_bytes(data: bytes, *, source: str = "artifact") -> Artifact:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            manifest = json.loads(archive.read(MANIFEST_NAME))
            arrays_bytes = archive.read(ARRAYS_NAME)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{source}: not a nas-latency model artifact ({exc})") from None
    version = manifest.get("format_version")
    if version != ARTIFACT_FORMAT_VERSION:
        raise FailedPreconditionError(
            f"{source}: artifact format version {version!r} is not supported by this release "
            f"(expects {ARTIFACT_FORMAT_VERSION}); retrain with `nas-latency models train`"
        )
    written_by = manifest.get("package_version")
    if not isinstance(written_by, str) or not written_by:
        raise InvalidInputError(f"{source}: artifact manifest names no package_version")
    if _version_tuple(written_by) > _version_tuple(__version__):
        raise FailedPreconditionError(
            f"{source}: artifact was written by nas-latency {written_by}, newer than this {__version__}; upgrade, or "
            f"retrain with `nas-latency models train`")
    if not isinstance(manifest.get("kind"), str):
        raise InvalidInputError(f"{source}: artifact manifest names no model kind")
    try:  # the arrays are a zip of their own: damage there must not surface as numpy's or zipfile's own errors
        with np.load(io.BytesIO(arrays_bytes), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise InvalidInputError(f"{source}: the artifact's arrays are damaged or not plain numeric arrays "
                                f"({type(exc).__name__}: {exc})") from None
    missing = set(manifest.get("arrays", [])) - set(arrays)
    if missing:
        raise InvalidInputError(f"{source}: artifact is missing arrays {sorted(missing)}")
    return Artifact(
        kind=manifest["kind"],
        params=manifest.get("params", {}),
        feature_schema_hash=manifest.get("feature_schema_hash", ""),
        arrays=arrays,
        extra=manifest.get("extra", {}),
        package_version=manifest.get("package_version", "?"),
        format_version=version,
    )


def _version_tuple(version: str) -> tuple[int, ...]:
    """``"0.1.0"`` → ``(0, 1, 0)``; a part that is not a number counts as 0 (``"0.2.0rc1"`` → ``(0, 2, 0)``)."""
    return tuple(int(match.group()) if (match := re.match(r"\d+", part)) else 0 for part in version.split("."))


def load_artifact(path: str | Path) -> Artifact:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read model artifact ({exc.strerror})") from None
    return artifact_from_bytes(data, source=str(path))


def check_artifact(artifact: Artifact, *, kind: str, feature_schema_hash: str | None, source: str) -> None:
    """Refuse an artifact of another kind or another feature schema, saying which."""
    if artifact.kind != kind:
        raise FailedPreconditionError(f"{source}: artifact holds a {artifact.kind!r} model, not a {kind!r} model")
    if feature_schema_hash is not None and artifact.feature_schema_hash != feature_schema_hash:
        raise FailedPreconditionError(
            f"{source}: artifact was trained on feature schema {artifact.feature_schema_hash}, but the features "
            f"now have schema {feature_schema_hash}; retrain with `nas-latency models train`"
        )
