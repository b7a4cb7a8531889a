"""Small real ONNX models (skl2onnx) and loaded variants for the data-plane tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression

from gateway.dataplane.batcher import Batcher
from gateway.dataplane.runner import OnnxRunner
from gateway.dataplane.signature import ModelSignature
from gateway.dataplane.snapshot import Variant

N_FEATURES = 4


def numeric_schema(task: str) -> dict[str, Any]:
    features = [f"f{i}" for i in range(N_FEATURES)]
    schema: dict[str, Any] = {
        "task": task,
        "features": [{"name": f, "dtype": "float32", "kind": "numerical"} for f in features],
        "inputs": [
            {"name": "input", "datatype": "FP32", "shape": [-1, N_FEATURES], "features": features}
        ],
        "allow_missing": False,
    }
    if task == "classification":
        schema.update(
            outputs=[
                {"name": "label", "datatype": "INT64", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
            ],
            label_output="label",
            probability_output="probabilities",
            value_output=None,
            classes=[0, 1],
        )
    else:
        schema.update(
            outputs=[{"name": "variable", "datatype": "FP32", "shape": [-1, 1]}],
            label_output=None,
            probability_output=None,
            value_output="variable",
        )
    return schema


@pytest.fixture(scope="session")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, N_FEATURES)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    return X, y


def _onnx(estimator: Any, X: np.ndarray) -> bytes:
    options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "classes_") else None
    initial = [("input", FloatTensorType([None, X.shape[1]]))]
    model = to_onnx(estimator, initial_types=initial, options=options, target_opset=17)
    return model.SerializeToString()


@pytest.fixture(scope="session")
def models(data: tuple[np.ndarray, np.ndarray]) -> dict[str, tuple[bytes, dict[str, Any]]]:
    """name -> (onnx bytes, schema): two classifiers that disagree a little, a regressor."""
    X, y = data
    logistic = LogisticRegression().fit(X, y)
    forest = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)
    linear = LinearRegression().fit(X, X[:, 0] * 2.0 + X[:, 2])
    linear_shifted = LinearRegression().fit(X, X[:, 0] * 2.0 + X[:, 2] + 0.5)
    return {
        "logistic": (_onnx(logistic, X), numeric_schema("classification")),
        "forest": (_onnx(forest, X), numeric_schema("classification")),
        "linear": (_onnx(linear, X), numeric_schema("regression")),
        "linear_shifted": (_onnx(linear_shifted, X), numeric_schema("regression")),
    }


@pytest.fixture
def make_variant(models: dict[str, tuple[bytes, dict[str, Any]]]) -> Any:
    """Factory: a real loaded Variant of one of ``models``."""

    def make(kind: str, version: str = "1.0.0", model: str = "m", **batcher: Any) -> Variant:
        onnx_bytes, schema = models[kind]
        signature = ModelSignature.from_schema(schema, max_rows=4096)
        runner = OnnxRunner(onnx_bytes)
        options = {"mode": "inline", "batching": True, "max_batch_size": 64} | batcher
        return Variant(
            model=model,
            version=version,
            sha256="0" * 64,
            signature=signature,
            runner=runner,
            batcher=Batcher(runner.run, label=f"{model}:{version}", **options),
            schema=schema,
            reference={},
            metadata_body=orjson.dumps(signature.metadata(model, [version])),
        )

    return make
