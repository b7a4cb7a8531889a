"""`modelgate import` and `modelgate mlflow sync` against a real MLflow tracking server.

The module starts ``mlflow server`` on loopback (SQLite backend store, artifacts proxied to a
temporary folder), logs a scikit-learn Pipeline the way a training script does (params,
metrics, a training dataset, an input example, a signature, a git commit tag), registers it
and sets an alias; then imports it by alias, by version and by run through the real CLI.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

with warnings.catch_warnings():  # mlflow warns at import time (type hints, pydantic)
    warnings.simplefilter("ignore")
    mlflow = pytest.importorskip("mlflow")
    import mlflow.pyfunc  # noqa: F811  (the submodules mlflow does not import itself)
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from mlflow.models.signature import ModelSignature
    from mlflow.tracking import MlflowClient
    from mlflow.types.schema import ColSpec, Schema

from sklearn.compose import ColumnTransformer  # noqa: E402  (after the importorskip guard)
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

from gateway.app import create_app  # noqa: E402
from gateway.cli.main import main  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from registry.home import HomePaths  # noqa: E402
from registry.sqlite.store import open_registry  # noqa: E402

# mlflow's own warnings (pip, git, pydantic) are not failures of this suite
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

REPO = Path(__file__).resolve().parents[2]
MODEL = "churn-mlflow"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
PARAMS = {"C": "0.5", "solver": "lbfgs"}
METRICS = {"val_auc": 0.81, "val_accuracy": 0.74}
FEATURES = ["tenure", "charges", "plan", "region"]


def mixed_frame(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Two numeric and two string columns with a learnable binary label."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, rows).astype(float),
            "charges": rng.normal(60, 20, rows).round(2),
            "plan": rng.choice(["basic", "pro", "team"], rows).astype(object),
            "region": rng.choice(["eu", "us", "apac"], rows).astype(object),
        }
    )
    logit = -0.04 * frame.tenure + 0.03 * (frame.charges - 60) + (frame.plan == "basic") * 1.0
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return frame, y


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """mlflow's own warnings (git, pydantic, pip) are not this suite's failures."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Any:
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(root / "auth.ini")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=root,
        env=env,
        stdout=open(root / "server.log", "wb"),  # noqa: SIM115 (closed with the process)
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("mlflow server did not start: " + (root / "server.log").read_text()[-2000:])
        time.sleep(0.5)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def logged(server, tmp_path_factory) -> dict[str, Any]:
    """A Pipeline logged, registered as version 1 and aliased 'champion', as in training."""
    frame, y = mixed_frame(rows=900, seed=3)
    train, held = frame.iloc[:600], frame.iloc[600:]
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["tenure", "charges"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(C=0.5)),
        ]
    )
    _quiet(pipe.fit, train, y[:600])
    mlflow.set_tracking_uri(server)
    client = MlflowClient(tracking_uri=server)
    experiment = client.create_experiment("churn-training")
    dataset = mlflow.data.from_pandas(
        train.assign(churned=y[:600]),
        source="s3://data/churn/2026-01.parquet",
        name="churn-2026-01",
        targets="churned",
    )
    with mlflow.start_run(experiment_id=experiment, run_name="nightly") as run:
        mlflow.log_params(PARAMS)
        mlflow.log_metrics(METRICS)
        mlflow.set_tag(mlflow.utils.mlflow_tags.MLFLOW_GIT_COMMIT, COMMIT)
        mlflow.set_tag("team", "retention")
        _quiet(mlflow.log_input, dataset, context="training")
        _quiet(
            mlflow.sklearn.log_model,
            pipe,
            name="model",
            input_example=held.iloc[:40],
            signature=infer_signature(held, pipe.predict(held)),
            registered_model_name=MODEL,
        )
        # a second, plain pyfunc model and one with a signature naming other columns
        _quiet(
            mlflow.pyfunc.log_model,
            name="pyfunc",
            python_model=_Constant(),
            registered_model_name="constant",
        )
        wrong = ModelSignature(
            inputs=Schema(
                [
                    ColSpec("double", "tenure"),
                    ColSpec("double", "charges"),
                    ColSpec("string", "plan"),
                    ColSpec("string", "country"),
                ]
            )
        )
        _quiet(mlflow.sklearn.log_model, pipe, name="renamed", signature=wrong)
        _quiet(mlflow.sklearn.log_model, pipe, name="bare")
    client.set_registered_model_alias(MODEL, "champion", "1")
    tmp = tmp_path_factory.mktemp("data")
    held.assign(churned=y[600:]).to_csv(tmp / "held.csv", index=False)
    digest = client.get_run(run.info.run_id).inputs.dataset_inputs[0].dataset.digest
    return {
        "url": server,
        "run_id": run.info.run_id,
        "experiment_id": experiment,
        "held": held,
        "labels": y[600:],
        "pipe": pipe,
        "sample": tmp / "held.csv",
        "digest": digest,
    }


