"""Registry state + loaded variants -> a new immutable Snapshot, published by one assignment.

``refresh()`` reads every model's versions and deployment, loads what the new state needs
and is not loaded yet (before publishing: a version takes traffic only once it is warm),
builds the snapshot, swaps it in, then retires the variants nobody references any more
once their in-flight requests have drained. Needed per model: the production version, the
previous production version (so rollback is a pointer swap), every routed, shadow and
challenger version, and the staging versions (reachable by pinned requests). A model an
operator unloaded through the repository API (a registry state flag, so every worker
agrees) keeps none.

A version that fails to load never takes traffic. If a version the new routes depend on
failed, the model keeps the routing it had (or, at first start, serves the routes that did
load); the failure is kept in ``failures`` for the admin API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import MappingProxyType

import orjson

from gateway.dataplane.routing import sticky_prefix, thresholds_for
from gateway.dataplane.shadow import ShadowMirror, ShadowTarget
from gateway.dataplane.snapshot import ModelRoute, Snapshot, SnapshotHolder, Variant
from gateway.experiments.keys import CURRENT_PREFIX as EXPERIMENT_PREFIX
from gateway.rollout.state import ROLLOUT_PREFIX
from gateway.serving.loader import LoadFailed, ServingRegistry, load_variant
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
    ) -> None:
        self.registry = registry
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
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()

    async def refresh(
        self, view: RegistryView | None = None, *, source: ServingRegistry | None = None
    ) -> Snapshot:
        """Rebuild from the registry and publish; serialised (admin calls and the watcher).
        ``view``: one just read with VIEW_STATE_PREFIXES (an admin change's commit), used
        unless something newer is published already. ``source``: where artifacts come from
        instead of the registry (the saved view's local cache, database unreachable)."""
        async with self._lock:
            if view is None or view.generation < self.holder.current.generation:
                view = await self.registry.serving_view(state_prefix=VIEW_STATE_PREFIXES)
            states = model_states(view)
            replaced: list[Variant] = []
            for ms in states:
                replaced += await self._load_needed(ms, source or self.registry)
            old = self.holder.current
            models = {
                ms.name: _unloaded_route(ms) if ms.unloaded else self._build_route(ms, old)
                for ms in states
            }
            snapshot = Snapshot(MappingProxyType(models), view.generation, loaded=True)
            self.holder.current = snapshot
            self.view = view
            for variant in replaced:
                self._retire(variant)
            self._retire_unreferenced(snapshot)
            if self.saved is not None and source is None:
                await self.saved.save(view)
            return snapshot

    async def catch_up(self) -> bool:
        """Refresh if the registry moved past the published snapshot (a sibling worker or
        the CLI committed something this worker's poll has not seen yet)."""
        if await self.registry.generation() == self.holder.current.generation:
            return False
        await self.refresh()
        return True

    # --- loading -----------------------------------------------------------------
    async def _load_needed(self, ms: ModelState, source: ServingRegistry) -> list[Variant]:
        """Load what is needed and missing; returns variants replaced by a reload."""
        replaced: list[Variant] = []
        for name in ms.needed():
            version = ms.version(name)
            key = (ms.name, name)
            if version is None:
                self.failures[key] = "the deployment names a version that is not registered"
                continue
            current = self.loaded.get(key)
            if current is not None and current.sha256 == version.artifact_sha256:
                continue
            try:
                variant = await load_variant(source, version, self.settings)
            except LoadFailed as exc:
                self.failures[key] = str(exc)
                logger.error("not serving %s %s: %s", ms.name, name, exc)
                continue
            for hook in self.on_load:
                hook(variant)
            self.failures.pop(key, None)
            if current is not None:  # same version, new bytes: retire after the swap
                replaced.append(current)
            self.loaded[key] = variant
            logger.info(
                "loaded %s %s (%s, %.0f us/row single)",
                ms.name,
                name,
                variant.batcher.mode,
                variant.runner.single_row_us or 0.0,
            )
        return replaced

    # --- building ----------------------------------------------------------------
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
        """Retire everything (shutdown)."""
        async with self._lock:
            for variant in self.loaded.values():
                self._retire(variant)
            self.loaded.clear()
            if self._retiring:
                await asyncio.gather(*list(self._retiring), return_exceptions=True)

    async def settled(self) -> None:
        """Wait for retirements in progress (tests, shutdown)."""
        if self._retiring:
            await asyncio.gather(*list(self._retiring), return_exceptions=True)
