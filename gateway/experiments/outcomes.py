"""Where the feedback endpoint's outcomes go: the registry, aggregated per scope and variant.

``RegistryOutcomeSink`` is the data plane's ``OutcomeSink``: it turns joined outcomes into
registry rows (scope = the experiment id, or ``baseline:<UTC day the request was
served>``), records them in one transaction and counts them in Prometheus
(``modelgate_experiment_outcomes_total`` accepted, ``modelgate_outcomes_dropped_total``
dropped). ``prune_keys`` forgets the idempotency keys older than the late window.
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.dataplane.feedback.outcomes import DUPLICATE, Outcome, OutcomesUnavailable
from gateway.monitoring.metrics.families import MetricFamilies
from registry.errors import RegistryError
from registry.outcomes import OutcomeRow, baseline_scope

logger = logging.getLogger("modelgate.experiments")


class OutcomeStore(Protocol):
    async def record_outcomes(
        self, model: str, rows: Sequence[OutcomeRow], *, received_at: float | None = None
    ) -> tuple[list[OutcomeRow], int]: ...

    async def prune_outcome_keys(self, older_than: float) -> int: ...


def outcome_row(outcome: Outcome) -> OutcomeRow:
    scope = outcome.experiment or baseline_scope(outcome.served_at)
    return OutcomeRow(outcome.unit, outcome.metric, scope, outcome.version, outcome.value)


class RegistryOutcomeSink:
    """``OutcomeSink`` over the registry (``registry`` is read at call time: the lifespan
    opens it after the routes are built)."""

    def __init__(
        self,
        registry: Callable[[], OutcomeStore | None],
        families: MetricFamilies | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._families = families
        self._clock = clock

    async def record(self, model: str, outcomes: Sequence[Outcome]) -> tuple[int, int]:
        store = self._registry()
        if store is None:
            raise OutcomesUnavailable("outcomes not recorded: the registry is not open yet")
        rows = [outcome_row(o) for o in outcomes]
        try:
            accepted, duplicates = await store.record_outcomes(
                model, rows, received_at=self._clock()
            )
        except RegistryError as exc:
            raise OutcomesUnavailable(f"outcomes not recorded: {exc}") from None
        if self._families is not None:
            family = self._families.experiment_outcomes
            for (version, metric), n in Tally((r.version, r.metric) for r in accepted).items():
                family.labels(model, version, metric).inc(n)
        if duplicates:
            self.dropped(model, DUPLICATE, duplicates)
        return len(accepted), duplicates

    def dropped(self, model: str, reason: str, n: int) -> None:
        if self._families is not None:
            self._families.outcomes_dropped.labels(model, reason).inc(n)


async def prune_keys(store: OutcomeStore, window_s: float, now: float | None = None) -> int:
    """Forget the idempotency keys older than the late window (an outcome that old is
    expired anyway, so it can never be counted twice)."""
    at = time.time() if now is None else now
    return await store.prune_outcome_keys(at - window_s)
