"""XGBoost and LightGBM models end to end: `modelgate convert` -> registry -> ASGI app.

Each library's classifier (binary, multiclass) and regressor, alone and as the last step of
a Pipeline whose ColumnTransformer one-hot encodes string columns and scales numbers, is
registered through the real CLI; its parity record must be exact to float32 rounding and
the gateway must answer what the library's own predict / predict_proba answer on rows
neither training nor the parity sample saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")
pytest.importorskip("onnxmltools")

from sklearn.compose import ColumnTransformer  # noqa: E402  (after the importorskip guards)
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from converters import ConversionError, convert, publish  # noqa: E402
from converters.lineage import json_safe  # noqa: E402
from gateway.app import create_app  # noqa: E402
from gateway.cli.main import main  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from registry.home import HomePaths  # noqa: E402
from registry.sqlite.store import open_registry  # noqa: E402

NUMERIC = ["tenure", "charges", "usage"]
STRINGS = ["plan", "region"]
PLANS, REGIONS = ["basic", "pro", "team"], ["eu", "us", "apac"]
# rows: 0-599 train, 600-899 the parity sample given to convert, 900-1199 served
TRAIN, SAMPLE, SERVED = slice(0, 600), slice(600, 900), slice(900, 1200)
LIBRARIES = {
    "xgboost": (xgboost.XGBClassifier, xgboost.XGBRegressor, {"max_depth": 4}),
    "lightgbm": (lightgbm.LGBMClassifier, lightgbm.LGBMRegressor, {"verbose": -1}),
}
TASKS = ("binary", "multiclass", "regression")
CASES = [
    f"{lib}-{task}-{shape}"
    for lib in LIBRARIES
    for task in TASKS
    for shape in ("alone", "pipeline")
]


def churn(rows: int = 1200, seed: int = 0) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Continuous numbers, two string columns and three targets with a learnable signal."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure": rng.uniform(1, 72, rows),
            "charges": rng.normal(60, 20, rows),
            "usage": rng.gamma(2.0, 3.0, rows),
            "plan": pd.array(rng.choice(PLANS, rows), dtype="str"),
            "region": pd.array(rng.choice(REGIONS, rows), dtype="str"),
        }
    )
    score = (
        -0.04 * frame.tenure
        + 0.03 * (frame.charges - 60)
        + (frame.plan == "basic") * 1.0
        + 0.1 * frame.usage
        - 0.5
        + rng.normal(0, 0.5, rows)
    ).to_numpy()
    targets = {
        "binary": (score > 0).astype(int),
        "multiclass": np.digitize(score, [-0.5, 0.5]),
        "regression": score * 10 + 3,
    }
    return frame, targets


def build(case: str) -> Any:
    lib, task, shape = case.split("-")
    classifier, regressor, extra = LIBRARIES[lib]
    cls = regressor if task == "regression" else classifier
    model = cls(n_estimators=60, n_jobs=1, random_state=0, **extra)
    if shape == "alone":
        return model
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), STRINGS),
        ]
    )
    return Pipeline([("prep", prep), ("model", model)])


def columns(case: str) -> list[str]:
    return NUMERIC if case.endswith("alone") else NUMERIC + STRINGS


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every case fitted, registered with `modelgate convert` and put in production."""
    root = tmp_path_factory.mktemp("frameworks")
    home = root / "home"
    frame, targets = churn()
    results: dict[str, Any] = {"home": home, "frame": frame, "targets": targets}
    for case in CASES:
        task = case.split("-")[1]
        X, y = frame[columns(case)], targets[task]
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")
            estimator = build(case).fit(X.iloc[TRAIN], y[TRAIN])
        joblib.dump(estimator, root / f"{case}.joblib")
        X.iloc[SAMPLE].assign(y=y[SAMPLE]).to_csv(root / f"{case}.csv", index=False)
        code, out = cli(
            "convert",
            str(root / f"{case}.joblib"),
            "--sample",
            str(root / f"{case}.csv"),
            "--label",
            "y",
            "--name",
            case,
            "--bump",
            "auto",
            "--home",
            str(home),
            "--json",
        )
        assert code == 0, out
        assert cli("stage", case, "1.0.0", "production", "--home", str(home))[0] == 0
        results[case] = (estimator, json.loads(out))
    return results


def _stored(home: Path, name: str) -> Any:
    async def read() -> Any:
        registry = await open_registry(HomePaths(home))
        try:
            return await registry.get_version(name, "1.0.0")
        finally:
            await registry.close()

    return asyncio.run(read())


