"""The transaction interface ``registry.sqlite.ops`` is written against, and SQLite error messages.

Two implementations: ``AioTxn`` (``ops``: the store's aiosqlite connection, one
thread round trip per statement) and ``DirectTxn`` (``registry.sqlite.direct``: a plain sqlite3
connection, a whole transaction in one round trip).
"""

from __future__ import annotations

import abc
import sqlite3
from typing import Any

from registry.schema import BUSY_TIMEOUT_MS, utc_now


class Txn(abc.ABC):
    """An open transaction: its timestamp and a generation bumped at most once."""

    def __init__(self) -> None:
        self.now = utc_now()
        self._generation: int | None = None

    @abc.abstractmethod
    async def one(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None: ...

    @abc.abstractmethod
    async def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]: ...

    @abc.abstractmethod
    async def run(self, sql: str, params: tuple[Any, ...] = ()) -> int | None:
        """Execute a change; for an INSERT, the new row's id."""

    async def generation(self) -> int:
        """The generation this transaction commits as (bumps the counter on first call)."""
        if self._generation is None:
            await self.run("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
            row = await self.one("SELECT value FROM meta WHERE key = 'generation'")
            assert row is not None  # created by migration 1
            self._generation = int(row[0])
        return self._generation


def is_insert(sql: str) -> bool:
    return sql.lstrip()[:6].upper() == "INSERT"


def database_message(exc: sqlite3.Error) -> str:
    if "locked" in str(exc) or "busy" in str(exc):
        return (
            f"registry database is busy: another process held the write lock for more than "
            f"{BUSY_TIMEOUT_MS // 1000} s ({exc})"
        )
    return f"registry database error: {exc}"
