"""Follow the registry's generation counter and refresh the snapshot when it moves.

This is how every worker process converges after a change made by another process or node
(admin API on a sibling worker or another node, the CLI). With SQLite it polls: one cheap
read per poll interval, a full refresh only when something was committed. A registry with
a change feed (PostgreSQL's LISTEN/NOTIFY) wakes the watcher the moment a change commits;
it then polls only every ``fallback_s`` in case a notification was lost, and the feed wakes
it again when its connection comes back after an outage.

With a ``RegistryLink`` (network registry) every poll records whether the database
answered; the first poll that reaches it after the node started from its saved view
rebuilds the snapshot from the registry, even at the same generation, so the node serves
(and saves) the registry's state again.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.serving.link import FROM_REGISTRY, RegistryLink
from gateway.serving.publisher import Publisher
from registry.base import ChangeFeed
from registry.errors import RegistryError

logger = logging.getLogger("modelgate.watcher")

# with a change feed: the safety-net poll (a notification lost on the way)
FALLBACK_POLL_S = 5.0


class GenerationWatcher:
    def __init__(
        self,
        publisher: Publisher,
        interval_s: float,
        feed: ChangeFeed | None = None,
        fallback_s: float = FALLBACK_POLL_S,
        link: RegistryLink | None = None,
    ) -> None:
        self.publisher = publisher
        self.interval_s = interval_s
        self.feed = feed
        self.fallback_s = max(fallback_s, interval_s)
        self.link = link
        self._task: asyncio.Task[None] | None = None
        # a node that started without its database logs the first poll that reaches it
        self._failing = link is not None and not link.reachable

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            if self.feed is not None:
                self.feed.start()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="watcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self.feed is not None:
            await self.feed.stop()

    async def check(self) -> bool:
        """One poll: refresh if the generation differs from the published one (or the
        snapshot was not built from the registry)."""
        if self.link is not None and self.link.serving != FROM_REGISTRY:
            await self.publisher.refresh()
            self.link.serving = FROM_REGISTRY
            return True
        return await self.publisher.catch_up()

    async def _wait(self) -> None:
        if self.feed is None:
            await asyncio.sleep(self.interval_s)
        else:
            await self.feed.wait(self.fallback_s)

    async def _run(self) -> None:
        while True:
            await self._wait()
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except RegistryError as exc:
                # the database is unreachable or busy: keep serving the last snapshot
                if not self._failing:
                    logger.warning("registry poll failed; keeping the current snapshot: %s", exc)
                self._failing = True
                if self.link is not None:
                    self.link.unreachable(str(exc))
                continue
            except Exception:
                logger.exception("registry poll failed; keeping the current snapshot")
                continue
            if self.link is not None:
                self.link.connected()
            if self._failing:
                logger.info("registry reachable again; serving its current state")
                self._failing = False
