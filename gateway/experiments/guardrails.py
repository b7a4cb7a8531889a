"""The gateway's own guardrails per variant, from the Prometheus totals of every worker.

The same series the rollout's ``MetricsStatsSource`` reads (``rollout.metrics_source.
read_totals``: the multiprocess files of every worker merged): requests and non-2xx answers
of client routes, the request-duration histogram, low-confidence and confidence counts.
Counters are cumulative, so the first reading of an experiment is its base and later looks
see the difference: the guardrails cover the time since the controller began watching
(after a restart or a new leader, since then).
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.dataplane.snapshot import SnapshotHolder
from gateway.experiments.analysis import GatewayReading
from gateway.monitoring.metrics.prometheus import MetricsRegistry
from gateway.rollout.metrics_source import Key, Totals, bucket_quantile, read_merged_totals
from gateway.rollout.serving_source import flush_model_recorders


def reading_of(current: Totals, base: Totals | None) -> GatewayReading:
    b = base or Totals()
    buckets = {le: n - b.buckets.get(le, 0.0) for le, n in current.buckets.items()}
    p95 = bucket_quantile(0.95, buckets)
    return GatewayReading(
        requests=int(round(current.requests - b.requests)),
        errors=int(round(current.errors - b.errors)),
        p95_latency_ms=None if p95 is None else p95 * 1000.0,
        low_confidence=int(round(current.low_confidence - b.low_confidence)),
        confidence_count=int(round(current.confidence_count - b.confidence_count)),
    )


class GatewayGuardrails:
    """Per-variant readings since an experiment's first look, over every worker."""

    def __init__(self, metrics: MetricsRegistry, holder: SnapshotHolder | None = None) -> None:
        self.metrics = metrics
        self.holder = holder
        self._base: dict[str, dict[Key, Totals]] = {}  # experiment id -> its first totals

    async def readings(
        self, experiment_id: str, model: str, versions: Sequence[str]
    ) -> dict[str, GatewayReading]:
        if self.holder is not None:
            flush_model_recorders(self.holder, model)
        totals = await read_merged_totals(self.metrics)
        base = self._base.setdefault(experiment_id, totals)
        return {
            v: reading_of(totals.get((model, v), Totals()), base.get((model, v))) for v in versions
        }

    def forget(self, experiment_id: str) -> None:
        self._base.pop(experiment_id, None)
