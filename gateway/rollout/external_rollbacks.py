"""Rollbacks made outside the server, counted in ``modelgate_rollbacks_total{reason="manual"}``.

``POST /admin/models/{name}/rollback`` counts its rollback in the worker that answers it,
and the rollout controller counts its canary rollbacks (``reason="canary_<check>"``, audit
action ``rollout_rollback``). ``modelgate rollback`` writes the registry directly with no
server involved: servers see the change through their generation watcher, and
``ExternalRollbacks``, run by every worker but acting only in the leader (one process per
home folder, so N workers do not count one rollback N times), counts it from the audit row
the CLI wrote.

A row counts when its action is ``rollback`` and its actor is not the admin API's
(``admin-api`` or ``admin-api:<X-Actor>``, counted already). The first look, at start or on
becoming leader, only sets the cursor: history is never counted, so a rollback made while no
process led (between two leaders) is missed rather than counted twice. The audit is read only
when the registry's generation moved.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.admin.http import API_ACTOR
from gateway.coordination.background import BackgroundTask, log_failure

if TYPE_CHECKING:
    from gateway.coordination.leadership import Leader
    from registry.sqlite.store import SqliteRegistry

logger = logging.getLogger("modelgate.lifecycle")

ROLLBACK_ACTION = "rollback"
# rollback rows read per look: more rollbacks than this between two looks (a second apart)
# would be undercounted
READ_LIMIT = 100


def counted_by_the_api(actor: str) -> bool:
    return actor == API_ACTOR or actor.startswith(API_ACTOR + ":")


class ExternalRollbacks:
    """Counts, through ``count(model, reason)``, the rollbacks no serving worker counted."""

    def __init__(
        self,
        registry: SqliteRegistry,
        count: Callable[[str, str], None],
        *,
        leader: Leader | None = None,
        tick_s: float = 1.0,
    ) -> None:
        if tick_s <= 0:
            raise ValueError("tick_s must be > 0")
        self.registry = registry
        self.count = count
        self.leader = leader
        self.tick_s = tick_s
        self._cursor: int | None = None  # newest rollback row seen; None: not looked yet
        self._generation: int | None = None
        self._task = BackgroundTask(self._run)

    async def tick(self) -> int:
        """One look at the audit log; how many rollbacks it counted."""
        if self.leader is not None and not self.leader.is_leader:
            self._cursor = self._generation = None  # a new leadership starts from "now"
            return 0
        generation = await self.registry.generation()
        if generation == self._generation:
            return 0
        rows = await self.registry.audit(action=ROLLBACK_ACTION, limit=READ_LIMIT)
        counted = 0
        if self._cursor is not None:
            for row in rows:  # newest first
                if row.id <= self._cursor:
                    break
                if row.model is not None and not counted_by_the_api(row.actor):
                    self.count(row.model, "manual")
                    counted += 1
        self._cursor = max(rows[0].id if rows else 0, self._cursor or 0)
        # a row committed after the generation was read is seen again next time, and
        # skipped by the cursor: nothing is counted twice
        self._generation = generation
        return counted

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log_failure(logger, "counting rollbacks from the audit log failed")
            await asyncio.sleep(self.tick_s)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
