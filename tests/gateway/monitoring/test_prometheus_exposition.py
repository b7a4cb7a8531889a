"""The exposition text after known traffic: exact names, labels and values (single process)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Route

from gateway.monitoring.metrics.families import CONFIDENCE_BUCKETS, DURATION_BUCKETS
from gateway.monitoring.metrics.prometheus import (
    CONTENT_TYPE_LATEST,
    ROUTE_STICKY,
    ROUTE_URL,
    ROUTE_WEIGHTED,
    MetricsEndpoint,
    MetricsRegistry,
)
from tests.support.asgi_app import asgi_client
from tests.support.polling import wait_until_async

CONTRACT = {
    "modelgate_requests_total": "counter",
    "modelgate_request_duration_seconds": "histogram",
    "modelgate_inference_duration_seconds": "histogram",
    "modelgate_batch_size": "histogram",
    "modelgate_predictions_total": "counter",
    "modelgate_prediction_confidence": "histogram",
    "modelgate_low_confidence_total": "counter",
    "modelgate_feature_psi": "gauge",
    "modelgate_prediction_psi": "gauge",
    "modelgate_shadow_agreement_ratio": "gauge",
    "modelgate_shadow_dropped_total": "counter",
    "modelgate_traffic_weight": "gauge",
    "modelgate_model_loaded": "gauge",
    "modelgate_live_accuracy": "gauge",
    "modelgate_multivariate_drift_error": "gauge",
    "modelgate_estimated_accuracy": "gauge",
    "modelgate_rollbacks_total": "counter",
    "modelgate_input_errors_total": "counter",
    "modelgate_experiment_outcomes_total": "counter",
    "modelgate_outcomes_dropped_total": "counter",
}
IRIS = ("setosa", "versicolor", "virginica")
V = {"model": "iris", "version": "1.0.0"}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"duplicate series {key}"
            out[key] = s.value
    return out


def value(parsed: dict, name: str, **labels: str) -> float | None:
    return parsed.get((name, frozenset(labels.items())))


def series_of(parsed: dict, name: str) -> dict[frozenset, float]:
    return {labels: v for (n, labels), v in parsed.items() if n == name}


def buckets(parsed: dict, name: str, **labels: str) -> dict[str, float]:
    found = {}
    for (n, lab), v in parsed.items():
        lab_d = dict(lab)
        le = lab_d.pop("le", None)
        if n == name + "_bucket" and lab_d == labels:
            found[le] = v
    return found


@pytest.fixture
def metrics() -> MetricsRegistry:
    return MetricsRegistry(multiprocess_dir=None)


def test_every_contract_family_is_exposed_with_its_type(metrics: MetricsRegistry) -> None:
    vm = metrics.bind_variant("iris", "1.0.0", IRIS)
    vm.record_request(ROUTE_WEIGHTED, 200, 80_000)
    vm.record_batch(1, 20_000)
    vm.record_predictions(1, np.array([0]), np.array([0.9]))
    vm.record_input_error("bad_shape")
    vm.record_shadow_dropped()
    for setter, arg in (
        (vm.set_prediction_psi, 0.05),
        (vm.set_shadow_agreement, 0.97),
        (vm.set_live_accuracy, 0.91),
        (vm.set_multivariate_error, 1.02),
        (vm.set_estimated_accuracy, 0.88),
        (vm.set_traffic_weight, 90.0),
    ):
        setter(arg)
    vm.set_feature_psi("sepal_length", 0.02)
    metrics.inc_rollback("iris", "manual")
    metrics.families.experiment_outcomes.labels("iris", "1.0.0", "conversion").inc()
    metrics.families.outcomes_dropped.labels("iris", "unknown").inc()
    text = metrics.render().decode()

    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
    assert types == CONTRACT
    names = {name for name, _ in samples(text)}
    assert not any(n.endswith("_created") for n in names)
    for name, kind in CONTRACT.items():
        wanted = (
            {name} if kind != "histogram" else {f"{name}_{s}" for s in ("bucket", "count", "sum")}
        )
        assert wanted <= names, name


def test_requests_and_durations_have_exact_values(metrics: MetricsRegistry) -> None:
    vm = metrics.bind_variant("iris", "1.0.0", IRIS)
    # 40 µs, exactly 100 µs (a bucket bound: le is inclusive), 3 ms
    for ns in (40_000, 100_000, 3_000_000):
        vm.record_request(ROUTE_WEIGHTED, 200, ns)
    vm.record_request(ROUTE_URL, 200, 200_000)
    vm.record_request(ROUTE_STICKY, 503, 7_000_000_000)  # past the last bound: +Inf only
    vm.record_request(ROUTE_STICKY, 503, 1_000)
    vm.record_request(ROUTE_URL, 404, 1_000)
    parsed = samples(metrics.render().decode())

    requests = series_of(parsed, "modelgate_requests_total")
    expected = {
        ("url", "200"): 1.0,
        ("header", "200"): 0.0,
        ("challenger", "200"): 0.0,
        ("sticky", "200"): 0.0,
        ("weighted", "200"): 3.0,
        ("sticky", "503"): 2.0,
        ("url", "404"): 1.0,
    }
    assert requests == {
        frozenset({**V, "route": r, "code": c}.items()): n for (r, c), n in expected.items()
    }

    got = buckets(parsed, "modelgate_request_duration_seconds", **V)
    values_s = [40e-6, 100e-6, 3e-3, 200e-6, 7.0, 1e-6, 1e-6]
    assert len(got) == len(DURATION_BUCKETS) + 1
    for bound in DURATION_BUCKETS:
        key = next(k for k in got if k != "+Inf" and float(k) == bound)
        assert got[key] == sum(1 for v in values_s if v <= bound), bound
    assert got["+Inf"] == 7
    assert value(parsed, "modelgate_request_duration_seconds_count", **V) == 7
    assert value(parsed, "modelgate_request_duration_seconds_sum", **V) == pytest.approx(
        sum(values_s), rel=1e-12
    )


def test_batches_predictions_and_confidence_have_exact_values(metrics: MetricsRegistry) -> None:
    vm = metrics.bind_variant("iris", "1.0.0", IRIS)
    vm.record_batch(1, 30_000)
    vm.record_batch(3, 60_000)
    vm.record_batch(300, 2_000_000)
    # single rows: 0.6 exactly is not "low" (< 0.6) and falls in le="0.6"
    vm.record_predictions(1, np.array([0]), np.array([0.6], dtype=np.float32))
    vm.record_predictions(1, np.array([2.0]), np.array([0.55]))
    # a small batch (Python loop) with a NaN confidence and an unknown class index
    vm.record_predictions(3, np.array([1, 1, 7]), np.array([0.99, np.nan, 0.4]))
    parsed = samples(metrics.render().decode())

    assert buckets(parsed, "modelgate_batch_size", **V) == {
        "1.0": 1, "2.0": 1, "4.0": 2, "8.0": 2, "16.0": 2, "32.0": 2, "64.0": 2,
        "128.0": 2, "256.0": 2, "+Inf": 3,
    }  # fmt: skip
    assert value(parsed, "modelgate_batch_size_sum", **V) == 304
    assert value(parsed, "modelgate_inference_duration_seconds_count", **V) == 3
    assert value(parsed, "modelgate_inference_duration_seconds_sum", **V) == pytest.approx(
        2.09e-3, rel=1e-12
    )
    predictions = {
        dict(k)["class"]: v for k, v in series_of(parsed, "modelgate_predictions_total").items()
    }
    assert predictions == {"setosa": 1, "versicolor": 2, "virginica": 1, "unknown": 1}

    conf = buckets(parsed, "modelgate_prediction_confidence", **V)
    observed = [float(np.float32(0.6)), 0.55, 0.99, 0.4]
    for bound in CONFIDENCE_BUCKETS:
        assert conf[repr(bound)] == sum(1 for x in observed if x <= bound), bound
    assert conf["+Inf"] == 4
    assert value(parsed, "modelgate_prediction_confidence_sum", **V) == pytest.approx(sum(observed))
    assert value(parsed, "modelgate_low_confidence_total", **V) == 2  # 0.55 and 0.4


def test_single_row_loop_and_numpy_paths_record_the_same(metrics: MetricsRegistry) -> None:
    rng = np.random.default_rng(7)
    n = 300  # past NUMPY_ROWS: the numpy path
    classes = rng.integers(-1, 4, n)  # -1 and 3 are unknown to a 3-class schema
    conf = rng.uniform(0.3, 1.0, n)
    conf[::17] = np.nan
    conf[5] = 0.6  # on a bound
    singles = metrics.bind_variant("iris", "singles", IRIS)
    for c, x in zip(classes, conf, strict=True):
        singles.record_predictions(1, np.array([c]), np.array([x]))
    loop = metrics.bind_variant("iris", "loop", IRIS)
    for start in range(0, n, 10):
        loop.record_predictions(10, classes[start : start + 10], conf[start : start + 10])
    bulk = metrics.bind_variant("iris", "numpy", IRIS)
    bulk.record_predictions(n, classes, conf)
    parsed = samples(metrics.render().decode())

    def view(version: str) -> dict:
        """The prediction and confidence series of one version, version label dropped."""
        out = {}
        for (name, labels), v in parsed.items():
            lab = dict(labels)
            if lab.pop("version", None) == version and "predict" in name:
                out[(name, frozenset(lab.items()))] = v
        return out

    reference = view("singles")
    unknown = frozenset({"model": "iris", "class": "unknown"}.items())
    assert reference[("modelgate_predictions_total", unknown)] > 0
    assert reference[
        ("modelgate_prediction_confidence_count", frozenset({"model": "iris"}.items()))
    ] == n - len(conf[::17])
    for version in ("loop", "numpy"):
        got = view(version)
        assert got.keys() == reference.keys()
        for key, v in reference.items():
            assert got[key] == pytest.approx(v, rel=1e-12), (version, key)


def test_regressor_counts_rows_under_an_empty_class(metrics: MetricsRegistry) -> None:
    vm = metrics.bind_variant("house", "2.0.0")
    vm.record_predictions(1)
    vm.record_predictions(5)
    parsed = samples(metrics.render().decode())
    assert series_of(parsed, "modelgate_predictions_total") == {
        frozenset({"model": "house", "version": "2.0.0", "class": ""}.items()): 6.0
    }
    assert (
        value(parsed, "modelgate_prediction_confidence_count", model="house", version="2.0.0") == 0
    )


def test_recording_reaches_prometheus_only_on_flush(metrics: MetricsRegistry) -> None:
    """The request path touches no prometheus_client child: nothing moves before a flush."""
    vm = metrics.bind_variant("iris", "1.0.0", IRIS)
    before = generate_latest(metrics.exposition)
    for _ in range(50):
        vm.record_request(ROUTE_WEIGHTED, 200, 90_000)
        vm.record_request(ROUTE_WEIGHTED, 429, 90_000)
        vm.record_batch(1, 15_000)
        vm.record_predictions(1, np.array([1]), np.array([0.3]))
        vm.record_input_error("bad_shape")
        vm.record_shadow_dropped()
    metrics.record_input_error("iris", "body_too_large")
    assert generate_latest(metrics.exposition) == before
    metrics.flush()
    parsed = samples(generate_latest(metrics.exposition).decode())
    assert value(parsed, "modelgate_requests_total", **V, route="weighted", code="429") == 50
    assert value(parsed, "modelgate_low_confidence_total", **V) == 50
    assert value(parsed, "modelgate_shadow_dropped_total", **V) == 50
    assert value(parsed, "modelgate_input_errors_total", model="iris", reason="bad_shape") == 50
    assert value(parsed, "modelgate_input_errors_total", model="iris", reason="body_too_large") == 1
    metrics.flush()  # nothing new: a second flush adds nothing
    assert samples(generate_latest(metrics.exposition).decode()) == parsed


def test_gauges_appear_only_once_set_and_only_for_bound_versions(metrics: MetricsRegistry) -> None:
    metrics.bind_variant("iris", "1.0.0", IRIS)
    parsed = samples(metrics.render().decode())
    for name in ("modelgate_prediction_psi", "modelgate_live_accuracy", "modelgate_feature_psi",
                 "modelgate_shadow_agreement_ratio", "modelgate_traffic_weight"):  # fmt: skip
        assert series_of(parsed, name) == {}, name
    assert value(parsed, "modelgate_model_loaded", **V) == 1

    assert metrics.set_feature_psi("iris", "1.0.0", "petal_width", 0.31)
    assert metrics.set_feature_psi("iris", "1.0.0", "petal_width", 0.25)  # replaced
    assert metrics.set_prediction_psi("iris", "1.0.0", 0.04)
    assert metrics.set_shadow_agreement("iris", "1.0.0", 0.875)
    assert metrics.set_live_accuracy("iris", "1.0.0", 0.93)
    assert metrics.set_traffic_weight("iris", "1.0.0", 95.0)
    assert metrics.inc_shadow_dropped("iris", "1.0.0", 3)
    assert metrics.set_loaded("iris", "1.0.0", False)
    # a version nobody bound: ignored, no series created
    assert not metrics.set_live_accuracy("iris", "9.9.9", 0.5)
    assert not metrics.set_feature_psi("other", "1.0.0", "x", 0.5)
    parsed = samples(metrics.render().decode())
    assert value(parsed, "modelgate_feature_psi", **V, feature="petal_width") == 0.25
    assert value(parsed, "modelgate_prediction_psi", **V) == 0.04
    assert value(parsed, "modelgate_shadow_agreement_ratio", **V) == 0.875
    assert value(parsed, "modelgate_live_accuracy", **V) == 0.93
    assert value(parsed, "modelgate_traffic_weight", **V) == 95.0
    assert value(parsed, "modelgate_shadow_dropped_total", **V) == 3
    assert value(parsed, "modelgate_model_loaded", **V) == 0
    assert not any(dict(k).get("version") == "9.9.9" or dict(k).get("model") == "other"
                   for (_, k) in parsed)  # fmt: skip


def test_rollbacks_are_counted_by_reason(metrics: MetricsRegistry) -> None:
    metrics.inc_rollback("iris", "manual")
    metrics.inc_rollback("iris", "error_rate")
    metrics.inc_rollback("iris", "error_rate")
    parsed = samples(metrics.render().decode())
    assert series_of(parsed, "modelgate_rollbacks_total") == {
        frozenset({"model": "iris", "reason": "manual"}.items()): 1.0,
        frozenset({"model": "iris", "reason": "error_rate"}.items()): 2.0,
    }


async def test_metrics_endpoint_flushes_and_serves_the_text_format(
    metrics: MetricsRegistry,
) -> None:
    vm = metrics.bind_variant("iris", "1.0.0", IRIS)
    vm.record_request(ROUTE_WEIGHTED, 200, 120_000)
    app = Starlette(routes=[Route("/metrics", MetricsEndpoint(metrics), methods=["GET"])])
    async with asgi_client(app) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert int(response.headers["content-length"]) == len(response.content)
    parsed = samples(response.text)
    assert value(parsed, "modelgate_requests_total", **V, route="weighted", code="200") == 1


async def test_flusher_task_flushes_periodically_and_on_stop(metrics: MetricsRegistry) -> None:
    vm = metrics.bind_variant("iris", "1.0.0", IRIS)
    metrics.start(interval_s=0.01)
    metrics.start(interval_s=0.01)  # idempotent
    vm.record_request(ROUTE_WEIGHTED, 200, 1_000)

    def scraped() -> float | None:
        parsed = samples(generate_latest(metrics.exposition).decode())
        return value(parsed, "modelgate_requests_total", **V, route="weighted", code="200")

    await wait_until_async(scraped, 5.0, 0.01, done=lambda n: n == 1)  # nobody scrapes
    assert scraped() == 1
    vm.record_request(ROUTE_WEIGHTED, 200, 1_000)
    await metrics.stop()
    assert scraped() == 2


def test_a_class_called_unknown_keeps_its_own_series(metrics: MetricsRegistry) -> None:
    vm = metrics.bind_variant("m", "1", ("known", "unknown"))
    vm.record_predictions(3, np.array([1, 1, 5]))
    parsed = samples(metrics.render().decode())
    predictions = {
        dict(k)["class"]: v for k, v in series_of(parsed, "modelgate_predictions_total").items()
    }
    assert predictions == {"known": 0, "unknown": 2, "_unknown": 1}


async def test_the_module_endpoint_serves_the_process_registry() -> None:
    from gateway.monitoring.metrics.prometheus import get_metrics, metrics_endpoint

    metrics = get_metrics()
    assert get_metrics() is metrics and not metrics.multiprocess
    vm = metrics.bind_variant("endpoint-test", "1.0.0", IRIS)
    try:
        vm.record_request(ROUTE_URL, 200, 5_000)
        app = Starlette(routes=[Route("/metrics", metrics_endpoint, methods=["GET"])])
        async with asgi_client(app) as client:
            response = await client.get("/metrics")
        parsed = samples(response.text)
        labels = {"model": "endpoint-test", "version": "1.0.0", "route": "url", "code": "200"}
        assert value(parsed, "modelgate_requests_total", **labels) == 1
    finally:
        metrics.unbind_variant("endpoint-test", "1.0.0")


def test_bulk_histogram_guard_rejects_unknown_internals(metrics: MetricsRegistry) -> None:
    from gateway.monitoring.metrics.slots import check_bulk_histogram

    counter = metrics.families.low_confidence.labels("m", "1")
    with pytest.raises(RuntimeError, match="histogram buckets"):
        check_bulk_histogram(counter, 8)  # type: ignore[arg-type]
    histogram = metrics.families.batch_size.labels("m", "1")
    with pytest.raises(RuntimeError, match="histogram buckets"):
        check_bulk_histogram(histogram, 3)  # wrong bucket count
    check_bulk_histogram(histogram, 10)  # 9 bounds + Inf
