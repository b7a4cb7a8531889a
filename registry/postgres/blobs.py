"""Model files in PostgreSQL, and the node's verified local cache of them.

A blob is stored as ``artifacts`` (digest, size, chunk count) plus ``artifact_chunks`` of
``CHUNK`` bytes each, inserted by ``upload`` inside the write transaction that adds the
version row. ``download`` streams the chunks of one blob, row by row, into a temporary file
of the local cache while hashing them, and renames it into place only when the digest and
size match: memory holds one chunk, never the whole file twice, and a damaged or truncated
copy never reaches the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from registry.artifacts import ArtifactStore
from registry.errors import ArtifactError
from registry.sqlite.txn import Txn

CHUNK = 1 << 20
_TMP_PREFIX = ".tmp-"


async def stored_size(txn: Txn, sha256: str) -> int | None:
    row = await txn.one("SELECT size FROM artifacts WHERE sha256 = ?", (sha256,))
    return None if row is None else int(row[0])


async def upload(txn: Txn, cache: ArtifactStore, sha256: str, size: int) -> None:
    """Insert the cached blob into the database (in ``txn``) unless it is already there."""
    existing = await stored_size(txn, sha256)
    if existing is not None:
        if existing != size:
            raise ArtifactError(
                f"artifact {sha256} is stored with {existing} bytes, not {size}: tampered?"
            )
        return
    path = cache.path(sha256)
    if not path.is_file():
        raise ArtifactError(f"artifact {sha256} is in neither the database nor {cache.root}")
    chunks = (size + CHUNK - 1) // CHUNK
    await txn.run(
        "INSERT INTO artifacts (sha256, size, chunks, created_at) VALUES (?, ?, ?, ?)",
        (sha256, size, chunks, txn.now),
    )
    digest, seen = hashlib.sha256(), 0
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ArtifactError(f"cannot read artifact {sha256}: {exc.strerror}") from exc
    with handle:
        for seq in range(chunks):
            data = await asyncio.to_thread(handle.read, CHUNK)
            digest.update(data)
            seen += len(data)
            await txn.run(
                "INSERT INTO artifact_chunks (sha256, seq, data) VALUES (?, ?, ?)",
                (sha256, seq, data),
            )
        extra = await asyncio.to_thread(handle.read, 1)
    if digest.hexdigest() != sha256 or seen != size or extra:
        raise ArtifactError(
            f"artifact {sha256} changed on disk while it was stored; nothing was registered"
        )


def _open_temp(folder: Path) -> tuple[int, str]:
    folder.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=_TMP_PREFIX, dir=folder)


async def download(
    conn: psycopg.AsyncConnection[Any], cache: ArtifactStore, sha256: str, size: int
) -> None:
    """Stream the blob from the database into the cache, verified; ArtifactError if the
    database copy is missing or damaged."""
    target = cache.path(sha256)
    fd, tmp_name = await asyncio.to_thread(_open_temp, target.parent)
    keep = False
    try:
        digest, seen, expected_seq = hashlib.sha256(), 0, 0
        with os.fdopen(fd, "wb") as handle:
            cursor = conn.cursor()
            async for row in cursor.stream(
                "SELECT seq, data FROM artifact_chunks WHERE sha256 = %s ORDER BY seq",
                (sha256,),
            ):
                if row[0] != expected_seq:
                    break
                data = bytes(row[1])
                digest.update(data)
                seen += len(data)
                expected_seq += 1
                await asyncio.to_thread(handle.write, data)
            await asyncio.to_thread(_flush, handle)
        if digest.hexdigest() != sha256 or seen != size:
            raise ArtifactError(
                f"artifact {sha256} in the registry database is missing or damaged "
                f"({seen} of {size} bytes, hashing to {digest.hexdigest()})"
            )
        os.chmod(tmp_name, 0o444)
        os.replace(tmp_name, target)
        keep = True
    except OSError as exc:
        raise ArtifactError(
            f"cannot write artifact {sha256} into the local cache {cache.root}: {exc.strerror}"
        ) from exc
    finally:
        if not keep:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def _flush(handle: Any) -> None:
    handle.flush()
    os.fsync(handle.fileno())
