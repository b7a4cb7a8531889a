"""Fixtures for registry tests: a real registry in tmp_path and tiny fake artifacts.

``registry`` runs each test twice: on the embedded SQLite file and on a fresh database of
the session's real PostgreSQL server (``tests/support/postgres.py``; skipped, with the
reason, where PostgreSQL cannot run). The registry never parses ONNX, so any bytes stand in
for a model artifact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from registry.backend import open_store
from registry.home import HomePaths
from registry.models import NewVersion
from registry.sqlite.store import SqliteRegistry


@pytest.fixture
def home(tmp_path: Path) -> HomePaths:
    return HomePaths(tmp_path / "home")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of SQLite internals (files, PRAGMAs, the aiosqlite connection) run on SQLite only."""
    dropped = [i for i in items if i.get_closest_marker("sqlite_only") and "[postgres" in i.name]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in dropped]


@pytest.fixture(params=["sqlite", "postgres"])
def backend_url(request: pytest.FixtureRequest) -> str | None:
    """The registry URL of the backend under test (None: SQLite in the home folder)."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def registry(home: HomePaths, backend_url: str | None) -> AsyncIterator[SqliteRegistry]:
    store = await open_store(home, backend_url)
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
