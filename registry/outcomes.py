"""Outcome rows, their aggregation scopes and the sufficient statistics the registry keeps.

An outcome is one number a client reports for one unit (a request id or a routing key) and
one metric. The registry keeps no per-outcome rows beyond the idempotency keys: each
(scope, model, version, metric) holds ``(count, sum, sum of squares)``, which add up across
workers and nodes. A scope is an experiment id, or ``baseline:<UTC day>`` for outcomes of
requests served while no experiment ran (``baseline_scope``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

BASELINE_PREFIX = "baseline:"
DAY_S = 86_400.0

# (count, sum, sum of squares)
MomentsRow = tuple[int, float, float]


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """One outcome to record: ``unit`` is ``id:<request id>`` or ``key:...`` (the
    idempotency key with the metric), ``scope`` where it is aggregated, ``version`` the
    variant it is joined to."""

    unit: str
    metric: str
    scope: str
    version: str
    value: float


def baseline_scope(at: float) -> str:
    """The baseline scope of the UTC day of unix time ``at``."""
    return BASELINE_PREFIX + datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


def baseline_range(days: int, now: float) -> tuple[str, str]:
    """First and last baseline scope of the ``days`` UTC days ending with ``now``'s day."""
    return baseline_scope(now - (days - 1) * DAY_S), baseline_scope(now)


def check_rows(rows: Iterable[OutcomeRow]) -> list[OutcomeRow]:
    """The rows as a list; ValueError for a value that is not a finite number."""
    out = list(rows)
    for row in out:
        if not math.isfinite(row.value):
            raise ValueError(f"outcome {row.metric} of {row.unit}: not a finite number")
    return out
