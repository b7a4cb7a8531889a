"""The last published registry view, kept in the home folder for a start without the database.

A node on a network registry (PostgreSQL) writes, after every refresh that read the
registry, the view its snapshot was built from (versions with the sha256 and size of each
artifact, deployments, the serving states) to ``<home>/serving-view.json``: JSON, written
to a temporary file and renamed over the old one, so a reader sees a whole file or the
previous one. A node that starts while the database is unreachable loads it, loads the
artifacts it names from its verified local cache (``CachedArtifacts``) and serves that state
until the database answers again.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from registry.artifacts import ArtifactStore
from registry.errors import RegistryError, RegistryUnavailable
from registry.models import (
    Deployment,
    Model,
    ModelVersion,
    ModelView,
    RegistryView,
    Route,
    Shadow,
    Stage,
)

logger = logging.getLogger("modelgate.saved_view")

FILENAME = "serving-view.json"
FORMAT = 1


def encode_view(view: RegistryView, registry: str) -> bytes:
    """The view as the saved file's bytes; ``registry`` names it (a redacted URL)."""
    return orjson.dumps(
        {
            "format": FORMAT,
            "registry": registry,
            "generation": view.generation,
            "models": [asdict(mv) for mv in view.models],
            "states": dict(view.states),
        }
    )


def _version(raw: Mapping[str, Any]) -> ModelVersion:
    return ModelVersion(**{**raw, "stage": Stage(raw["stage"]), "aliases": tuple(raw["aliases"])})


def _deployment(raw: Mapping[str, Any]) -> Deployment:
    return Deployment(
        **{
            **raw,
            "routes": tuple(Route(**r) for r in raw["routes"]),
            "shadows": tuple(Shadow(**s) for s in raw["shadows"]),
        }
    )


def decode_view(data: bytes, registry: str) -> RegistryView:
    """The view saved in ``data``; ValueError when it is not one, or one of another registry."""
    try:
        raw = orjson.loads(data)
        if raw.get("format") != FORMAT:
            raise ValueError(f"unknown format {raw.get('format')!r}")
        if raw.get("registry") != registry:
            raise ValueError(f"saved from another registry ({raw.get('registry')})")
        models = tuple(
            ModelView(
                model=Model(**m["model"]),
                versions=tuple(_version(v) for v in m["versions"]),
                deployment=_deployment(m["deployment"]),
                previous=_version(m["previous"]) if m["previous"] else None,
            )
            for m in raw["models"]
        )
        return RegistryView(int(raw["generation"]), models, dict(raw["states"]))
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a saved serving view: {exc}") from exc


class SavedView:
    """``<home>/serving-view.json`` for one registry: save after a refresh, load at start."""

    def __init__(self, home: Path, registry: str) -> None:
        self.path = home / FILENAME
        self.registry = registry
        self._saved_generation: int | None = None

    async def save(self, view: RegistryView) -> None:
        """Write ``view`` unless this process saved that generation already; a failure is
        logged (serving goes on, the next refresh tries again)."""
        if view.generation == self._saved_generation:
            return
        try:
            await asyncio.to_thread(self._write, encode_view(view, self.registry))
        except OSError as exc:
            logger.warning("cannot save the serving view to %s: %s", self.path, exc)
            return
        self._saved_generation = view.generation

    def _write(self, data: bytes) -> None:
        # one temporary file per process: the workers of a node save side by side
        tmp = self.path.with_name(f".{FILENAME}.{os.getpid()}.tmp")
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    def load(self) -> RegistryView | None:
        """The saved view, or None (no file, unreadable, another registry's: logged)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("cannot read the saved serving view %s: %s", self.path, exc)
            return None
        try:
            view = decode_view(data, self.registry)
        except ValueError as exc:
            logger.warning("ignoring the saved serving view %s: %s", self.path, exc)
            return None
        self._saved_generation = view.generation
        return view


class CachedArtifacts:
    """The serving registry a node uses while its database is unreachable: the saved view,
    and artifact bytes from the local cache, verified against the sha256 the view names."""

    def __init__(self, view: RegistryView, artifacts: ArtifactStore) -> None:
        self.view = view
        self.artifacts = artifacts
        self._versions = {(v.model, v.version): v for mv in view.models for v in mv.versions}

    async def serving_view(
        self, model: str | None = None, *, state_prefix: str | tuple[str, ...] | None = None
    ) -> RegistryView:
        return self.view

    async def generation(self) -> int:
        raise RegistryUnavailable("registry database unavailable (serving the saved view)")

    async def read_artifact(self, model: str, version: str) -> bytes:
        found = self._versions.get((model, version))
        if found is None:
            raise RegistryError(f"{model}:{version} is not in the saved serving view")
        return await asyncio.to_thread(
            self.artifacts.read, found.artifact_sha256, found.artifact_size
        )
