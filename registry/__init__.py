"""modelgate's registry: the source of truth for models, versions, traffic and audit.

The public API is everything in ``__all__``; submodules not re-exported here are
implementation details.
"""

from __future__ import annotations

from registry.artifacts import ArtifactStore
from registry.backend import open_store
from registry.base import RegistryStore
from registry.deployment import deployment_from_json, validate_deployment
from registry.errors import (
    ArtifactError,
    InvalidDeployment,
    InvalidTransition,
    InvalidVersion,
    NotFound,
    RegistryError,
    RegistryUnavailable,
    SchemaError,
    VersionExists,
)
from registry.home import HomePaths, resolve_home
from registry.metadata_yaml import dump_yaml, version_to_metadata
from registry.models import (
    AuditEntry,
    Deployment,
    Model,
    ModelVersion,
    NewVersion,
    Route,
    Shadow,
    Stage,
)
from registry.semver import SemVer
from registry.sqlite.store import SqliteRegistry, open_registry
from registry.stages import check_transition, parse_stage

__all__ = [
    "ArtifactError",
    "ArtifactStore",
    "AuditEntry",
    "Deployment",
    "HomePaths",
    "InvalidDeployment",
    "InvalidTransition",
    "InvalidVersion",
    "Model",
    "ModelVersion",
    "NewVersion",
    "NotFound",
    "RegistryError",
    "RegistryStore",
    "RegistryUnavailable",
    "Route",
    "SchemaError",
    "SemVer",
    "Shadow",
    "SqliteRegistry",
    "Stage",
    "VersionExists",
    "check_transition",
    "deployment_from_json",
    "dump_yaml",
    "open_registry",
    "open_store",
    "parse_stage",
    "resolve_home",
    "validate_deployment",
    "version_to_metadata",
]
