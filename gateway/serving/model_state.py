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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry.errors import NotFound
from registry.models import Deployment, Model, ModelVersion, ModelView, RegistryView, Stage

if TYPE_CHECKING:
    from gateway.serving.publisher import Publisher

READY = "READY"
UNAVAILABLE = "UNAVAILABLE"
LOADING = "LOADING"


UNLOADED_PREFIX = "repository.unloaded."


def unloaded_key(model: str) -> str:
    """Registry state key set by ``POST /v2/repository/models/{name}/unload``."""
    return UNLOADED_PREFIX + model


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
    versions: tuple[ModelVersion, ...]
    deployment: Deployment
    previous: ModelVersion | None
    unloaded: bool

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
        """What a worker keeps loaded for this model (the publisher loads exactly this): production,
        the rollback target, every routed / shadow / challenger version, staging versions."""
        if self.unloaded:
            return []
        wanted = [v for v in (self.production, self.rollback_target) if v is not None]
        staging = [v.version for v in self.versions if v.stage == Stage.STAGING]
        for version in (*traffic_versions(self.deployment, self.production), *staging):
            if version not in wanted:
                wanted.append(version)
        return wanted


def _state(view: ModelView, states: Mapping[str, Any]) -> ModelState:
    return ModelState(
        model=view.model,
        versions=view.versions,
        deployment=view.deployment,
        previous=view.previous,
        unloaded=bool(states.get(unloaded_key(view.model.name))),
    )


def model_states(view: RegistryView) -> list[ModelState]:
    """Every model of a view read with ``state_prefix=UNLOADED_PREFIX``."""
    return [_state(model, view.states) for model in view.models]


def state_in(view: RegistryView, name: str) -> ModelState:
    """Model ``name`` of a view read with ``state_prefix`` including UNLOADED_PREFIX
    (raises NotFound for a model the view does not have)."""
    for model in view.models:
        if model.model.name == name:
            return _state(model, view.states)
    raise NotFound(f"unknown model {name!r}")


async def read_model_snapshot(registry: Any, name: str) -> tuple[ModelState, int]:
    """One model's registry state and the generation it was read at, from one snapshot
    (raises NotFound for an unknown model)."""
    view = await registry.serving_view(name, state_prefix=UNLOADED_PREFIX)
    return state_in(view, name), view.generation


async def read_model_state(registry: Any, name: str) -> ModelState:
    """One model's registry state (raises NotFound for an unknown model)."""
    return (await read_model_snapshot(registry, name))[0]


async def read_all_states(registry: Any) -> list[ModelState]:
    return model_states(await registry.serving_view(state_prefix=UNLOADED_PREFIX))


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
