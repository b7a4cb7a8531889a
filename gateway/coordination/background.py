"""A component's one background task: ``start()`` runs it unless it already runs, ``stop()``
cancels it and waits for it to end (the leader campaign and the lifecycle controllers)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from registry.errors import RegistryUnavailable


class BackgroundTask:
    __slots__ = ("_factory", "_task")

    def __init__(self, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._factory = factory
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the task (needs a running loop); nothing if it is running already."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._factory())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def log_failure(logger: logging.Logger, message: str, *args: object) -> None:
    """Log the exception being handled: one warning line while the registry database is
    unreachable (an outage the watcher reports and recovers from), a traceback otherwise."""
    exc = sys.exc_info()[1]
    if isinstance(exc, RegistryUnavailable):
        logger.warning(message + ": %s", *args, exc)
    else:
        logger.exception(message, *args)
