"""Register a scikit-learn estimator: convert -> parity -> reference -> artifact -> version.

The only module of the package that talks to the registry. The version number is chosen
here, after conversion, by ``registry.version_rule``: a changed input schema or class list
needs a new major version.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pandas as pd
from sklearn.base import BaseEstimator

from converters.build import prepare
from converters.errors import ConversionError
from converters.parity import ABS_TOLERANCE, REL_TOLERANCE
from registry import semver
from registry.base import RegistryStore
from registry.errors import InvalidVersion, NotFound, VersionExists
from registry.models import ModelVersion, NewVersion
from registry.rows import check_model_name
from registry.version_rule import choose_version


async def _version_taken(registry: RegistryStore, name: str, version: str) -> bool:
    try:
        await registry.get_version(name, version)
    except NotFound:
        return False
    return True


async def _schemas(registry: RegistryStore, name: str) -> dict[str, dict[str, Any]]:
    """Every registered version of ``name`` and its schema ({} for a new model)."""
    try:
        return {mv.version: mv.schema for mv in await registry.list_versions(name)}
    except NotFound:
        return {}


async def publish(
    registry: RegistryStore,
    name: str,
    estimator: BaseEstimator,
    sample_df: pd.DataFrame,
    label: str | None = None,
    *,
    version: str | None = None,
    bump: str | None = None,
    metadata: dict[str, Any] | None = None,
    force: bool = False,
    reason: str = "",
    actor: str = "",
    description: str = "",
    tags: dict[str, str] | None = None,
    git_commit: str | None = None,
    abs_tolerance: float = ABS_TOLERANCE,
    rel_tolerance: float = REL_TOLERANCE,
) -> ModelVersion:
    """Nothing is written (artifact or row) unless conversion and parity succeed.

    ``bump`` is "major", "minor", "patch" or "auto" (major after a schema change, else
    minor). A minor/patch version over a changed schema raises ``BreakingChange`` unless
    ``force`` is set with a ``reason`` (``force`` alone also registers a parity failure).
    ``reason`` goes into the registration's audit entry.
    """
    if (version is None) == (bump is None):
        raise ConversionError("give exactly one of a version or a bump part")
    # fail before the expensive work, and before storing an artifact nobody will reference
    check_model_name(name)
    if bump is not None and bump not in semver.BUMP_CHOICES:
        raise InvalidVersion(
            f"invalid bump {bump!r}: expected one of {', '.join(semver.BUMP_CHOICES)}"
        )
    if version is not None:
        version = semver.normalise(version)
        if await _version_taken(registry, name, version):
            raise VersionExists(f"model {name!r} already has version {version}")
    prepared = await asyncio.to_thread(
        prepare,
        estimator,
        sample_df,
        label,
        metadata=metadata,
        force=force,
        git_commit=git_commit,
        abs_tolerance=abs_tolerance,
        rel_tolerance=rel_tolerance,
    )
    choice = choose_version(
        name,
        await _schemas(registry, name),
        prepared.schema,
        version=version,
        bump=bump,
        force=force,
        reason=reason,
    )
    lineage = prepared.lineage
    if choice.previous is not None:
        lineage = {**lineage, "version_change": choice.to_dict()}
    stored = registry.artifacts.put(prepared.onnx_bytes)
    sha256, size = (await stored) if inspect.isawaitable(stored) else stored
    new = NewVersion(
        artifact_sha256=sha256,
        artifact_size=size,
        schema=prepared.schema,
        lineage=lineage,
        reference=prepared.reference,
        parity=prepared.parity,
        description=description,
        tags=dict(tags or {}),
        created_by=actor,
    )
    # the chosen number goes in explicitly: had another registration taken it meanwhile,
    # VersionExists beats a version judged against a predecessor that is no longer its own
    return await registry.register_version(
        name, new, version=choice.version, actor=actor, reason=choice.audit_reason(reason)
    )
