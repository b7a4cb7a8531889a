"""publish() into a real SQLite registry in tmp_path."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestCentroid

from converters import ConversionError, ParityError, publish
from converters.runner import feeds
from registry.errors import InvalidVersion, VersionExists
from registry.home import HomePaths
from registry.sqlite.store import open_registry


@pytest.fixture
async def registry(tmp_path):
    store = await open_registry(HomePaths(tmp_path / "home"))
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def model_and_sample(numeric_data, fit_quiet):
    X, y = numeric_data(rows=500)
    estimator = fit_quiet(LogisticRegression(), X.iloc[:300], y[:300])
    return estimator, X.iloc[300:].assign(label=y[300:])


def _blobs(tmp_path) -> list:
    return sorted((tmp_path / "home" / "artifacts").rglob("*.onnx"))


async def test_publish_registers_a_servable_version(registry, model_and_sample, tmp_path):
    estimator, sample = model_and_sample
    mv = await publish(
        registry,
        "credit",
        estimator,
        sample,
        "label",
        version="1.0.0",
        actor="tester",
        description="first",
        tags={"team": "risk"},
    )
    assert (mv.model, mv.version, mv.stage.value) == ("credit", "1.0.0", "none")
    assert mv.created_by == "tester" and mv.description == "first" and mv.tags == {"team": "risk"}
    assert mv.parity["passed"] and mv.parity["rows"] == 200
    assert mv.schema["inputs"][0]["name"] == "input"
    assert mv.lineage["config_hash"] and mv.reference["n_rows"] == 200
    stored = await registry.get_version("credit", "1.0.0")
    assert stored.lineage == mv.lineage and stored.reference == mv.reference
    # the stored artifact serves the same answers as scikit-learn
    data = await registry.read_artifact("credit", "1.0.0")
    assert len(data) == mv.artifact_size and len(_blobs(tmp_path)) == 1
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    features = sample.drop(columns="label")
    labels = session.run([mv.schema["label_output"]], feeds(mv.schema, features))[0]
    np.testing.assert_array_equal(labels, estimator.predict(features))


async def test_bump_numbers_versions(registry, model_and_sample):
    estimator, sample = model_and_sample
    first = await publish(registry, "m", estimator, sample, "label", bump="minor")
    second = await publish(registry, "m", estimator, sample, "label", bump="patch")
    assert (first.version, second.version) == ("1.0.0", "1.0.1")


async def test_forced_parity_failure_is_recorded(registry, model_and_sample):
    estimator, sample = model_and_sample
    with pytest.raises(ParityError):
        await publish(registry, "m", estimator, sample, "label", version="1.0.0", abs_tolerance=0.0)
    mv = await publish(
        registry, "m", estimator, sample, "label", version="1.0.0", abs_tolerance=0.0, force=True
    )
    assert mv.parity["forced"] is True and mv.parity["passed"] is False
    assert (await registry.get_version("m", "1.0.0")).parity["forced"] is True


async def _assert_untouched(registry, tmp_path) -> None:
    assert await registry.list_models() == []
    assert _blobs(tmp_path) == []


async def test_a_parity_failure_writes_nothing(registry, model_and_sample, tmp_path):
    estimator, sample = model_and_sample
    with pytest.raises(ParityError):
        await publish(registry, "m", estimator, sample, "label", version="1.0.0", abs_tolerance=0.0)
    await _assert_untouched(registry, tmp_path)


async def test_a_conversion_failure_writes_nothing(registry, numeric_data, fit_quiet, tmp_path):
    X, y = numeric_data(rows=100)
    estimator = fit_quiet(NearestCentroid(), X, y)
    with pytest.raises(ConversionError, match="NearestCentroid"):
        await publish(registry, "m", estimator, X, version="1.0.0")
    await _assert_untouched(registry, tmp_path)


async def test_mismatched_sample_writes_nothing(registry, model_and_sample, tmp_path):
    estimator, sample = model_and_sample
    with pytest.raises(ConversionError, match="unexpected label"):
        await publish(registry, "m", estimator, sample, version="1.0.0")
    await _assert_untouched(registry, tmp_path)


async def test_version_checks_come_first(registry, model_and_sample, tmp_path):
    estimator, sample = model_and_sample
    with pytest.raises(InvalidVersion):
        await publish(registry, "m", estimator, sample, "label", version="1.0")
    with pytest.raises(InvalidVersion):
        await publish(registry, "m", estimator, sample, "label", bump="huge")
    with pytest.raises(InvalidVersion, match="invalid model name"):
        await publish(registry, "bad name/x", estimator, sample, "label", bump="minor")
    with pytest.raises(ConversionError, match="exactly one"):
        await publish(registry, "m", estimator, sample, "label")
    await _assert_untouched(registry, tmp_path)
    await publish(registry, "m", estimator, sample, "label", version="1.0.0")
    audit_before = await registry.audit()
    with pytest.raises(VersionExists):
        await publish(registry, "m", estimator, sample, "label", version="1.0.0")
    assert await registry.audit() == audit_before
    assert [v.version for v in await registry.list_versions("m")] == ["1.0.0"]
