"""Export a version as ``metadata.yaml`` (docs/lifecycle.md, "metadata.yaml").

The shared layout's keys come first, in its order (model_version, model_type, framework,
training, hyperparameters, features, performance, deployment); their fixed sub-keys are
always present (null when unknown) so tools can rely on the layout. modelgate's lineage
follows: model, estimator, training_config + config_hash, onnx, parity, evaluation,
artifact, created_at/by, description, tags, git_commit, stage, aliases.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from registry.models import ModelVersion, Stage

_TRAINING_KEYS = (
    "date",
    "dataset_version",
    "dataset_fingerprint",
    "training_samples",
    "validation_samples",
    "test_samples",
    "training_duration_hours",
)
_FEATURE_KEYS = ("count", "feature_set_version", "categorical_features", "numerical_features")
_PERFORMANCE_KEYS = ("test_accuracy", "test_f1", "test_auc", "inference_latency_p95_ms")
_LINEAGE_KEYS = frozenset(
    {
        "model_type",
        "framework",
        "training",
        "hyperparameters",
        "features",
        "performance",
        "estimator",
        "training_config",
        "config_hash",
        "onnx",
        "git_commit",
    }
)


def _plain(value: Any) -> Any:
    """Tuples -> lists, mappings -> dicts, enums -> their value: safe_dump-able data."""
    if isinstance(value, Stage):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _section(source: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """The layout's fixed keys first (null when missing), then any extra keys the lineage has."""
    data = source if isinstance(source, Mapping) else {}
    out = {key: _plain(data.get(key)) for key in keys}
    for key, value in data.items():
        if key not in out:
            out[str(key)] = _plain(value)
    return out


def version_to_metadata(mv: ModelVersion) -> dict[str, Any]:
    lineage = mv.lineage or {}
    production = mv.stage == Stage.PRODUCTION
    metadata = {
        "model_version": mv.version,
        "model_type": _plain(lineage.get("model_type")),
        "framework": _plain(lineage.get("framework")),
        "training": _section(lineage.get("training"), _TRAINING_KEYS),
        "hyperparameters": _plain(lineage.get("hyperparameters") or {}),
        "features": _section(lineage.get("features"), _FEATURE_KEYS),
        "performance": _section(lineage.get("performance"), _PERFORMANCE_KEYS),
        "deployment": {
            "deployed_at": mv.stage_changed_at if production else None,
            "environment": mv.stage.value,
            "stage_changed_at": mv.stage_changed_at,
        },
        "model": mv.model,
        "estimator": _plain(lineage.get("estimator")),
        "training_config": _plain(lineage.get("training_config")),
        "config_hash": _plain(lineage.get("config_hash")),
        "onnx": _plain(lineage.get("onnx")),
        "parity": _plain(mv.parity),
        "evaluation": _plain(mv.evaluation),
        "artifact": {"sha256": mv.artifact_sha256, "size": mv.artifact_size},
        "created_at": mv.created_at,
        "created_by": mv.created_by,
        "description": mv.description,
        "tags": _plain(mv.tags),
        "git_commit": _plain(lineage.get("git_commit")),
        "stage": mv.stage.value,
        "aliases": list(mv.aliases),
    }
    # lineage keys this layout does not know are kept, after the known ones
    for key, value in lineage.items():
        if key not in _LINEAGE_KEYS and key not in metadata:
            metadata[str(key)] = _plain(value)
    return metadata


def dump_yaml(data: Mapping[str, Any]) -> str:
    """Block-style YAML, keys in insertion order, safe types only."""
    return yaml.safe_dump(
        _plain(data), sort_keys=False, default_flow_style=False, allow_unicode=True, width=100
    )
