from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from registry.artifacts import ArtifactStore
from registry.errors import ArtifactError

DATA = bytes(range(256)) * 40


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_put_is_content_addressed_and_idempotent(store: ArtifactStore) -> None:
    sha, size = store.put(DATA)
    assert (sha, size) == (hashlib.sha256(DATA).hexdigest(), len(DATA))
    assert store.path(sha) == store.root / "sha256" / sha[:2] / f"{sha}.onnx"
    assert store.put(DATA) == (sha, size)
    assert _files(store.root) == [f"sha256/{sha[:2]}/{sha}.onnx"]  # no temp files left
    assert store.read(sha) == DATA == store.read(sha, len(DATA))
    store.verify(sha, len(DATA))
    assert store.digests() == [sha]
    assert store.path(sha).stat().st_mode & 0o222 == 0  # read-only blob


def test_flipped_byte_is_detected_on_every_read(store: ArtifactStore) -> None:
    sha, size = store.put(DATA)
    assert store.read(sha, size) == DATA
    path = store.path(sha)
    path.chmod(0o644)
    with path.open("r+b") as handle:
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0x01]))
    for check in (
        lambda: store.read(sha, size),
        lambda: store.read(sha),
        lambda: store.verify(sha),
    ):
        with pytest.raises(ArtifactError, match=f"artifact {sha} is tampered or truncated"):
            check()


def test_truncation_is_detected(store: ArtifactStore) -> None:
    sha, size = store.put(DATA)
    path = store.path(sha)
    path.chmod(0o644)
    with path.open("r+b") as handle:
        handle.truncate(size - 7)
    with pytest.raises(ArtifactError, match="tampered or truncated.*bytes on disk"):
        store.read(sha, size)
    with pytest.raises(ArtifactError, match="tampered or truncated"):
        store.read(sha)  # without the expected size the digest still catches it


def test_put_repairs_a_damaged_blob(store: ArtifactStore) -> None:
    sha, size = store.put(DATA)
    path = store.path(sha)
    path.chmod(0o644)
    path.write_bytes(b"garbage")
    assert store.put(DATA) == (sha, size)
    assert store.read(sha, size) == DATA


def test_missing_and_malformed_digests(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactError, match="is missing"):
        store.read("a" * 64)
    for bad in ("A" * 64, "a" * 63, "../" + "a" * 61, ""):
        with pytest.raises(ArtifactError, match="invalid artifact digest"):
            store.read(bad)


def test_gc_removes_orphans_and_temp_files_past_the_grace_period(store: ArtifactStore) -> None:
    kept, _ = store.put(b"kept")
    orphan, _ = store.put(b"orphan")
    young, _ = store.put(b"young orphan")
    stray = store.path(orphan).parent / ".tmp-abc123"
    stray.write_bytes(b"half a model")
    for path in (store.path(kept), store.path(orphan), stray):
        _age(path, 7200)
    removed = store.gc({kept}, min_age=3600)
    assert sorted(removed) == sorted(
        [f"sha256/{orphan[:2]}/{orphan}.onnx", f"sha256/{orphan[:2]}/.tmp-abc123"]
    )
    assert store.digests() == sorted([kept, young])
    assert store.gc({kept}, min_age=0) == [f"sha256/{young[:2]}/{young}.onnx"]
    assert store.digests() == [kept]


def test_gc_on_an_empty_store(store: ArtifactStore) -> None:
    assert store.gc(set()) == []
