"""Bounded waits for something another task, thread or process does (no timing asserted)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _timed_out(timeout: float, value: Any, message: str | None) -> None:
    if message is not None:
        raise AssertionError(f"{message}: not met within {timeout} s (last: {value!r:.500})")


def wait_until(
    probe: Callable[[], T],
    timeout: float,
    interval: float,
    done: Callable[[T], object] = bool,
    message: str | None = None,
) -> T:
    """Call ``probe`` every ``interval`` s until ``done(value)`` or ``timeout`` s have passed.

    Returns the last value either way, for the caller's own asserts; with ``message`` a
    timeout raises AssertionError instead.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            _timed_out(timeout, value, message)
            return value
        time.sleep(interval)


async def wait_until_async(
    probe: Callable[[], Awaitable[T]] | Callable[[], T],
    timeout: float,
    interval: float,
    done: Callable[[T], object] = bool,
    message: str | None = None,
) -> T:
    """``wait_until`` on the event loop: ``probe`` may be a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if done(value):
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            _timed_out(timeout, value, message)
            return value  # type: ignore[return-value]
        await asyncio.sleep(interval)
