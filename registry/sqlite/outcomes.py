"""SqliteRegistry methods for experiment outcomes and assignment counts (both backends).

The transaction bodies are written against ``Txn`` with ``?`` placeholders, so the
PostgreSQL store runs them unchanged. They are data, not changes: no audit row, no
generation bump (a feedback POST must not make every worker refresh its snapshot), and on
PostgreSQL no registry write lock (``_data_write``): the primary keys and
``INSERT ... ON CONFLICT`` make concurrent writers from every node safe, and rows are
written in key order so two transactions never wait on each other in a cycle.

Idempotency: ``add_outcomes`` inserts each (model, unit, metric) key with
``ON CONFLICT DO NOTHING RETURNING`` and adds to the moments only what was inserted, in the
same transaction, so an outcome sent twice (or by two workers at once) counts once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from registry.errors import RegistryError
from registry.outcomes import MomentsRow, OutcomeRow, baseline_range, check_rows
from registry.sqlite import ops
from registry.sqlite.txn import Txn

T = TypeVar("T")
Body = Callable[[Txn], Coroutine[Any, Any, T]]

# rows per multi-row statement (4-7 parameters each; SQLite allows 32,766, PostgreSQL 65,535)
CHUNK = 500


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


async def insert_outcomes(
    txn: Txn, model: str, rows: Sequence[OutcomeRow], received_at: float
) -> tuple[list[OutcomeRow], int]:
    """(the accepted rows, how many were duplicates); see the module docstring."""
    unique: dict[tuple[str, str], OutcomeRow] = {}
    for row in rows:
        unique.setdefault((row.unit, row.metric), row)
    ordered = [unique[key] for key in sorted(unique)]
    inserted: set[tuple[str, str]] = set()
    for part in _chunks(ordered):
        marks = ", ".join("(?, ?, ?, ?)" for _ in part)
        params = tuple(v for r in part for v in (model, r.unit, r.metric, received_at))
        found = await txn.all(
            f"INSERT INTO outcome_keys (model, unit, metric, received_at) VALUES {marks} "
            "ON CONFLICT DO NOTHING RETURNING unit, metric",
            params,
        )
        inserted.update((str(r[0]), str(r[1])) for r in found)
    sums: dict[tuple[str, str, str], list[float]] = {}
    for key in sorted(inserted):
        row = unique[key]
        acc = sums.setdefault((row.scope, row.version, row.metric), [0, 0.0, 0.0])
        acc[0] += 1
        acc[1] += row.value
        acc[2] += row.value * row.value
    moments = sorted(sums.items())
    for part in _chunks(moments):
        marks = ", ".join("(?, ?, ?, ?, ?, ?, ?)" for _ in part)
        params = tuple(
            v
            for (scope, version, metric), (n, total, total_sq) in part
            for v in (scope, model, version, metric, int(n), total, total_sq)
        )
        await txn.run(
            "INSERT INTO outcome_moments (scope, model, version, metric, count, total, "
            f"total_sq) VALUES {marks} ON CONFLICT (scope, model, version, metric) DO UPDATE "
            "SET count = outcome_moments.count + excluded.count, "
            "total = outcome_moments.total + excluded.total, "
            "total_sq = outcome_moments.total_sq + excluded.total_sq",
            params,
        )
    return [unique[key] for key in sorted(inserted)], len(rows) - len(inserted)


async def add_assignment_counts(txn: Txn, experiment_id: str, counts: Mapping[str, int]) -> None:
    for version, n in sorted(counts.items()):
        await txn.run(
            "INSERT INTO experiment_assignments (experiment_id, version, count) VALUES (?, ?, ?) "
            "ON CONFLICT (experiment_id, version) DO UPDATE "
            "SET count = experiment_assignments.count + excluded.count",
            (experiment_id, version, int(n)),
        )


def _check_counts(counts: Mapping[str, int]) -> dict[str, int]:
    out = {}
    for version, n in counts.items():
        if not isinstance(version, str) or isinstance(n, bool) or not isinstance(n, int):
            raise RegistryError("assignment counts map version strings to integers")
        if n < 0:
            raise RegistryError(f"assignment count of {version} is negative ({n})")
        if n:
            out[version] = n
    return out


class OutcomesMixin(ops.SqliteBase):
    async def _data_write(self, body: Body[T]) -> T:
        """``body`` as one write transaction that changes no serving state (SQLite: the
        direct connection, one round trip)."""
        return await self._direct.write(body)

    async def add_outcomes(
        self, model: str, rows: Sequence[OutcomeRow], *, received_at: float | None = None
    ) -> tuple[int, int]:
        """Record outcomes in one transaction: (accepted, duplicates). A (model, unit,
        metric) already recorded (or twice in ``rows``) is a duplicate and adds nothing."""
        accepted, duplicates = await self.record_outcomes(model, rows, received_at=received_at)
        return len(accepted), duplicates

    async def record_outcomes(
        self, model: str, rows: Sequence[OutcomeRow], *, received_at: float | None = None
    ) -> tuple[list[OutcomeRow], int]:
        """``add_outcomes`` that returns the accepted rows themselves (for counting them
        per version and metric)."""
        try:
            checked = check_rows(rows)
        except ValueError as exc:
            raise RegistryError(str(exc)) from None
        if not checked:
            return [], 0
        at = time.time() if received_at is None else received_at

        async def body(txn: Txn) -> tuple[list[OutcomeRow], int]:
            return await insert_outcomes(txn, model, checked, at)

        return await self._data_write(body)

    async def outcome_moments(self, scope: str, model: str) -> dict[str, dict[str, MomentsRow]]:
        """metric -> version -> (count, sum, sum of squares) of one scope."""
        async with self._read() as txn:
            rows = await txn.all(
                "SELECT metric, version, count, total, total_sq FROM outcome_moments "
                "WHERE scope = ? AND model = ? ORDER BY metric, version",
                (scope, model),
            )
        out: dict[str, dict[str, MomentsRow]] = {}
        for metric, version, n, total, total_sq in rows:
            out.setdefault(str(metric), {})[str(version)] = (int(n), float(total), float(total_sq))
        return out

    async def baseline_moments(
        self, model: str, version: str, metric: str, days: int, *, now: float | None = None
    ) -> MomentsRow:
        """(count, sum, sum of squares) of ``version``'s outcomes for ``metric`` from
        requests served outside experiments over the last ``days`` UTC days (today included)."""
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise RegistryError("baseline days must be a positive integer")
        first, last = baseline_range(days, time.time() if now is None else now)
        async with self._read() as txn:
            row = await txn.one(
                "SELECT COALESCE(SUM(count), 0), COALESCE(SUM(total), 0), "
                "COALESCE(SUM(total_sq), 0) FROM outcome_moments WHERE model = ? "
                "AND version = ? AND metric = ? AND scope >= ? AND scope <= ?",
                (model, version, metric, first, last),
            )
        assert row is not None  # an aggregate always returns one row
        return int(row[0]), float(row[1]), float(row[2])

    async def add_assignments(self, experiment_id: str, counts: Mapping[str, int]) -> None:
        """Add requests served per variant (one worker's deltas) in one transaction."""
        checked = _check_counts(counts)
        if not checked:
            return

        async def body(txn: Txn) -> None:
            await add_assignment_counts(txn, experiment_id, checked)

        await self._data_write(body)

    async def assignments(self, experiment_id: str) -> dict[str, int]:
        """Requests served per variant, summed over every worker and node."""
        async with self._read() as txn:
            rows = await txn.all(
                "SELECT version, count FROM experiment_assignments WHERE experiment_id = ? "
                "ORDER BY version",
                (experiment_id,),
            )
        return {str(version): int(n) for version, n in rows}

    async def prune_outcome_keys(self, older_than: float) -> int:
        """Forget idempotency keys received before unix time ``older_than``; how many."""

        async def body(txn: Txn) -> int:
            row = await txn.one(
                "SELECT count(*) FROM outcome_keys WHERE received_at < ?", (older_than,)
            )
            n = int(row[0]) if row else 0
            if n:
                await txn.run("DELETE FROM outcome_keys WHERE received_at < ?", (older_than,))
            return n

        return await self._data_write(body)
