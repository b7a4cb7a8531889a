"""The PostgreSQL registry: ``RegistryStore`` over a psycopg connection pool.

Shared with the SQLite backend: every transaction body (``registry/sqlite/ops.py``,
``versions.py`` and the registration, audit and state methods of ``SqliteRegistry``) is
written against the ``Txn`` interface, so this class inherits them and replaces only the
connection layer: how a transaction opens and commits, the serving view, and where
artifacts live.

Concurrency model (the same guarantees as SQLite's ``BEGIN IMMEDIATE``):

* every write transaction first takes ``pg_advisory_xact_lock(WRITE_LOCK)``: writers from
  every process on every node run one at a time, and each reads the state it decides on
  (next version number, current production, the generation) after the previous writer
  committed; the lock is released by COMMIT or ROLLBACK, also when a client dies;
* reads run in one REPEATABLE READ READ ONLY transaction (one consistent snapshot);
* a write that bumped the generation ends with ``pg_notify``, delivered at COMMIT to every
  node's ``ChangeListener``.

Artifacts: ``artifacts.put`` writes the node's local cache (content-addressed files under
``MODELGATE_HOME``); ``register_version`` copies the blob into the database in the same
transaction as the version row; ``read_artifact`` serves from the cache after verifying the
sha256, and fetches (streamed, verified) from the database what the cache lacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import psycopg_pool

from registry.artifacts import ArtifactStore
from registry.backend import redact
from registry.errors import ArtifactError, RegistryError
from registry.home import HomePaths
from registry.models import RegistryView
from registry.parsed_versions import ParsedVersions
from registry.postgres import blobs
from registry.postgres.listen import ChangeListener
from registry.postgres.schema import CHANNEL, WRITE_LOCK, migrate
from registry.postgres.txn import PgTxn, database_error, row_factory
from registry.postgres.view import read_view
from registry.sqlite import ops
from registry.sqlite.store import SqliteRegistry
from registry.sqlite.txn import Txn

logger = logging.getLogger("modelgate.registry.postgres")
T = TypeVar("T")

CONNECT_TIMEOUT_S = 5.0
# how long a caller waits for a pooled connection before the registry reports unavailable
POOL_WAIT_S = 5.0
POOL_MAX = 4
# a reconnection attempt gives up after this long; the next caller starts a fresh one, so
# the pool's exponential backoff never grows past it while the database is away
RECONNECT_GIVE_UP_S = 10.0
_DRIVER_ERRORS = (psycopg.Error, psycopg_pool.PoolTimeout, OSError)


class PostgresRegistry(SqliteRegistry):
    """PostgreSQL + a verified local artifact cache under one home folder."""

    def __init__(
        self,
        pool: psycopg_pool.AsyncConnectionPool[Any],
        url: str,
        home: HomePaths,
        *,
        migrated: bool = True,
    ):
        # no SqliteRegistry.__init__: there is no SQLite connection here
        self.home = home
        self.url = url
        self.artifacts = ArtifactStore(home.artifacts)
        self._pool = pool
        self._closed = False
        self._parsed = ParsedVersions()
        # False when opened without the database (open_postgres(connect=False)): the first
        # connection that succeeds brings the schema up to date before anything else runs
        self._migrated = migrated
        self._migrate_lock = asyncio.Lock()

    @property
    def database(self) -> str:
        return redact(self.url)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._pool.close()

    def change_feed(self) -> ChangeListener:
        """A new listener for committed changes (the caller starts and stops it)."""
        return ChangeListener(self.url, connect_timeout_s=CONNECT_TIMEOUT_S)

    # --- transactions ----------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._closed:
            raise RegistryError("the registry is closed")
        try:
            async with self._pool.connection() as conn:
                if not self._migrated:
                    await self._migrate(conn)
                yield conn
        except _DRIVER_ERRORS as exc:
            raise database_error(exc) from exc

    async def _migrate(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async with self._migrate_lock:
            if not self._migrated:
                await migrate(conn)
                self._migrated = True

    @contextlib.asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[Txn]:
        async with self._connection() as conn, conn.transaction():
            if write:
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            else:
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            txn = PgTxn(conn)
            yield txn
            if txn._generation is not None:
                # delivered to every listener when (and only if) this transaction commits
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(txn._generation)))

    async def _data_write(self, body: ops.Change[T]) -> T:
        """A write that changes no serving state (outcomes, assignment counts): its own
        transaction without the registry write lock (``registry/sqlite/outcomes.py``)."""
        async with self._connection() as conn, conn.transaction():
            return await body(PgTxn(conn))

    async def commit(self, change: ops.Change[T], *, expect_generation: int | None = None) -> T:
        """A prepared change as one write transaction; StaleRead when the registry is no
        longer at ``expect_generation``."""
        async with self._write() as txn:
            return await ops.guarded(change, expect_generation)(txn)

    async def commit_and_view(
        self,
        change: ops.Change[T],
        *,
        expect_generation: int | None = None,
        state_prefix: str | tuple[str, ...] | None = None,
    ) -> tuple[T, RegistryView]:
        result = await self.commit(change, expect_generation=expect_generation)
        return result, await self.serving_view(state_prefix=state_prefix)

    async def serving_view(
        self, model: str | None = None, *, state_prefix: str | tuple[str, ...] | None = None
    ) -> RegistryView:
        async with self._read() as txn:
            return await read_view(txn, model, state_prefix, self._parsed)

    async def generation(self) -> int:
        async with self._connection() as conn:
            cursor = await conn.execute("SELECT value FROM meta WHERE key = 'generation'")
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    # --- artifacts -------------------------------------------------------------------
    async def _check_artifact(self, sha: str, size: int) -> None:
        # a blob only in the database (registered from another node) is checked in the txn
        if self.artifacts.exists(sha):
            await asyncio.to_thread(self.artifacts.verify, sha, size)

    async def _artifact_in_transaction(self, txn: Txn, sha: str, size: int) -> None:
        await blobs.upload(txn, self.artifacts, sha, size)

    async def read_artifact(self, model: str, version: str) -> bytes:
        """The version's bytes from the local cache, verified; fetched from the database
        (streamed to the cache, verified) when the cache lacks them or holds a bad copy."""
        mv = await self.get_version(model, version)
        sha, size = mv.artifact_sha256, mv.artifact_size
        try:
            return await asyncio.to_thread(self.artifacts.read, sha, size)
        except ArtifactError as exc:
            if self.artifacts.exists(sha):
                logger.warning("local copy rejected, fetching it again: %s", exc)
        await self.fetch_artifact(sha, size)
        return await asyncio.to_thread(self.artifacts.read, sha, size)

    async def fetch_artifact(self, sha: str, size: int) -> None:
        """Stream one blob from the database into the local cache (verified)."""
        await self.fetch_into(self.artifacts, sha, size)

    async def fetch_into(self, store: ArtifactStore, sha: str, size: int) -> None:
        """Stream one blob from the database into ``store`` (verified)."""
        async with self._connection() as conn:
            try:
                await blobs.download(conn, store, sha, size)
            except _DRIVER_ERRORS as exc:
                raise database_error(exc) from exc

    async def collect_garbage(self, *, min_age: float = 0.0) -> list[str]:
        """Remove local cache files no version references (the database keeps every blob a
        version row references; versions are never deleted)."""
        referenced = await self.referenced_artifacts()
        return await asyncio.to_thread(self.artifacts.gc, referenced, min_age=min_age)


async def open_postgres(
    url: str, home: HomePaths | str | Path, *, connect: bool = True
) -> PostgresRegistry:
    """Connect (a small pool), migrate on first use, and open the local cache in ``home``.

    ``connect=False`` returns at once, without the database: the pool keeps connecting in
    the background, every call raises RegistryUnavailable until it succeeds, and the first
    connection runs the migrations (a server starting while PostgreSQL is down)."""
    if not isinstance(home, HomePaths):
        home = HomePaths(Path(home).expanduser().resolve())
    try:
        home.artifacts.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RegistryError(f"cannot create the artifact cache {home.artifacts}: {exc}") from exc
    pool: psycopg_pool.AsyncConnectionPool[Any] = psycopg_pool.AsyncConnectionPool(
        url,
        min_size=1,
        max_size=POOL_MAX,
        open=False,
        timeout=POOL_WAIT_S,
        reconnect_timeout=RECONNECT_GIVE_UP_S,
        check=psycopg_pool.AsyncConnectionPool.check_connection,
        kwargs={
            "autocommit": True,
            "row_factory": row_factory,
            "connect_timeout": round(CONNECT_TIMEOUT_S),
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 3,
        },
        name="modelgate-registry",
    )
    if not connect:
        await pool.open(wait=False)
        return PostgresRegistry(pool, url, home, migrated=False)
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        async with pool.connection() as conn:
            await migrate(conn)
    except BaseException as exc:
        await pool.close()
        if isinstance(exc, _DRIVER_ERRORS):
            raise database_error(exc) from exc
        raise
    return PostgresRegistry(pool, url, home)
