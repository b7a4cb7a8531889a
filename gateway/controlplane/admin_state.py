"""What the registry says a model should serve, and what this worker actually serves.

``ModelState`` is one model read from the registry (versions, deployment, rollback
target, the repository "unloaded" flag). ``version_status`` compares it with this worker's
publisher: READY (loaded, warm, may take traffic), LOADING (needed but not loaded yet: a
refresh is running or the watcher has not seen the change), UNAVAILABLE (with the reason:
the last load failure, unloaded, or not deployed).

A model unloaded through the repository API (the publisher's registry flag) needs nothing
loaded; its versions are UNAVAILABLE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from registry.models import Deployment, Model, ModelVersion, Stage

if TYPE_CHECKING:
    from gateway.controlplane.publisher import Publisher

READY = "READY"
UNAVAILABLE = "UNAVAILABLE"
LOADING = "LOADING"


class StateReader(Protocol):
    async def get_state(self, key: str) -> Any | None: ...


async def is_unloaded(registry: StateReader, model: str) -> bool:
    """True when ``POST /v2/repository/models/{model}/unload`` took the model out of
    serving (the publisher's registry flag; every worker reads the same value)."""
    # imported here: the publisher pulls in onnxruntime, which the CLI verbs mostly skip
    from gateway.controlplane.publisher import unloaded_key

    return bool(await registry.get_state(unloaded_key(model)))


def traffic_versions(deployment: Deployment, production: str | None) -> list[str]:
    """Versions that take or mirror traffic under ``deployment`` (they must be loaded)."""
    wanted: list[str] = []
    routed = [r.version for r in deployment.routes if r.weight > 0]
    if not deployment.routes and production is not None:
        routed = [production]
    for version in (
        *routed,
        *(s.version for s in deployment.shadows if s.sample > 0),
        deployment.challenger,
    ):
        if version is not None and version not in wanted:
            wanted.append(version)
    return wanted


def effective_weights(deployment: Deployment, production: str | None) -> dict[str, float]:
    """Percent of routed traffic per version (empty routes: 100 % to production)."""
    if not deployment.routes:
        return {production: 100.0} if production is not None else {}
    return {route.version: float(route.weight) for route in deployment.routes}


@dataclass(frozen=True, slots=True)
class ModelState:
    model: Model
    # None when read without them: listing versions parses every version's JSON payloads
    # (reference samples: ~3 ms per version), too slow for the rollback's critical path
    listed: list[ModelVersion] | None
    deployment: Deployment
    previous: ModelVersion | None
    unloaded: bool

    @property
    def versions(self) -> list[ModelVersion]:
        if self.listed is None:
            raise RuntimeError(f"the state of {self.model.name!r} was read without its versions")
        return self.listed

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def production(self) -> str | None:
        return self.model.production_version

    @property
    def rollback_target(self) -> str | None:
        return self.previous.version if self.previous is not None else None

    def stages(self) -> dict[str, Stage]:
        return {v.version: v.stage for v in self.versions}

    def version(self, name: str) -> ModelVersion | None:
        return next((v for v in self.versions if v.version == name), None)

    def needed(self) -> list[str]:
        """What a worker keeps loaded for this model (the publisher's rule): production,
        the rollback target, every routed / shadow / challenger version, staging versions."""
        if self.unloaded:
            return []
        wanted = [v for v in (self.production, self.rollback_target) if v is not None]
        staging = [v.version for v in self.versions if v.stage == Stage.STAGING]
        for version in (*traffic_versions(self.deployment, self.production), *staging):
            if version not in wanted:
                wanted.append(version)
        return wanted


async def read_model_state(registry: Any, name: str, *, versions: bool = True) -> ModelState:
    """One model's registry state (raises NotFound for an unknown model)."""
    model = await registry.get_model(name)
    return ModelState(
        model=model,
        listed=await registry.list_versions(name) if versions else None,
        deployment=await registry.get_deployment(name),
        previous=await registry.previous_production(name),
        unloaded=await is_unloaded(registry, name),
    )


async def read_all_states(registry: Any) -> list[ModelState]:
    return [await read_model_state(registry, model.name) for model in await registry.list_models()]


def version_status(
    publisher: Publisher | None, ms: ModelState, version: ModelVersion
) -> tuple[str, str]:
    """(READY | LOADING | UNAVAILABLE, reason) of one version in this worker."""
    key = (ms.name, version.version)
    if publisher is not None and key in publisher.loaded:
        return READY, ""
    failure = publisher.failures.get(key) if publisher is not None else None
    if failure:
        return UNAVAILABLE, f"load failed: {failure}"
    if ms.unloaded:
        return UNAVAILABLE, f"unloaded (POST /v2/repository/models/{ms.name}/load serves it again)"
    if version.version in ms.needed():
        return LOADING, "needed by the current deployment; not loaded in this worker yet"
    if version.stage == Stage.ARCHIVED:
        return UNAVAILABLE, "archived"
    return UNAVAILABLE, f"not deployed (stage {version.stage.value})"
