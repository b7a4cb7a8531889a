"""Lineage (docs/contracts.md#lineage): what is inferred from the estimator and the sample,
extended and overridden by metadata.yaml (docs/lifecycle.md, "metadata.yaml")."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import math
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.base import BaseEstimator

from converters.config_hash import TrainingConfig
from converters.errors import ConversionError
from converters.estimator import describe, final_step, snake_case
from converters.frameworks import framework_label, library_versions

_SHA = re.compile(r"^[0-9a-f]{7,64}$")


def json_safe(value: Any) -> Any:
    """Plain JSON values for hyperparameters and YAML metadata."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [json_safe(v) for v in items]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    return repr(value)


def hyperparameters(estimator: BaseEstimator) -> dict[str, Any]:
    """get_params(deep=False) of the final estimator, JSON-safe."""
    return json_safe(final_step(estimator)[1].get_params(deep=False))


def model_type(estimator: BaseEstimator) -> str:
    return snake_case(type(final_step(estimator)[1]).__name__)


def git_commit_of(path: str | Path) -> str | None:
    """HEAD of the git repository holding ``path`` (a file or folder), else None."""
    folder = Path(path).resolve()
    folder = folder if folder.is_dir() else folder.parent
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and _SHA.match(sha) else None


def load_metadata(path: str | Path) -> dict[str, Any]:
    """A metadata.yaml file as a JSON-safe dict; ConversionError when unreadable."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConversionError(f"metadata {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())[:200]
        raise ConversionError(f"metadata {path}: invalid YAML: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConversionError(f"metadata {path}: expected a mapping at the top level")
    return json_safe(data)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _training_config(lineage: dict[str, Any], metadata: dict[str, Any]) -> TrainingConfig:
    given = metadata.get("training_config")
    if given is not None:
        if not isinstance(given, dict):
            raise ConversionError("metadata training_config must be a mapping")
        try:
            return TrainingConfig.from_dict(given)
        except ValueError as exc:
            raise ConversionError(f"metadata {exc}") from None
    features = lineage["features"]
    feature_set = features.get("feature_set_version") or (
        "features-" + hashlib.sha256("\0".join(features["names"]).encode()).hexdigest()[:8]
    )
    dataset = lineage["training"].get("dataset_version") or (
        "sha256:" + lineage["training"]["dataset_fingerprint"][:12]
    )
    seed = lineage["hyperparameters"].get("random_state")
    return TrainingConfig(
        model_type=lineage["model_type"],
        hyperparameters=lineage["hyperparameters"],
        dataset_version=str(dataset),
        feature_set=str(feature_set),
        random_seed=seed if isinstance(seed, int) else None,
    )


def build_lineage(
    estimator: BaseEstimator,
    schema: dict[str, Any],
    *,
    fingerprint: str,
    sample_rows: int,
    onnx_info: dict[str, Any],
    conversion: dict[str, Any] | None = None,
    performance: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    git_commit: str | None = None,
) -> dict[str, Any]:
    features = schema["features"]
    n_categorical = sum(1 for f in features if f["kind"] == "categorical")
    inferred: dict[str, Any] = {
        "model_type": model_type(estimator),
        "framework": framework_label(estimator),
        "libraries": library_versions(estimator),
        "estimator": describe(estimator),
        "training": {
            "date": None,
            "dataset_version": None,
            "dataset_fingerprint": fingerprint,
            "sample_rows": sample_rows,
        },
        "hyperparameters": hyperparameters(estimator),
        "features": {
            "count": len(features),
            "feature_set_version": None,
            "categorical_features": n_categorical,
            "numerical_features": len(features) - n_categorical,
            "names": [f["name"] for f in features],
        },
        "performance": performance or {},
        "onnx": onnx_info,
        # which graph was registered and why (converters.verify.convert_verified)
        "conversion": conversion or {"graph": "float32", "reason": None, "attempts": []},
        "git_commit": git_commit,
    }
    metadata = dict(metadata or {})
    metadata.pop("model_version", None)  # the registry's version row is authoritative
    declared_hash = metadata.pop("config_hash", None)
    lineage = deep_merge(inferred, {k: v for k, v in metadata.items() if k != "training_config"})
    config = _training_config(lineage, metadata)
    lineage["training_config"] = config.to_dict()
    lineage["config_hash"] = config.config_hash()
    if declared_hash is not None and str(declared_hash) != lineage["config_hash"]:
        raise ConversionError(
            f"metadata config_hash {declared_hash} does not match its training_config "
            f"({lineage['config_hash']})"
        )
    return lineage
