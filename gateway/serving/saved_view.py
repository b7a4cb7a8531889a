"""The last published registry view, kept in the home folder for a start without the database.

A node on a network registry (PostgreSQL) writes, after every refresh that read the
registry, the view its snapshot was built from (versions with the sha256 and size of each
artifact, deployments, the serving states) to ``<home>/serving-view.json``: JSON, written
to a temporary file and renamed over the old one, so a reader sees a whole file or the
previous one. A node that starts while the database is unreachable loads it, loads the
artifacts it names from its verified local cache (``CachedArtifacts``) and serves that state
until the database answers again.

The file is large (a version's reference distributions run to hundreds of kilobytes: about
120 MiB for 100 models of 2 versions), and a refresh runs on the event loop that serves
requests, so a refresh only hands its view over (``schedule``): one background writer
encodes and writes the newest view handed over in a worker thread, one after the other, so
a later view is never overwritten by an earlier one. The encoder writes model by model and
encodes each version's never-changing documents (schema, lineage, reference, parity) once
for as long as views share them (``registry/parsed_versions.py``), so the worker thread
never holds the GIL for long: serving goes on while the file is written.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import fields
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


# a version's documents written at registration and never changed (encoded once)
FROZEN = ("schema", "lineage", "reference", "parity")
VERSION_FIELDS = tuple(f.name for f in fields(ModelVersion))


class ViewEncoder:
    """Encodes views into the saved file's bytes, piece by piece. A version's frozen
    documents are encoded once and reused while the views share the same objects (the
    entry holds the object, so its id is not reused); entries no view uses are dropped.
    Not thread-safe: one writer uses it at a time."""

    def __init__(self) -> None:
        self._done: dict[int, tuple[object, orjson.Fragment]] = {}

    def pieces(self, view: RegistryView, registry: str) -> Iterator[bytes]:
        """The file's bytes for ``view`` (``registry`` names it, a redacted URL), one
        model at a time."""
        kept: dict[int, tuple[object, orjson.Fragment]] = {}
        head = orjson.dumps(
            {
                "format": FORMAT,
                "registry": registry,
                "generation": view.generation,
                "states": dict(view.states),
            }
        )
        yield head[:-1] + b',"models":['
        for index, mv in enumerate(view.models):
            model = {
                "model": mv.model,
                "versions": [self._version(v, kept) for v in mv.versions],
                "deployment": mv.deployment,
                "previous": None if mv.previous is None else self._version(mv.previous, kept),
            }
            if index:
                yield b","
            yield orjson.dumps(model)
        yield b"]}"
        self._done = kept

    def _version(
        self, version: ModelVersion, kept: dict[int, tuple[object, orjson.Fragment]]
    ) -> dict[str, Any]:
        out = {name: getattr(version, name) for name in VERSION_FIELDS}
        for name in FROZEN:
            document = out[name]
            entry = kept.get(id(document)) or self._done.get(id(document))
            if entry is None or entry[0] is not document:
                entry = (document, orjson.Fragment(orjson.dumps(document)))
            kept[id(document)] = entry
            out[name] = entry[1]
        return out


def encode_view(view: RegistryView, registry: str) -> bytes:
    """The view as the saved file's bytes; ``registry`` names it (a redacted URL)."""
    return b"".join(ViewEncoder().pieces(view, registry))


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
        # the newest view handed over and not taken by the writer yet
        self._latest: RegistryView | None = None
        self._writer: asyncio.Task[None] | None = None
        self._encoder = ViewEncoder()

    def schedule(self, view: RegistryView) -> None:
        """Have ``view`` written in the background (returns at once) unless this process
        saved that generation already or has it queued; a failure is logged (serving goes
        on, the next view tries again)."""
        queued = self._latest.generation if self._latest is not None else None
        if view.generation in (self._saved_generation, queued):
            return
        self._latest = view
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_latest())

    async def save(self, view: RegistryView) -> None:
        """``schedule(view)`` and wait until the file is written."""
        self.schedule(view)
        await self.settled()

    async def settled(self) -> None:
        """Wait until every view handed over is written (or failed)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def _write_latest(self) -> None:
        # the one writer: each view in the order handed over, skipping superseded ones
        while self._latest is not None:
            view, self._latest = self._latest, None
            try:
                await asyncio.to_thread(self._write, view)
            except OSError as exc:
                logger.warning("cannot save the serving view to %s: %s", self.path, exc)
                continue
            except Exception:
                logger.exception("cannot save the serving view to %s", self.path)
                continue
            self._saved_generation = view.generation

    def _write(self, view: RegistryView) -> None:
        # one temporary file per process: the workers of a node save side by side
        tmp = self.path.with_name(f".{FILENAME}.{os.getpid()}.tmp")
        with tmp.open("wb") as handle:
            for piece in self._encoder.pieces(view, self.registry):
                handle.write(piece)
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
