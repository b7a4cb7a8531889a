"""Repo-wide fixtures: a registry of small real models, built once, copied per test."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# the session's PostgreSQL server (started on first use) and a fresh database per test
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401
from tests.support.registry_copy import build_template, private_copy


async def _build_zoo(root: Path) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from converters import publish
    from registry.models import Stage
    from registry.sqlite.store import open_registry

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 4)).astype(np.float32), columns=["a", "b", "c", "d"])
    df = X.assign(y=(X["a"] + 0.5 * X["b"] > 0).astype(int))
    reg_df = X.assign(y=2.0 * X["a"] - X["c"])
    mixed = X[["a", "b"]].assign(plan=rng.choice(["basic", "pro", "team"], size=300))
    mixed = mixed.assign(y=((mixed["a"] > 0) | (mixed["plan"] == "pro")).astype(int))
    encoder = OneHotEncoder(handle_unknown="ignore")
    onehot = ColumnTransformer([("cat", encoder, ["plan"])], remainder="passthrough")
    registry = await open_registry(root)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for version, estimator in (
                ("1.0.0", LogisticRegression()),
                ("1.1.0", RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0)),
                ("2.0.0", LogisticRegression(C=0.01)),
            ):
                estimator.fit(X, df["y"])
                await publish(registry, "clf", estimator, df, "y", version=version)
            await publish(
                registry,
                "reg",
                LinearRegression().fit(X, reg_df["y"]),
                reg_df,
                "y",
                version="1.0.0",
            )
            pipeline = Pipeline([("prep", onehot), ("model", LogisticRegression())])
            pipeline.fit(mixed.drop(columns="y"), mixed["y"])
            await publish(registry, "mixed", pipeline, mixed, "y", version="1.0.0")
        await registry.set_stage("clf", "1.0.0", Stage.PRODUCTION)
        await registry.set_stage("clf", "1.1.0", Stage.STAGING)
        await registry.set_stage("reg", "1.0.0", Stage.PRODUCTION)
        await registry.set_stage("mixed", "1.0.0", Stage.PRODUCTION)
    finally:
        await registry.close()


@pytest.fixture(scope="session")
def zoo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Registry home with models clf (1.0.0 production, 1.1.0 staging, 2.0.0), reg, mixed."""
    return build_template(tmp_path_factory, "zoo", _build_zoo)


@pytest.fixture
def zoo_home(zoo_template: Path, tmp_path: Path) -> Path:
    """A private copy of the zoo registry for one test (tests may change it)."""
    return private_copy(zoo_template, tmp_path)
