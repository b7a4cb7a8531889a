"""Real processes: killed mid-registration, a full disk, and concurrent writers."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from registry.home import HomePaths
from registry.models import NewVersion
from registry.sqlite.store import open_registry
from tests.support.polling import wait_until

KILLED_BEFORE_COMMIT = """
import asyncio, os, signal, sys
from registry.sqlite import ops as sqlite_ops
from registry.models import NewVersion
from registry.sqlite.store import open_registry

async def main():
    store = await open_registry(sys.argv[1])
    sha, size = store.artifacts.put(b"crash-artifact" * 1000)
    print(sha, flush=True)
    real_append = sqlite_ops.append_audit

    async def append_then_die(txn, action, **kwargs):
        if action == "register":
            # the model and version rows exist in the open transaction; die before COMMIT
            row = await txn.one("SELECT count(*) FROM versions")
            print("uncommitted versions:", row[0], flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return await real_append(txn, action, **kwargs)

    sqlite_ops.append_audit = append_then_die
    await store.register_version("churn", NewVersion(sha, size, {}), bump="minor")

asyncio.run(main())
"""

FULL_DISK = """
import asyncio, hashlib, json, os, resource, signal, sys
from registry.errors import RegistryError
from registry.models import NewVersion
from registry.sqlite.store import open_registry

async def main():
    store = await open_registry(sys.argv[1])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, hard))
    data = os.urandom(2 * 1024 * 1024)
    errors = []
    try:
        store.artifacts.put(data)
    except RegistryError as exc:
        errors.append([type(exc).__name__, str(exc)])
    sha = hashlib.sha256(data).hexdigest()
    try:
        await store.register_version("churn", NewVersion(sha, len(data), {}), version="1.0.0")
    except RegistryError as exc:
        errors.append([type(exc).__name__, str(exc)])
    await store.close()
    print(json.dumps({"sha": sha, "errors": errors}))

asyncio.run(main())
"""

WRITER = """
import asyncio, json, os, sys, time
from registry.models import NewVersion
from registry.sqlite.store import open_registry

async def main():
    home, name, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    store = await open_registry(home)
    open(f"{go}.{name}.ready", "w").close()
    while not os.path.exists(go):
        time.sleep(0.005)
    versions = []
    for i in range(count):
        sha, size = store.artifacts.put(f"{name}-{i}".encode() * 100)
        mv = await store.register_version(
            "churn", NewVersion(sha, size, {}), bump="patch", actor=name
        )
        versions.append(mv.version)
    await store.close()
    print(json.dumps(versions))

asyncio.run(main())
"""


OPENER = """
import asyncio, sys
from registry.sqlite.store import open_registry

async def main():
    await (await open_registry(sys.argv[1])).close()

asyncio.run(main())
"""


def _python(script: str, *args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[arg-type]
    )


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_killed_before_commit_leaves_no_half_registered_version(home: HomePaths) -> None:
    await (await open_registry(home)).close()
    proc = _python(KILLED_BEFORE_COMMIT, str(home.root))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err
    sha, uncommitted = out.splitlines()
    assert uncommitted == "uncommitted versions: 1"

    store = await open_registry(home)
    try:
        assert await store.list_models() == []
        assert await store.audit() == [] and await store.generation() == 0
        assert store.artifacts.digests() == [sha]  # the orphan is on disk...
        assert await store.collect_garbage(min_age=0) == [f"sha256/{sha[:2]}/{sha}.onnx"]
        assert _files(home.artifacts) == []  # ...and gc removed it
        # the registry is fully usable afterwards
        sha2, size = store.artifacts.put(b"after the crash")
        mv = await store.register_version("churn", NewVersion(sha2, size, {}), bump="minor")
        assert mv.version == "1.0.0"
        assert await store.collect_garbage(min_age=0) == []  # referenced: kept
    finally:
        await store.close()


async def test_full_disk_during_artifact_write(home: HomePaths) -> None:
    await (await open_registry(home)).close()
    proc = _python(FULL_DISK, str(home.root))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result = json.loads(out)
    (put_type, put_message), (register_type, register_message) = result["errors"]
    assert put_type == "ArtifactError"
    assert f"could not store artifact {result['sha']}" in put_message
    assert "File too large" in put_message
    assert register_type == "ArtifactError" and "is missing" in register_message

    assert _files(home.artifacts) == []  # no blob, no temp file
    store = await open_registry(home)
    try:
        assert await store.list_models() == []
        assert await store.generation() == 0 and await store.audit() == []
    finally:
        await store.close()


async def test_two_processes_registering_at_once_get_distinct_versions(
    home: HomePaths, tmp_path: Path
) -> None:
    # no registry yet: both processes also race to create and migrate it
    go = tmp_path / "go"
    count = 6
    writers = [_python(WRITER, str(home.root), name, str(count), str(go)) for name in ("a", "b")]
    # release both writers together once each has imported and opened the registry

    def ready() -> bool:
        assert all(proc.poll() is None for proc in writers), "a writer died"
        return all(Path(f"{go}.{name}.ready").exists() for name in ("a", "b"))

    wait_until(ready, 60, 0.01, message="writers did not start")
    go.touch()
    results = []
    for proc in writers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    landed = [v for versions in results for v in versions]
    assert sorted(landed) == sorted(f"1.0.{i}" for i in range(2 * count))
    for versions in results:  # each process saw its own versions increase
        assert versions == sorted(versions, key=lambda v: int(v.rsplit(".", 1)[1]))

    store = await open_registry(home)
    try:
        listed = await store.list_versions("churn")
        assert [mv.version for mv in listed] == [f"1.0.{i}" for i in range(2 * count)]
        assert {mv.created_by for mv in listed} == {"a", "b"}
        assert len(await store.audit(action="register")) == 2 * count
        assert len(await store.audit(action="create_model")) == 1
        assert await store.generation() == 2 * count
        for mv in listed:  # every registered artifact is intact
            store.artifacts.verify(mv.artifact_sha256, mv.artifact_size)
    finally:
        await store.close()


async def test_a_writer_waits_for_another_connections_write_lock(
    home: HomePaths, tmp_path: Path
) -> None:
    store = await open_registry(home)
    try:
        sha, size = store.artifacts.put(b"x")
        other = sqlite3.connect(home.database, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock...
        release = threading.Timer(0.3, other.execute, args=("COMMIT",))
        release.start()
        try:  # ...so this waits for it (busy_timeout) instead of failing with "locked"
            mv = await store.register_version("churn", NewVersion(sha, size, {}), bump="patch")
        finally:
            release.join()
            other.close()
        assert mv.version == "1.0.0"
    finally:
        await store.close()


@pytest.mark.slow
def test_two_processes_opening_a_new_registry_together_both_succeed(tmp_path: Path) -> None:
    # switching the new file to WAL: SQLite says "database is locked" without waiting when
    # the other process holds the lock (it failed about one pair in 20 before the retry)
    for attempt in range(8):
        root = tmp_path / f"home{attempt}"
        openers = [_python(OPENER, str(root)) for _ in range(2)]
        for proc in openers:
            _out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
