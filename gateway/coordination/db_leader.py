"""One control-plane leader across every node of a PostgreSQL registry: an advisory lock.

``DatabaseLeaderElection`` keeps one dedicated connection per process and holds the
session-level ``pg_try_advisory_lock(LEADER_LOCK)`` on it: exactly one process of all the
nodes sharing the database leads the rollout controller, the retraining monitor and the
external-rollback counter. Failover: the server releases the lock when the leader's session
ends (the process exits or is killed: its socket closes at once; its node vanishes: TCP
keepalives end the session within ~11 s), and another process takes it at its next retry.

A leader whose connection breaks steps down at its next check (every ``retry_s``), before
the server can have handed the lock to anyone else, so two leaders never act at once for
longer than that check. While the database is unreachable nobody leads, which is right:
rollouts and retraining write the registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from gateway.coordination.background import BackgroundTask

logger = logging.getLogger("modelgate.leader")

CONNECT_TIMEOUT_S = 5


class DatabaseLeaderElection:
    """A ``Leader`` (``coordination.leadership``) over a PostgreSQL advisory lock instead
    of a ``flock`` on the home folder."""

    def __init__(self, url: str, retry_s: float = 1.0) -> None:
        if retry_s <= 0:
            raise ValueError("retry_s must be > 0")
        self.url = url
        self.retry_s = retry_s
        self._conn: Any = None
        self._leading = False
        self._task = BackgroundTask(self._campaign)
        self.elected = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return self._leading

    async def _connect(self) -> Any:
        import psycopg

        return await psycopg.AsyncConnection.connect(
            self.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
            application_name="modelgate-leader",
        )

    async def _attempt(self) -> None:
        from registry.postgres.schema import LEADER_LOCK

        if self._conn is None:
            self._conn = await self._connect()
        if self._leading:
            await self._conn.execute("SELECT 1")  # still our session, so still our lock
            return
        cursor = await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,))
        row = await cursor.fetchone()
        if row and row[0]:
            self._leading = True
            self.elected.set()
            logger.info("this process (pid %d) leads the control plane of every node", os.getpid())

    async def _campaign(self) -> None:
        while True:
            try:
                await self._attempt()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._leading:
                    logger.warning("lost the leader's database session (%s); stepping down", exc)
                await self._drop()
            await asyncio.sleep(self.retry_s)

    async def _drop(self) -> None:
        self._leading = False
        self.elected.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    def start(self) -> None:
        """Campaign in the background (idempotent); needs a running loop."""
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        await self._drop()  # closing the session releases the lock at once
