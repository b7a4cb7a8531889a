"""Operational profile: structure, isolation, and that memory tracks the model's size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from converters.sklearn_onnx import convert
from gateway.evaluation.onnx_table import build_feeds
from gateway.evaluation.operational import measure_operational

FAST = {"runs": 60, "warmup": 5, "min_seconds": 0.05}


def test_profile_in_a_fresh_process_and_in_process(binary_case) -> None:
    c = binary_case
    feeds = build_feeds(c.schema, c.data.iloc[:100])
    for isolated, process in ((True, "fresh subprocess"), (False, "in-process")):
        profile = measure_operational(c.onnx_bytes, feeds, isolated=isolated, **FAST)
        assert profile["process"] == process
        assert profile["model_size_bytes"] == len(c.onnx_bytes)
        assert profile["latency_ms"]["runs"] == 60 and profile["latency_ms"]["batch_size"] == 1
        lat = profile["latency_ms"]
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
        assert profile["throughput"]["batches"] >= 10
        assert profile["memory"]["method"].startswith("VmHWM")  # Linux


@pytest.mark.slow
def test_memory_delta_grows_with_the_model(binary_case) -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(2000, 10)), columns=[f"f{i}" for i in range(10)])
    y = (x["f0"] + rng.normal(size=2000) > 0).astype(int)
    forest = convert(RandomForestClassifier(200, random_state=0).fit(x, y), x)
    assert len(forest.onnx_bytes) > 1_000_000
    big = measure_operational(forest.onnx_bytes, build_feeds(forest.schema, x.iloc[:64]), **FAST)
    c = binary_case
    small = measure_operational(c.onnx_bytes, build_feeds(c.schema, c.data.iloc[:64]), **FAST)
    # the forest's session holds its trees: several MB more than a logistic regression's
    assert big["memory"]["peak_rss_delta_bytes"] > small["memory"]["peak_rss_delta_bytes"] + 4e6


def test_a_failure_in_the_measuring_process_is_one_line(binary_case) -> None:
    feeds = build_feeds(binary_case.schema, binary_case.data.iloc[:10])
    with pytest.raises(RuntimeError, match="^operational profiling failed: ") as err:
        measure_operational(b"not a model", feeds, **FAST)
    assert "\n" not in str(err.value)
