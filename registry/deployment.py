"""Pure validation of a model's traffic state, and parsing of the admin payload.

Rules checked by ``validate_deployment`` (every failure raises InvalidDeployment):

* every route, shadow and challenger version exists and is not archived;
* route weights are finite, non-negative numbers summing to 100 (tolerance 1e-6), with
  at least one weight > 0; an empty ``routes`` means "100 % to production" and therefore
  needs a production version;
* no version appears twice among the routes or among the shadows, and a shadow is not
  also a route (it would receive both real and mirrored traffic);
* shadow samples are finite fractions in [0, 1];
* ``sticky`` is a boolean.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from registry import semver
from registry.errors import InvalidDeployment
from registry.models import Deployment, Route, Shadow, Stage

WEIGHT_TOTAL = 100.0
WEIGHT_TOLERANCE = 1e-6

_PAYLOAD_KEYS = frozenset({"routes", "shadow", "challenger", "sticky", "sticky_salt"})
# keys a GET answer may carry; accepted and ignored so a GET body can be PUT back
_READ_ONLY_KEYS = frozenset({"model", "updated_at"})


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite_number(value: Any) -> bool:
    """A real number (not a bool) that is finite as a float."""
    if not _is_number(value):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int too large for a float
        return False


def _check_version(role: str, version: Any, stages: Mapping[str, Stage], model: str) -> None:
    if not isinstance(version, str) or not version:
        raise InvalidDeployment(f"{role} version must be a non-empty string, got {version!r}")
    stage = stages.get(version)
    if stage is None:
        raise InvalidDeployment(f"{role} version {version} is not a version of model {model!r}")
    if stage == Stage.ARCHIVED:
        raise InvalidDeployment(
            f"{role} version {version} is archived; move it to staging or production first"
        )


def _check_routes(deployment: Deployment, stages: Mapping[str, Stage]) -> None:
    model = deployment.model
    seen: set[str] = set()
    for route in deployment.routes:
        _check_version("route", route.version, stages, model)
        if route.version in seen:
            raise InvalidDeployment(f"version {route.version} appears twice in routes")
        seen.add(route.version)
        weight = route.weight
        if not _finite_number(weight) or weight < 0:
            raise InvalidDeployment(
                f"route {route.version}: weight must be a finite number >= 0, got {weight!r}"
            )
    if not deployment.routes:
        if Stage.PRODUCTION not in stages.values():
            raise InvalidDeployment(
                f"routes are empty, which means 100 % to the production version, but model "
                f"{model!r} has no production version; give explicit routes"
            )
        return
    if not any(route.weight > 0 for route in deployment.routes):
        raise InvalidDeployment("at least one route must have a weight > 0")
    total = math.fsum(route.weight for route in deployment.routes)
    if abs(total - WEIGHT_TOTAL) > WEIGHT_TOLERANCE:
        raise InvalidDeployment(f"route weights must sum to 100, got {total:g}")


def _check_shadows(deployment: Deployment, stages: Mapping[str, Stage]) -> None:
    routed = {route.version for route in deployment.routes}
    seen: set[str] = set()
    for shadow in deployment.shadows:
        _check_version("shadow", shadow.version, stages, deployment.model)
        if shadow.version in seen:
            raise InvalidDeployment(f"version {shadow.version} appears twice in shadow")
        seen.add(shadow.version)
        if shadow.version in routed:
            raise InvalidDeployment(f"version {shadow.version} cannot be both a route and a shadow")
        sample = shadow.sample
        if not _finite_number(sample) or not 0.0 <= sample <= 1.0:
            raise InvalidDeployment(
                f"shadow {shadow.version}: sample must be a fraction in [0, 1], got {sample!r}"
            )


def validate_deployment(deployment: Deployment, stages: Mapping[str, Stage]) -> None:
    """Raise InvalidDeployment unless ``deployment`` can be served.

    ``stages`` maps every existing version of the model to its stage.
    """
    _check_routes(deployment, stages)
    _check_shadows(deployment, stages)
    if deployment.challenger is not None:
        _check_version("challenger", deployment.challenger, stages, deployment.model)
    if not isinstance(deployment.sticky, bool):
        raise InvalidDeployment(f"sticky must be true or false, got {deployment.sticky!r}")
    if not isinstance(deployment.sticky_salt, str):
        raise InvalidDeployment("sticky_salt must be a string")


# --- admin payload ---------------------------------------------------------------


def _version_field(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidDeployment(f"{where}: version must be a non-empty string, got {value!r}")
    # "v1.2.0" names the same version as "1.2.0"; anything else is left for validation
    return semver.normalise(value) if semver.is_version(value) else value


def _number_field(entry: dict[str, Any], key: str, where: str, default: float | None) -> float:
    if key not in entry:
        if default is None:
            raise InvalidDeployment(f"{where}: missing {key!r}")
        return default
    value = entry[key]
    if not _finite_number(value):
        raise InvalidDeployment(f"{where}: {key} must be a finite number, got {value!r}")
    return float(value)


def _entries(payload: dict[str, Any], key: str, allowed: frozenset[str]) -> list[dict[str, Any]]:
    items = payload.get(key, [])
    if not isinstance(items, list):
        raise InvalidDeployment(f"{key} must be a list of objects")
    for index, entry in enumerate(items):
        if not isinstance(entry, dict):
            raise InvalidDeployment(f"{key}[{index}] must be an object, got {entry!r}")
        unknown = set(entry) - allowed
        if unknown:
            raise InvalidDeployment(f"{key}[{index}]: unknown field {sorted(unknown)[0]!r}")
    return items


def deployment_from_json(model: str, payload: Any) -> Deployment:
    """Parse ``{"routes": [{"version", "weight"}], "shadow": [{"version", "sample"}],
    "challenger", "sticky"}`` into a Deployment (not yet validated against versions).

    ``routes`` is required; ``shadow`` defaults to [], ``challenger`` to null, ``sticky``
    to false, a shadow's ``sample`` to 1.0. An empty or absent ``sticky_salt`` keeps the
    model's current salt.
    """
    if not isinstance(payload, dict):
        raise InvalidDeployment("traffic must be a JSON object")
    unknown = set(payload) - _PAYLOAD_KEYS - _READ_ONLY_KEYS
    if unknown:
        allowed = ", ".join(sorted(_PAYLOAD_KEYS))
        raise InvalidDeployment(f"unknown field {sorted(unknown)[0]!r} (allowed: {allowed})")
    if "routes" not in payload:
        raise InvalidDeployment("missing 'routes' (use [] for 100 % to production)")
    routes = []
    for index, entry in enumerate(_entries(payload, "routes", frozenset({"version", "weight"}))):
        where = f"routes[{index}]"
        if "version" not in entry:
            raise InvalidDeployment(f"{where}: missing 'version'")
        version = _version_field(entry["version"], where)
        routes.append(Route(version, _number_field(entry, "weight", where, None)))
    shadows = []
    for index, entry in enumerate(_entries(payload, "shadow", frozenset({"version", "sample"}))):
        where = f"shadow[{index}]"
        if "version" not in entry:
            raise InvalidDeployment(f"{where}: missing 'version'")
        version = _version_field(entry["version"], where)
        shadows.append(Shadow(version, _number_field(entry, "sample", where, 1.0)))
    challenger = payload.get("challenger")
    if challenger is not None:
        challenger = _version_field(challenger, "challenger")
    sticky = payload.get("sticky", False)
    if not isinstance(sticky, bool):
        raise InvalidDeployment(f"sticky must be true or false, got {sticky!r}")
    salt = payload.get("sticky_salt") or ""
    if not isinstance(salt, str):
        raise InvalidDeployment("sticky_salt must be a string")
    return Deployment(
        model=model,
        routes=tuple(routes),
        shadows=tuple(shadows),
        challenger=challenger,
        sticky=sticky,
        sticky_salt=salt,
    )
