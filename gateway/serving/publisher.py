"""Registry state + loaded variants -> a new immutable Snapshot, published by one assignment.

``refresh()`` reads every model's versions and deployment, loads what the new state needs
and is not loaded yet (before publishing: a version takes traffic only once it is warm),
builds the snapshot, swaps it in, then retires the variants nobody references any more
once their in-flight requests have drained. Needed per model: the production version, the
previous production version (so rollback is a pointer swap), every routed, shadow and
challenger version, and the staging versions (reachable by pinned requests). A model an
operator unloaded through the repository API (a registry state flag, so every worker
agrees) keeps none.

Versions load concurrently, at most ``MODELGATE_LOAD_CONCURRENCY`` at a time (session
creation and warm-up are CPU-bound, so more than the cores only slows each down), in the
order of the models. On the first publish of a process (start-up) each model is published
as soon as its versions are warm: its readiness URL answers 200 and it takes traffic while
others still load; the snapshot stays ``loaded=False`` (server readiness 503) until every
model has been tried. Later refreshes publish once, when everything they need is loaded.

A refresh runs on the event loop that serves requests, and a change usually touches one
model of many: a model's route is rebuilt only when something it is built from changed
(model and deployment rows, versions' stages and aliases, the rollback target, the
repository flag, the loaded variants); every other model keeps its published route object.

Thread-mode batchers of every loaded version run on the publisher's one ``InferencePool``
(``MODELGATE_INFERENCE_THREADS`` threads), closed with the publisher.

A version that fails to load never takes traffic. If a version the new routes depend on
failed, the model keeps the routing it had (or, at first start, serves the routes that did
load); the failure is kept in ``failures`` for the admin API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from types import MappingProxyType

import orjson

from gateway.dataplane.pool import InferencePool, default_threads
from gateway.dataplane.routing import sticky_prefix, thresholds_for
from gateway.dataplane.shadow import ShadowMirror, ShadowTarget
from gateway.dataplane.snapshot import ModelRoute, Snapshot, SnapshotHolder, Variant
from gateway.experiments.keys import CURRENT_PREFIX as EXPERIMENT_PREFIX
from gateway.rollout.state import ROLLOUT_PREFIX
from gateway.serving.loader import Loader, LoadFailed, ServingRegistry, load_variant
from gateway.serving.model_state import UNLOADED_PREFIX, ModelState, model_states
from gateway.serving.saved_view import SavedView
from gateway.settings import Settings
from registry.models import RegistryView

logger = logging.getLogger("modelgate.publisher")

Key = tuple[str, str]
# the state keys a published view carries: repository unloads (serving) and rollouts
# (an admin change refuses while one runs)
VIEW_STATE_PREFIXES = (UNLOADED_PREFIX, ROLLOUT_PREFIX, EXPERIMENT_PREFIX)
VariantHook = Callable[[Variant], None]
# what a model's route was built from (``Publisher._route_key``), and the route
RouteKey = tuple[object, ...]
Built = tuple[RouteKey, ModelRoute]


def _unloaded_route(ms: ModelState) -> ModelRoute:
    """A model an operator unloaded: known (503, not 404), serving nothing, not awaited
    by the readiness probe."""
    return ModelRoute(
        name=ms.name,
        variants=MappingProxyType({}),
        known_versions=frozenset(v.version for v in ms.versions),
        aliases=MappingProxyType({a: v.version for v in ms.versions for a in v.aliases}),
        primary=None,
        routes=(),
        thresholds=(),
        weights=(),
        challenger=None,
        sticky=False,
        sticky_prefix=b"",
        shadows=(),
        metadata_body=b"",
        served=False,
    )


class Publisher:
    def __init__(
        self,
        registry: ServingRegistry,
        settings: Settings,
        holder: SnapshotHolder,
        mirror: ShadowMirror,
        saved: SavedView | None = None,
        *,
        load: Loader = load_variant,
        pool: InferencePool | None = None,
    ) -> None:
        self.registry = registry
        self.load = load
        # every thread-mode batcher of this publisher's versions runs here
        self.pool = pool if pool is not None else InferencePool(settings.inference_threads or None)
        self.load_concurrency = settings.load_concurrency or default_threads()
        # where each view read from the registry is saved (a network registry's nodes)
        self.saved = saved
        self.settings = settings
        self.holder = holder
        self.mirror = mirror
        self.loaded: dict[Key, Variant] = {}
        # (model, version) -> one-line reason the last load attempt failed
        self.failures: dict[Key, str] = {}
        # lifecycle hooks (monitoring binds variant.recorder in on_load)
        self.on_load: list[VariantHook] = []
        self.on_unload: list[VariantHook] = []
        # the registry view the current snapshot was built from (admin changes plan on it)
        self.view: RegistryView | None = None
        # each published route and the key it was built from (reused while the key holds)
        self._built: dict[str, Built] = {}
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        # False until the first refresh has run (start-up publishes model by model)
        self.started = False

    async def refresh(
        self,
        view: RegistryView | None = None,
        *,
        source: ServingRegistry | None = None,
        loaded: bool = True,
    ) -> Snapshot:
        """Rebuild from the registry and publish; serialised (admin calls and the watcher).
        ``view``: one just read with VIEW_STATE_PREFIXES (an admin change's commit), used
        unless something newer is published already. ``source``: where artifacts come from
        instead of the registry (the saved view's local cache, database unreachable).
        ``loaded=False``: the snapshot does not count as loaded (server readiness) until
        ``mark_loaded`` (start-up, while the background services start)."""
        async with self._lock:
            if view is None or view.generation < self.holder.current.generation:
                view = await self.registry.serving_view(state_prefix=VIEW_STATE_PREFIXES)
            states = model_states(view)
            starting = None
            if not self.started:
                starting = _Progress(self, states, view.generation)
            replaced = await self._load_all(states, source or self.registry, starting)
            built = self.build_routes(states, self.holder.current)
            models = {name: route for name, (_key, route) in built.items()}
            loaded = loaded or (self.started and self.holder.current.loaded)
            snapshot = Snapshot(MappingProxyType(models), view.generation, loaded=loaded)
            self.holder.current = snapshot
            self._built = built
            self.started = True
            self.view = view
            for variant in replaced:
                self._retire(variant)
            self._retire_unreferenced(snapshot)
            if self.saved is not None and source is None:
                self.saved.schedule(view)
            return snapshot

    async def mark_loaded(self) -> None:
        """Let the published snapshot count as loaded (after ``refresh(loaded=False)``)."""
        async with self._lock:
            current = self.holder.current
            if self.started and not current.loaded:
                self.holder.current = dataclasses.replace(current, loaded=True)

    async def catch_up(self) -> bool:
        """Refresh if the registry moved past the published snapshot (a sibling worker or
        the CLI committed something this worker's poll has not seen yet)."""
        if await self.registry.generation() == self.holder.current.generation:
            return False
        await self.refresh()
        return True

    # --- loading -----------------------------------------------------------------
    async def _load_all(
        self, states: list[ModelState], source: ServingRegistry, starting: _Progress | None
    ) -> list[Variant]:
        """Load what every model needs and misses, ``load_concurrency`` versions at a time
        (the semaphore is first come, first served: models load in order); ``starting``
        publishes each model once its versions are done. Returns the variants replaced by
        a reload."""
        limit = asyncio.Semaphore(self.load_concurrency)

        async def one_model(ms: ModelState) -> list[Variant | None]:
            replaced = await asyncio.gather(
                *(self._load_one(ms, name, source, limit) for name in ms.needed())
            )
            if starting is not None:
                starting.model_done(ms)
            return replaced

        if starting is None:
            # an admin change touches one model: no coroutine for the others' hundred
            states = [ms for ms in states if self._misses(ms)]
        done = await asyncio.gather(*(one_model(ms) for ms in states))
        return [variant for model in done for variant in model if variant is not None]

    def _misses(self, ms: ModelState) -> bool:
        """Whether a version the model needs is not loaded with its registered bytes (or
        not registered: ``_load_one`` records that)."""
        # every refresh asks this of every model: one pass over the versions, not one each
        registered = {v.version: v.artifact_sha256 for v in ms.versions}
        for name in ms.needed():
            current = self.loaded.get((ms.name, name))
            if current is None or current.sha256 != registered.get(name):
                return True
        return False

    async def _load_one(
        self, ms: ModelState, name: str, source: ServingRegistry, limit: asyncio.Semaphore
    ) -> Variant | None:
        """Load one needed version unless it is loaded with the same bytes; returns the
        variant it replaces (same version, new bytes: retired after the swap)."""
        version = ms.version(name)
        key = (ms.name, name)
        if version is None:
            self.failures[key] = "the deployment names a version that is not registered"
            return None
        current = self.loaded.get(key)
        if current is not None and current.sha256 == version.artifact_sha256:
            return None
        try:
            async with limit:
                variant = await self.load(source, version, self.settings, self.pool)
        except LoadFailed as exc:
            self.failures[key] = str(exc)
            logger.error("not serving %s %s: %s", ms.name, name, exc)
            return None
        for hook in self.on_load:
            hook(variant)
        self.failures.pop(key, None)
        self.loaded[key] = variant
        logger.info(
            "loaded %s %s (%s, %.0f us/row single)",
            ms.name,
            name,
            variant.batcher.mode,
            variant.runner.single_row_us or 0.0,
        )
        return current

    # --- building ----------------------------------------------------------------
    def build_routes(self, states: list[ModelState], old: Snapshot) -> dict[str, Built]:
        """Every model's route for ``states`` (with the key it was built from), the
        published snapshot being ``old``: a model whose key equals the one its published
        route was built from keeps that route object (a change to one model rebuilds one
        route, not a hundred)."""
        built: dict[str, Built] = {}
        for ms in states:
            key = self._route_key(ms)
            before = self._built.get(ms.name)
            if before is not None and before[1] is old.models.get(ms.name) and before[0] == key:
                built[ms.name] = before
            else:
                route = _unloaded_route(ms) if ms.unloaded else self._build_route(ms, old)
                built[ms.name] = (key, route)
        return built

    def _route_key(self, ms: ModelState) -> RouteKey:
        """Everything ``_build_route`` reads besides the published route: equal keys build
        equal routes (what the model needs follows from the rest). Versions' stages and
        aliases only (their large documents never reach a route); the loaded variant of
        each version by identity (Variant has no ``__eq__``; the key holds them, so no id
        is reused while it is kept)."""
        name, loaded = ms.name, self.loaded
        return (
            ms.unloaded,
            ms.model,
            ms.deployment,
            ms.rollback_target,
            *[(v.version, v.stage, v.aliases, loaded.get((name, v.version))) for v in ms.versions],
        )

    def _build_route(self, ms: ModelState, old: Snapshot) -> ModelRoute:
        name, model, deployment, versions = ms.name, ms.model, ms.deployment, ms.versions
        variants = {v: self.loaded[(name, v)] for v in ms.needed() if (name, v) in self.loaded}
        production = variants.get(model.production_version or "")
        routed = [(variants.get(r.version), r.weight) for r in deployment.routes if r.weight > 0]
        missing = any(variant is None for variant, _w in routed) or (
            model.production_version is not None and production is None
        )
        previous_route = old.models.get(name)
        if missing and previous_route is not None and previous_route.ready:
            # a version the new routing needs failed to load: keep serving what was there
            return previous_route
        pairs = [(variant, weight) for variant, weight in routed if variant is not None]
        if not pairs and production is not None:
            pairs = [(production, 100.0)]
        # the default version: production, else the first routed one
        primary = production if production is not None else (pairs[0][0] if pairs else None)
        shadows = tuple(
            ShadowTarget(variants[s.version], s.sample, self.mirror.stats_for(name, s.version))
            for s in deployment.shadows
            if s.sample > 0 and s.version in variants
        )
        metadata = b""
        if primary is not None:
            metadata = orjson.dumps(primary.signature.metadata(name, sorted(variants)))
        return ModelRoute(
            name=name,
            variants=MappingProxyType(variants),
            known_versions=frozenset(v.version for v in versions),
            aliases=MappingProxyType({a: v.version for v in versions for a in v.aliases}),
            primary=primary,
            routes=tuple(variant for variant, _w in pairs),
            thresholds=thresholds_for([weight for _v, weight in pairs]),
            weights=tuple(weight for _v, weight in pairs),
            challenger=variants.get(deployment.challenger or ""),
            sticky=deployment.sticky,
            sticky_prefix=sticky_prefix(deployment.sticky_salt, name),
            shadows=shadows,
            metadata_body=metadata,
            served=model.production_version is not None or bool(deployment.routes),
            idle_versions=frozenset(v.version for v in versions) - set(ms.needed()),
        )

    # --- retiring ----------------------------------------------------------------
    def _retire_unreferenced(self, snapshot: Snapshot) -> None:
        referenced = {id(v) for v in snapshot.variants()}
        for key, variant in list(self.loaded.items()):
            if id(variant) not in referenced:
                del self.loaded[key]
                self._retire(variant)

    def _retire(self, variant: Variant) -> None:
        """Close ``variant`` once its in-flight requests are answered (in the background)."""
        task = asyncio.get_running_loop().create_task(self._drain_and_close(variant))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _drain_and_close(self, variant: Variant) -> None:
        try:
            await variant.batcher.drain()
            await variant.batcher.aclose()
            for hook in self.on_unload:
                hook(variant)
        except Exception:
            logger.exception("unloading %s %s failed", variant.model, variant.version)
        else:
            batcher = variant.batcher
            logger.info(
                "unloaded %s %s (%d requests, %d errors, %d runs, %.1f rows per run)",
                variant.model,
                variant.version,
                variant.requests,
                variant.errors,
                batcher.batches,
                batcher.batched_rows / batcher.batches if batcher.batches else 0.0,
            )

    async def close(self) -> None:
        """Retire everything and stop the inference pool (shutdown)."""
        async with self._lock:
            for variant in self.loaded.values():
                self._retire(variant)
            self.loaded.clear()
            self._built.clear()
            if self._retiring:
                await asyncio.gather(*list(self._retiring), return_exceptions=True)
            if self.saved is not None:
                await self.saved.settled()
            await asyncio.to_thread(self.pool.close)

    async def settled(self) -> None:
        """Wait for retirements and the saved view's write in progress (tests, shutdown)."""
        if self._retiring:
            await asyncio.gather(*list(self._retiring), return_exceptions=True)
        if self.saved is not None:
            await self.saved.settled()


class _Progress:
    """Start-up publishing: every model known from the first view (published at once, each
    answering 503 until loaded), each one's route
    rebuilt (and a ``loaded=False`` snapshot published) as soon as its versions are done,
    so a model answers ready while others still load."""

    __slots__ = ("publisher", "routes", "generation")

    def __init__(self, publisher: Publisher, states: list[ModelState], generation: int) -> None:
        self.publisher = publisher
        self.generation = generation
        old = publisher.holder.current
        self.routes: dict[str, ModelRoute] = {
            ms.name: _unloaded_route(ms) if ms.unloaded else publisher._build_route(ms, old)
            for ms in states
        }
        # every model known at once, before any has loaded: a request for one that is
        # still loading is a 503, never a 404 (a replacement worker accepts at once)
        publisher.holder.current = Snapshot(
            MappingProxyType(dict(self.routes)), generation, loaded=False
        )

    def model_done(self, ms: ModelState) -> None:
        if ms.unloaded:
            return
        publisher = self.publisher
        old = publisher.holder.current
        self.routes[ms.name] = publisher._build_route(ms, old)
        models = MappingProxyType(dict(self.routes))
        publisher.holder.current = Snapshot(models, self.generation, loaded=False)
