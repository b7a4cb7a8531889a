"""schema["levels"]: the levels the fitted encoders know for each string column."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from converters import BreakingChange, publish
from converters.levels import MAX_LEVELS, categorical_levels
from converters.schema import infer_features
from registry.home import HomePaths
from registry.sqlite.store import open_registry


def _pipeline(prep):
    return Pipeline([("prep", prep), ("model", LogisticRegression())])


def test_levels_by_column_name_and_position(mixed_data, fit_quiet):
    X, y = mixed_data(rows=200)
    by_name = ColumnTransformer(
        [("cat", OneHotEncoder(), ["plan", "region"])], remainder="passthrough"
    )
    by_position = ColumnTransformer(
        [("plan", OrdinalEncoder(), [2]), ("region", OneHotEncoder(), [3])],
        remainder="passthrough",
    )
    features = infer_features(X)
    for prep in (by_name, by_position):
        model = fit_quiet(_pipeline(prep), X, y)
        assert categorical_levels(model, features) == {
            "plan": ["basic", "pro", "team"],
            "region": ["apac", "eu", "us"],
        }


def test_levels_through_an_inner_pipeline_with_a_missing_value(mixed_data, fit_quiet):
    X, y = mixed_data(rows=200)
    X = X.astype({"plan": object})
    X.loc[X.index[:5], "plan"] = np.nan
    inner = make_pipeline(SimpleImputer(strategy="constant", fill_value="none"), OneHotEncoder())
    prep = ColumnTransformer([("cat", inner, ["plan"])], remainder="drop")
    model = fit_quiet(_pipeline(prep), X, y)
    assert categorical_levels(model, infer_features(X)) == {
        "plan": ["basic", "none", "pro", "team"]
    }


def test_no_encoder_or_too_many_levels_means_no_levels(mixed_data, fit_quiet, numeric_data):
    Xn, yn = numeric_data(rows=100, n_features=3)
    assert categorical_levels(fit_quiet(LogisticRegression(), Xn, yn), infer_features(Xn)) == {}
    X, y = mixed_data(rows=MAX_LEVELS + 200)
    X = X.assign(plan=[f"p{i}" for i in range(len(X))])
    prep = ColumnTransformer([("cat", OneHotEncoder(), ["plan", "region"])])
    model = fit_quiet(_pipeline(prep), X, y)
    assert categorical_levels(model, infer_features(X)) == {"region": ["apac", "eu", "us"]}


@pytest.fixture
async def registry(tmp_path):
    store = await open_registry(HomePaths(tmp_path / "home"))
    try:
        yield store
    finally:
        await store.close()


async def test_publish_raises_breaking_change_for_a_new_level(registry, mixed_data, fit_quiet):
    X, y = mixed_data(rows=300)
    prep = ColumnTransformer(
        [("cat", OneHotEncoder(), ["plan", "region"])], remainder="passthrough"
    )
    first = await publish(registry, "m", fit_quiet(_pipeline(prep), X, y), X, bump="auto")
    assert first.schema["levels"]["plan"] == ["basic", "pro", "team"]
    wider = X.assign(plan=X["plan"].where(X.index % 7 != 0, "enterprise"))
    model = fit_quiet(_pipeline(prep), wider, y)
    with pytest.raises(BreakingChange, match="minor version after 1.0.0") as info:
        await publish(registry, "m", model, wider, bump="minor")
    assert info.value.changes == ["plan: new levels {'enterprise'}"]
    assert [v.version for v in await registry.list_versions("m")] == ["1.0.0"]
    forced = await publish(
        registry, "m", model, wider, bump="minor", force=True, reason="enterprise is new"
    )
    assert forced.version == "1.1.0" and forced.lineage["version_change"]["forced"] is True
    (entry,) = await registry.audit(model="m", action="register", limit=1)
    assert entry.version == "1.1.0" and entry.reason.startswith("enterprise is new | forced")
