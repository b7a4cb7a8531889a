"""Database layout: connection PRAGMAs, DDL and ordered, numbered migrations.

PRAGMAs (set on every connection):

* ``journal_mode=WAL``: gateway workers read while the CLI or admin API writes.
* ``foreign_keys=ON``: versions, aliases and deployments cannot point at nothing.
* ``busy_timeout``: a writer waits (``BUSY_TIMEOUT_MS``) for another process's write
  transaction instead of failing at once; registry writes are rare and short.
* ``synchronous=FULL``: in WAL mode NORMAL survives process crashes but may lose the
  last commits on power loss. The registry is the source of truth for traffic and
  audit, and it commits a handful of times per hour, so one extra fsync per commit is
  free while an acknowledged rollback that silently vanishes is not.

Pending migrations run in one ``BEGIN IMMEDIATE`` transaction, so two processes opening a
fresh registry at once apply every migration exactly once. Before that, switching a fresh
file to WAL needs an exclusive lock, and SQLite answers "database is locked" at once, without
the busy handler, while the other process holds it; ``apply_pragmas`` retries that for up to
``BUSY_TIMEOUT_MS`` (two processes opening a new registry together failed ~1 time in 20).
A database whose ``schema_version`` is newer than ``MIGRATIONS`` raises SchemaError: old
code must not write to a layout it does not know.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from datetime import UTC, datetime

import aiosqlite

from registry.errors import SchemaError

BUSY_TIMEOUT_MS = 15_000

PRAGMAS = (
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = FULL",
)

_V1 = (
    """CREATE TABLE models (
        name        TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        created_at  TEXT NOT NULL
    )""",
    """CREATE TABLE versions (
        model            TEXT NOT NULL REFERENCES models(name),
        version          TEXT NOT NULL,
        major            INTEGER NOT NULL,
        minor            INTEGER NOT NULL,
        patch            INTEGER NOT NULL,
        stage            TEXT NOT NULL
                         CHECK (stage IN ('none', 'staging', 'production', 'archived')),
        artifact_sha256  TEXT NOT NULL CHECK (length(artifact_sha256) = 64),
        artifact_size    INTEGER NOT NULL CHECK (artifact_size >= 0),
        schema_json      TEXT NOT NULL,
        lineage_json     TEXT NOT NULL,
        reference_json   TEXT NOT NULL,
        parity_json      TEXT NOT NULL,
        evaluation_json  TEXT,
        tags_json        TEXT NOT NULL,
        description      TEXT NOT NULL DEFAULT '',
        created_at       TEXT NOT NULL,
        created_by       TEXT NOT NULL DEFAULT '',
        stage_changed_at TEXT NOT NULL,
        left_production_at  TEXT,
        left_production_gen INTEGER,
        PRIMARY KEY (model, version),
        UNIQUE (model, major, minor, patch)
    )""",
    # at most one production version per model, enforced by the database itself
    "CREATE UNIQUE INDEX versions_one_production ON versions(model) WHERE stage = 'production'",
    "CREATE INDEX versions_artifact ON versions(artifact_sha256)",
    """CREATE TABLE aliases (
        model   TEXT NOT NULL,
        alias   TEXT NOT NULL,
        version TEXT NOT NULL,
        PRIMARY KEY (model, alias),
        FOREIGN KEY (model, version) REFERENCES versions(model, version)
    )""",
    """CREATE TABLE deployments (
        model        TEXT PRIMARY KEY REFERENCES models(name),
        routes_json  TEXT NOT NULL DEFAULT '[]',
        shadows_json TEXT NOT NULL DEFAULT '[]',
        challenger   TEXT,
        sticky       INTEGER NOT NULL DEFAULT 0,
        sticky_salt  TEXT NOT NULL,
        updated_at   TEXT NOT NULL
    )""",
    """CREATE TABLE audit (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          TEXT NOT NULL,
        actor       TEXT NOT NULL,
        action      TEXT NOT NULL,
        model       TEXT,
        version     TEXT,
        before_json TEXT,
        after_json  TEXT,
        reason      TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX audit_model ON audit(model, id)",
    "CREATE INDEX audit_action ON audit(action, id)",
    """CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT INTO meta (key, value) VALUES ('generation', 0)",
    """CREATE TABLE state (
        key        TEXT PRIMARY KEY,
        value_json TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
)

# experiment outcomes (registry/sqlite/outcomes.py): sufficient statistics per scope
# (experiment id or baseline:<UTC day>), the idempotency keys of the late window, and the
# requests each variant served
_V2 = (
    """CREATE TABLE outcome_moments (
        scope    TEXT NOT NULL,
        model    TEXT NOT NULL,
        version  TEXT NOT NULL,
        metric   TEXT NOT NULL,
        count    INTEGER NOT NULL CHECK (count >= 0),
        total    REAL NOT NULL,
        total_sq REAL NOT NULL,
        PRIMARY KEY (scope, model, version, metric)
    )""",
    "CREATE INDEX outcome_moments_baseline ON outcome_moments(model, version, metric, scope)",
    """CREATE TABLE outcome_keys (
        model       TEXT NOT NULL,
        unit        TEXT NOT NULL,
        metric      TEXT NOT NULL,
        received_at REAL NOT NULL,
        PRIMARY KEY (model, unit, metric)
    )""",
    "CREATE INDEX outcome_keys_received ON outcome_keys(received_at)",
    """CREATE TABLE experiment_assignments (
        experiment_id TEXT NOT NULL,
        version       TEXT NOT NULL,
        count         INTEGER NOT NULL CHECK (count >= 0),
        PRIMARY KEY (experiment_id, version)
    )""",
)

# (number, description, statements); append only, never edit a released migration
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "models, versions, aliases, deployments, audit, meta, state", _V1),
    (2, "experiment outcomes: moments, idempotency keys, assignments", _V2),
)

