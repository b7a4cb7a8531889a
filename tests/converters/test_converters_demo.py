from __future__ import annotations

import pandas as pd
import pytest

from converters import TrainingConfig, dataset_fingerprint, read_table
from converters.demo import MODEL, register_demo
from converters.demo_data import (
    CATEGORICAL,
    FEATURES,
    LABEL,
    NUMERICAL,
    churn_frame,
    demo_splits,
    write_demo_dataset,
)
from registry.home import HomePaths
from registry.models import Stage
from registry.sqlite.store import open_registry


def test_dataset_is_seeded_and_realistic():
    frame = churn_frame(3000)
    pd.testing.assert_frame_equal(frame, churn_frame(3000))
    assert list(frame.columns) == FEATURES + [LABEL]
    assert len(NUMERICAL) == 8 and len(CATEGORICAL) == 3
    assert 0.1 < frame[LABEL].mean() < 0.4
    assert frame["avg_session_minutes"].isna().any()
    assert set(frame["plan"]) == {"basic", "standard", "premium"}
    splits = demo_splits()
    assert [len(splits[k]) for k in ("train", "validation", "test")] == [4000, 1000, 1000]


def test_written_dataset_is_the_holdout_and_drift_shifts_it(tmp_path):
    path = write_demo_dataset(tmp_path / "demo.csv")
    holdout = read_table(path)
    assert dataset_fingerprint(holdout) == dataset_fingerprint(demo_splits()["test"])
    drifted = read_table(write_demo_dataset(tmp_path / "drift.csv", drift=True, rows=500))
    assert len(drifted) == 500
    assert drifted["support_calls"].mean() > holdout["support_calls"].mean() + 0.5
    assert (drifted["payment_method"] == "invoice").mean() > 0.3


@pytest.mark.slow
async def test_register_demo(tmp_path):
    registry = await open_registry(HomePaths(tmp_path / "home"))
    try:
        versions = await register_demo(registry, actor="tester")
        model = await registry.get_model(MODEL)
    finally:
        await registry.close()
    assert [(v.version, v.stage) for v in versions] == [
        ("1.0.0", Stage.PRODUCTION),
        ("1.1.0", Stage.STAGING),
    ]
    assert model.production_version == "1.0.0"
    baseline, boosted = versions
    for mv in versions:
        assert mv.parity["passed"] and mv.parity["rows"] == 1000
        assert mv.schema["allow_missing"] is True
        assert [i["datatype"] for i in mv.schema["inputs"]] == ["FP32"] * 8 + ["BYTES"] * 3
        lineage = mv.lineage
        assert lineage["training"]["training_samples"] == 4000
        assert lineage["training"]["dataset_version"] == "churn-demo-v1"
        assert (
            lineage["config_hash"]
            == TrainingConfig.from_dict(lineage["training_config"]).config_hash()
        )
        assert lineage["training_config"]["random_seed"] == 42
        assert mv.created_by == "tester" and mv.tags["source"] == "modelgate-demo"
        assert set(mv.reference["categorical"]) == set(CATEGORICAL)
    assert baseline.lineage["model_type"] == "logistic_regression"
    assert boosted.lineage["model_type"] == "hist_gradient_boosting_classifier"
    # the staged candidate really is better on the holdout
    assert (
        boosted.lineage["performance"]["test_auc"]
        > baseline.lineage["performance"]["test_auc"] + 0.02
    )
    assert baseline.lineage["performance"]["test_auc"] == pytest.approx(0.80, abs=0.05)
