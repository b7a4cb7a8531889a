"""The shared transaction interface (``registry/sqlite/txn.Txn``) over a psycopg connection.

The transaction bodies in ``registry/sqlite/ops.py`` and ``versions.py`` are written with
``?`` placeholders and read rows by column name or position; ``PgTxn`` translates the
placeholders once per statement text and ``Row`` reads both ways, so those bodies run on
PostgreSQL unchanged. Driver failures become one-line RegistryError messages; a server
that cannot be reached is ``RegistryUnavailable`` (HTTP 503, CLI exit 2).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors

from registry.errors import RegistryError, RegistryUnavailable
from registry.sqlite.txn import Txn, is_insert

# tables whose INSERT reports the new row's id (the audit log)
_RETURNING_ID = ("INSERT INTO audit ",)


class Row:
    """One result row, indexable by position or column name (as ``sqlite3.Row``)."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._index)


def row_factory(cursor: Any) -> Any:
    """psycopg row factory producing ``Row``."""
    description = cursor.description or ()
    index = {column.name: i for i, column in enumerate(description)}

    def make(values: Sequence[Any]) -> Row:
        return Row(values, index)

    return make


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """SQLite's ``?`` placeholders as psycopg's ``%s`` (literal ``%`` doubled)."""
    sql = sql.replace("%", "%%").replace("?", "%s")
    if sql.startswith(_RETURNING_ID):
        sql += " RETURNING id"
    return sql


class PgTxn(Txn):
    """An open transaction on one pooled connection."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        super().__init__()
        self.conn = conn

    async def one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        cursor = await self.conn.execute(translate(sql), params)
        return await cursor.fetchone()

    async def all(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        cursor = await self.conn.execute(translate(sql), params)
        return await cursor.fetchall()

    async def run(self, sql: str, params: tuple[Any, ...] = ()) -> int | None:
        statement = translate(sql)
        cursor = await self.conn.execute(statement, params)
        if is_insert(sql) and statement.endswith("RETURNING id"):
            row = await cursor.fetchone()
            return None if row is None else int(row[0])
        return None


def database_error(exc: BaseException) -> RegistryError:
    """A driver failure as the one-line registry error it means."""
    if isinstance(exc, psycopg_pool.PoolTimeout | psycopg.OperationalError | OSError):
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return RegistryUnavailable(f"registry database unavailable: {detail}")
    if isinstance(exc, pg_errors.RaiseException):
        return RegistryError(f"registry database refused the change: {exc.diag.message_primary}")
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return RegistryError(f"registry database error: {message}")
