"""The embedded registry: ``RegistryStore`` over one aiosqlite connection.

Concurrency model:

* Within a process, one ``asyncio.Lock`` serialises all use of the connection, so a
  coroutine never sees another coroutine's uncommitted transaction.
* Across processes, every mutation is one ``BEGIN IMMEDIATE`` transaction: it takes the
  database write lock before reading anything it decides on (the next version number,
  the current production version), waits up to the busy timeout for another writer,
  and appends its audit row(s) and bumps the generation counter before ``COMMIT``.
  Reads run in a deferred transaction (one consistent WAL snapshot).
* SQLite failures surface as one-line RegistryError messages, never tracebacks.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from registry import semver
from registry.artifacts import ArtifactStore, check_sha256
from registry.base import ChangeFeed
from registry.errors import ArtifactError, InvalidVersion, NotFound, RegistryError, VersionExists
from registry.home import HomePaths
from registry.models import AuditEntry, Model, ModelVersion, NewVersion, RegistryView
from registry.parsed_versions import CacheInfo, ParsedVersions
from registry.rows import (
    MODEL_SQL,
    audit_from_row,
    check_model_name,
    from_json,
    model_from_row,
    to_json,
)
from registry.schema import BUSY_TIMEOUT_MS, migrate
from registry.sqlite import ops
from registry.sqlite.direct import read_snapshot, run_write
from registry.sqlite.outcomes import OutcomesMixin
from registry.sqlite.versions import VersionsMixin
from registry.sqlite.view import read_view

MAX_AUDIT_LIMIT = 10_000
T = TypeVar("T")


class SqliteRegistry(OutcomesMixin, VersionsMixin):
    """SQLite + content-addressed files under one home folder."""

    def __init__(self, db: aiosqlite.Connection, home: HomePaths) -> None:
        super().__init__(db, home.database)
        self.home = home
        self.artifacts = ArtifactStore(home.artifacts)
        self._parsed = ParsedVersions()

    def change_feed(self) -> ChangeFeed | None:
        """None: SQLite has no notifications; watchers poll the (cheap) generation."""
        return None

    async def serving_view(
        self, model: str | None = None, *, state_prefix: str | tuple[str, ...] | None = None
    ) -> RegistryView:
        """Every model (or just ``model``: NotFound if unknown) with its versions, deployment
        and rollback target, the generation, and the state values whose key starts with
        ``state_prefix``: one consistent snapshot, read in one thread round trip."""
        parsed = self._parsed
        return await self._direct.call(
            lambda conn: read_snapshot(conn, lambda c: read_view(c, model, state_prefix, parsed))
        )

    def parsed_versions_info(self) -> CacheInfo:
        """How many version bodies the serving views parsed, and how many they reused."""
        return self._parsed.info()

    async def commit_and_view(
        self,
        change: ops.Change[T],
        *,
        expect_generation: int | None = None,
        state_prefix: str | tuple[str, ...] | None = None,
    ) -> tuple[T, RegistryView]:
        """``change`` (from ``deployment_change`` / ``stage_change``) as one write
        transaction, then ``serving_view(state_prefix=...)`` as committed: one thread round
        trip for what an admin change on a serving worker needs. ``expect_generation``
        refuses the change with StaleRead when something else committed first."""
        self._known_generation = None
        body = ops.guarded(change, expect_generation)

        def unit(conn: sqlite3.Connection) -> tuple[T, RegistryView, tuple[int, ...] | None]:
            result = run_write(conn, body)
            signature = ops.files_signature(self._database)  # before the read, as generation()
            view = read_snapshot(conn, lambda c: read_view(c, None, state_prefix, self._parsed))
            return result, view, signature

        read_at = time.monotonic()
        result, view, signature = await self._direct.call(unit)
        if signature is not None:
            self._known_generation = (signature, view.generation, read_at)
        return result, view

    # --- models --------------------------------------------------------------------
    async def list_models(self) -> list[Model]:
        async with self._read() as txn:
            rows = await txn.all(f"{MODEL_SQL} ORDER BY m.name")
        return [model_from_row(row) for row in rows]

    async def get_model(self, name: str) -> Model:
        async with self._read() as txn:
            row = await txn.one(f"{MODEL_SQL} WHERE m.name = ?", (name,))
        if row is None:
            raise NotFound(f"unknown model {name!r}")
        return model_from_row(row)

    async def _create_model(self, txn: ops.Txn, model: str, actor: str, reason: str) -> None:
        await txn.run(
            "INSERT INTO models (name, description, created_at) VALUES (?, '', ?)",
            (model, txn.now),
        )
        await txn.run(
            "INSERT INTO deployments (model, sticky_salt, updated_at) VALUES (?, ?, ?)",
            (model, secrets.token_hex(8), txn.now),
        )
        await ops.append_audit(
            txn, "create_model", actor=actor, model=model, after={"model": model}, reason=reason
        )

    # --- registration ----------------------------------------------------------------
    async def register_version(
        self,
        model: str,
        new: NewVersion,
        *,
        version: str | None = None,
        bump: str | None = None,
        actor: str = "",
        reason: str = "",
    ) -> ModelVersion:
        check_model_name(model)
        if (version is None) == (bump is None):
            raise InvalidVersion(
                "give exactly one of version (e.g. 1.2.0) or bump (major|minor|patch)"
            )
        explicit = semver.normalise(version) if version is not None else None
        if bump is not None:
            semver.check_part(bump)
        columns = _version_columns(new)
        sha, size = new.artifact_sha256, new.artifact_size
        # hash the blob before taking the write lock (large files take a while)
        await self._check_artifact(sha, size)
        created_by = new.created_by or actor
        async with self._write() as txn:
            if await txn.one("SELECT 1 FROM models WHERE name = ?", (model,)) is None:
                await self._create_model(txn, model, actor, reason)
            if explicit is not None:
                if await txn.one(
                    "SELECT 1 FROM versions WHERE model = ? AND version = ?", (model, explicit)
                ):
                    raise VersionExists(f"model {model!r} already has version {explicit}")
                chosen = explicit
            else:
                top = await txn.one(
                    "SELECT major, minor, patch FROM versions WHERE model = ? "
                    "ORDER BY major DESC, minor DESC, patch DESC LIMIT 1",
                    (model,),
                )
                chosen = "1.0.0" if top is None else semver.bump(semver.SemVer(*top), bump or "")
            await self._artifact_in_transaction(txn, sha, size)
            major, minor, patch = semver.parse(chosen)
            await txn.run(
                "INSERT INTO versions (model, version, major, minor, patch, stage, "
                "artifact_sha256, artifact_size, schema_json, lineage_json, reference_json, "
                "parity_json, tags_json, description, created_at, created_by, stage_changed_at) "
                "VALUES (?, ?, ?, ?, ?, 'none', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    model,
                    chosen,
                    major,
                    minor,
                    patch,
                    sha,
                    size,
                    *columns,
                    new.description,
                    txn.now,
                    created_by,
                    txn.now,
                ),
            )
            after = {"version": chosen, "artifact_sha256": sha, "artifact_size": size}
            await ops.append_audit(
                txn,
                "register",
                actor=actor,
                model=model,
                version=chosen,
                after=after,
                reason=reason,
            )
            row = await ops.resolve(txn, model, chosen)
            return await ops.version_of(txn, row)

    async def _check_artifact(self, sha: str, size: int) -> None:
        """Before the write transaction: the blob is stored whole (hashed, streamed)."""
        await asyncio.to_thread(self.artifacts.verify, sha, size)

    async def _artifact_in_transaction(self, txn: ops.Txn, sha: str, size: int) -> None:
        """Inside the version's write transaction: the blob is still there."""
        # a concurrent gc may have removed the blob since it was verified
        self.artifacts.check_present(sha, size)

    async def read_artifact(self, model: str, version: str) -> bytes:
        """The version's ONNX bytes, verified against the recorded sha256 and size."""
        mv = await self.get_version(model, version)
        return await asyncio.to_thread(self.artifacts.read, mv.artifact_sha256, mv.artifact_size)

    async def referenced_artifacts(self) -> set[str]:
        async with self._read() as txn:
            rows = await txn.all("SELECT DISTINCT artifact_sha256 FROM versions")
        return {row[0] for row in rows}

    async def collect_garbage(self, *, min_age: float = 0.0) -> list[str]:
        """Remove artifact files no version references (and stray temp files)."""
        referenced = await self.referenced_artifacts()
        return await asyncio.to_thread(self.artifacts.gc, referenced, min_age=min_age)

    # --- audit -----------------------------------------------------------------------
    async def append_audit(
        self,
        action: str,
        *,
        actor: str = "",
        model: str | None = None,
        version: str | None = None,
        before: Any = None,
        after: Any = None,
        reason: str = "",
    ) -> AuditEntry:
        if not isinstance(action, str) or not action:
            raise RegistryError("audit action must be a non-empty string")
        async with self._write() as txn:
            return await ops.append_audit(
                txn,
                action,
                actor=actor,
                model=model,
                version=version,
                before=before,
                after=after,
                reason=reason,
            )

    async def audit(
        self,
        *,
        model: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        since: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= MAX_AUDIT_LIMIT
        ):
            raise RegistryError(f"audit limit must be an integer from 1 to {MAX_AUDIT_LIMIT}")
        clauses, params = [], []
        for column, value in (("model", model), ("action", action), ("actor", actor)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("at >= ?")
            params.append(_normalise_since(since))
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        async with self._read() as txn:
            rows = await txn.all(
                f"SELECT * FROM audit {where}ORDER BY id DESC LIMIT ?", (*params, limit)
            )
        return [audit_from_row(row) for row in rows]

    # --- control-plane state ---------------------------------------------------------
    async def get_state(self, key: str) -> Any | None:
        async with self._read() as txn:
            row = await txn.one("SELECT value_json FROM state WHERE key = ?", (key,))
        return None if row is None else from_json(row[0])

    async def put_state(self, key: str, value: Any, *, actor: str = "", reason: str = "") -> None:
        """Store ``value`` under ``key``; writing the value already stored changes nothing."""
        ops.encode_state(key, value)  # refused before the transaction opens
        async with self._write() as txn:
            await ops.write_state(txn, key, value, actor=actor, reason=reason)


def _version_columns(new: NewVersion) -> tuple[str, ...]:
    """Validate a NewVersion's payloads and encode its JSON columns (before any I/O)."""
    for name in ("schema", "lineage", "reference", "parity", "tags"):
        if not isinstance(getattr(new, name), dict):
            raise InvalidVersion(f"{name} must be a dict, got {type(getattr(new, name)).__name__}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in new.tags.items()):
        raise InvalidVersion("tags must map strings to strings")
    if not isinstance(new.description, str) or not isinstance(new.created_by, str):
        raise InvalidVersion("description and created_by must be strings")
    size = new.artifact_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ArtifactError(f"artifact size must be a non-negative integer, got {size!r}")
    check_sha256(new.artifact_sha256)
    return tuple(
        to_json(getattr(new, name), name, InvalidVersion)
        for name in ("schema", "lineage", "reference", "parity", "tags")
    )


def _normalise_since(since: str) -> str:
    try:
        parsed = datetime.fromisoformat(since)
    except (TypeError, ValueError):
        raise RegistryError(f"invalid since {since!r}: expected an ISO-8601 date or time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def open_registry(home: HomePaths | str | os.PathLike[str]) -> SqliteRegistry:
    """Open (creating and migrating if needed) the registry in ``home``."""
    if not isinstance(home, HomePaths):
        home = HomePaths(Path(home).expanduser().resolve())
    try:
        home.artifacts.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RegistryError(
            f"cannot create the registry folder {home.root}: {exc.strerror}"
        ) from exc
    try:
        db = await aiosqlite.connect(
            home.database, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
        )
    except sqlite3.Error as exc:
        raise RegistryError(f"cannot open {home.database}: {exc}") from exc
    db.row_factory = sqlite3.Row
    try:
        await migrate(db)
    except BaseException:
        await db.close()
        raise
    return SqliteRegistry(db, home)
