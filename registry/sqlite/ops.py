"""SQL building blocks used inside one SqliteRegistry transaction.

Every function takes the open transaction (``Txn``) and never commits: the caller's
``BEGIN IMMEDIATE`` ... ``COMMIT`` makes the whole change atomic, audit rows and the
generation bump included.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from registry import semver
from registry.errors import InvalidTransition, NotFound, RegistryError, StaleRead
from registry.models import AuditEntry, Deployment, ModelVersion, Stage
from registry.rows import (
    deployment_columns,
    deployment_from_row,
    from_json,
    to_json,
    version_from_row,
)
from registry.sqlite.direct import DirectConnection
from registry.sqlite.txn import Txn, database_message, is_insert

T = TypeVar("T")
# a whole write as one transaction body (run by ``commit`` or ``commit_and_view``); a
# coroutine, because the direct connection drives it by hand (``run_to_completion``)
Change = Callable[[Txn], Coroutine[Any, Any, T]]


class AioTxn(Txn):
    """A transaction on the store's aiosqlite connection."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        super().__init__()
        self.db = db

    # Each statement is one round trip to aiosqlite's thread (execute_fetchall /
    # execute_insert), not three (execute, fetch, close): on a busy event loop every round
    # trip waits its turn, and an admin change runs a few dozen statements.
    async def one(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        rows = await self.db.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return list(await self.db.execute_fetchall(sql, params))

    async def run(self, sql: str, params: tuple[Any, ...] = ()) -> int | None:
        if is_insert(sql):
            row = await self.db.execute_insert(sql, params)
            return None if row is None else int(row[0])
        await self.db.execute_fetchall(sql, params)
        return None


# a generation read from the files' unchanged stat is trusted for at most this long
GENERATION_RECHECK_S = 1.0


def files_signature(database: Path) -> tuple[int, ...] | None:
    """Changes whenever a commit lands (WAL frames appended or a checkpoint)."""
    try:
        main = os.stat(database)
    except OSError:
        return None
    try:
        wal = os.stat(f"{database}-wal")
    except FileNotFoundError:
        return (main.st_ino, main.st_mtime_ns, main.st_size)
    except OSError:
        return None
    return (main.st_ino, main.st_mtime_ns, main.st_size, wal.st_ino, wal.st_mtime_ns, wal.st_size)


class SqliteBase:
    """One connection, one in-process lock, and the read/write transaction helpers.

    Within a process the ``asyncio.Lock`` serialises every use of the connection, so a
    coroutine never reads another coroutine's uncommitted transaction. Across processes
    ``BEGIN IMMEDIATE`` takes the database write lock before anything is read that the
    change depends on.
    """

    def __init__(self, db: aiosqlite.Connection, database: Path) -> None:
        self._db = db
        self._database = database
        self._lock = asyncio.Lock()
        # whole reads and writes in one thread round trip (sqlite_direct)
        self._direct = DirectConnection(database)
        # generation() cache: (files signature, value, monotonic time it was read)
        self._known_generation: tuple[tuple[int, ...], int, float] | None = None

    async def close(self) -> None:
        await self._direct.close()
        await self._db.close()

    async def commit(self, change: Change[T], *, expect_generation: int | None = None) -> T:
        """A prepared change (``deployment_change`` / ``stage_change``) as one write
        transaction in one round trip (``registry.sqlite.direct``); StaleRead when the registry is
        no longer at ``expect_generation``."""
        self._known_generation = None
        return await self._direct.write(guarded(change, expect_generation))

    @contextlib.asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[Txn]:
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise RegistryError(database_message(exc)) from exc
            except asyncio.CancelledError:
                # the BEGIN still runs on aiosqlite's thread: end it before releasing the lock
                with contextlib.suppress(sqlite3.Error):
                    await self._db.execute("ROLLBACK")
                raise
            if write:
                self._known_generation = None
            try:
                yield AioTxn(self._db)
                await self._db.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    await self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise RegistryError(database_message(exc)) from exc
                raise

    def _write(self) -> contextlib.AbstractAsyncContextManager[Txn]:
        return self._transaction(write=True)

    def _read(self) -> contextlib.AbstractAsyncContextManager[Txn]:
        return self._transaction(write=False)

    async def generation(self) -> int:
        """The global change counter. Every worker polls it, so while the database files
        are unchanged (a stat, no thread round trip) the last value read is returned; it is
        read again after any commit, and at least every GENERATION_RECHECK_S."""
        signature = files_signature(self._database)
        known = self._known_generation
        now = time.monotonic()
        if (
            known is not None
            and signature is not None
            and known[0] == signature
            and now - known[2] < GENERATION_RECHECK_S
        ):
            return known[1]
        async with self._lock:
            rows = await self._db.execute_fetchall(
                "SELECT value FROM meta WHERE key = 'generation'"
            )
        row = next(iter(rows), None)
        value = int(row[0]) if row else 0
        if signature is not None:  # taken before the read: a commit meanwhile changes it
            self._known_generation = (signature, value, now)
        return value


def guarded(body: Change[T], expect_generation: int | None) -> Change[T]:
    """``body``, refused with StaleRead when the registry is no longer at
    ``expect_generation`` (optimistic concurrency: the caller planned on that state)."""
    if expect_generation is None:
        return body

    async def checked(txn: Txn) -> T:
        row = await txn.one("SELECT value FROM meta WHERE key = 'generation'")
        current = int(row[0]) if row else 0
        if current != expect_generation:
            raise StaleRead(
                f"the registry changed (generation {current}, this change was planned "
                f"at {expect_generation}); read it again and retry"
            )
        return await body(txn)

    return checked


async def require_model(txn: Txn, model: str) -> sqlite3.Row:
    row = await txn.one("SELECT * FROM models WHERE name = ?", (model,))
    if row is None:
        raise NotFound(f"unknown model {model!r}")
    return row


async def resolve(txn: Txn, model: str, ref: str) -> sqlite3.Row:
    """The version row named by a version (``1.2.0``, ``v1.2.0``) or an alias."""
    await require_model(txn, model)
    if not isinstance(ref, str):
        raise NotFound(f"model {model!r} has no version {ref!r}")
    if semver.is_version(ref):
        version = semver.normalise(ref)
        row = await txn.one(
            "SELECT * FROM versions WHERE model = ? AND version = ?", (model, version)
        )
        if row is None:
            raise NotFound(f"model {model!r} has no version {version}")
        return row
    row = await txn.one(
        "SELECT v.* FROM aliases a JOIN versions v ON v.model = a.model AND v.version = a.version "
        "WHERE a.model = ? AND a.alias = ?",
        (model, ref),
    )
    if row is None:
        raise NotFound(f"model {model!r} has no version or alias {ref!r}")
    return row


async def aliases_by_version(txn: Txn, model: str) -> dict[str, tuple[str, ...]]:
    rows = await txn.all(
        "SELECT version, alias FROM aliases WHERE model = ? ORDER BY alias", (model,)
    )
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["version"], []).append(row["alias"])
    return {version: tuple(names) for version, names in found.items()}


