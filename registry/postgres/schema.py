"""PostgreSQL layout: numbered migrations, applied on first use under an advisory lock.

The tables mirror the SQLite layout (``registry/schema.py``) column for column, so the
transaction bodies in ``registry/sqlite/ops.py`` run unchanged on both backends: timestamps
stay ISO-8601 text (their order is chronological), JSON columns stay text (what was stored
is what is read back, float for float). Two additions: ``artifacts`` and
``artifact_chunks`` hold the model files themselves (1 MiB chunks, so a large file is never
one value in memory), and ``versions.artifact_sha256`` references them, so a version row
cannot exist without its blob.

Audit ids are ``MAX(id) + 1`` set by a trigger, not a sequence: a sequence skips numbers on
rollback, and every writer holds the registry's write lock (``WRITE_LOCK``), so the next id
is well defined and the log has no gaps, as in SQLite.

Pending migrations run in one transaction holding ``pg_advisory_xact_lock(MIGRATE_LOCK)``:
a second process migrating at the same moment waits, then finds nothing left to apply.
"""

from __future__ import annotations

from typing import Any

import psycopg

from registry.errors import SchemaError
from registry.schema import utc_now

# advisory lock keys (one 64-bit namespace per database); arbitrary but fixed forever
WRITE_LOCK = 0x6D67_7701  # every registry write transaction
MIGRATE_LOCK = 0x6D67_7702  # applying migrations
LEADER_LOCK = 0x6D67_7703  # the control-plane leader across nodes (session lock)

# the channel every committed change is announced on (payload: the new generation)
CHANNEL = "modelgate_registry"

_V1 = (
    """CREATE TABLE models (
        name        TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        created_at  TEXT NOT NULL
    )""",
    """CREATE TABLE artifacts (
        sha256     TEXT PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        size       BIGINT NOT NULL CHECK (size >= 0),
        chunks     INTEGER NOT NULL CHECK (chunks >= 0),
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE artifact_chunks (
        sha256 TEXT NOT NULL REFERENCES artifacts(sha256) ON DELETE CASCADE,
        seq    INTEGER NOT NULL CHECK (seq >= 0),
        data   BYTEA NOT NULL,
        PRIMARY KEY (sha256, seq)
    )""",
    # model files barely compress; skip the TOAST compression attempt
    "ALTER TABLE artifact_chunks ALTER COLUMN data SET STORAGE EXTERNAL",
    """CREATE TABLE versions (
        model            TEXT NOT NULL REFERENCES models(name),
        version          TEXT NOT NULL,
        major            BIGINT NOT NULL,
        minor            BIGINT NOT NULL,
        patch            BIGINT NOT NULL,
        stage            TEXT NOT NULL
                         CHECK (stage IN ('none', 'staging', 'production', 'archived')),
        artifact_sha256  TEXT NOT NULL REFERENCES artifacts(sha256),
        artifact_size    BIGINT NOT NULL CHECK (artifact_size >= 0),
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
        left_production_gen BIGINT,
        PRIMARY KEY (model, version),
        UNIQUE (model, major, minor, patch)
    )""",
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
        id          BIGINT PRIMARY KEY,
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
    """CREATE FUNCTION modelgate_audit_next_id() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.id IS NULL THEN  -- a copied registry keeps its ids
           NEW.id := COALESCE((SELECT MAX(id) FROM audit), 0) + 1;
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER audit_next_id BEFORE INSERT ON audit
       FOR EACH ROW EXECUTE FUNCTION modelgate_audit_next_id()""",
    """CREATE FUNCTION modelgate_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$""",
    """CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
       FOR EACH ROW EXECUTE FUNCTION modelgate_audit_append_only()""",
    """CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
       FOR EACH STATEMENT EXECUTE FUNCTION modelgate_audit_append_only()""",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    "INSERT INTO meta (key, value) VALUES ('generation', 0)",
    """CREATE TABLE state (
        key        TEXT PRIMARY KEY,
        value_json TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
)

# experiment outcomes, as registry/schema.py's migration 2
_V2 = (
    """CREATE TABLE outcome_moments (
        scope    TEXT NOT NULL,
        model    TEXT NOT NULL,
        version  TEXT NOT NULL,
        metric   TEXT NOT NULL,
        count    BIGINT NOT NULL CHECK (count >= 0),
        total    DOUBLE PRECISION NOT NULL,
        total_sq DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (scope, model, version, metric)
    )""",
    "CREATE INDEX outcome_moments_baseline ON outcome_moments(model, version, metric, scope)",
    """CREATE TABLE outcome_keys (
        model       TEXT NOT NULL,
        unit        TEXT NOT NULL,
        metric      TEXT NOT NULL,
        received_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (model, unit, metric)
    )""",
    "CREATE INDEX outcome_keys_received ON outcome_keys(received_at)",
    """CREATE TABLE experiment_assignments (
        experiment_id TEXT NOT NULL,
        version       TEXT NOT NULL,
        count         BIGINT NOT NULL CHECK (count >= 0),
        PRIMARY KEY (experiment_id, version)
    )""",
)

# (number, description, statements); append only, never edit a released migration
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "models, versions, artifacts, aliases, deployments, audit, meta, state", _V1),
    (2, "experiment outcomes: moments, idempotency keys, assignments", _V2),
)

LATEST = MIGRATIONS[-1][0]

_SCHEMA_VERSION_DDL = """CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  TEXT NOT NULL
)"""


async def current_version(conn: psycopg.AsyncConnection[Any]) -> int:
    """The schema version of the database (0 when it has no registry yet)."""
    cur = await conn.execute("SELECT to_regclass('schema_version') IS NOT NULL")
    row = await cur.fetchone()
    if not row or not row[0]:
        return 0
    cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


def _check_not_newer(found: int) -> None:
    if found > LATEST:
        raise SchemaError(
            f"registry database schema is version {found}, newer than this modelgate "
            f"supports ({LATEST}); upgrade modelgate"
        )


async def migrate(conn: psycopg.AsyncConnection[Any]) -> int:
    """Bring the database to ``LATEST`` (``conn`` in autocommit mode); the version it is at."""
    found = await current_version(conn)
    _check_not_newer(found)
    if found < LATEST:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            await conn.execute(_SCHEMA_VERSION_DDL)
            found = await current_version(conn)
            _check_not_newer(found)
            if found == 0:
                cur = await conn.execute(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() "
                    "AND tablename <> 'schema_version'"
                )
                row = await cur.fetchone()
                if row and int(row[0]):
                    raise SchemaError(
                        "database is not a modelgate registry (it has tables but no "
                        "schema_version); give an empty database or schema"
                    )
            for number, description, statements in MIGRATIONS:
                if number <= found:
                    continue
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_version (version, description, applied_at) "
                    "VALUES (%s, %s, %s)",
                    (number, description, utc_now()),
                )
    return await current_version(conn)
