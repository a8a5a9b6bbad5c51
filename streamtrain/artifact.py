"""Versioned, checksummed JSON files: checkpoints, models, reports.

Every file the project persists (never with pickle) is one JSON object::

    {
      "format": "streamtrain.checkpoint",   # what the payload is
      "version": 1,                          # the payload's schema version
      "sha256": "<hex>",                     # of the canonical payload
      "payload": { ... }
    }

The checksum is the SHA-256 of the payload serialized canonically
(``json.dumps(payload, sort_keys=True, separators=(",", ":"),
allow_nan=False)``), so a person can read and diff the file while any
change to it is detected. Floats are written with Python's shortest
round-trip representation, so reading gives back every bit that was
written (negative zero included); NaN and infinities are refused.

:func:`write` is atomic: the file is written beside its target, flushed
and fsynced, renamed over the target, and the directory is fsynced. After
a crash at any point the target holds either the previous content or the
new one, never a mix. :func:`read` raises :class:`ArtifactError` for a
missing, truncated, corrupt, foreign or newer file, and never returns a
payload whose checksum does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from streamtrain.errors import ArtifactError


def canonical(payload: Any) -> bytes:
    """The bytes the checksum is computed over."""
    try:
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except ValueError as error:
        raise ArtifactError(f"payload holds a non-finite number: {error}") from None
    return text.encode()


def checksum(payload: Any) -> str:
    return hashlib.sha256(canonical(payload)).hexdigest()


def dumps(kind: str, version: int, payload: dict) -> bytes:
    """Serialize an artifact (indented, for people to read)."""
    document = {"format": kind, "version": version, "sha256": checksum(payload), "payload": payload}
    return (json.dumps(document, indent=1, allow_nan=False) + "\n").encode()


def write(path: Path, kind: str, version: int, payload: dict) -> None:
    """Write an artifact atomically (write, fsync, rename, fsync directory)."""
    write_atomic(Path(path), dumps(kind, version, payload))


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash at any point leaves
    the old content or the new one: write a temporary file beside it,
    fsync it, rename it over ``path``, fsync the directory."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def loads(data: bytes, kind: str, version: int, *, source: str = "artifact") -> dict:
    """Parse and verify an artifact; return its payload.

    :raises ArtifactError: naming ``source`` and what was wrong.
    """
    try:
        document = json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{source} is not valid JSON (truncated or damaged): {error}") from None
    if not isinstance(document, dict) or "payload" not in document:
        raise ArtifactError(f"{source} is not a streamtrain artifact")
    if document.get("format") != kind:
        raise ArtifactError(f"{source} holds {document.get('format')!r}, expected {kind!r}")
    if document.get("version") != version:
        raise ArtifactError(
            f"{source} has version {document.get('version')!r}, this reader knows {version}"
        )
    payload = document["payload"]
    if checksum(payload) != document.get("sha256"):
        raise ArtifactError(f"{source} fails its checksum: its content was changed or damaged")
    return payload


def read(path: Path, kind: str, version: int) -> dict:
    """Read and verify the artifact at ``path``; return its payload."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ArtifactError(f"cannot read {path}: {error.strerror}") from None
    return loads(data, kind, version, source=str(path))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-finite constant {name}")