@pytest.mark.parametrize("case", CASES)
def test_registered_with_exact_parity(registered, case):
    _, result = registered[case]
    parity = result["parity"]
    assert result["version"] == "1.0.0"
    assert parity["passed"] is True and parity["forced"] is False and parity["rows"] == 300
    if case.split("-")[1] == "regression":
        # float32 leaves summed in another order than the library's: ~1e-5 relative
        assert parity["max_rel_diff"] <= 5e-5
    else:
        assert parity["max_abs_diff"] <= 1e-6
        assert parity["label_agreement"] == 1.0 and parity["flipped_near_ties"] == 0


@pytest.mark.parametrize("case", CASES)
def test_lineage_schema_and_reference(registered, case):
    estimator, _ = registered[case]
    lib, task, shape = case.split("-")
    mv = _stored(registered["home"], case)
    final = estimator if shape == "alone" else estimator.steps[-1][1]
    module = xgboost if lib == "xgboost" else lightgbm
    lineage = mv.lineage
    assert lineage["framework"] == f"{lib}=={module.__version__}"
    assert (
        lineage["libraries"][lib] == module.__version__ and "scikit-learn" in lineage["libraries"]
    )
    assert lineage["hyperparameters"] == json_safe(final.get_params(deep=False))
    assert lineage["hyperparameters"]["n_estimators"] == 60
    assert lineage["model_type"] == {"xgboost": "xgb", "lightgbm": "lgbm"}[lib] + (
        "_regressor" if task == "regression" else "_classifier"
    )
    assert lineage["onnx"]["onnxmltools_version"]
    assert lineage["config_hash"] and lineage["training"]["sample_rows"] == 300
    schema = mv.schema
    assert schema["task"] == ("regression" if task == "regression" else "classification")
    assert schema["classes"] == (None if task == "regression" else list(final.classes_))
    assert schema["allow_missing"] is True  # both libraries route NaN natively
    assert set(mv.reference["numerical"]) == set(NUMERIC) and mv.reference["n_rows"] == 300
    if shape == "pipeline":
        assert schema["levels"] == {"plan": sorted(PLANS), "region": sorted(REGIONS)}
        assert set(mv.reference["categorical"]) == set(STRINGS)
        assert [i["name"] for i in schema["inputs"]] == NUMERIC + STRINGS
    else:
        assert schema["levels"] == {} and schema["inputs"][0]["features"] == NUMERIC


@pytest.fixture(scope="module")
def served(registered) -> dict[str, dict[str, Any]]:
    """Every model's answers from the gateway (ASGI app) for the served rows."""
    frame = registered["frame"]

    async def ask() -> dict[str, dict[str, Any]]:
        settings = Settings.from_environ(
            {}, home=str(registered["home"]), admin_token="secret", max_rows=1000
        )
        app = create_app(settings)
        answers = {}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
                for case in CASES:
                    rows = frame[columns(case)].iloc[SERVED].to_dict(orient="records")
                    response = await http.post(f"/predict/{case}", json={"instances": rows})
                    assert response.status_code == 200, response.text
                    assert response.headers["x-model-version"] == "1.0.0"
                    answers[case] = response.json()
        return answers

    return asyncio.run(ask())


@pytest.mark.parametrize("case", CASES)
def test_the_gateway_answers_what_the_library_answers(registered, served, case):
    estimator, _ = registered[case]
    rows = registered["frame"][columns(case)].iloc[SERVED]
    body = served[case]
    if case.split("-")[1] == "regression":
        expected = estimator.predict(rows)
        got = np.asarray(body["predictions"], dtype=np.float64).ravel()
        scale = np.abs(expected).mean()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * scale)
    else:
        np.testing.assert_array_equal(body["predictions"], estimator.predict(rows))
        np.testing.assert_allclose(
            body["probabilities"], estimator.predict_proba(rows), rtol=0, atol=1e-6
        )


@pytest.fixture
async def registry(tmp_path):
    store = await open_registry(HomePaths(tmp_path / "home"))
    try:
        yield store
    finally:
        await store.close()


@pytest.mark.parametrize("lib", list(LIBRARIES))
async def test_missing_values_are_routed_like_the_library(registry, lib):
    frame, targets = churn(seed=1)
    X = frame[NUMERIC].copy()
    X[np.random.default_rng(2).random(X.shape) < 0.2] = np.nan
    classifier, _, extra = LIBRARIES[lib]
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        model = classifier(n_estimators=40, n_jobs=1, random_state=0, **extra)
        model.fit(X.iloc[TRAIN], targets["binary"][TRAIN])
    sample = X.iloc[SAMPLE].assign(y=targets["binary"][SAMPLE])
    mv = await publish(registry, "m", model, sample, "y", version="1.0.0")
    assert mv.schema["allow_missing"] is True
    assert mv.parity["passed"] and mv.parity["max_abs_diff"] <= 1e-6