async def version_of(txn: Txn, row: sqlite3.Row) -> ModelVersion:
    aliases = await aliases_by_version(txn, row["model"])
    return version_from_row(row, aliases.get(row["version"], ()))


async def stages(txn: Txn, model: str) -> dict[str, Stage]:
    rows = await txn.all("SELECT version, stage FROM versions WHERE model = ?", (model,))
    return {row["version"]: Stage(row["stage"]) for row in rows}


async def production_version(txn: Txn, model: str) -> str | None:
    row = await txn.one(
        "SELECT version FROM versions WHERE model = ? AND stage = 'production'", (model,)
    )
    return None if row is None else row["version"]


async def load_deployment(txn: Txn, model: str) -> Deployment:
    row = await txn.one("SELECT * FROM deployments WHERE model = ?", (model,))
    if row is None:
        raise NotFound(f"unknown model {model!r}")
    return deployment_from_row(row)


async def write_deployment(txn: Txn, deployment: Deployment) -> None:
    routes_json, shadows_json = deployment_columns(deployment)
    await txn.run(
        "UPDATE deployments SET routes_json = ?, shadows_json = ?, challenger = ?, sticky = ?, "
        "sticky_salt = ?, updated_at = ? WHERE model = ?",
        (
            routes_json,
            shadows_json,
            deployment.challenger,
            int(deployment.sticky),
            deployment.sticky_salt,
            deployment.updated_at,
            deployment.model,
        ),
    )


