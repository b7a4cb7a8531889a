"""The Prometheus-backed stats source: interval deltas of the real metric families."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.monitoring.metrics.prometheus import (
    ROUTE_SHADOW,
    ROUTE_STICKY,
    ROUTE_WEIGHTED,
    MetricsRegistry,
)
from gateway.rollout.checks import VariantIntervalStats
from gateway.rollout.metrics_source import MetricsStatsSource, bucket_quantile

MS = 1_000_000  # ns


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def serve(vm, n: int, *, code: int = 200, ms: float = 2.0, cls: int = 0, conf: float = 0.9):
    for _ in range(n):
        vm.record_request(ROUTE_WEIGHTED, code, int(ms * MS))
        if code == 200:
            vm.record_predictions(1, np.array([cls]), np.array([conf]))


async def test_interval_deltas_per_version() -> None:
    metrics = MetricsRegistry(None)
    champion = metrics.bind_variant("churn", "1.0.0", classes=["no", "yes"])
    canary = metrics.bind_variant("churn", "1.1.0", classes=["no", "yes"])
    clock = Clock()
    source = MetricsStatsSource(metrics, clock=clock)
    serve(canary, 50, ms=40.0)  # before the interval: must not count

    first = await source.interval_stats("churn", "1.1.0", since=1000.0)
    assert first == VariantIntervalStats()  # nothing to subtract from yet

    clock.now = 1010.0
    serve(champion, 300, ms=2.0, cls=0)
    serve(champion, 100, ms=2.0, cls=1, conf=0.55)
    serve(canary, 90, ms=2.0, cls=1)
    serve(canary, 10, code=503, ms=2.0)
    canary.record_request(ROUTE_SHADOW, 200, 2 * MS)  # shadow copies are not traffic
    canary.record_request(ROUTE_STICKY, 200, 2 * MS)
    canary.set_feature_psi("tenure", 0.31)
    canary.set_feature_psi("spend", 0.02)
    canary.set_live_accuracy(0.7)

    stats = await source.interval_stats("churn", "1.1.0", since=1005.0)
    assert stats.requests == 101 and stats.errors == 10
    assert stats.class_counts == {"yes": 90}
    assert stats.low_confidence_rate == 0.0
    assert stats.max_feature_psi == pytest.approx(0.31)
    assert stats.live_accuracy == pytest.approx(0.7) and stats.labelled == 0
    assert 1.0 < (stats.p99_latency_ms or 0) <= 2.5  # the 1-2.5 ms bucket, not the 40 ms rows

    base = await source.interval_stats("churn", "1.0.0", since=1005.0)
    assert base.requests == 400 and base.errors == 0
    assert base.class_counts == {"no": 300, "yes": 100}
    assert base.low_confidence_rate == pytest.approx(0.25)


async def test_labels_source_enables_the_accuracy_check() -> None:
    metrics = MetricsRegistry(None)
    metrics.bind_variant("churn", "1.0.0", classes=["no", "yes"])
    clock = Clock()

    async def labels(model: str, version: str, since: float) -> tuple[float | None, int]:
        return 0.8, 120

    source = MetricsStatsSource(metrics, clock=clock, labels=labels)
    stats = await source.interval_stats("churn", "1.0.0", since=900.0)
    assert (stats.live_accuracy, stats.labelled) == (0.8, 120)


def test_bucket_quantile_interpolates_like_promql() -> None:
    cumulative = {0.001: 50.0, 0.002: 90.0, 0.005: 100.0, float("inf"): 100.0}
    assert bucket_quantile(0.5, cumulative) == pytest.approx(0.001)
    assert bucket_quantile(0.7, cumulative) == pytest.approx(0.0015)
    assert bucket_quantile(0.99, cumulative) == pytest.approx(0.0047)
    assert bucket_quantile(0.99, {0.001: 0.0, float("inf"): 10.0}) == 0.001
    assert bucket_quantile(0.99, {0.001: 0.0, float("inf"): 0.0}) is None
