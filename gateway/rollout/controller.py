"""Automated canary rollouts: the persisted state machine and the controller that drives it.

``Rollouts`` (``rollout.store``) reads and changes rollouts through the registry; the admin
API, the CLI and the controller all use it, each from its own process, under a
cross-process mutex.

``RolloutController`` runs in exactly one process (the elected ``Leader``). Every
``tick_s`` it looks at each model's rollout and, for a running one, analyses the interval
since ``analysis_started_at`` with ``gateway.rollout.checks``:

* a check FAILS (with enough data)         -> failed analysis, counted at once (before the
                                              interval's end the checks hold out for strong
                                              evidence: ``run_checks(final=False)``);
* all checks pass and the interval is over -> next step (or promotion after the last);
* some check lacks data:
    - while the interval runs              -> nothing, keep collecting;
    - once the interval is over            -> failed analysis (``insufficient_data``):
      a canary that cannot be shown to be safe is neither promoted nor left waiting forever.

After a failed analysis the interval restarts (fresh data for the next verdict). Failures
add up over the whole rollout; at ``max_failed_checks`` the controller rolls back at once
(all traffic to the champion, one ``set_deployment``) and counts
``modelgate_rollbacks_total{reason="canary_<check>"}``. At a 100 % step the champion serves
nothing, so its side of the comparison is the baseline kept from the previous step.

After a tick that changed something, ``on_change`` (the server's publisher refresh) makes
the leader's own worker serve the new weights at once; the other workers follow at their
next registry poll.

Every transition is audited with actor ``rollout-controller``: ``rollout_step``,
``rollout_rollback`` (traffic rows), ``stage``/``traffic`` rows of the promotion,
``rollout_analysis`` for a failed analysis, ``rollout_abort``; the state itself is
written with ``put_state`` (its own ``state`` audit rows).

Restart / takeover: a controller that finds a running rollout it has not seen (a new leader,
a restarted server) adopts it: it re-applies the persisted step's weights if the
deployment differs (a process died between two writes) and restarts the step's analysis
interval at the adoption time, because the monitoring windows the analysis reads live in
the serving processes' memory and did not survive. Step index and failure count survive.
While a rollout runs it owns the model's routes: other shadows, sticky and challenger
settings are kept, a shadow of the champion or candidate is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from gateway.coordination.background import BackgroundTask, log_failure
from gateway.coordination.leadership import Leader
from gateway.rollout.checks import (
    FAIL,
    PASS,
    CheckResult,
    VariantIntervalStats,
    run_checks,
    summarize,
    verdict,
)
from gateway.rollout.state import RolloutState
from gateway.rollout.store import ACTOR, NoRollout, Rollouts
from registry.errors import RegistryError
from registry.models import Stage

__all__ = [
    "ACTOR",
    "NoRollout",
    "RolloutController",
    "Rollouts",
    "VariantStatsSource",
]

logger = logging.getLogger("modelgate.rollout")


class VariantStatsSource(Protocol):
    """What the controller needs from monitoring: one version's numbers since ``since``
    (``time.time()`` seconds), aggregated over every worker that serves it."""

    async def interval_stats(
        self, model: str, version: str, since: float
    ) -> VariantIntervalStats: ...


def analysis_entry(
    state: RolloutState,
    now: float,
    since: float,
    outcome: str,
    results: list[CheckResult],
    champion: VariantIntervalStats,
    canary: VariantIntervalStats,
) -> dict[str, Any]:
    return {
        "at": now,
        "step": state.step + 1,
        "canary_weight": state.weight,
        "interval_s": now - since,
        "verdict": outcome,
        "requests": {"champion": champion.requests, "canary": canary.requests},
        "checks": [r.to_dict() for r in results],
    }


def failure_label(outcome: str, results: list[CheckResult]) -> str:
    failed = [r.name for r in results if r.status == FAIL]
    if outcome == FAIL and failed:
        return f"canary_{failed[0]}"
    return "canary_insufficient_data"


class RolloutController:
    """Drives every running rollout; only acts while ``leader`` (if given) is the leader."""

    def __init__(
        self,
        rollouts: Rollouts,
        stats: VariantStatsSource,
        *,
        leader: Leader | None = None,
        tick_s: float = 1.0,
        on_change: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        """``on_change`` runs after a tick that changed a rollout (the server refreshes its
        routing snapshot at once instead of at its next registry poll)."""
        if tick_s <= 0:
            raise ValueError("tick_s must be > 0")
        self.rollouts = rollouts
        self.registry = rollouts.registry
        self.stats = stats
        self.leader = leader
        self.tick_s = tick_s
        self.on_change = on_change
        # model -> (rollout id, adoption time): rollouts this controller has taken over
        self._adopted: dict[str, tuple[str, float]] = {}
        # models whose rollout needs ticks (running, or left half-applied)
        self._live: set[str] = set()
        # the generation at which the last tick found nothing to drive: until the registry
        # changes, a tick has nothing to read (a rollout is started by a registry write)
        self._idle_generation: int | None = None
        self._task = BackgroundTask(self.run)

    async def tick(self) -> None:
        """One pass over every model; a failure on one model is logged, never raised."""
        try:
            generation = await self.registry.generation()
            if generation == self._idle_generation:
                return
            models = [m.name for m in await self.registry.list_models()]
        except Exception:
            log_failure(logger, "rollout controller cannot list models")
            return
        changed = False
        failed = False
        for model in models:
            try:
                changed = await self.tick_model(model) or changed
            except Exception:
                failed = True
                log_failure(logger, "rollout controller failed on model %s", model)
        self._live &= set(models)
        idle = not (changed or failed or self._live)
        self._idle_generation = generation if idle else None
        if changed and self.on_change is not None:
            try:
                await self.on_change()
            except Exception:
                log_failure(logger, "refreshing after a rollout change failed")

    async def tick_model(self, model: str) -> bool:
        """One decision for ``model``; True when it may have changed the registry."""
        state = await self.rollouts.load(model)
        if state is None or (not state.running and state.applied):
            self._adopted.pop(model, None)
            self._live.discard(model)
            return False
        self._live.add(model)
        if not state.applied:  # a process died between the intent and the change
            async with self.rollouts.mutex():
                fresh = await self.rollouts.load(model)
                if fresh is None or fresh.revision != state.revision:
                    return False
                await self.rollouts.apply_terminal(fresh)
            return True
        now = self.rollouts.clock()
        adopted = self._adopted.get(model)
        if adopted is None or adopted[0] != state.id:
            return await self._adopt(state, now)
        problem = await self._registry_problem(state)
        if problem is not None:
            async with self.rollouts.mutex():
                fresh = await self.rollouts.load(model)
                if fresh is None or fresh.revision != state.revision:
                    return False
                await self.rollouts.abort(fresh, problem)
            return True
        return await self._analyse(state, now, max(state.analysis_started_at, adopted[1]))

    async def _adopt(self, state: RolloutState, now: float) -> bool:
        async with self.rollouts.mutex():
            fresh = await self.rollouts.load(state.model)
            if fresh is None or fresh.revision != state.revision:
                return False
            try:
                await self.rollouts.reconcile(fresh)
            except RegistryError as exc:
                await self.rollouts.abort(fresh, f"cannot re-apply the step's weights: {exc}")
                return True
        self._adopted[state.model] = (state.id, now)
        logger.info("rollout %s of %s at step %d adopted", state.id, state.model, state.step + 1)
        return True

    async def _registry_problem(self, state: RolloutState) -> str | None:
        spec = state.spec
        production = (await self.registry.get_model(state.model)).production_version
        if production != spec.champion:
            return (
                f"production of {state.model!r} is now {production or 'none'}, not the "
                f"rollout's champion {spec.champion}"
            )
        candidate = await self.registry.get_version(state.model, spec.candidate)
        if candidate.stage in (Stage.ARCHIVED, Stage.PRODUCTION):
            return f"candidate {spec.candidate} was moved to {candidate.stage.value} meanwhile"
        return None

    async def _analyse(self, state: RolloutState, now: float, since: float) -> bool:
        spec = state.spec
        canary = await self.stats.interval_stats(state.model, spec.candidate, since)
        baseline = None
        if state.weight >= 100 and state.baseline is not None:
            champion = VariantIntervalStats.from_dict(state.baseline)
        else:
            champion = await self.stats.interval_stats(state.model, spec.champion, since)
            baseline = champion.to_dict()
        expired = now - since >= spec.interval_s
        # before the interval's end only strong evidence fails (see gateway.rollout.checks)
        results = run_checks(champion, canary, spec.thresholds, spec.min_requests, final=expired)
        outcome = verdict(results)
        if outcome != FAIL and not expired:
            return False  # keep collecting
        entry = analysis_entry(state, now, since, outcome, results, champion, canary)
        summary = summarize(results)
        async with self.rollouts.mutex():
            fresh = await self.rollouts.load(state.model)
            if fresh is None or fresh.revision != state.revision:
                return False  # changed meanwhile (cancelled...): decide again next tick
            if outcome == PASS:
                kept = baseline or state.baseline
                await self.rollouts.pass_step(fresh, now, entry, kept, summary)
            else:  # FAIL, or INSUFFICIENT once the interval is over
                label = failure_label(outcome, results)
                await self.rollouts.fail_analysis(fresh, now, entry, label, summary)
        return True

    async def run(self) -> None:
        while True:
            if self.leader is None or self.leader.is_leader:
                await self.tick()
            await asyncio.sleep(self.tick_s)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
