"""Content-addressed artifact store: ``<root>/sha256/ab/<sha256>.onnx``.

A blob's name is its sha256, so it is written once and never changes. Writes go to a
temp file in the destination folder, are fsynced, renamed into place with ``os.replace``
(atomic on POSIX) and the folder is fsynced, so a crash leaves either no blob or the
whole blob, plus at worst a stray ``.tmp-*`` file that ``gc`` removes. Every read
verifies the size and the sha256: a flipped byte or a truncated file is refused, never
served.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from pathlib import Path

from registry.errors import ArtifactError

_SHA_RE = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX = ".tmp-"
_SUFFIX = ".onnx"
_CHUNK = 1 << 20


def check_sha256(sha256: str) -> str:
    if not isinstance(sha256, str) or _SHA_RE.fullmatch(sha256) is None:
        raise ArtifactError(f"invalid artifact digest {sha256!r}: expected 64 lowercase hex digits")
    return sha256


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ArtifactStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._blobs = self.root / "sha256"

    def path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self._blobs / sha256[:2] / f"{sha256}{_SUFFIX}"

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    # --- writing ---------------------------------------------------------------
    def put(self, data: bytes) -> tuple[str, int]:
        """Store ``data``; return ``(sha256, size)``. Idempotent for identical bytes."""
        data = bytes(data)
        sha256 = hashlib.sha256(data).hexdigest()
        size = len(data)
        target = self.path(sha256)
        if target.is_file():
            try:
                self.verify(sha256, size)
            except ArtifactError:
                pass  # a damaged copy: fall through and replace it with the good bytes
            else:
                # refresh the mtime so a concurrent gc's grace period covers the new user
                with contextlib.suppress(OSError):
                    os.utime(target)
                return sha256, size
        self._write_atomically(target, data, sha256)
        return sha256, size

    def _write_atomically(self, target: Path, data: bytes, sha256: str) -> None:
        tmp_name: str | None = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=target.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_name, 0o444)
            os.replace(tmp_name, target)
            tmp_name = None
            _fsync_dir(target.parent)
        except OSError as exc:
            detail = exc.strerror or str(exc)
            raise ArtifactError(
                f"could not store artifact {sha256} ({len(data)} bytes) under {self.root}: "
                f"{detail} (disk full or file size limit?)"
            ) from exc
        finally:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)

    # --- reading ---------------------------------------------------------------
    def _open_checked(self, sha256: str, expected_size: int | None) -> tuple[Path, int]:
        path = self.path(sha256)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ArtifactError(f"artifact {sha256} is missing from {self.root}") from None
        if expected_size is not None and size != expected_size:
            raise ArtifactError(
                f"artifact {sha256} is tampered or truncated: "
                f"{size} bytes on disk, {expected_size} expected"
            )
        return path, size

    def check_present(self, sha256: str, expected_size: int | None = None) -> None:
        """Cheap check (stat only): the blob exists with the expected size."""
        self._open_checked(sha256, expected_size)

    def read(self, sha256: str, expected_size: int | None = None) -> bytes:
        """The blob's bytes, verified against its sha256 (and size) on every read."""
        path, _ = self._open_checked(sha256, expected_size)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ArtifactError(f"cannot read artifact {sha256}: {exc.strerror}") from exc
        self._check_digest(sha256, hashlib.sha256(data).hexdigest(), len(data), expected_size)
        return data

    def verify(self, sha256: str, expected_size: int | None = None) -> None:
        """Stream the blob through sha256 without holding it in memory."""
        path, _ = self._open_checked(sha256, expected_size)
        digest = hashlib.sha256()
        size = 0
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
        except OSError as exc:
            raise ArtifactError(f"cannot read artifact {sha256}: {exc.strerror}") from exc
        self._check_digest(sha256, digest.hexdigest(), size, expected_size)

    @staticmethod
    def _check_digest(sha256: str, actual: str, size: int, expected_size: int | None) -> None:
        if actual != sha256 or (expected_size is not None and size != expected_size):
            raise ArtifactError(
                f"artifact {sha256} is tampered or truncated: content hashes to {actual} "
                f"({size} bytes)"
            )

    # --- housekeeping ------------------------------------------------------------
    def digests(self) -> list[str]:
        """Digests of every stored blob."""
        if not self._blobs.is_dir():
            return []
        found = []
        for path in self._blobs.glob(f"??/*{_SUFFIX}"):
            name = path.name[: -len(_SUFFIX)]
            if _SHA_RE.fullmatch(name):
                found.append(name)
        return sorted(found)

    def gc(self, referenced: set[str], *, min_age: float = 0.0) -> list[str]:
        """Remove unreferenced blobs and stray temp files older than ``min_age`` seconds.

        Returns the removed files as paths relative to the root. The grace period protects
        a blob that another process has just written and is about to register.
        """
        if not self._blobs.is_dir():
            return []
        cutoff = time.time() - min_age
        removed = []
        for folder in sorted(p for p in self._blobs.iterdir() if p.is_dir()):
            for path in sorted(folder.iterdir()):
                name = path.name
                is_tmp = name.startswith(_TMP_PREFIX)
                is_orphan = name.endswith(_SUFFIX) and name[: -len(_SUFFIX)] not in referenced
                if not (is_tmp or is_orphan):
                    continue
                try:
                    if path.lstat().st_mtime > cutoff:
                        continue
                    path.unlink()
                except FileNotFoundError:
                    continue
                removed.append(path.relative_to(self.root).as_posix())
        return removed