LATEST = MIGRATIONS[-1][0]

_SCHEMA_VERSION_DDL = """CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  TEXT NOT NULL
)"""


def utc_now() -> str:
    """ISO-8601 UTC with microseconds; lexicographic order is chronological order."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def apply_pragmas(db: aiosqlite.Connection) -> None:
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    for pragma in PRAGMAS:
        delay = 0.005
        while True:
            try:
                await db.execute(pragma)
                break
            except sqlite3.OperationalError as exc:  # see the module docstring
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(2 * delay, 0.1)


async def _tables(db: aiosqlite.Connection) -> set[str]:
    async with db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ) as cur:
        return {row[0] for row in await cur.fetchall()}


async def current_version(db: aiosqlite.Connection) -> int:
    """The schema version of the database (0 when it is empty)."""
    if "schema_version" not in await _tables(db):
        return 0
    async with db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


def _check_not_newer(found: int) -> None:
    if found > LATEST:
        raise SchemaError(
            f"registry database schema is version {found}, newer than this modelgate "
            f"supports ({LATEST}); upgrade modelgate"
        )


async def migrate(db: aiosqlite.Connection) -> int:
    """Bring the database to ``LATEST``; return the version it is at."""
    try:
        await apply_pragmas(db)
        tables = await _tables(db)
        if tables and "schema_version" not in tables:
            raise SchemaError(
                "database is not a modelgate registry (it has tables but no schema_version)"
            )
        found = await current_version(db)
        _check_not_newer(found)
        if found < LATEST:
            await _apply_pending(db)
        return await current_version(db)
    except sqlite3.DatabaseError as exc:
        raise SchemaError(f"cannot open the registry database: {exc}") from exc


async def _apply_pending(db: aiosqlite.Connection) -> None:
    # one write transaction: a second process opening the same fresh file waits here,
    # then finds nothing left to apply
    await db.execute("BEGIN IMMEDIATE")
    try:
        await db.execute(_SCHEMA_VERSION_DDL)
        found = await current_version(db)
        _check_not_newer(found)
        for number, description, statements in MIGRATIONS:
            if number <= found:
                continue
            for statement in statements:
                await db.execute(statement)
            await db.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                (number, description, utc_now()),
            )
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            await db.execute("ROLLBACK")
        raise
    await db.execute("COMMIT")
