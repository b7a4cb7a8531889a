"""The `churn` demo model: two trained versions with rich lineage, one in production.

1.0.0 is a logistic-regression pipeline (production), 1.1.0 a histogram gradient boosting
pipeline that also catches a non-linear interaction (staging, ready for a canary).
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from converters.config_hash import TrainingConfig
from converters.demo_data import CATEGORICAL, FEATURES, LABEL, NUMERICAL, SEED, demo_splits
from converters.estimator import final_step, snake_case
from converters.lineage import hyperparameters
from converters.publish import publish
from registry.base import RegistryStore
from registry.models import ModelVersion, Stage

MODEL = "churn"
DATASET_VERSION = "churn-demo-v1"


def _logistic() -> Pipeline:
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    prep = ColumnTransformer(
        [
            ("num", numeric, NUMERICAL),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    return Pipeline([("prep", prep), ("model", LogisticRegression(C=1.0, max_iter=1000))])


def _boosting() -> Pipeline:
    prep = ColumnTransformer(
        [
            ("num", SimpleImputer(strategy="median"), NUMERICAL),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    model = HistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.06, max_leaf_nodes=8, min_samples_leaf=40, random_state=SEED
    )
    return Pipeline([("prep", prep), ("model", model)])


_VERSIONS = (
    ("1.0.0", _logistic, "v1", "Baseline logistic regression on the v1 churn features."),
    ("1.1.0", _boosting, "v1", "Gradient boosting: catches the new-customer support-call effect."),
)


def _metadata(
    estimator: BaseEstimator, splits: dict[str, Any], feature_set: str, seconds: float
) -> dict[str, Any]:
    model_type = snake_case(type(final_step(estimator)[1]).__name__)
    config = TrainingConfig(
        model_type=model_type,
        hyperparameters=hyperparameters(estimator),
        dataset_version=DATASET_VERSION,
        feature_set=f"churn_features_{feature_set}",
        random_seed=SEED,
    )
    return {
        "model_type": model_type,
        "training": {
            "date": dt.date.today().isoformat(),
            "dataset_version": DATASET_VERSION,
            "training_samples": len(splits["train"]),
            "validation_samples": len(splits["validation"]),
            "test_samples": len(splits["test"]),
            "training_duration_hours": round(seconds / 3600, 6),
        },
        "features": {"feature_set_version": feature_set},
        "training_config": config.to_dict(),
        "config_hash": config.config_hash(),
    }


def train_demo_models() -> list[tuple[str, BaseEstimator, dict[str, Any], str]]:
    """(version, fitted pipeline, metadata, description) for every demo version."""
    splits = demo_splits()
    X, y = splits["train"][FEATURES], splits["train"][LABEL]
    trained = []
    for version, factory, feature_set, description in _VERSIONS:
        estimator = factory()
        started = time.perf_counter()
        # one thread: OpenMP spin-waiting on a busy 2-core box made boosting 20x slower
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")
            estimator.fit(X, y)
        metadata = _metadata(estimator, splits, feature_set, time.perf_counter() - started)
        trained.append((version, estimator, metadata, description))
    return trained


async def register_demo(registry: RegistryStore, *, actor: str = "demo") -> list[ModelVersion]:
    """Train, convert and register the demo versions; 1.0.0 to production, 1.1.0 to staging."""
    test = demo_splits()["test"]
    registered = []
    for version, estimator, metadata, description in train_demo_models():
        mv = await publish(
            registry,
            MODEL,
            estimator,
            test,
            LABEL,
            version=version,
            metadata=metadata,
            actor=actor,
            description=description,
            tags={"source": "modelgate-demo", "algorithm": metadata["model_type"]},
        )
        registered.append(mv)
    reason = "demo setup"
    await registry.set_stage(MODEL, "1.0.0", Stage.PRODUCTION, actor=actor, reason=reason)
    await registry.set_stage(MODEL, "1.1.0", Stage.STAGING, actor=actor, reason=reason)
    return [await registry.get_version(MODEL, mv.version) for mv in registered]
