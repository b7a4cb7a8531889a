"""``ChangeListener``: wake the serving watcher when another node commits a change.

Every write transaction of ``PostgresRegistry`` ends with ``pg_notify(CHANNEL, generation)``,
which PostgreSQL delivers to every listening session when (and only if) it commits. The
listener keeps one dedicated connection in ``LISTEN``; a notification sets an event the
watcher waits on. When the connection drops (server restart, network cut) it reconnects with
a capped backoff and sets the event once connected again, because changes committed while
it was away sent notifications nobody received. The watcher's slow poll is the fallback
for anything else (a notification lost with a proxy in between).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg

from registry.postgres.schema import CHANNEL

logger = logging.getLogger("modelgate.registry.listen")

RETRY_MIN_S = 0.2
RETRY_MAX_S = 5.0


class ChangeListener:
    def __init__(self, url: str, *, connect_timeout_s: float = 5.0) -> None:
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self._event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connected = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pg-listen")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def wait(self, timeout_s: float) -> bool:
        """Until a change is announced (True) or ``timeout_s`` passes (False)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout_s)
        fired = self._event.is_set()
        self._event.clear()
        return fired

    async def _run(self) -> None:
        delay = RETRY_MIN_S
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                if self.connected:
                    logger.warning("registry change feed lost (%s); reconnecting", exc)
                    delay = RETRY_MIN_S
                self.connected = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def _listen(self) -> None:
        conn: psycopg.AsyncConnection[Any] = await psycopg.AsyncConnection.connect(
            self.url,
            autocommit=True,
            connect_timeout=max(1, round(self.connect_timeout_s)),
            # a dead peer (node or server gone without a FIN) is noticed in seconds
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )
        async with conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            self.connected = True
            self._event.set()  # catch up on whatever committed while we were not listening
            async for _ in conn.notifies():
                self._event.set()