class _Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):  # untyped: mlflow reads type hints
        return np.zeros(len(model_input))


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = _quiet(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _import(capsys, uri: str, url: str, home: Path, *options: str) -> tuple[int, str, str]:
    """``modelgate import URI`` from the tracking server at ``url`` as model ``churn`` in
    ``home``; ``options`` say the version and the sample."""
    argv = ["import", uri, "--tracking-uri", url, "--name", "churn", *options]
    return _run(capsys, *argv, "--home", str(home))


def _held_out(logged: dict[str, Any]) -> tuple[str, ...]:
    """The options of the logged model's labelled held-out rows."""
    return ("--sample", str(logged["sample"]), "--label", "churned")


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


def _versions(home: Path, name: str) -> list[Any]:
    async def read() -> list[Any]:
        registry = await open_registry(HomePaths(home))
        try:
            return [
                v
                for m in await registry.list_models()
                if m.name == name
                for v in await registry.list_versions(m.name)
            ]
        finally:
            await registry.close()

    return asyncio.run(read())


def test_import_by_alias_uses_the_input_example_and_records_mlflow_lineage(logged, home, capsys):
    uri = f"models:/{MODEL}@champion"
    code, out, err = _import(capsys, uri, logged["url"], home, "--version", "1.0.0")
    assert code == 0, err
    assert f"run {logged['run_id']}" in out and "registry version 1" in out
    (mv,) = _versions(home, "churn")
    lineage = mv.lineage
    source = lineage["mlflow"]
    assert source["run_id"] == logged["run_id"]
    assert source["experiment_id"] == logged["experiment_id"]
    assert source["experiment"] == "churn-training" and source["run_name"] == "nightly"
    assert source["params"] == PARAMS and source["metrics"] == METRICS
    assert source["tags"]["team"] == "retention"
    assert source["registered_model"] == MODEL and source["registry_version"] == "1"
    assert source["alias"] == "champion" and source["flavour"] == "sklearn"
    assert source["model_uri"] == f"models:/{MODEL}@champion"
    assert source["sample"] == "input_example" and mv.parity["rows"] == 40
    assert source["signature_check"] == {"checked": True, "matches": True, "columns": FEATURES}
    assert source["datasets"] == [
        {
            "name": "churn-2026-01",
            "digest": logged["digest"],
            "source_type": "s3",
            "source": source["datasets"][0]["source"],
            "context": "training",
        }
    ]
    assert "s3://data/churn/2026-01.parquet" in source["datasets"][0]["source"]
    assert lineage["training"]["dataset_version"] == "churn-2026-01"
    assert lineage["training"]["dataset_fingerprint"] == logged["digest"]
    assert lineage["git_commit"] == COMMIT
    assert lineage["training_config"]["dataset_version"] == "churn-2026-01"
    code, out, err = _run(capsys, "show", "churn", "1.0.0", "--yaml", "--home", str(home))
    assert code == 0, err
    assert "dataset_version: churn-2026-01" in out and f"git_commit: {COMMIT}" in out
    assert "mlflow:" in out and f"run_id: {logged['run_id']}" in out


def test_import_by_version_serves_what_mlflow_pyfunc_predicts(logged, home, capsys):
    uri = f"models:/{MODEL}/1"
    code, _, err = _import(capsys, uri, logged["url"], home, "--bump", *_held_out(logged))
    assert code == 0, err
    (mv,) = _versions(home, "churn")
    assert mv.lineage["mlflow"]["sample"] == "--sample" and mv.parity["rows"] == 300
    assert mv.lineage["performance"]  # the labelled sample gives accuracy / AUC
    assert _run(capsys, "stage", "churn", mv.version, "production", "--home", str(home))[0] == 0
    held = logged["held"].iloc[-120:]
    pyfunc = _quiet(mlflow.pyfunc.load_model, f"models:/{MODEL}@champion")
    expected = np.asarray(_quiet(pyfunc.predict, held))

    async def ask() -> dict[str, Any]:
        settings = Settings.from_environ({}, home=str(home), admin_token="t", max_rows=1000)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
                rows = held.to_dict(orient="records")
                reply = await http.post("/predict/churn", json={"instances": rows})
                assert reply.status_code == 200, reply.text
                return reply.json()

    body = asyncio.run(ask())
    np.testing.assert_array_equal(body["predictions"], expected)
    np.testing.assert_allclose(
        body["probabilities"], logged["pipe"].predict_proba(held), rtol=0, atol=1e-5
    )


def test_import_by_run_and_report_back_sets_tags_but_never_aliases(logged, home, capsys):
    uri = f"runs:/{logged['run_id']}/model"
    code, _, err = _import(capsys, uri, logged["url"], home, "--version", "2.0.0")
    assert code == 0, err
    (mv,) = _versions(home, "churn")
    assert mv.lineage["mlflow"]["run_id"] == logged["run_id"]
    assert mv.lineage["mlflow"]["registered_model"] is None  # a run is not a registry version
    uri = f"models:/{MODEL}/1"
    code, _, err = _import(capsys, uri, logged["url"], home, "--version", "3.0.0")
    assert code == 0, err
    code, _, err = _run(capsys, "stage", "churn", "3.0.0", "production", "--home", str(home))
    assert code == 0, err
    code, out, err = _run(capsys, "mlflow", "sync", "churn", "--home", str(home))
    assert code == 0, err
    assert "modelgate.stage=production" in out
    client = MlflowClient(tracking_uri=logged["url"])
    version = client.get_model_version(MODEL, "1")
    assert version.tags["modelgate.stage"] == "production"
    assert version.tags["modelgate.version"] == "3.0.0"
    assert version.tags["modelgate.deployed_at"]
    assert client.get_registered_model(MODEL).aliases == {"champion": "1"}


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (f"models:/{MODEL}@nope", "has no registered model 'churn-mlflow' with alias 'nope'"),
        (f"models:/{MODEL}/9", "has no version 9 of registered model 'churn-mlflow'"),
        ("models:/no-such-model/1", "has no version 1 of registered model 'no-such-model'"),
        ("runs:/0123456789abcdef0123456789abcdef/model", "has no"),
        ("models:/constant/1", "flavour(s) python_function"),
        ("RUN/model", "invalid MLflow model URI"),
    ],
)
def test_mlflow_failures_are_one_line_and_register_nothing(logged, home, capsys, uri, message):
    code, out, err = _import(capsys, uri, logged["url"], home, "--bump", *_held_out(logged))
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert _versions(home, "churn") == []


