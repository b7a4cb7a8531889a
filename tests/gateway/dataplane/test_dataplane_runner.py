from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from gateway.dataplane.runner import ModelLoadError, OnnxRunner, session_options


def test_run_matches_a_direct_onnxruntime_call(models, data):
    onnx_bytes, _schema = models["logistic"]
    X, _y = data
    runner = OnnxRunner(onnx_bytes)
    direct = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    outputs = runner.run({"input": X[:7]})
    label, proba = direct.run(None, {"input": X[:7]})
    assert list(outputs) == ["label", "probabilities"]
    np.testing.assert_array_equal(outputs["label"], label)
    np.testing.assert_allclose(outputs["probabilities"], proba, rtol=1e-6)


def test_session_options_are_chosen_for_a_server_process():
    options = session_options(1)
    assert options.intra_op_num_threads == 1
    assert options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert session_options(2).get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_garbage_bytes_raise_a_one_line_load_error():
    with pytest.raises(ModelLoadError, match="cannot load") as info:
        OnnxRunner(b"definitely not an onnx model")
    assert "\n" not in str(info.value)


def test_warm_up_measure_and_batchable(models, data):
    runner = OnnxRunner(models["forest"][0])
    feeds = {"input": np.zeros((1, 4), dtype=np.float32)}
    assert runner.single_row_us is None
    runner.warm_up(feeds)
    measured = runner.measure(feeds, runs=5)
    assert measured > 0 and runner.single_row_us == measured
    assert runner.batchable(feeds, 1)


def test_warm_up_with_wrong_feeds_is_a_load_error(models):
    runner = OnnxRunner(models["forest"][0])
    with pytest.raises(ModelLoadError, match="warm-up"):
        runner.warm_up({"input": np.zeros((1, 3), dtype=np.float32)})
