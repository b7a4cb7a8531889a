"""Experiment outcomes in the registry, on SQLite and PostgreSQL (the ``registry`` fixture):
idempotent per (model, unit, metric), moments equal to numpy's, baseline days, assignment
counts, pruning, and writers in parallel."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pytest

from registry.backend import open_store
from registry.errors import RegistryError
from registry.home import HomePaths
from registry.outcomes import DAY_S, OutcomeRow, baseline_scope
from registry.sqlite.store import SqliteRegistry

NOW = 1_796_000_000.0  # 2026-12-01


def _rows(values: dict[str, list[float]], scope: str = "exp-1", metric: str = "revenue"):
    return [
        OutcomeRow(f"id:{version}-{i}", metric, scope, version, v)
        for version, vs in values.items()
        for i, v in enumerate(vs)
    ]


def _moments(values: list[float]) -> tuple[int, float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return len(arr), float(arr.sum()), float((arr * arr).sum())


def _close(found: tuple[int, float, float], expected: tuple[int, float, float]) -> None:
    assert found[0] == expected[0]
    assert math.isclose(found[1], expected[1], rel_tol=1e-12, abs_tol=1e-9)
    assert math.isclose(found[2], expected[2], rel_tol=1e-12, abs_tol=1e-9)


async def test_moments_per_variant_equal_numpy_and_duplicates_count_once(
    registry: SqliteRegistry,
) -> None:
    rng = np.random.default_rng(7)
    values = {
        "1.0.0": rng.gamma(2.0, 5.0, 700).tolist(),
        "2.0.0": rng.gamma(2.2, 5.0, 650).tolist(),
    }
    rows = _rows(values)
    assert await registry.add_outcomes("churn", rows, received_at=NOW) == (1350, 0)
    # the same keys again, with other values: nothing changes
    again = [OutcomeRow(r.unit, r.metric, r.scope, r.version, r.value + 1) for r in rows[:100]]
    assert await registry.add_outcomes("churn", again, received_at=NOW) == (0, 100)
    found = await registry.outcome_moments("exp-1", "churn")
    assert set(found) == {"revenue"}
    for version, vs in values.items():
        _close(found["revenue"][version], _moments(vs))


async def test_a_duplicate_inside_one_call_and_another_metric_of_the_same_id(
    registry: SqliteRegistry,
) -> None:
    rows = [
        OutcomeRow("id:r-1", "conversion", "exp-1", "1.0.0", 1.0),
        OutcomeRow("id:r-1", "conversion", "exp-1", "1.0.0", 1.0),
        OutcomeRow("id:r-1", "revenue", "exp-1", "1.0.0", 12.5),
    ]
    assert await registry.add_outcomes("churn", rows, received_at=NOW) == (2, 1)
    found = await registry.outcome_moments("exp-1", "churn")
    assert found == {
        "conversion": {"1.0.0": (1, 1.0, 1.0)},
        "revenue": {"1.0.0": (1, 12.5, 156.25)},
    }
    # the same unit in another model is another key
    assert await registry.add_outcomes("other", rows[:1], received_at=NOW) == (1, 0)
    assert await registry.outcome_moments("exp-1", "missing") == {}


async def test_a_value_that_is_not_finite_is_refused_and_nothing_is_written(
    registry: SqliteRegistry,
) -> None:
    rows = [
        OutcomeRow("id:r-1", "revenue", "exp-1", "1.0.0", 3.0),
        OutcomeRow("id:r-2", "revenue", "exp-1", "1.0.0", float("nan")),
    ]
    with pytest.raises(RegistryError, match="not a finite number"):
        await registry.add_outcomes("churn", rows, received_at=NOW)
    assert await registry.outcome_moments("exp-1", "churn") == {}
    assert await registry.add_outcomes("churn", rows[:1], received_at=NOW) == (1, 0)


async def test_outcomes_change_no_generation_and_write_no_audit(registry: SqliteRegistry) -> None:
    before = (await registry.generation(), len(await registry.audit(limit=10_000)))
    await registry.add_outcomes("churn", _rows({"1.0.0": [1.0, 2.0]}), received_at=NOW)
    await registry.add_assignments("exp-1", {"1.0.0": 3})
    await registry.prune_outcome_keys(NOW + 1)
    assert (await registry.generation(), len(await registry.audit(limit=10_000))) == before


async def test_baseline_sums_the_last_days_of_one_version(registry: SqliteRegistry) -> None:
    by_day: dict[int, list[float]] = {0: [1.0, 0.0, 1.0], 1: [0.0, 1.0], 3: [1.0, 1.0, 1.0, 0.0]}
    for ago, vs in by_day.items():
        scope = baseline_scope(NOW - ago * DAY_S)
        rows = [
            OutcomeRow(f"id:{ago}-{i}", "conversion", scope, "1.0.0", v) for i, v in enumerate(vs)
        ]
        rows.append(OutcomeRow(f"id:{ago}-x", "conversion", scope, "2.0.0", 1.0))
        await registry.add_outcomes("churn", rows, received_at=NOW)
    await registry.add_outcomes("churn", _rows({"1.0.0": [5.0]}, metric="conversion"))
    today = await registry.baseline_moments("churn", "1.0.0", "conversion", 1, now=NOW)
    assert today == _moments(by_day[0])
    two = await registry.baseline_moments("churn", "1.0.0", "conversion", 2, now=NOW)
    assert two == _moments(by_day[0] + by_day[1])
    week = await registry.baseline_moments("churn", "1.0.0", "conversion", 7, now=NOW)
    assert week == _moments(by_day[0] + by_day[1] + by_day[3])
    assert await registry.baseline_moments("churn", "1.0.0", "revenue", 7, now=NOW) == (0, 0.0, 0.0)
    with pytest.raises(RegistryError, match="positive integer"):
        await registry.baseline_moments("churn", "1.0.0", "conversion", 0)


async def test_assignments_add_up_and_refuse_bad_counts(registry: SqliteRegistry) -> None:
    await registry.add_assignments("exp-1", {"1.0.0": 10, "2.0.0": 7})
    await registry.add_assignments("exp-1", {"1.0.0": 5, "2.0.0": 0})
    await registry.add_assignments("exp-2", {"1.0.0": 1})
    assert await registry.assignments("exp-1") == {"1.0.0": 15, "2.0.0": 7}
    assert await registry.assignments("missing") == {}
    with pytest.raises(RegistryError, match="negative"):
        await registry.add_assignments("exp-1", {"1.0.0": 5, "2.0.0": -1})
    assert await registry.assignments("exp-1") == {"1.0.0": 15, "2.0.0": 7}


async def test_pruned_keys_are_those_older_than_the_window(registry: SqliteRegistry) -> None:
    old = [OutcomeRow("id:old", "conversion", "exp-1", "1.0.0", 1.0)]
    new = [OutcomeRow("id:new", "conversion", "exp-1", "1.0.0", 1.0)]
    await registry.add_outcomes("churn", old, received_at=NOW - 10 * DAY_S)
    await registry.add_outcomes("churn", new, received_at=NOW)
    assert await registry.prune_outcome_keys(NOW - 7 * DAY_S) == 1
    assert await registry.prune_outcome_keys(NOW - 7 * DAY_S) == 0
    # the moments stay; the pruned key could be recorded again, the kept one cannot
    assert await registry.add_outcomes("churn", new, received_at=NOW) == (0, 1)
    assert await registry.add_outcomes("churn", old, received_at=NOW) == (1, 0)
    assert (await registry.outcome_moments("exp-1", "churn"))["conversion"]["1.0.0"][0] == 3


async def test_writers_in_parallel_count_each_key_once(
    home: HomePaths, backend_url: str | None, tmp_path: Path
) -> None:
    """Two stores (two workers or nodes) record overlapping batches at the same time."""
    first = await open_store(home, backend_url)
    second = await open_store(HomePaths(tmp_path / "other") if backend_url else home, backend_url)
    try:
        values = [float(i % 13) for i in range(600)]
        rows = [
            OutcomeRow(f"id:r-{i}", "revenue", "exp-1", "1.0.0", v) for i, v in enumerate(values)
        ]
        halves = [rows[:400], rows[200:]]  # 200 keys in both
        results = await asyncio.gather(
            *(
                store.add_outcomes("churn", part, received_at=NOW)
                for store, part in ((first, halves[0]), (second, halves[1]))
                for _ in range(3)
            )
        )
        assert sum(r[0] for r in results) == 600
        assert sum(r[1] for r in results) == 3 * 800 - 600
        await asyncio.gather(
            *(s.add_assignments("exp-1", {"1.0.0": 1}) for s in (first, second) for _ in range(10))
        )
        found = await second.outcome_moments("exp-1", "churn")
        assert found["revenue"]["1.0.0"] == _moments(values)
        assert await first.assignments("exp-1") == {"1.0.0": 20}
    finally:
        await first.close()
        await second.close()
