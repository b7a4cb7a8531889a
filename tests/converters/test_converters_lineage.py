from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from typing import Any

import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from converters import ConversionError, TrainingConfig, git_commit_of, load_metadata, prepare
from converters.lineage import json_safe


# an independent copy of the hash recipe of docs/lifecycle.md, "Training config and its hash"
@dataclass
class GuideTrainingConfig:
    model_type: str
    hyperparameters: dict[str, Any]
    dataset_version: str
    feature_set: str
    random_seed: int

    def to_dict(self) -> dict:
        return {
            "model_type": self.model_type,
            "hyperparameters": self.hyperparameters,
            "dataset_version": self.dataset_version,
            "feature_set": self.feature_set,
            "random_seed": self.random_seed,
        }

    def config_hash(self) -> str:
        config_str = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(config_str.encode()).hexdigest()[:8]


GUIDE_EXAMPLE = dict(
    model_type="random_forest",
    hyperparameters={"n_estimators": 100, "max_depth": 10, "min_samples_split": 5},
    dataset_version="2025-12-13-v1",
    feature_set="baseline_features_v2",
    random_seed=42,
)


def test_config_hash_equals_the_guides():
    ours = TrainingConfig(**GUIDE_EXAMPLE)
    guide = GuideTrainingConfig(**GUIDE_EXAMPLE)
    assert ours.to_dict() == guide.to_dict()
    assert ours.config_hash() == guide.config_hash() == "d455d7e0"
    assert TrainingConfig.from_dict(guide.to_dict()) == ours


def test_config_hash_changes_with_any_field():
    base = TrainingConfig(**GUIDE_EXAMPLE).config_hash()
    for key, value in [("random_seed", 43), ("feature_set", "v3"), ("hyperparameters", {})]:
        assert TrainingConfig(**{**GUIDE_EXAMPLE, key: value}).config_hash() != base


def test_from_dict_names_bad_keys():
    with pytest.raises(ValueError, match=r"missing \['random_seed'\], unknown \['seed'\]"):
        TrainingConfig.from_dict(
            {**{k: v for k, v in GUIDE_EXAMPLE.items() if k != "random_seed"}, "seed": 1}
        )


def test_json_safe_hyperparameters():
    params = json_safe(MLPClassifier(hidden_layer_sizes=(8, 4)).get_params(deep=False))
    assert params["hidden_layer_sizes"] == [8, 4]
    json.dumps(params)  # plain JSON
    assert json_safe({"f": float("inf"), "s": {3, 1}}) == {"f": "inf", "s": [1, 3]}


@pytest.fixture
def fitted(numeric_data, fit_quiet):
    X, y = numeric_data(rows=300)
    estimator = fit_quiet(
        RandomForestClassifier(n_estimators=5, max_depth=4, random_state=7), X[:200], y[:200]
    )
    return estimator, X.iloc[200:].assign(y=y[200:])


def test_inferred_lineage(fitted):
    estimator, sample = fitted
    lineage = prepare(estimator, sample, "y").lineage
    assert lineage["model_type"] == "random_forest_classifier"
    assert lineage["framework"].startswith("scikit-learn==")
    assert lineage["estimator"] == "sklearn.ensemble._forest.RandomForestClassifier"
    assert lineage["hyperparameters"]["n_estimators"] == 5
    assert lineage["training"]["sample_rows"] == 100
    assert len(lineage["training"]["dataset_fingerprint"]) == 64
    assert lineage["features"]["count"] == 6 and lineage["features"]["numerical_features"] == 6
    assert lineage["onnx"]["opset"] == 17 and lineage["onnx"]["skl2onnx_version"]
    assert set(lineage["performance"]) >= {"test_accuracy", "test_f1", "test_auc"}
    config = lineage["training_config"]
    assert config["random_seed"] == 7 and config["model_type"] == "random_forest_classifier"
    assert lineage["config_hash"] == TrainingConfig.from_dict(config).config_hash()
    json.dumps(lineage)


