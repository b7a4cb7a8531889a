"""Poll the registry's generation counter and refresh the snapshot when it moves.

This is how every worker process converges after a change made by another process
(admin API on a sibling worker, the CLI): one cheap ``SELECT`` per poll interval, a full
refresh only when something was committed.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.serving.publisher import Publisher

logger = logging.getLogger("modelgate.watcher")


class GenerationWatcher:
    def __init__(self, publisher: Publisher, interval_s: float) -> None:
        self.publisher = publisher
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="watcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def check(self) -> bool:
        """One poll: refresh if the generation differs from the published one."""
        return await self.publisher.catch_up()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                # a locked database or a transient I/O error: keep serving, retry next tick
                logger.exception("registry poll failed; keeping the current snapshot")
