"""The issue's pipeline, registered with its 3,000 training rows: OneHotEncoder on two string
columns and StandardScaler on three numeric ones in front of a HistGradientBoostingClassifier.

Its float32 graph sends training rows lying on split thresholds down the other branch; the
registered (exact-double) graph reproduces scikit-learn on every row, through the registry
artifact and through the ASGI app, and the float32 graph's report names the splits.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from converters import ParityError, publish, run
from converters.parity import enforce
from converters.sklearn_onnx import convert
from converters.verify import _sklearn_outputs, compare, parity_rows
from gateway.app import create_app
from gateway.cli.main import main
from gateway.settings import Settings
from registry.home import HomePaths
from registry.models import NewVersion, Stage
from registry.sqlite.store import open_registry

ROWS = 3000
NUMERIC = ["tenure", "charges", "usage"]
STRINGS = ["plan", "region"]


def _pipeline() -> Pipeline:
    prep = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), STRINGS),
            ("num", StandardScaler(), NUMERIC),
        ]
    )
    return Pipeline([("prep", prep), ("model", HistGradientBoostingClassifier(random_state=0))])


@pytest.fixture(scope="module")
def trained(churn_data) -> tuple[Pipeline, pd.DataFrame, np.ndarray]:
    X, y, _ = churn_data(ROWS)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _pipeline().fit(X, y), X, y


@pytest.fixture(scope="module")
def forest(churn_data) -> Pipeline:
    """StandardScaler + RandomForest on the numeric columns: one FP64 input when exact."""
    X, y, _ = churn_data(600)
    model = Pipeline(
        [("scale", StandardScaler()), ("model", RandomForestClassifier(10, random_state=0))]
    )
    with threadpool_limits(1):
        return model.fit(X[NUMERIC], y)


async def _register(home: Path, models: dict[str, tuple[Pipeline, pd.DataFrame]]) -> None:
    registry = await open_registry(HomePaths(home))
    try:
        for name, (estimator, sample) in models.items():
            await publish(registry, name, estimator, sample, "churned", version="1.0.0")
            await registry.set_stage(name, "1.0.0", Stage.PRODUCTION)
    finally:
        await registry.close()


@pytest.fixture(scope="module")
def registered(trained, forest, churn_data, tmp_path_factory) -> Path:
    """A registry home holding the pipeline as churn 1.0.0 and the forest as forest 1.0.0
    (both production), each registered with its training rows."""
    estimator, X, y = trained
    X_forest, y_forest, _ = churn_data(600)
    home = tmp_path_factory.mktemp("exact-issue") / "home"
    models = {
        "churn": (estimator, X.assign(churned=y)),
        "forest": (forest, X_forest[NUMERIC].assign(churned=y_forest)),
    }
    with threadpool_limits(1):
        asyncio.run(_register(home, models))
    return home


async def _version(home: Path, name: str = "churn"):
    registry = await open_registry(HomePaths(home))
    try:
        mv = await registry.get_version(name, "1.0.0")
        return mv, await registry.read_artifact(name, "1.0.0")
    finally:
        await registry.close()


def test_the_exact_graph_is_registered_because_float32_fails(registered):
    mv, _ = asyncio.run(_version(registered))
    conversion = mv.lineage["conversion"]
    assert conversion["graph"] == "exact-double"
    fast, exact = conversion["attempts"]
    # the issue: training rows on split thresholds (133 of the 2,000 sampled rows here)
    assert fast["graph"] == "float32" and fast["passed"] is False
    assert fast["rows_differ"] >= 50 and fast["max_abs_diff"] > 0.05
    assert exact == {
        "graph": "exact-double",
        "passed": True,
        "rows_differ": 0,
        "max_abs_diff": mv.parity["max_abs_diff"],
    }
    assert "float32 graph differs from scikit-learn on" in conversion["reason"]
    parity = mv.parity
    assert parity["passed"] is True and parity["forced"] is False
    assert parity["graph"] == "exact-double" and "report" not in parity
    assert parity["rows"] == 2000 and parity["rows_differ"] == 0
    assert parity["max_abs_diff"] <= 1e-6 and parity["label_agreement"] == 1.0
    inputs = {i["name"]: i["datatype"] for i in mv.schema["inputs"]}
    assert inputs == {n: "FP64" for n in NUMERIC} | {n: "BYTES" for n in STRINGS}
    dtypes = {f["name"]: f["dtype"] for f in mv.schema["features"]}
    assert dtypes == {n: "float64" for n in NUMERIC} | {n: "string" for n in STRINGS}


def test_every_training_row_matches_scikit_learn(registered, trained):
    estimator, X, _ = trained
    mv, artifact = asyncio.run(_version(registered))
    got = run(artifact, mv.schema, X)
    proba = got[mv.schema["probability_output"]]
    assert proba.shape == (ROWS, 2)
    assert np.abs(proba - estimator.predict_proba(X)).max() <= 1e-6
    assert np.array_equal(got[mv.schema["label_output"]], estimator.predict(X))


@pytest.fixture
async def client(registered) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings.from_environ({}, home=str(registered), admin_token="secret", max_rows=1000)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            yield http


async def test_served_predictions_match_scikit_learn_on_every_training_row(client, trained):
    estimator, X, _ = trained
    expected = estimator.predict_proba(X)
    served = []
    for start in range(0, ROWS, 1000):
        chunk = X.iloc[start : start + 1000]
        instances = [
            {**{n: float(r[n]) for n in NUMERIC}, **{n: str(r[n]) for n in STRINGS}}
            for r in chunk.to_dict("records")
        ]
        response = await client.post("/predict/churn", json={"instances": instances})
        assert response.status_code == 200, response.text
        served.append(np.asarray(response.json()["probabilities"], dtype=np.float64))
    assert np.abs(np.vstack(served) - expected).max() <= 1e-6


async def test_oip_takes_fp64_inputs_and_matches_scikit_learn(client, trained):
    estimator, X, _ = trained
    meta = (await client.get("/v2/models/churn")).json()
    assert {i["name"]: i["datatype"] for i in meta["inputs"]} == (
        {n: "FP64" for n in NUMERIC} | {n: "BYTES" for n in STRINGS}
    )
    rows = X.iloc[:500]
    inputs = [
        {"name": n, "datatype": "FP64", "shape": [500, 1], "data": rows[n].tolist()}
        for n in NUMERIC
    ] + [
        {"name": n, "datatype": "BYTES", "shape": [500, 1], "data": rows[n].astype(str).tolist()}
        for n in STRINGS
    ]
    response = await client.post("/v2/models/churn/infer", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    proba = np.asarray(outputs["probabilities"]["data"], dtype=np.float64).reshape(500, 2)
    assert np.abs(proba - estimator.predict_proba(rows)).max() <= 1e-6


@pytest.mark.parametrize("datatype", ["FP64", "FP32"])
async def test_a_single_fp64_input_takes_json_numbers_at_full_precision(
    client, registered, forest, churn_data, datatype
):
    # the request may say FP32: JSON numbers are read as float64 and fed as the model's FP64
    mv, _ = await _version(registered, "forest")
    assert mv.lineage["conversion"]["graph"] == "exact-double"
    assert mv.schema["inputs"] == [
        {"name": "input", "datatype": "FP64", "shape": [-1, 3], "features": NUMERIC}
    ]
    X, _, _ = churn_data(600)
    rows = X[NUMERIC].to_numpy()
    body = {
        "inputs": [
            {
                "name": "input",
                "datatype": datatype,
                "shape": [600, 3],
                "data": rows.ravel().tolist(),
            }
        ]
    }
    response = await client.post("/v2/models/forest/infer", json=body)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    proba = np.asarray(outputs["probabilities"]["data"], dtype=np.float64).reshape(600, 2)
    assert np.abs(proba - forest.predict_proba(X[NUMERIC])).max() <= 1e-6
    assert outputs["label"]["data"] == forest.predict(X[NUMERIC]).tolist()


def _float32_record(estimator, X: pd.DataFrame) -> tuple[bytes, dict, dict]:
    """The float32 graph and its (failing) parity record on the training rows."""
    fast = convert(estimator, X)
    rows = parity_rows(X)
    with threadpool_limits(1):
        record = compare(estimator, fast, rows, _sklearn_outputs(estimator, rows, "classification"))
    return fast.onnx_bytes, fast.schema, record


def test_the_float32_report_names_the_splits_the_rows_fall_on(trained):
    estimator, X, _ = trained
    _, _, record = _float32_record(estimator, X)
    report = record["report"]
    assert record["passed"] is False and report["graph"] == "float32"
    assert report["rows"] == 2000 and report["rows_differ"] == record["rows_differ"] >= 50
    assert report["explained_rows"] == report["rows_differ"]  # every row has a split
    assert {f["feature"] for f in report["features"]} <= {f"num__{n}" for n in NUMERIC}
    assert sum(f["rows"] for f in report["features"]) == report["rows_differ"]
    worst = report["worst"]
    assert len(worst) == 10
    assert [w["diff"] for w in worst] == sorted((w["diff"] for w in worst), reverse=True)
    assert worst[0]["diff"] == pytest.approx(record["max_abs_diff"])
    for row in worst:
        split = row["split"]
        # the training row sits exactly on a threshold; float32 scaling moves it off
        assert split["sklearn_value"] == split["threshold"]
        assert split["onnx_value"] != split["threshold"]
        assert split["rule"] == "x <= threshold" and split["trees_parted"] >= 1
        column = split["feature"].removeprefix("num__")
        assert split["input"] == {column: X[column].loc[row["row"]]}
        assert row["sklearn_proba"] == pytest.approx(
            estimator.predict_proba(X.loc[[row["row"]]])[0].tolist()
        )
    with pytest.raises(ParityError) as info:
        enforce(record)
    message = str(info.value)
    assert message.startswith(
        f"parity check failed on the float32 graph: {report['rows_differ']} of 2000 rows differ"
    )
    assert f"worst row {worst[0]['row']}: p(" in message
    assert f"(split '{worst[0]['split']['feature']}' <= " in message
    assert "the differing rows fall on split thresholds of 'num__" in message
    assert "\n" not in message


async def _register_forced(home: Path, onnx_bytes: bytes, schema: dict, record: dict) -> None:
    registry = await open_registry(HomePaths(home))
    try:
        sha, size = registry.artifacts.put(onnx_bytes)
        parity = {**record, "forced": True}
        lineage = {"conversion": {"graph": "float32", "reason": "forced", "attempts": []}}
        new = NewVersion(sha, size, schema, lineage=lineage, parity=parity)
        await registry.register_version("churn", new, version="0.9.0")
    finally:
        await registry.close()


def test_show_prints_the_stored_report(trained, tmp_path, capsys):
    estimator, X, _ = trained
    onnx_bytes, schema, record = _float32_record(estimator, X)
    home = tmp_path / "home"
    asyncio.run(_register_forced(home, onnx_bytes, schema, record))
    assert main(["show", "churn", "0.9.0", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(line.split() == ["parity", "FAILED", "(forced)"] for line in lines)
    assert any(line.split() == ["graph", "float32"] for line in lines)
    report = record["report"]
    assert (
        f"parity report (float32 graph): {report['rows_differ']} of 2000 rows differ "
        "beyond the tolerance" in out
    )
    header = next(i for i, line in enumerate(lines) if line.startswith("ROW "))
    assert lines[header].split() == [
        "ROW",
        "OUTPUT",
        "SCIKIT-LEARN",
        "ONNX",
        "SPLIT",
        "THRESHOLD",
        "SKLEARN_VALUE",
        "ONNX_VALUE",
    ]
    first = lines[header + 1].split()
    worst = report["worst"][0]
    assert first[0] == str(worst["row"]) and first[4] == worst["split"]["feature"]
    assert float(first[5]) == pytest.approx(worst["split"]["threshold"], rel=1e-8)
    feature_header = next(i for i, line in enumerate(lines) if line.startswith("FEATURE "))
    listed = {
        lines[i].split()[0]: int(lines[i].split()[1]) for i in range(feature_header + 1, len(lines))
    }
    assert listed == {f["feature"]: f["rows"] for f in report["features"]}
