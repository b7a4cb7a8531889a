"""Versions registered with stand-in artifact bytes (the registry never parses ONNX)."""

from __future__ import annotations

from typing import Any

from registry.models import NewVersion, Stage
from registry.sqlite.store import SqliteRegistry

SCHEMA = {"task": "classification", "features": []}


async def add_version(
    registry: SqliteRegistry, model: str, version: str, stage: Stage | None = None, **fields: Any
) -> None:
    """Register ``model`` ``version`` (``fields``: more NewVersion fields), then stage it."""
    sha, size = registry.artifacts.put(f"onnx-{model}-{version}".encode())
    await registry.register_version(model, NewVersion(sha, size, SCHEMA, **fields), version=version)
    if stage is not None:
        await registry.set_stage(model, version, stage)
