"""The HTTP status of any failure a control-plane handler sees: gateway and registry errors.

The registry knows nothing of HTTP, and the data plane never sees a registry error, so the
mapping of registry errors lives here, beside the admin API that meets them.
"""

from __future__ import annotations

from gateway.errors import GatewayError
from registry import errors as registry_errors

_REGISTRY_STATUS: dict[type[registry_errors.RegistryError], int] = {
    registry_errors.NotFound: 404,
    registry_errors.InvalidVersion: 400,
    registry_errors.InvalidDeployment: 400,
    registry_errors.VersionExists: 409,
    registry_errors.InvalidTransition: 409,
    registry_errors.ArtifactError: 409,
    registry_errors.StaleRead: 409,
    registry_errors.RegistryUnavailable: 503,
}


def status_for(exc: BaseException) -> int:
    if isinstance(exc, GatewayError):
        return exc.status
    for cls in type(exc).__mro__:
        if cls in _REGISTRY_STATUS:
            return _REGISTRY_STATUS[cls]
    return 500
