from __future__ import annotations

import asyncio
from types import MappingProxyType

import numpy as np
import onnxruntime as ort
import pytest

from gateway.dataplane.routing import sticky_prefix, thresholds_for
from gateway.dataplane.shadow import ShadowMirror, ShadowStats, ShadowTarget, compare
from gateway.dataplane.snapshot import ModelRoute


def route_with_shadows(primary, targets):
    return ModelRoute(
        name="m",
        variants=MappingProxyType({primary.version: primary}),
        known_versions=frozenset({primary.version}),
        aliases=MappingProxyType({}),
        primary=primary,
        routes=(primary,),
        thresholds=thresholds_for([100]),
        weights=(100.0,),
        challenger=None,
        sticky=False,
        sticky_prefix=sticky_prefix("", "m"),
        shadows=tuple(targets),
        metadata_body=b"{}",
    )


def direct(models, kind, X):
    session = ort.InferenceSession(models[kind][0], providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": X}), strict=True))


def test_compare_classifiers_counts_agreement_and_probability_difference(
    models, data, make_variant
):
    X, _y = data
    primary, shadow = make_variant("logistic"), make_variant("forest", version="2.0.0")
    left, right = direct(models, "logistic", X[:50]), direct(models, "forest", X[:50])
    label_rows, agreed, diffs = compare(primary, left, shadow, right)
    assert label_rows == 50
    assert agreed == int((left["label"] == right["label"]).sum())
    assert 0 < agreed < 50  # the fixture's two models disagree on a few rows
    expected = np.abs(left["probabilities"] - right["probabilities"]).max(axis=1)
    np.testing.assert_allclose(diffs, expected, rtol=1e-6)


def test_compare_regressors_gives_absolute_value_differences(models, data, make_variant):
    X, _y = data
    primary, shadow = make_variant("linear"), make_variant("linear_shifted", version="2.0.0")
    left, right = direct(models, "linear", X[:20]), direct(models, "linear_shifted", X[:20])
    label_rows, agreed, diffs = compare(primary, left, shadow, right)
    assert (label_rows, agreed) == (0, 0)
    np.testing.assert_allclose(diffs, np.abs(left["variable"] - right["variable"]).ravel())
    assert np.allclose(diffs, 0.5, atol=0.05)


def test_compare_classifier_with_regressor_compares_nothing(models, data, make_variant):
    X, _y = data
    out = compare(
        make_variant("logistic"),
        direct(models, "logistic", X[:5]),
        make_variant("linear", version="2.0.0"),
        direct(models, "linear", X[:5]),
    )
    assert out == (0, 0, None)


async def test_mirrored_requests_are_compared_off_the_request_path(models, data, make_variant):
    X, _y = data
    primary, shadow = make_variant("logistic"), make_variant("forest", version="2.0.0")
    mirror = ShadowMirror(maxsize=64)
    stats = mirror.stats_for("m", "2.0.0")
    route = route_with_shadows(primary, [ShadowTarget(shadow, 1.0, stats)])
    mirror.start()
    expected_agreed = 0
    for start in range(0, 40, 4):
        rows = X[start : start + 4]
        outputs = await primary.batcher.infer({"input": rows}, 4)
        mirror.mirror(route, {"input": rows}, 4, primary, outputs)
        other = direct(models, "forest", rows)
        expected_agreed += int((outputs["label"] == other["label"]).sum())
    await asyncio.wait_for(mirror.join(), 10)
    summary = stats.summary()
    assert summary["requests"] == 10 and summary["rows"] == 40 and summary["compared"] == 40
    assert summary["agreed"] == expected_agreed
    assert summary["agreement"] == pytest.approx(expected_agreed / 40)
    assert summary["mean_abs_diff"] > 0 and summary["p95_abs_diff"] >= summary["mean_abs_diff"]
    assert summary["dropped"] == 0 and summary["errors"] == 0
    await mirror.stop()
    assert mirror.stats_of("m") == [stats]


async def test_a_full_queue_drops_and_counts_without_waiting(data, make_variant):
    X, _y = data
    primary, shadow = make_variant("logistic"), make_variant("forest", version="2.0.0")
    mirror = ShadowMirror(maxsize=2)  # no workers started: nothing drains the queue
    stats = mirror.stats_for("m", "2.0.0")
    route = route_with_shadows(primary, [ShadowTarget(shadow, 1.0, stats)])
    outputs = await primary.batcher.infer({"input": X[:1]}, 1)
    for _ in range(5):
        mirror.mirror(route, {"input": X[:1]}, 1, primary, outputs)
    assert mirror.queued == 2
    assert stats.dropped == 3
    assert stats.summary()["dropped"] == 3


async def test_sample_rate_mirrors_that_fraction(data, make_variant):
    X, _y = data
    primary, shadow = make_variant("logistic"), make_variant("forest", version="2.0.0")
    mirror = ShadowMirror(maxsize=100_000)
    stats = mirror.stats_for("m", "2.0.0")
    route = route_with_shadows(primary, [ShadowTarget(shadow, 0.25, stats)])
    outputs = await primary.batcher.infer({"input": X[:1]}, 1)
    for _ in range(20_000):
        mirror.mirror(route, {"input": X[:1]}, 1, primary, outputs)
    assert abs(mirror.queued / 20_000 - 0.25) < 0.03
    assert stats.dropped == 0


async def test_the_version_that_served_is_not_its_own_shadow(data, make_variant):
    X, _y = data
    primary = make_variant("logistic")
    mirror = ShadowMirror(maxsize=8)
    route = route_with_shadows(primary, [ShadowTarget(primary, 1.0, mirror.stats_for("m", "1"))])
    outputs = await primary.batcher.infer({"input": X[:1]}, 1)
    mirror.mirror(route, {"input": X[:1]}, 1, primary, outputs)
    assert mirror.queued == 0


async def test_a_failing_shadow_counts_an_error_and_the_worker_survives(data, make_variant):
    X, _y = data
    primary, shadow = make_variant("logistic"), make_variant("forest", version="2.0.0")
    mirror = ShadowMirror(maxsize=8)
    stats = mirror.stats_for("m", "2.0.0")
    route = route_with_shadows(primary, [ShadowTarget(shadow, 1.0, stats)])
    mirror.start()
    outputs = await primary.batcher.infer({"input": X[:2]}, 2)
    await shadow.batcher.aclose()  # the shadow got unloaded under the queued copy
    mirror.mirror(route, {"input": X[:2]}, 2, primary, outputs)
    await asyncio.wait_for(mirror.join(), 10)
    assert stats.errors == 1 and stats.requests == 0
    await mirror.stop()


def test_stats_window_wraps_and_keeps_the_recent_rows():
    stats = ShadowStats("m", "2", window=10)
    stats.record(8, 8, 8, np.zeros(8))
    stats.record(6, 6, 3, np.ones(6))  # wraps: the window now holds 4 zeros, 6 ones
    summary = stats.summary()
    assert summary["agreement"] == pytest.approx(11 / 14)
    assert summary["mean_abs_diff"] == pytest.approx(6 / 14)
    assert summary["p95_abs_diff"] == pytest.approx(1.0)
    stats.record(30, 0, 0, np.full(30, 2.0))  # larger than the window
    assert stats.summary()["p95_abs_diff"] == pytest.approx(2.0)
    assert ShadowStats("m", "3").summary()["agreement"] is None
