"""What serving needs from the registry, read in one consistent snapshot and one thread hop.

The store's aiosqlite connection costs a thread round trip per statement (and two per
fetching statement). A publisher refresh or an admin change reads a dozen statements per
model; on a gateway saturated with requests every round trip waits its turn on the event
loop, so a rollback took seconds under load. ``ViewReader`` runs the whole read as one
synchronous function on its own connection in its own thread: one round trip, one WAL
read snapshot (readers never block writers, or other readers).
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from registry.errors import NotFound, RegistryError
from registry.models import Model, ModelView, RegistryView
from registry.rows import (
    MODEL_SQL,
    PREVIOUS_PRODUCTION_SQL,
    deployment_from_row,
    from_json,
    model_from_row,
    version_from_row,
)
from registry.schema import BUSY_TIMEOUT_MS


def _read_model(conn: sqlite3.Connection, model: Model) -> ModelView:
    aliases: dict[str, list[str]] = {}
    for row in conn.execute(
        "SELECT version, alias FROM aliases WHERE model = ? ORDER BY alias", (model.name,)
    ):
        aliases.setdefault(row["version"], []).append(row["alias"])
    versions = tuple(
        version_from_row(row, tuple(aliases.get(row["version"], ())))
        for row in conn.execute(
            "SELECT * FROM versions WHERE model = ? ORDER BY major, minor, patch", (model.name,)
        )
    )
    deployment = conn.execute("SELECT * FROM deployments WHERE model = ?", (model.name,)).fetchone()
    if deployment is None:
        raise RegistryError(f"registry is inconsistent: model {model.name!r} has no deployment")
    previous_row = conn.execute(PREVIOUS_PRODUCTION_SQL, (model.name,)).fetchone()
    previous = None
    if previous_row is not None:
        previous = next(v for v in versions if v.version == previous_row["version"])
    return ModelView(model, versions, deployment_from_row(deployment), previous)


class ViewReader:
    """A private read-only use of the registry database on one dedicated thread."""

    def __init__(self, database: Path) -> None:
        self._database = database
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="registry-view")
        self._conn: sqlite3.Connection | None = None  # created and used on that thread only
        self._closed = False

    async def read(self, model: str | None, state_prefix: str | None) -> RegistryView:
        if self._closed:
            raise RegistryError("the registry is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._read, model, state_prefix)

    async def close(self) -> None:
        """Idempotent."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=False)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self._database, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
            )
            conn.row_factory = sqlite3.Row
            self._conn = conn
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _read(self, model: str | None, state_prefix: str | None) -> RegistryView:
        try:
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                return self._read_in_snapshot(conn, model, state_prefix)
            finally:
                conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise RegistryError(f"registry database error: {exc}") from exc

    @staticmethod
    def _read_in_snapshot(
        conn: sqlite3.Connection, model: str | None, state_prefix: str | None
    ) -> RegistryView:
        row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        generation = int(row[0]) if row else 0
        if model is None:
            rows = conn.execute(f"{MODEL_SQL} ORDER BY m.name").fetchall()
        else:
            rows = conn.execute(f"{MODEL_SQL} WHERE m.name = ?", (model,)).fetchall()
            if not rows:
                raise NotFound(f"unknown model {model!r}")
        models = tuple(_read_model(conn, model_from_row(r)) for r in rows)
        states: dict[str, Any] = {}
        if state_prefix is not None:
            # GLOB, not LIKE: '_' and '%' are ordinary characters in keys
            pattern = state_prefix.replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")
            for key, value in conn.execute(
                "SELECT key, value_json FROM state WHERE key GLOB ?", (pattern + "*",)
            ):
                states[key] = from_json(value)
        return RegistryView(generation, models, states)
