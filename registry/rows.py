"""Conversions between SQLite rows / JSON columns and the value objects, plus name rules."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson

from registry.errors import InvalidDeployment, InvalidVersion, RegistryError
from registry.models import AuditEntry, Deployment, Model, ModelVersion, Route, Shadow, Stage
from registry.semver import is_version

# model names appear in URL paths and metric labels: no slashes, spaces or quotes
_MODEL_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# aliases never contain a dot, so an alias can never be mistaken for a version
_ALIAS_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


def check_model_name(name: Any) -> str:
    if not isinstance(name, str) or _MODEL_NAME_RE.fullmatch(name) is None:
        raise InvalidVersion(
            f"invalid model name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or _ALIAS_RE.fullmatch(alias) is None or is_version(alias):
        raise InvalidVersion(
            f"invalid alias {alias!r}: use 1-64 letters, digits, '_' or '-', starting with a letter"
        )
    return alias


def _default(value: Any) -> Any:
    # numpy arrays and scalars (without importing numpy), sets
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any, what: str, error: type[RegistryError] = RegistryError) -> str:
    """Strict JSON (no NaN/Infinity): what is stored must be readable by any client."""
    try:
        return json.dumps(value, allow_nan=False, default=_default, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise error(f"{what} cannot be stored as JSON: {exc}") from exc


def from_json(text: str | None) -> Any:
    # orjson is ~4x faster on the large reference-distribution documents, which every
    # version read decodes; json stays the fallback for what orjson refuses (ints > 64 bit)
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


# a model with its latest and production versions (see model_from_row)
MODEL_SQL = (
    "SELECT m.name, m.description, m.created_at, "
    "(SELECT v.version FROM versions v WHERE v.model = m.name "
    " ORDER BY v.major DESC, v.minor DESC, v.patch DESC LIMIT 1) AS latest, "
    "(SELECT v.version FROM versions v WHERE v.model = m.name AND v.stage = 'production') "
    " AS production FROM models m"
)

# the version production was last rolled back from (the rollback target)
PREVIOUS_PRODUCTION_SQL = (
    "SELECT * FROM versions WHERE model = ? AND stage = 'archived' "
    "AND left_production_gen IS NOT NULL "
    "ORDER BY left_production_gen DESC, left_production_at DESC LIMIT 1"
)


def model_from_row(row: sqlite3.Row) -> Model:
    return Model(
        row["name"], row["description"], row["created_at"], row["latest"], row["production"]
    )


@dataclass(frozen=True, slots=True)
class VersionBody:
    """The columns of a version row that never change after registration, parsed."""

    artifact_size: int
    schema: dict[str, Any]
    lineage: dict[str, Any]
    reference: dict[str, Any]
    parity: dict[str, Any]
    tags: dict[str, str]
    description: str
    created_by: str


def version_body(row: Any) -> VersionBody:
    """Parse a row's never-changing columns (``registry.parsed_versions`` keeps them)."""
    return VersionBody(
        artifact_size=row["artifact_size"],
        schema=from_json(row["schema_json"]),
        lineage=from_json(row["lineage_json"]),
        reference=from_json(row["reference_json"]),
        parity=from_json(row["parity_json"]),
        tags=from_json(row["tags_json"]),
        description=row["description"],
        created_by=row["created_by"],
    )


def version_from_parts(head: Any, body: VersionBody, aliases: tuple[str, ...]) -> ModelVersion:
    """The version of a row's identity and mutable columns (``head``) and its parsed body."""
    return ModelVersion(
        model=head["model"],
        version=head["version"],
        stage=Stage(head["stage"]),
        artifact_sha256=head["artifact_sha256"],
        artifact_size=body.artifact_size,
        schema=body.schema,
        lineage=body.lineage,
        reference=body.reference,
        parity=body.parity,
        evaluation=from_json(head["evaluation_json"]),
        aliases=aliases,
        description=body.description,
        tags=body.tags,
        created_at=head["created_at"],
        created_by=body.created_by,
        stage_changed_at=head["stage_changed_at"],
    )


def version_from_row(row: sqlite3.Row, aliases: tuple[str, ...]) -> ModelVersion:
    return version_from_parts(row, version_body(row), aliases)


def deployment_from_row(row: sqlite3.Row) -> Deployment:
    return Deployment(
        model=row["model"],
        routes=tuple(Route(r["version"], r["weight"]) for r in from_json(row["routes_json"])),
        shadows=tuple(Shadow(s["version"], s["sample"]) for s in from_json(row["shadows_json"])),
        challenger=row["challenger"],
        sticky=bool(row["sticky"]),
        sticky_salt=row["sticky_salt"],
        updated_at=row["updated_at"],
    )


def deployment_columns(deployment: Deployment) -> tuple[str, str]:
    payload = deployment.to_dict()
    return (
        to_json(payload["routes"], "routes", InvalidDeployment),
        to_json(payload["shadow"], "shadow", InvalidDeployment),
    )


def audit_from_row(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        at=row["at"],
        actor=row["actor"],
        action=row["action"],
        model=row["model"],
        version=row["version"],
        before=from_json(row["before_json"]),
        after=from_json(row["after_json"]),
        reason=row["reason"],
    )
