"""The registry's value objects: the contract between the offline and online worlds.

Everything here is a frozen dataclass or an enum, free of I/O. JSON-shaped payloads
(input schema, lineage, reference distributions, parity, evaluation) are kept as plain
dicts whose layout is documented in docs/contracts.md; typed accessors live beside the
code that consumes them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Stage(enum.StrEnum):
    NONE = "none"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    description: str
    created_at: str
    latest_version: str | None = None
    production_version: str | None = None


@dataclass(frozen=True, slots=True)
class ModelVersion:
    model: str
    version: str
    stage: Stage
    artifact_sha256: str
    artifact_size: int
    # input/output description of the ONNX artifact (docs/contracts.md#input-schema)
    schema: dict[str, Any]
    # metadata.yaml fields (docs/contracts.md#lineage)
    lineage: dict[str, Any]
    # drift baselines captured at registration (docs/contracts.md#reference-distributions)
    reference: dict[str, Any]
    parity: dict[str, Any]
    evaluation: dict[str, Any] | None
    aliases: tuple[str, ...]
    description: str
    tags: dict[str, str]
    created_at: str
    created_by: str
    # when this version last left production (used to pick the rollback target)
    stage_changed_at: str


@dataclass(frozen=True, slots=True)
class Route:
    version: str
    weight: float  # percent, 0..100; all routes of a deployment sum to 100


@dataclass(frozen=True, slots=True)
class Shadow:
    version: str
    sample: float  # fraction of routed requests mirrored, 0..1


@dataclass(frozen=True, slots=True)
class Deployment:
    """Traffic state the gateway serves for one model.

    An empty ``routes`` tuple means "100 % to the production version" so that a model
    registered and promoted without any explicit traffic change still serves.
    """

    model: str
    routes: tuple[Route, ...] = ()
    shadows: tuple[Shadow, ...] = ()
    challenger: str | None = None
    sticky: bool = False
    # salt for the sticky hash; changing it reshuffles keys across versions
    sticky_salt: str = ""
    updated_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "routes": [{"version": r.version, "weight": r.weight} for r in self.routes],
            "shadow": [{"version": s.version, "sample": s.sample} for s in self.shadows],
            "challenger": self.challenger,
            "sticky": self.sticky,
        }


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: str
    actor: str
    action: str
    model: str | None
    version: str | None
    before: Any
    after: Any
    reason: str


@dataclass(frozen=True, slots=True)
class NewVersion:
    """Everything a caller supplies to register a version (the artifact is already stored)."""

    artifact_sha256: str
    artifact_size: int
    schema: dict[str, Any]
    lineage: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    created_by: str = ""


@dataclass(frozen=True, slots=True)
class ModelView:
    model: Model
    versions: tuple[ModelVersion, ...]  # oldest first
    deployment: Deployment
    previous: ModelVersion | None  # the rollback target


@dataclass(frozen=True, slots=True)
class RegistryView:
    generation: int
    models: tuple[ModelView, ...]
    # registry state values whose key starts with the requested prefix
    states: Mapping[str, Any]