def test_pipeline_lineage_names_the_steps(numeric_data, fit_quiet):
    X, y = numeric_data(rows=200)
    estimator = fit_quiet(make_pipeline(StandardScaler(), LogisticRegression(C=0.5)), X, y)
    lineage = prepare(estimator, X).lineage
    assert lineage["estimator"] == "sklearn.pipeline.Pipeline[StandardScaler,LogisticRegression]"
    assert lineage["model_type"] == "logistic_regression"
    assert lineage["hyperparameters"]["C"] == 0.5
    assert lineage["performance"] == {}


METADATA = """
model_version: "1.2.0"
model_type: "random_forest"
training:
  date: 2025-12-13
  dataset_version: "2025-12-01-v3"
  training_samples: 1000000
hyperparameters:
  n_estimators: 5
features:
  feature_set_version: "v2"
performance:
  test_accuracy: 0.92
deployment:
  deployed_by: "ci-cd-pipeline"
"""


def test_metadata_extends_and_overrides(tmp_path, fitted):
    estimator, sample = fitted
    (tmp_path / "metadata.yaml").write_text(METADATA)
    metadata = load_metadata(tmp_path / "metadata.yaml")
    lineage = prepare(estimator, sample, "y", metadata=metadata).lineage
    assert lineage["model_type"] == "random_forest"
    assert lineage["training"]["date"] == "2025-12-13"
    assert lineage["training"]["dataset_version"] == "2025-12-01-v3"
    assert lineage["training"]["training_samples"] == 1000000
    assert lineage["training"]["sample_rows"] == 100  # inferred keys survive
    assert lineage["features"]["feature_set_version"] == "v2"
    assert lineage["features"]["count"] == 6
    assert lineage["performance"]["test_accuracy"] == 0.92
    assert "test_auc" in lineage["performance"]  # measured on the sample, kept
    assert lineage["deployment"] == {"deployed_by": "ci-cd-pipeline"}
    assert "model_version" not in lineage
    config = lineage["training_config"]
    assert config["dataset_version"] == "2025-12-01-v3" and config["feature_set"] == "v2"
    assert config["model_type"] == "random_forest"


def test_metadata_training_config_is_used_and_its_hash_checked(fitted):
    estimator, sample = fitted
    metadata = {"training_config": dict(GUIDE_EXAMPLE), "config_hash": "d455d7e0"}
    lineage = prepare(estimator, sample, "y", metadata=metadata).lineage
    assert lineage["training_config"] == GUIDE_EXAMPLE and lineage["config_hash"] == "d455d7e0"
    with pytest.raises(ConversionError, match="config_hash 00000000 does not match"):
        prepare(estimator, sample, "y", metadata={**metadata, "config_hash": "00000000"})
    with pytest.raises(ConversionError, match="training_config: missing"):
        prepare(estimator, sample, "y", metadata={"training_config": {"model_type": "x"}})


@pytest.mark.parametrize(
    ("text", "message"),
    [("a: [unclosed", "invalid YAML"), ("- just\n- a list\n", "expected a mapping")],
)
def test_bad_metadata_files(tmp_path, text, message):
    (tmp_path / "m.yaml").write_text(text)
    with pytest.raises(ConversionError, match=message) as info:
        load_metadata(tmp_path / "m.yaml")
    assert "\n" not in str(info.value)


def test_missing_metadata_file(tmp_path):
    with pytest.raises(ConversionError, match="metadata .*absent.yaml"):
        load_metadata(tmp_path / "absent.yaml")


def test_git_commit_of_a_repository_and_of_a_plain_folder(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "m.joblib").write_bytes(b"x")
    assert git_commit_of(plain / "m.joblib") is None
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    (repo / "train.py").write_text("print(1)\n")
    subprocess.run(["git", "-C", str(repo), "add", "train.py"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "init"], check=True, env=env)
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    (repo / "m.joblib").write_bytes(b"x")
    assert git_commit_of(repo / "m.joblib") == head


def test_git_commit_is_recorded(fitted):
    estimator, sample = fitted
    lineage = prepare(estimator, sample, "y", git_commit="abc1234").lineage
    assert lineage["git_commit"] == "abc1234"
    overridden = prepare(
        estimator, sample, "y", git_commit="abc1234", metadata={"git_commit": "def5678"}
    )
    assert overridden.lineage["git_commit"] == "def5678"
