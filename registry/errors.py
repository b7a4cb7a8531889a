"""Registry exceptions. No HTTP here: gateway/errors.py maps them to statuses.

RegistryError
 +-- NotFound               unknown model, version or alias            (HTTP 404)
 +-- InvalidVersion         not MAJOR.MINOR.PATCH, bad bump part        (HTTP 400)
 |    +-- BreakingChange    schema changed but the version is not MAJOR   (HTTP 400)
 +-- VersionExists          duplicate version                          (HTTP 409)
 +-- InvalidTransition      stage change not allowed                   (HTTP 409)
 +-- InvalidDeployment      traffic state refused (weights, stages...) (HTTP 400)
 +-- ArtifactError          artifact missing, truncated or tampered    (HTTP 409)
 +-- StaleRead              changed since the state a change was planned on (HTTP 409)
 +-- SchemaError            database newer than this code / corrupt    (HTTP 500, operator)
 +-- RegistryUnavailable    the database server cannot be reached      (HTTP 503)
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every registry failure; the message is one line meant for the user."""


class NotFound(RegistryError):
    pass


class InvalidVersion(RegistryError):
    pass


class BreakingChange(InvalidVersion):
    """A minor/patch version over a changed input schema or class list (``.changes``)."""

    def __init__(self, message: str, changes: list[str]) -> None:
        super().__init__(message)
        self.changes = changes


class VersionExists(RegistryError):
    pass


class InvalidTransition(RegistryError):
    pass


class InvalidDeployment(RegistryError):
    pass


class ArtifactError(RegistryError):
    pass


class StaleRead(RegistryError):
    """A change made with ``expect_generation``: something else committed first."""


class SchemaError(RegistryError):
    pass


class RegistryUnavailable(RegistryError):
    """The registry's database server cannot be reached (a network store only); retry later."""
