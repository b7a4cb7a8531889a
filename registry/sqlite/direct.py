"""A whole registry read or write in one thread round trip.

The store's aiosqlite connection costs one round trip to its thread per statement. On a
gateway saturated with requests every round trip waits for the event loop's next turn
(~10 ms under load), so the reads behind a publisher refresh and the write behind an
admin change (a few dozen statements) used to take seconds there. ``DirectConnection``
keeps a second, plain sqlite3 connection on a dedicated thread and runs a whole unit of
work on it at once:

* ``call(fn)`` runs ``fn(connection)`` there (the serving view is one such read);
* ``write(body)`` runs a transaction body written against ``Txn`` -- the same
  ``registry.sqlite.ops`` code the aiosqlite path uses -- inside ``BEGIN IMMEDIATE`` ... ``COMMIT``.
  ``DirectTxn``'s coroutines never suspend, so the body is driven to completion on the
  thread without an event loop.

SQLite serialises the two connections' writers (``BEGIN IMMEDIATE`` + busy timeout), as it
does between processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from registry.errors import RegistryError
from registry.schema import BUSY_TIMEOUT_MS, PRAGMAS
from registry.sqlite.txn import Txn, database_message, is_insert

T = TypeVar("T")


class DirectTxn(Txn):
    """A ``Txn`` over a plain sqlite3 connection, used on that connection's thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__()
        self.conn = conn

    async def one(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

    async def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    async def run(self, sql: str, params: tuple[Any, ...] = ()) -> int | None:
        cursor = self.conn.execute(sql, params)
        return cursor.lastrowid if is_insert(sql) else None


def run_to_completion(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that never suspends (it awaits only ``DirectTxn`` methods)."""
    try:
        coro.send(None)
    except StopIteration as finished:
        return finished.value
    coro.close()
    raise RuntimeError("a direct transaction body awaited something other than its Txn")


class DirectConnection:
    def __init__(self, database: Path) -> None:
        self._database = database
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="registry-direct")
        self._conn: sqlite3.Connection | None = None  # created and used on that thread only
        self._closed = False

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` on the connection's thread; sqlite3 errors as RegistryError."""
        if self._closed:
            raise RegistryError("the registry is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, fn)

    async def write(self, body: Callable[[Txn], Coroutine[Any, Any, T]]) -> T:
        """``body(txn)`` as one write transaction, in one round trip."""
        return await self.call(lambda conn: run_write(conn, body))

    async def close(self) -> None:
        """Idempotent."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=False)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._connection())
        except sqlite3.Error as exc:
            raise RegistryError(database_message(exc)) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self._database, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
            )
            conn.row_factory = sqlite3.Row
            for pragma in PRAGMAS:
                conn.execute(pragma)
            self._conn = conn
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def run_write(conn: sqlite3.Connection, body: Callable[[Txn], Coroutine[Any, Any, T]]) -> T:
    """``body`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (on the connection's thread)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = run_to_completion(body(DirectTxn(conn)))
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    return result


def read_snapshot(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """``fn`` inside one read transaction (one consistent WAL snapshot)."""
    conn.execute("BEGIN")
    try:
        return fn(conn)
    finally:
        conn.execute("ROLLBACK")
