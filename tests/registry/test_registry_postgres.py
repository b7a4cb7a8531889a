"""What only the PostgreSQL backend does: artifacts in the database and the node's cache,
migrations under an advisory lock, change notifications, and failures as one line.

The store's shared behaviour runs on both backends through the ``registry`` fixture
(``conftest.py``); these tests use a real server on loopback (``tests/support/postgres.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from registry.backend import open_store, redact
from registry.errors import (
    ArtifactError,
    RegistryError,
    RegistryUnavailable,
    SchemaError,
    StaleRead,
)
from registry.home import HomePaths
from registry.models import Deployment, NewVersion, Route, Stage
from registry.postgres.blobs import CHUNK
from registry.postgres.schema import LATEST
from registry.postgres.store import PostgresRegistry


async def _open(url: str, root: Path) -> PostgresRegistry:
    store = await open_store(HomePaths(root), url)
    assert isinstance(store, PostgresRegistry)
    return store


def _describe(store: PostgresRegistry, payload: bytes) -> NewVersion:
    sha, size = store.artifacts.put(payload)
    return NewVersion(artifact_sha256=sha, artifact_size=size, schema={"features": []})


async def test_a_node_with_an_empty_cache_fetches_what_it_serves(postgres_url, tmp_path) -> None:
    first = await _open(postgres_url, tmp_path / "node-a")
    second = await _open(postgres_url, tmp_path / "node-b")
    try:
        payload = os.urandom(CHUNK * 3 + 12345)  # four chunks, the last one short
        nv = _describe(first, payload)
        await first.register_version("churn", nv, version="1.0.0")
        assert not second.artifacts.exists(nv.artifact_sha256)
        assert await second.read_artifact("churn", "1.0.0") == payload
        cached = second.artifacts.path(nv.artifact_sha256)
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == nv.artifact_sha256
        with psycopg.connect(postgres_url) as conn:
            chunks = conn.execute(
                "SELECT count(*), sum(length(data)) FROM artifact_chunks WHERE sha256 = %s",
                (nv.artifact_sha256,),
            ).fetchone()
        assert chunks == (4, len(payload))
    finally:
        await first.close()
        await second.close()


async def test_a_damaged_database_copy_is_refused_and_never_cached(postgres_url, tmp_path) -> None:
    writer = await _open(postgres_url, tmp_path / "node-a")
    reader = await _open(postgres_url, tmp_path / "node-b")
    try:
        nv = _describe(writer, b"0123456789")
        await writer.register_version("churn", nv, version="1.0.0")
        with psycopg.connect(postgres_url) as conn:
            conn.execute("UPDATE artifact_chunks SET data = %s", (b"0123456780",))
        with pytest.raises(ArtifactError, match="missing or damaged"):
            await reader.read_artifact("churn", "1.0.0")
        assert not reader.artifacts.exists(nv.artifact_sha256)
        assert list(reader.artifacts.root.rglob(".tmp-*")) == []
    finally:
        await writer.close()
        await reader.close()


async def test_a_version_row_and_its_blob_commit_together(postgres_url, tmp_path) -> None:
    store = await _open(postgres_url, tmp_path / "home")
    try:
        nv = _describe(store, b"model-bytes")
        with pytest.raises(StaleRead):
            await store.commit(
                store.stage_change("nothing", "1.0.0", Stage.STAGING), expect_generation=99
            )
        await store.register_version("churn", nv, version="1.0.0")
        with pytest.raises(Exception, match="already has version"):
            await store.register_version("churn", _describe(store, b"other"), version="1.0.0")
        with psycopg.connect(postgres_url) as conn:
            blobs = conn.execute("SELECT sha256 FROM artifacts ORDER BY sha256").fetchall()
        # the refused registration left no blob behind
        assert blobs == [(nv.artifact_sha256,)]
    finally:
        await store.close()


async def test_the_audit_log_is_append_only_and_gap_free(postgres_url, tmp_path) -> None:
    store = await _open(postgres_url, tmp_path / "home")
    try:
        await store.register_version("churn", _describe(store, b"a"), version="1.0.0")
        with pytest.raises(RegistryError):
            await store.set_deployment(Deployment("churn", routes=(Route("9.9.9", 100.0),)))
        await store.set_stage("churn", "1.0.0", Stage.STAGING)
        ids = [entry.id for entry in reversed(await store.audit(limit=100))]
        assert ids == list(range(1, len(ids) + 1))
        with psycopg.connect(postgres_url) as conn:
            for statement in (
                "UPDATE audit SET actor = 'x'",
                "DELETE FROM audit",
                "TRUNCATE audit",
            ):
                with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                    conn.execute(statement)
                conn.rollback()
    finally:
        await store.close()


def test_two_processes_migrating_a_new_database_at_once(postgres_url, tmp_path) -> None:
    script = (
        "import asyncio, sys\n"
        "from registry.backend import open_store\n"
        "async def main():\n"
        "    store = await open_store(sys.argv[2], sys.argv[1])\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, postgres_url, str(tmp_path / f"h{i}")],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [r[0] for r in rows] == list(range(1, LATEST + 1))


async def test_a_newer_schema_is_refused(postgres_url, tmp_path) -> None:
    store = await _open(postgres_url, tmp_path / "home")
    await store.close()
    with psycopg.connect(postgres_url) as conn:
        conn.execute(
            "INSERT INTO schema_version VALUES (%s, 'from the future', 'now')", (LATEST + 1,)
        )
    with pytest.raises(SchemaError, match="newer than this modelgate"):
        await open_store(tmp_path / "home", postgres_url)


async def test_a_foreign_database_is_refused(postgres_url, tmp_path) -> None:
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE customers (id INT)")
    with pytest.raises(SchemaError, match="not a modelgate registry"):
        await open_store(tmp_path / "home", postgres_url)


async def test_committed_changes_are_announced_refused_ones_are_not(postgres_url, tmp_path) -> None:
    store = await _open(postgres_url, tmp_path / "a")
    other = await _open(postgres_url, tmp_path / "b")
    feed = other.change_feed()
    feed.start()
    try:
        assert await feed.wait(10.0)  # connected: one wake-up to catch up
        assert not await feed.wait(0.3)
        await store.register_version("churn", _describe(store, b"a"), version="1.0.0")
        assert await feed.wait(10.0)
        with pytest.raises(StaleRead):
            await store.set_stage("churn", "1.0.0", Stage.STAGING, expect_generation=0)
        assert not await feed.wait(0.5)
        assert feed.connected
    finally:
        await feed.stop()
        await store.close()
        await other.close()


async def test_two_nodes_changing_the_same_model_one_wins(postgres_url, tmp_path) -> None:
    a = await _open(postgres_url, tmp_path / "a")
    b = await _open(postgres_url, tmp_path / "b")
    try:
        await a.register_version("churn", _describe(a, b"1"), version="1.0.0")
        await a.register_version("churn", _describe(a, b"2"), version="1.1.0")
        await a.set_stage("churn", "1.0.0", Stage.PRODUCTION)
        await a.set_stage("churn", "1.1.0", Stage.STAGING)
        planned = await a.generation()
        audit_before = len(await a.audit(limit=1000))
        canary = Deployment("churn", routes=(Route("1.0.0", 90.0), Route("1.1.0", 10.0)))
        outcomes = await asyncio.gather(
            a.set_deployment(canary, actor="node-a", expect_generation=planned),
            b.set_deployment(canary, actor="node-b", expect_generation=planned),
            return_exceptions=True,
        )
        won = [o for o in outcomes if isinstance(o, Deployment)]
        lost = [o for o in outcomes if isinstance(o, StaleRead)]
        assert len(won) == 1 and len(lost) == 1
        entries = await a.audit(limit=1000)
        assert len(entries) == audit_before + 1
        assert entries[0].action == "traffic" and entries[0].actor in ("node-a", "node-b")
        assert await a.generation() == planned + 1
    finally:
        await a.close()
        await b.close()


async def test_an_unreachable_server_is_one_line_unavailable(tmp_path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RegistryUnavailable, match="registry database unavailable") as caught:
        await open_store(tmp_path / "home", f"postgresql://u:secret@127.0.0.1:{port}/db")
    assert "\n" not in str(caught.value) and "secret" not in str(caught.value)


def test_unsupported_urls_and_redaction() -> None:
    with pytest.raises(RegistryError, match="unsupported registry URL scheme 'mysql'"):
        asyncio.run(open_store("/nonexistent", "mysql://x/y"))
    assert redact("postgresql://u:pw@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert redact("postgresql://u@h/d") == "postgresql://u@h/d"


async def test_backup_wraps_pg_dump_into_a_restorable_file(postgres_url, tmp_path, capsys) -> None:
    import glob

    from gateway.cli.main import main

    store = await _open(postgres_url, tmp_path / "home")
    try:
        await store.register_version("churn", _describe(store, b"a"), version="1.0.0")
    finally:
        await store.close()
    out = tmp_path / "registry.dump"
    argv = ["registry", "backup", "--registry", postgres_url, "--out", str(out)]
    assert await asyncio.to_thread(main, argv) == 0
    assert "pg_restore" in capsys.readouterr().out
    pg_restore = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_restore"))[-1]
    listing = subprocess.run([pg_restore, "--list", str(out)], capture_output=True, text=True)
    assert listing.returncode == 0 and "TABLE DATA public artifact_chunks" in listing.stdout
    assert await asyncio.to_thread(main, argv) == 2  # never overwrites
