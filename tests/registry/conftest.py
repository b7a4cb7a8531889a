"""Fixtures for registry tests: a real SQLite registry in tmp_path and tiny fake artifacts.

The registry never parses ONNX, so any bytes stand in for a model artifact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from registry.home import HomePaths
from registry.models import NewVersion
from registry.sqlite.store import SqliteRegistry, open_registry


@pytest.fixture
def home(tmp_path: Path) -> HomePaths:
    return HomePaths(tmp_path / "home")


@pytest.fixture
async def registry(home: HomePaths) -> AsyncIterator[SqliteRegistry]:
    store = await open_registry(home)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def new_version(registry: SqliteRegistry) -> Callable[..., NewVersion]:
    """Store a payload as an artifact and describe a version that uses it."""

    def make(payload: bytes = b"fake-onnx", **fields: Any) -> NewVersion:
        sha, size = registry.artifacts.put(payload)
        fields.setdefault("schema", {"task": "classification", "features": []})
        return NewVersion(artifact_sha256=sha, artifact_size=size, **fields)

    return make


@pytest.fixture
def state_of(registry: SqliteRegistry) -> Callable[[str], Awaitable[tuple[Any, ...]]]:
    """Everything a refused change must leave untouched."""

    async def capture(model: str) -> tuple[Any, ...]:
        return (
            await registry.generation(),
            await registry.list_versions(model),
            await registry.get_deployment(model),
            await registry.audit(limit=10_000),
        )

    return capture