@pytest.mark.parametrize(
    ("lib", "graph"),
    [
        # XGBoost cuts at training values: after float32 scaling a training row can land on
        # the other side of its own cut, so the float32 graph fails and the exact graph
        # (preprocessing in float64, then XGBoost's own cast to float32) is kept
        ("xgboost", "exact-double"),
        # LightGBM cuts between training values, out of float32 rounding's reach here
        ("lightgbm", "float32"),
    ],
)
async def test_parity_on_training_rows_after_a_scaler(registry, lib, graph):
    frame, targets = churn()
    case = f"{lib}-binary-pipeline"
    X, y = frame[columns(case)].iloc[TRAIN], targets["binary"][TRAIN]
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        estimator = build(case).fit(X, y)
    sample = X.assign(y=y)
    mv = await publish(registry, "m", estimator, sample, "y", version="1.0.0")
    assert mv.parity["max_abs_diff"] <= 1e-6 and mv.parity["rows_differ"] == 0
    assert mv.parity["graph"] == graph


def test_other_classes_of_those_libraries_are_refused_by_name():
    frame, targets = churn(rows=200)
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        forest = xgboost.XGBRFClassifier(n_estimators=5, n_jobs=1).fit(
            frame[NUMERIC], targets["binary"]
        )
    with pytest.raises(ConversionError, match=r"step 'estimator' \(XGBRFClassifier\): of xgb"):
        convert(forest, frame[NUMERIC])


def _cli_without(modules: list[str], *argv: str) -> subprocess.CompletedProcess[str]:
    """`modelgate ARGV` in a fresh interpreter where ``modules`` cannot be imported."""
    code = (
        "import sys\n"
        f"for name in {modules!r}: sys.modules[name] = None  # import raises ImportError\n"
        "from gateway.cli.main import main\n"
        f"sys.exit(main({list(argv)!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(
    ("blocked", "case", "missing"),
    [
        (["onnxmltools"], "xgboost-binary-pipeline", "onnxmltools"),
        (["onnxmltools"], "lightgbm-regression-alone", "onnxmltools"),
        (["xgboost"], "xgboost-multiclass-alone", "xgboost"),
        (["lightgbm"], "lightgbm-binary-pipeline", "lightgbm"),
    ],
)
def test_without_the_extra_one_line_names_it(registered, tmp_path, blocked, case, missing):
    model = registered["home"].parent / f"{case}.joblib"
    sample = registered["home"].parent / f"{case}.csv"
    done = _cli_without(
        blocked,
        "convert",
        str(model),
        "--sample",
        str(sample),
        "--label",
        "y",
        "--name",
        "m",
        "--bump",
        "--home",
        str(tmp_path / "home"),
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("modelgate: error: ")
    assert f"(not installed: {missing}): pip install 'modelgate[frameworks]'" in done.stderr


def test_importing_converters_needs_none_of_the_extra():
    code = (
        "import sys\n"
        "import converters, gateway.cli.convert_commands\n"
        "bad = [m for m in ('xgboost', 'lightgbm', 'onnxmltools') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2], timeout=300
    )


@pytest.mark.parametrize("case", [c for c in CASES if c.endswith("pipeline")])
def test_a_float64_pipeline_is_exact_on_training_rows(case):
    """Preprocessing in double, then the float32 cast XGBoost itself applies: no row crosses
    a cut (a graph the double-precision conversion path can build from these converters)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    from converters.frameworks import register_converters

    frame, targets = churn()
    task = case.split("-")[1]
    X, y = frame[columns(case)].iloc[TRAIN], targets[task][TRAIN]
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        estimator = build(case).fit(X, y)
    register_converters(estimator)
    final = estimator.steps[-1][1]
    graph = to_onnx(
        estimator,
        initial_types=[(c, DoubleTensorType([None, 1])) for c in NUMERIC]
        + [(c, StringTensorType([None, 1])) for c in STRINGS],
        target_opset={"": 17, "ai.onnx.ml": 3},
        options={} if task == "regression" else {id(final): {"zipmap": False}},
    )
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {c: X[[c]].to_numpy(dtype=np.float64) for c in NUMERIC}
    feeds |= {c: X[[c]].to_numpy(dtype=object) for c in STRINGS}
    label, *rest = session.run(None, feeds)
    if task == "regression":
        np.testing.assert_allclose(label.ravel(), estimator.predict(X), rtol=0, atol=5e-5)
    else:
        np.testing.assert_array_equal(label, estimator.predict(X))
        assert rest[0].dtype == np.float32
        np.testing.assert_allclose(rest[0], estimator.predict_proba(X), rtol=0, atol=1e-6)
