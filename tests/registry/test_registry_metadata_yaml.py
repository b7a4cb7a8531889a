from __future__ import annotations

import yaml

from registry.metadata_yaml import dump_yaml, version_to_metadata
from registry.models import Stage

GUIDE_KEYS = [
    "model_version",
    "model_type",
    "framework",
    "training",
    "hyperparameters",
    "features",
    "performance",
    "deployment",
]
LINEAGE = {
    "model_type": "random_forest",
    "framework": "scikit-learn==1.9.1",
    "estimator": "sklearn.pipeline.Pipeline[StandardScaler,RandomForestClassifier]",
    "training": {
        "date": "2026-11-27",
        "dataset_version": "2026-11-01-v3",
        "dataset_fingerprint": "f" * 64,
        "training_samples": 8000,
        "validation_samples": 1000,
        "test_samples": 1000,
        "training_duration_hours": 0.01,
    },
    "hyperparameters": {"n_estimators": 100, "max_depth": 10},
    "training_config": {"model_type": "random_forest", "random_seed": 42},
    "config_hash": "1a2b3c4d",
    "features": {"count": 12, "feature_set_version": "v2", "categorical_features": 3},
    "performance": {"test_accuracy": 0.91, "test_f1": 0.88, "test_auc": 0.95},
    "onnx": {"opset": 17, "onnx_version": "1.23.2"},
    "git_commit": "abc123",
    "owner": "risk-team",
}


async def test_yaml_export_round_trips_with_the_guide_layout(registry, new_version) -> None:
    nv = new_version(
        b"onnx",
        lineage=LINEAGE,
        parity={"rows": 200, "max_abs_diff": 1.2e-7, "passed": True, "forced": False},
        description="churn model: ünïcode ok",
        tags={"team": "risk"},
    )
    await registry.register_version("churn", nv, version="1.2.0", actor="ci")
    await registry.set_stage("churn", "1.2.0", Stage.PRODUCTION)
    await registry.set_alias("churn", "champion", "1.2.0")
    mv = await registry.get_version("churn", "champion")

    text = dump_yaml(version_to_metadata(mv))
    loaded = yaml.safe_load(text)
    assert list(loaded)[: len(GUIDE_KEYS)] == GUIDE_KEYS
    assert loaded == version_to_metadata(mv)
    assert loaded["model_version"] == "1.2.0"
    assert loaded["training"]["date"] == "2026-11-27"  # a string, not a YAML date
    assert loaded["training"]["dataset_fingerprint"] == "f" * 64
    assert loaded["features"]["numerical_features"] is None  # guide key, unknown here
    assert loaded["performance"]["test_auc"] == 0.95
    assert loaded["deployment"]["environment"] == "production"
    assert loaded["deployment"]["deployed_at"] == mv.stage_changed_at
    assert loaded["training_config"]["random_seed"] == 42
    assert loaded["config_hash"] == "1a2b3c4d" and loaded["onnx"]["opset"] == 17
    assert loaded["parity"]["passed"] is True
    assert loaded["artifact"] == {"sha256": nv.artifact_sha256, "size": nv.artifact_size}
    assert (loaded["created_by"], loaded["git_commit"], loaded["stage"]) == (
        "ci",
        "abc123",
        "production",
    )
    assert loaded["aliases"] == ["champion"] and loaded["tags"] == {"team": "risk"}
    assert loaded["owner"] == "risk-team"  # unknown lineage keys are kept
    assert "ünïcode" in text and "{" not in text.split("hyperparameters:")[1].split("\n")[0]


async def test_yaml_export_with_empty_lineage(registry, new_version) -> None:
    await registry.register_version("churn", new_version(), version="0.1.0")
    loaded = yaml.safe_load(
        dump_yaml(version_to_metadata(await registry.get_version("churn", "0.1.0")))
    )
    assert loaded["model_type"] is None and loaded["training"]["date"] is None
    assert loaded["deployment"] == {
        "deployed_at": None,
        "environment": "none",
        "stage_changed_at": loaded["created_at"],
    }