def test_signature_mismatch_names_the_columns(logged, home, capsys):
    uri = f"runs:/{logged['run_id']}/renamed"
    code, _, err = _import(capsys, uri, logged["url"], home, "--bump", *_held_out(logged))
    assert code == 2 and err.count("\n") == 1, err
    assert "in the MLflow signature only: country" in err
    assert "in the converted schema only: region" in err
    assert _versions(home, "churn") == []


def test_no_sample_and_no_input_example_says_what_to_pass(logged, home, capsys):
    code, _, err = _import(capsys, f"runs:/{logged['run_id']}/bare", logged["url"], home, "--bump")
    assert code == 2 and "has no logged input example: pass --sample DATA" in err
    assert _versions(home, "churn") == []


def test_unreachable_tracking_server_fails_fast(home, capsys):
    url = f"http://127.0.0.1:{_free_port()}"
    code, _, err = _import(capsys, f"models:/{MODEL}@champion", url, home, "--bump")
    assert code == 2 and f"cannot reach the MLflow tracking server at {url}" in err
    assert _versions(home, "churn") == []


def test_import_without_the_mlflow_extra_names_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests/install/blocked_site"), str(REPO)])
    env["MODELGATE_BLOCKED_IMPORTS"] = "mlflow"
    for argv in (
        ["import", "models:/m@a", "--name", "m", "--bump"],
        ["mlflow", "sync", "m"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli.main", *argv, "--home", str(tmp_path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
            cwd=REPO,
        )
        assert done.returncode == 2, done.stderr
        assert "needs the 'mlflow' extra" in done.stderr and "modelgate[mlflow]" in done.stderr
        assert done.stderr.count("\n") == 1


def test_refused_credentials_are_one_line(home, capsys):
    """A tracking server behind authentication that refuses the request (HTTP 401)."""
    import http.server
    import threading

    class Refusing(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's handler name)
            ok = self.path == "/health"
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"OK" if ok else b"You are not authenticated.")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        code, _, err = _import(capsys, f"models:/{MODEL}@champion", url, home, "--bump")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 2 and err.count("\n") == 1, err
    assert f"the MLflow tracking server at {url} refused the credentials" in err
    assert _versions(home, "churn") == []
