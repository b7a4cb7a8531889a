from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from registry.errors import SchemaError
from registry.home import HomePaths
from registry.schema import LATEST, MIGRATIONS
from registry.sqlite.store import open_registry

TABLES = {"models", "versions", "aliases", "deployments", "audit", "meta", "state"}


def _tables(path: str) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


async def test_migrates_an_empty_folder(home: HomePaths) -> None:
    store = await open_registry(home)
    await store.close()
    assert home.database.is_file() and home.artifacts.is_dir()
    assert TABLES | {"schema_version"} <= _tables(str(home.database))
    with closing(sqlite3.connect(home.database)) as db, db:
        versions = [row[0] for row in db.execute("SELECT version FROM schema_version")]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert versions == [number for number, _, _ in MIGRATIONS]


async def test_reopen_is_idempotent_and_keeps_data(home: HomePaths) -> None:
    store = await open_registry(home)
    await store.put_state("k", {"a": 1})
    generation = await store.generation()
    await store.close()
    for _ in range(2):
        store = await open_registry(home)
        assert await store.get_state("k") == {"a": 1}
        assert await store.generation() == generation
        await store.close()
    with closing(sqlite3.connect(home.database)) as db, db:
        assert db.execute("SELECT count(*) FROM schema_version").fetchone()[0] == LATEST


@pytest.mark.sqlite_only
async def test_connection_pragmas(registry) -> None:  # type: ignore[no-untyped-def]
    db = registry._db
    async with db.execute("PRAGMA foreign_keys") as cur:
        assert (await cur.fetchone())[0] == 1
    async with db.execute("PRAGMA busy_timeout") as cur:
        assert (await cur.fetchone())[0] >= 5000
    async with db.execute("PRAGMA synchronous") as cur:
        assert (await cur.fetchone())[0] == 2  # FULL


async def test_database_newer_than_code_is_refused(home: HomePaths) -> None:
    await (await open_registry(home)).close()
    with closing(sqlite3.connect(home.database)) as db, db:
        db.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?, 'x', 'x')",
            (LATEST + 1,),
        )
    with pytest.raises(SchemaError, match=f"version {LATEST + 1}, newer than"):
        await open_registry(home)


async def test_foreign_sqlite_file_is_refused(home: HomePaths) -> None:
    home.root.mkdir(parents=True)
    with closing(sqlite3.connect(home.database)) as db, db:
        db.execute("CREATE TABLE something (x)")
    with pytest.raises(SchemaError, match="not a modelgate registry"):
        await open_registry(home)


async def test_garbage_file_is_refused(home: HomePaths) -> None:
    home.root.mkdir(parents=True)
    home.database.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SchemaError, match="cannot open the registry database"):
        await open_registry(home)


@pytest.mark.sqlite_only
async def test_audit_is_append_only(registry) -> None:  # type: ignore[no-untyped-def]
    await registry.append_audit("note", actor="t")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await registry._db.execute("UPDATE audit SET actor = 'someone else'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await registry._db.execute("DELETE FROM audit")
    assert [e.actor for e in await registry.audit()] == ["t"]
