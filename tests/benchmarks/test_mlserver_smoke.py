"""MLServer as a benchmark baseline: its settings templates, and (opt-in) both variants live.

The end-to-end tests install MLServer 1.7.1 into its own virtual environment (a minute or
more the first time) and start real MLServer processes on loopback, so they are skipped
unless MODELGATE_BENCH_MLSERVER=1 is set. The template tests are fast and always run.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import orjson
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # benchmarks/ is a folder of the checkout, not installed
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.mlserver.launch import (  # noqa: E402
    infer_path,
    mlserver_server_process,
    numpy_fitted_copy,
    prepare_mlserver,
    start_mlserver,
    stop_mlserver,
    wait_ready,
)
from benchmarks.mlserver.settings import MLServerOptions, write_repository  # noqa: E402
from benchmarks.mlserver.venv import pinned_requirements  # noqa: E402

LIVE = os.environ.get("MODELGATE_BENCH_MLSERVER") == "1"
live_only = pytest.mark.skipif(
    not LIVE, reason="set MODELGATE_BENCH_MLSERVER=1 to install and start MLServer"
)


def _repository(tmp_path: Path, kind: str, options: MLServerOptions) -> tuple[dict, dict]:
    model_file = tmp_path / ("m.joblib" if kind == "sklearn" else "m.onnx")
    model_file.write_bytes(b"")
    root = write_repository(
        tmp_path / kind, name="logreg", kind=kind, model_file=model_file,
        http_port=18001, grpc_port=18002, metrics_port=18003, options=options,
    )  # fmt: skip
    server = json.loads((root / "settings.json").read_text())
    model = json.loads((root / "logreg" / "model-settings.json").read_text())
    assert model["parameters"]["uri"] == str(model_file.resolve())
    return server, model


def test_server_settings_are_tuned_and_out_of_the_way(tmp_path: Path) -> None:
    server, model = _repository(tmp_path, "sklearn", MLServerOptions())
    assert server["debug"] is False  # debug turns uvicorn's access log on
    assert server["gzip_enabled"] is False
    assert server["metrics_endpoint"] is None
    assert server["host"] == "127.0.0.1"
    assert (server["http_port"], server["grpc_port"], server["metrics_port"]) == (
        18001, 18002, 18003,
    )  # fmt: skip
    assert server["parallel_workers"] == MLServerOptions().parallel_workers
    assert server["logging_settings"]["loggers"]["mlserver"]["level"] == "WARNING"
    assert model["implementation"] == "mlserver_sklearn.SKLearnModel"
    assert "max_batch_size" not in model
    assert not (tmp_path / "sklearn" / "logreg" / "ort_runtime.py").exists()


def test_onnx_variant_ships_its_runtime_and_batching_is_opt_in(tmp_path: Path) -> None:
    options = MLServerOptions(parallel_workers=2, metrics=True, max_batch_size=16,
                              max_batch_time=0.002)  # fmt: skip
    server, model = _repository(tmp_path, "onnx", options)
    assert server["parallel_workers"] == 2
    assert server["metrics_endpoint"] == "/metrics"
    assert model["implementation"] == "ort_runtime.OnnxRuntimeModel"
    assert (model["max_batch_size"], model["max_batch_time"]) == (16, 0.002)
    runtime = tmp_path / "onnx" / "logreg" / "ort_runtime.py"
    assert "intra_op_num_threads = 1" in runtime.read_text()


def test_bad_variant_or_file_is_a_clear_error(tmp_path: Path) -> None:
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"")
    with pytest.raises(ValueError, match="unknown MLServer variant 'triton'"):
        prepare_mlserver(onnx_file, "triton")
    with pytest.raises(ValueError, match="needs an existing .joblib file"):
        prepare_mlserver(onnx_file, "sklearn")
    with pytest.raises(ValueError, match="needs an existing .onnx file"):
        prepare_mlserver(tmp_path / "missing.onnx", "onnx")
    with pytest.raises(ValueError, match=r"needs an existing .joblib file, got .*model\.joblib"):
        prepare_mlserver(tmp_path, "sklearn")  # a folder without model.joblib
    with pytest.raises(ValueError, match="parallel_workers"):
        MLServerOptions(parallel_workers=-1)


def test_venv_pins_our_model_stack() -> None:
    import onnxruntime
    import sklearn

    pins = pinned_requirements()
    assert "mlserver==1.7.1" in pins
    assert "mlserver-sklearn==1.7.1" in pins
    assert "uvloop==0.21.0" in pins  # uvloop 0.23 kills MLServer 1.7.1's workers
    assert f"scikit-learn=={sklearn.__version__}" in pins
    assert f"onnxruntime=={onnxruntime.__version__}" in pins


def test_numpy_fitted_copy_predicts_the_same_without_the_warning(tmp_path: Path) -> None:
    import joblib
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    fitted = LogisticRegression().fit(pd.DataFrame(x, columns=list("abcd")), y)
    joblib.dump(fitted, tmp_path / "named.joblib")
    with pytest.warns(UserWarning, match="feature names"):
        # what MLServer's runtime would hit on every call
        expected = fitted.predict(x), fitted.predict_proba(x)

    copy = joblib.load(numpy_fitted_copy(tmp_path / "named.joblib", tmp_path / "plain.joblib"))
    assert not hasattr(copy, "feature_names_in_")
    np.testing.assert_array_equal(copy.predict(x), expected[0])  # no warning: errors are on
    np.testing.assert_array_equal(copy.predict_proba(x), expected[1])


# --- live: real MLServer processes (opt-in) -------------------------------------------


@pytest.fixture(scope="module")
def logreg(tmp_path_factory: pytest.TempPathFactory):
    from benchmarks.models import build_model, request_rows

    model = build_model("logreg", work_dir=tmp_path_factory.mktemp("work"))
    session = ort.InferenceSession(str(model.onnx_path), providers=["CPUExecutionProvider"])
    return model, request_rows(4), session


def _sent_row(body: bytes) -> np.ndarray:
    """The features exactly as the server receives them (the body rounds to 6 decimals)."""
    tensor = orjson.loads(body)["inputs"][0]
    return np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])


def _post(port: int, body: bytes) -> dict:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", infer_path("logreg"), body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    assert response.status == 200, payload
    return orjson.loads(payload)


@pytest.mark.slow
@live_only
@pytest.mark.parametrize("kind", ["sklearn", "onnx"])
def test_mlserver_variant_answers_like_onnxruntime(kind: str, logreg) -> None:
    from benchmarks.payloads import oip_body
    from benchmarks.procs import free_port

    model, rows, session = logreg
    model_file = model.estimator_path if kind == "sklearn" else model.onnx_path
    port = free_port()
    proc = start_mlserver(model_file, kind, port, workers=0, name="logreg")
    try:
        wait_ready(port, name="logreg", proc=proc)
        for row in rows:
            # the harness's own bytes, so every server receives the same request
            body = oip_body(row)
            answer = _post(port, body)
            label, probabilities = session.run(None, {"input": _sent_row(body)})
            outputs = {o["name"]: o for o in answer["outputs"]}
            if kind == "sklearn":
                assert outputs["predict"]["data"] == label.tolist()
            else:
                assert outputs["label"]["data"] == label.tolist()
                np.testing.assert_allclose(outputs["probabilities"]["data"],
                                           probabilities.ravel(), rtol=1e-6)  # fmt: skip
    finally:
        root = proc.mlserver.root
        stop_mlserver(proc)
    assert proc.returncode is not None
    assert not root.exists()


@pytest.mark.slow
@live_only
def test_harness_server_process_with_parallel_workers(logreg) -> None:
    from benchmarks.payloads import oip_body

    model, rows, session = logreg
    process = mlserver_server_process(
        "mlserver-onnx", "onnx", model.onnx_path, "logreg", MLServerOptions(parallel_workers=1)
    )
    try:
        process.start("/v2/health/ready")  # what the runner passes; the model path is used
        sent = oip_body(rows[0])
        status, body = process.request("POST", infer_path("logreg"), sent)
        assert status == 200, body
        outputs = {o["name"]: o for o in orjson.loads(body)["outputs"]}
        label, _ = session.run(None, {"input": _sent_row(sent)})
        assert outputs["label"]["data"] == label.tolist()
    finally:
        process.close()
    assert process.proc is not None and process.proc.returncode is not None
    assert not process.launch.root.exists()


def test_tune_configurations_parse_or_fail_clearly() -> None:
    from benchmarks.mlserver.tune import parse_config

    assert parse_config("onnx:1:metrics") == ("onnx", MLServerOptions(1, metrics=True))
    kind, options = parse_config("sklearn:0:batch=16/0.002")
    assert (kind, options.max_batch_size, options.max_batch_time) == ("sklearn", 16, 0.002)
    with pytest.raises(SystemExit, match="unknown option 'gzip'"):
        parse_config("sklearn:0:gzip")
    with pytest.raises(SystemExit, match="bad configuration 'onnx:x'"):
        parse_config("onnx:x")
    with pytest.raises(SystemExit, match="unknown variant 'triton'"):
        parse_config("triton:0")