async def append_audit(
    txn: Txn,
    action: str,
    *,
    actor: str,
    model: str | None = None,
    version: str | None = None,
    before: Any = None,
    after: Any = None,
    reason: str = "",
) -> AuditEntry:
    before_json = None if before is None else to_json(before, "audit 'before'")
    after_json = None if after is None else to_json(after, "audit 'after'")
    await txn.generation()
    entry_id = await txn.run(
        "INSERT INTO audit (at, actor, action, model, version, before_json, after_json, reason) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (txn.now, actor, action, model, version, before_json, after_json, reason),
    )
    assert entry_id is not None
    return AuditEntry(entry_id, txn.now, actor, action, model, version, before, after, reason)


def encode_state(key: str, value: Any) -> str:
    """The stored JSON of control-plane state ``value``; RegistryError for a bad key or a
    value that is not JSON."""
    if not isinstance(key, str) or not key:
        raise RegistryError("state key must be a non-empty string")
    return to_json(value, f"state {key!r}")


async def write_state(txn: Txn, key: str, value: Any, *, actor: str, reason: str) -> None:
    """Store ``value`` under the control-plane state ``key`` (+ a ``state`` audit row);
    writing the value already stored changes nothing."""
    encoded = encode_state(key, value)
    row = await txn.one("SELECT value_json FROM state WHERE key = ?", (key,))
    if row is not None and row[0] == encoded:
        return
    await txn.run(
        "INSERT INTO state (key, value_json, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json, "
        "updated_at = excluded.updated_at",
        (key, encoded, txn.now),
    )
    before = None if row is None else {"key": key, "value": from_json(row[0])}
    await append_audit(
        txn, "state", actor=actor, before=before, after={"key": key, "value": value}, reason=reason
    )


def traffic_users(deployment: Deployment, version: str, stage: Stage) -> list[str]:
    """Why ``version`` still receives traffic under ``deployment`` (empty: it does not)."""
    uses = []
    if any(route.version == version for route in deployment.routes):
        uses.append("it is in the routes")
    if any(shadow.version == version for shadow in deployment.shadows):
        uses.append("it is a shadow")
    if deployment.challenger == version:
        uses.append("it is the challenger")
    if stage == Stage.PRODUCTION and not deployment.routes:
        uses.append("it is production and the routes are empty, so it serves 100 %")
    return uses


async def change_stage(
    txn: Txn, model: str, version: str, current: Stage, target: Stage, *, actor: str, reason: str
) -> None:
    """Write one stage change (+ audit); record when a version leaves production."""
    if current == Stage.PRODUCTION and target != Stage.PRODUCTION:
        await txn.run(
            "UPDATE versions SET left_production_at = ?, left_production_gen = ? "
            "WHERE model = ? AND version = ?",
            (txn.now, await txn.generation(), model, version),
        )
    await txn.run(
        "UPDATE versions SET stage = ?, stage_changed_at = ? WHERE model = ? AND version = ?",
        (target.value, txn.now, model, version),
    )
    await append_audit(
        txn,
        "stage",
        actor=actor,
        model=model,
        version=version,
        before={"stage": current.value},
        after={"stage": target.value},
        reason=reason,
    )


def check_can_leave(deployment: Deployment, version: str, current: Stage, target: Stage) -> None:
    """Refuse archiving a version that receives traffic, or demoting the implicit route."""
    uses = traffic_users(deployment, version, current)
    if target != Stage.ARCHIVED:
        # a staging version may keep its routes; only the implicit production route breaks
        uses = [u for u in uses if u.startswith("it is production")]
    if uses:
        raise InvalidTransition(
            f"cannot move version {version} of {deployment.model!r} to {target.value}: "
            f"{'; '.join(uses)}; change traffic first"
        )
