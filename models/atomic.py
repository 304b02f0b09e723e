"""Crash-safe file writes and bounded hashing for the model registry.

Every file the registry writes goes through :func:`write_atomic`: the bytes land in a
temporary file in the same directory, are flushed and ``fsync``-ed, and the file is
renamed over the target with :func:`os.replace` (atomic on POSIX within a file
system); the directory is ``fsync``-ed so the rename survives a power cut. A reader
sees the old file or the new one, never half of either. Whole directories (an
artifact and its manifest) are staged the same way and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["SizeExceeded", "canonical_json", "fsync_dir", "hash_stream", "write_atomic"]

_CHUNK = 1 << 20


class SizeExceeded(ValueError):
    """A stream held more bytes than allowed (reading stopped at the limit)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


def fsync_dir(path: Path) -> None:
    """``fsync`` a directory so that renames and creations inside it are durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that no reader ever sees a partial file.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> write_atomic(d / "a.json", b"{}")
    >>> (d / "a.json").read_bytes(), [p.name for p in d.iterdir()]
    (b'{}', ['a.json'])
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def hash_stream(stream: BinaryIO, limit: int) -> tuple[str, int]:
    """Return the SHA-256 (hex) and length of a stream, reading at most ``limit`` bytes.

    Raises
    ------
    SizeExceeded
        The stream holds more than ``limit`` bytes; at most ``limit + 1`` were read.

    Examples
    --------
    >>> import io
    >>> hash_stream(io.BytesIO(b"abc"), limit=10)[1]
    3
    >>> hash_stream(io.BytesIO(b"abc"), limit=2)
    Traceback (most recent call last):
    ...
    models.atomic.SizeExceeded: more than 2 bytes
    """
    digest = hashlib.sha256()
    size = 0
    while True:
        chunk = stream.read(min(_CHUNK, limit + 1 - size))
        if not chunk:
            return digest.hexdigest(), size
        size += len(chunk)
        if size > limit:
            raise SizeExceeded(limit)
        digest.update(chunk)


def canonical_json(value: Any) -> bytes:
    """The one byte form of a JSON value that gets signed: sorted keys, no spaces, UTF-8.

    NaN and infinity are refused (they are not JSON).

    Examples
    --------
    >>> canonical_json({"b": [1, 2.5], "a": "é"})
    b'{"a":"\\xc3\\xa9","b":[1,2.5]}'
    """
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")
