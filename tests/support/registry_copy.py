"""A registry built once per module or session, and a private copy of it for each test."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest


def build_template(
    factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Awaitable[None]]
) -> Path:
    """``build(home)`` run once in a fresh temporary folder; returns that home."""
    home = factory.mktemp(name) / "home"
    asyncio.run(build(home))
    return home


def private_copy(template: Path, into: Path) -> Path:
    """A copy of the registry home ``template`` at ``into/home`` (the test may change it)."""
    return Path(shutil.copytree(template, into / "home"))
