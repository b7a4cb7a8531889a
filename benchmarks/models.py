"""The benchmark models: seeded synthetic data, trained once and cached under benchmarks/.work/.

Every model takes 30 numerical features. Variant 0 is registered as version 1.0.0 and
variant 1 (same family, another seed) as 1.1.0, so routing has two real versions to split
traffic between. The baselines load the same ONNX that skl2onnx builds here (zipmap off,
one float32 input named "input", outputs "label" and "probabilities").
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

N_FEATURES = 30
N_TRAIN = 4000
N_HOLDOUT = 1000
DATA_SEED = 20240601
# bump when a model's recipe changes so stale cached files are rebuilt
RECIPE_VERSION = 2
WORK_DIR = Path(__file__).with_name(".work")


def _logreg(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000, random_state=seed)


def _rf100(seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)


def _mlp(seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(512, 512, 256), max_iter=15, random_state=seed)


def _mlp_wide(seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier

    # sized so one row costs ~200 us in onnxruntime here and a batch of 64 ~70 us per row:
    # the cost profile the data-plane issue assumed for its batching target
    return MLPClassifier(hidden_layer_sizes=(1024, 1024, 512), max_iter=5, random_state=seed)


RECIPES: dict[str, tuple[str, Callable[[int], Any]]] = {
    "logreg": ("LogisticRegression, 30 features", _logreg),
    "rf100": ("RandomForestClassifier, 100 trees, 30 features", _rf100),
    "mlp": ("MLPClassifier, hidden layers (512, 512, 256), 30 features", _mlp),
    "mlp-wide": ("MLPClassifier, hidden layers (1024, 1024, 512), 30 features", _mlp_wide),
}


@dataclass(frozen=True, slots=True)
class BuiltModel:
    name: str
    variant: int
    description: str
    onnx_path: Path
    estimator_path: Path

    def load_estimator(self) -> Any:
        import joblib

        return joblib.load(self.estimator_path)


def dataset() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_holdout): the same seeded binary task for every model."""
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=N_TRAIN + N_HOLDOUT,
        n_features=N_FEATURES,
        n_informative=12,
        n_redundant=6,
        flip_y=0.02,
        random_state=DATA_SEED,
    )
    x = x.astype(np.float32)
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:]


def feature_names() -> list[str]:
    return [f"f{i:02d}" for i in range(N_FEATURES)]


def build_model(name: str, variant: int = 0, work_dir: Path = WORK_DIR) -> BuiltModel:
    """Train (or reuse the cached) model and its ONNX export."""
    if name not in RECIPES:
        raise KeyError(f"unknown benchmark model {name!r}; known: {', '.join(RECIPES)}")
    description, make = RECIPES[name]
    import sklearn

    folder = work_dir / "models"
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{name}-v{variant}"
    built = BuiltModel(
        name, variant, description, stem.with_suffix(".onnx"), stem.with_suffix(".joblib")
    )
    meta_path = stem.with_suffix(".json")
    meta = {"recipe": RECIPE_VERSION, "sklearn": sklearn.__version__, "seed": variant}
    if (
        meta_path.exists()
        and built.onnx_path.exists()
        and built.estimator_path.exists()
        and json.loads(meta_path.read_text()) == meta
    ):
        return built

    import joblib
    import pandas as pd

    x_train, y_train, _ = dataset()
    estimator = make(variant)
    with warnings.catch_warnings():
        # the MLP is trained for a fixed, small number of epochs on purpose (speed of the
        # benchmark setup); its serving cost does not depend on convergence
        warnings.simplefilter("ignore")
        # fitted on named columns, as users train on data frames; modelgate's publish
        # then sees the same feature names in its sample
        estimator.fit(pd.DataFrame(x_train, columns=feature_names()), y_train)
    joblib.dump(estimator, built.estimator_path)
    built.onnx_path.write_bytes(to_onnx_bytes(estimator))
    meta_path.write_text(json.dumps(meta))
    return built


def to_onnx_bytes(estimator: Any) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        estimator,
        initial_types=[("input", FloatTensorType([None, N_FEATURES]))],
        options={id(estimator): {"zipmap": False}},
    )
    return onx.SerializeToString()


def request_rows(count: int = 64, seed: int = 7) -> np.ndarray:
    """Rows clients send: a seeded draw from the held-out part of the task."""
    _, _, holdout = dataset()
    rng = np.random.default_rng(seed)
    return holdout[rng.choice(len(holdout), size=count, replace=False)]
