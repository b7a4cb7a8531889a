"""Unbinding a version removes its series; bindings are counted (single process)."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.monitoring.metrics.prometheus import ROUTE_SHADOW, ROUTE_WEIGHTED, MetricsRegistry

IRIS = ("setosa", "versicolor", "virginica")


def series(metrics: MetricsRegistry) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    text = metrics.render().decode()
    return {
        (s.name, frozenset(s.labels.items()))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def versions(metrics: MetricsRegistry) -> set[str]:
    return {dict(labels)["version"] for _, labels in series(metrics) if "version" in dict(labels)}


def exercise(metrics: MetricsRegistry, version: str) -> None:
    vm = metrics.bind_variant("iris", version, IRIS)
    vm.record_request(ROUTE_WEIGHTED, 200, 100_000)
    vm.record_request(ROUTE_SHADOW, 200, 100_000)  # a route bound lazily
    vm.record_request(ROUTE_WEIGHTED, 400, 100_000)
    vm.record_batch(2, 10_000)
    vm.record_predictions(2, np.array([0, 9]), np.array([0.4, 0.9]))
    vm.record_input_error("bad_shape")
    vm.record_shadow_dropped()
    vm.set_feature_psi("sepal_length", 0.1)
    vm.set_feature_psi("petal_width", 0.3)
    vm.set_prediction_psi(0.01)
    vm.set_shadow_agreement(0.9)
    vm.set_live_accuracy(0.8)
    vm.set_traffic_weight(50.0)


@pytest.fixture
def metrics() -> MetricsRegistry:
    return MetricsRegistry(multiprocess_dir=None)


def test_unbinding_removes_every_series_of_that_version_only(metrics: MetricsRegistry) -> None:
    exercise(metrics, "1.0.0")
    exercise(metrics, "1.1.0")
    metrics.inc_rollback("iris", "manual")
    before = series(metrics)
    old = {s for s in before if dict(s[1]).get("version") == "1.0.0"}
    assert len(old) > 40  # requests, histograms, classes, gauges, features

    assert metrics.unbind_variant("iris", "1.0.0")
    after = series(metrics)
    assert versions(metrics) == {"1.1.0"}
    assert after == before - old
    # model-level series stay: they do not belong to one version
    names = {name for name, _ in after}
    assert {"modelgate_input_errors_total", "modelgate_rollbacks_total"} <= names
    assert metrics.variant("iris", "1.0.0") is None
    assert not metrics.unbind_variant("iris", "1.0.0")


def test_setters_after_unbinding_do_not_resurrect_series(metrics: MetricsRegistry) -> None:
    exercise(metrics, "1.0.0")
    metrics.unbind_variant("iris", "1.0.0")
    assert not metrics.set_feature_psi("iris", "1.0.0", "sepal_length", 0.5)
    assert not metrics.set_live_accuracy("iris", "1.0.0", 0.5)
    assert not metrics.set_traffic_weight("iris", "1.0.0", 10.0)
    assert not metrics.inc_shadow_dropped("iris", "1.0.0")
    assert versions(metrics) == set()


def test_bindings_are_counted_and_rebinding_starts_fresh(metrics: MetricsRegistry) -> None:
    first = metrics.bind_variant("iris", "1.0.0", IRIS)
    second = metrics.bind_variant("iris", "1.0.0", IRIS)  # a reload while the old drains
    assert first is second
    first.record_request(ROUTE_WEIGHTED, 200, 1_000)
    metrics.unbind_variant("iris", "1.0.0")
    assert versions(metrics) == {"1.0.0"}  # one binding left

    metrics.unbind_variant("iris", "1.0.0")
    assert versions(metrics) == set()

    again = metrics.bind_variant("iris", "1.0.0", IRIS)
    assert again is not first
    text = metrics.render().decode()
    assert (
        'modelgate_requests_total{code="200",model="iris",route="weighted",version="1.0.0"} 0.0'
        in text
    )
    assert 'modelgate_model_loaded{model="iris",version="1.0.0"} 1.0' in text
