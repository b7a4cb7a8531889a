"""Rollout state in the registry: start, cancel, and the controller's transitions.

The admin API, the CLI and the controller each use ``Rollouts`` from their own process.
Every read-decide-write runs under a cross-process ``FileMutex`` (``<home>/rollout.lock``)
and compares the state's ``revision`` with what the decision was based on, so an operator's
cancel and the controller's step never overwrite each other. See
``gateway.rollout.controller`` for the state machine and ``rollout.state`` for its shape.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.changes.plan import refuse_during_experiment
from gateway.coordination.leader import FileMutex
from gateway.errors import Conflict, GatewayError
from gateway.experiments.keys import current_key
from gateway.rollout.metrics import NoRolloutMetrics, RolloutMetrics
from gateway.rollout.state import (
    ABORTED,
    CANCELLED,
    PROMOTED,
    ROLLED_BACK,
    RolloutState,
    parse_spec,
    routes_for,
    state_key,
    traffic_of,
    with_routes,
)
from registry.base import RegistryStore
from registry.errors import RegistryError
from registry.models import Stage

logger = logging.getLogger("modelgate.rollout")

ACTOR = "rollout-controller"
MUTEX_FILE = "rollout.lock"


class NoRollout(GatewayError):
    status = 404
    reason = "no_rollout"


def _same_weights(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], abs_tol=1e-6) for k in a)


def _pct(weight: float) -> str:
    return f"{weight:g} %"


def parse_rollout(model: str, raw: Any) -> RolloutState | None:
    """The stored rollout state of ``model`` (None: none, or unreadable)."""
    if raw is None:
        return None
    try:
        return RolloutState.from_dict(raw)
    except (KeyError, TypeError, ValueError) as exc:
        # written by hand or by an incompatible release: treated as no rollout
        logger.warning("ignoring unreadable rollout state of %s: %r", model, exc)
        return None


class Rollouts:
    """Rollout state in the registry: start, cancel, and the controller's transitions."""

    def __init__(
        self,
        registry: RegistryStore,
        home: str | os.PathLike[str],
        *,
        metrics: RolloutMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.mutex_path = Path(home) / MUTEX_FILE
        self.metrics: RolloutMetrics = metrics or NoRolloutMetrics()
        self.clock = clock

    def mutex(self) -> FileMutex:
        return FileMutex(self.mutex_path)

    async def load(self, model: str) -> RolloutState | None:
        return parse_rollout(model, await self.registry.get_state(state_key(model)))

    async def get(self, model: str) -> RolloutState:
        await self.registry.get_model(model)  # NotFound (404) for an unknown model
        state = await self.load(model)
        if state is None:
            raise NoRollout(f"model {model!r} has no rollout")
        return state

    async def save(self, state: RolloutState, reason: str, actor: str = ACTOR) -> RolloutState:
        await self.registry.put_state(
            state_key(state.model), state.to_dict(), actor=actor, reason=reason
        )
        return state

    # --- operator actions ----------------------------------------------------------
    async def start(self, model: str, payload: Any, *, actor: str) -> RolloutState:
        info = await self.registry.get_model(model)
        if info.production_version is None:
            raise Conflict(
                f"model {model!r} has no production version: a rollout compares a candidate "
                "with production"
            )
        spec = parse_spec(payload, champion=info.production_version)
        candidate = await self.registry.get_version(model, spec.candidate)  # 404 if unknown
        spec = dataclasses.replace(spec, candidate=candidate.version)
        if candidate.stage == Stage.ARCHIVED:
            raise Conflict(
                f"version {candidate.version} of {model!r} is archived; move it to staging first"
            )
        if candidate.stage == Stage.PRODUCTION:
            raise Conflict(f"version {candidate.version} of {model!r} is already production")
        async with self.mutex():
            current = await self.load(model)
            if current is not None and current.running:
                raise Conflict(
                    f"a rollout of {model!r} to {current.spec.candidate} is already running "
                    f"(id {current.id}); cancel it first"
                )
            if current is not None and not current.applied:
                raise Conflict(
                    f"the last rollout of {model!r} ({current.status}) is still being applied; "
                    "try again shortly"
                )
            key = current_key(model)
            refuse_during_experiment(model, {key: await self.registry.get_state(key)})
            if (await self.registry.get_model(model)).production_version != spec.champion:
                raise Conflict(f"production of {model!r} changed meanwhile; try again")
            now = self.clock()
            state = RolloutState.new(model, spec, now, actor)
            reason = (
                f"rollout {state.id} of {spec.candidate} started by {actor}: step 1/"
                f"{len(spec.steps)}, {_pct(state.weight)} to {spec.candidate}"
            )
            await self.save(state, reason, actor)
            deployment = await self.registry.get_deployment(model)
            try:
                await self.registry.set_deployment(
                    with_routes(deployment, routes_for(spec, state.weight)),
                    actor=actor,
                    action="rollout_start",
                    reason=reason,
                )
            except RegistryError as exc:
                await self.save(
                    state.evolve(now, status=ABORTED, reason=f"traffic refused: {exc}"),
                    f"rollout {state.id} aborted: {exc}",
                    actor,
                )
                raise
        self.metrics.set_step(model, 1)
        return state

    async def cancel(self, model: str, *, actor: str, reason: str = "") -> RolloutState:
        await self.registry.get_model(model)
        async with self.mutex():
            state = await self.load(model)
            if state is None:
                raise NoRollout(f"model {model!r} has no rollout")
            if not state.running:
                raise Conflict(f"the rollout of {model!r} is already {state.status}")
            why = f"cancelled by {actor}" + (f": {reason}" if reason else "")
            state = state.evolve(self.clock(), status=CANCELLED, applied=False, reason=why)
            await self.save(state, f"rollout {state.id} {why}", actor)
            return await self.apply_terminal(state, actor)

    # --- transitions (callers hold the mutex) ----------------------------------------
    async def apply_terminal(self, state: RolloutState, actor: str = ACTOR) -> RolloutState:
        """Make the traffic / stage change a terminal state asks for, then mark it applied."""
        spec, model = state.spec, state.model
        try:
            production = (await self.registry.get_model(model)).production_version
            if state.status in (ROLLED_BACK, CANCELLED) and production != spec.champion:
                raise RegistryError(
                    f"production is now {production or 'none'}, not the champion "
                    f"{spec.champion}: traffic left alone"
                )
            if state.status in (ROLLED_BACK, CANCELLED):
                deployment = await self.registry.get_deployment(model)
                await self.registry.set_deployment(
                    with_routes(deployment, {spec.champion: 100.0}),
                    actor=actor,
                    action="rollout_rollback" if state.status == ROLLED_BACK else "rollout_cancel",
                    reason=f"rollout {state.id}: {state.reason}; 100 % to {spec.champion}",
                )
            elif state.status == PROMOTED:
                version = await self.registry.get_version(model, spec.candidate)
                if version.stage != Stage.PRODUCTION:
                    await self.registry.set_stage(
                        model,
                        spec.candidate,
                        Stage.PRODUCTION,
                        actor=actor,
                        reason=f"rollout {state.id}: {state.reason}",
                    )
            done = state.evolve(self.clock(), applied=True)
        except RegistryError as exc:
            done = state.evolve(
                self.clock(),
                status=ABORTED,
                applied=True,
                reason=f"{state.reason}; the registry refused the change: {exc}",
            )
        self.metrics.set_step(model, 0)
        return await self.save(done, f"rollout {done.id} {done.status}: {done.reason}", actor)

    async def abort(self, state: RolloutState, reason: str) -> RolloutState:
        done = state.evolve(self.clock(), status=ABORTED, applied=True, reason=reason)
        await self.save(done, f"rollout {state.id} aborted: {reason}")
        await self.registry.append_audit(
            "rollout_abort",
            actor=ACTOR,
            model=state.model,
            version=state.spec.candidate,
            reason=f"rollout {state.id} aborted: {reason}",
        )
        self.metrics.set_step(state.model, 0)
        return done

    async def reconcile(self, state: RolloutState) -> None:
        """Re-apply the running step's weights if the deployment differs."""
        deployment = await self.registry.get_deployment(state.model)
        want = routes_for(state.spec, state.weight)
        if not _same_weights(traffic_of(deployment), want):
            await self.registry.set_deployment(
                with_routes(deployment, want),
                actor=ACTOR,
                action="rollout_step",
                reason=f"rollout {state.id} resumed (pid {os.getpid()}): re-applying step "
                f"{state.step + 1}/{len(state.spec.steps)}, {_pct(state.weight)} to "
                f"{state.spec.candidate}",
            )
        self.metrics.set_step(state.model, state.step + 1)

    async def fail_analysis(
        self, state: RolloutState, now: float, entry: dict[str, Any], label: str, summary: str
    ) -> RolloutState:
        failures = state.failures + 1
        limit = state.spec.max_failed_checks
        why = f"canary analysis failed ({failures}/{limit}) at step {state.step + 1}: {summary}"
        if failures >= limit:
            done = state.with_analysis(
                now, entry, failures=failures, status=ROLLED_BACK, applied=False, reason=why
            )
            await self.save(done, f"rollout {state.id} rolling back: {why}")
            done = await self.apply_terminal(done)
            if done.status == ROLLED_BACK:
                self.metrics.inc_rollback(state.model, label)
            return done
        nxt = state.with_analysis(now, entry, failures=failures, analysis_started_at=now)
        await self.save(nxt, f"rollout {state.id}: {why}")
        await self.registry.append_audit(
            "rollout_analysis",
            actor=ACTOR,
            model=state.model,
            version=state.spec.candidate,
            after=entry,
            reason=f"rollout {state.id}: {why}",
        )
        return nxt

    async def pass_step(
        self,
        state: RolloutState,
        now: float,
        entry: dict[str, Any],
        baseline: dict[str, Any] | None,
        summary: str,
    ) -> RolloutState:
        spec = state.spec
        if state.step + 1 >= len(spec.steps):
            why = f"all {len(spec.steps)} steps passed; last analysis: {summary}"
            done = state.with_analysis(now, entry, status=PROMOTED, applied=False, reason=why)
            await self.save(done, f"rollout {state.id} promoting {spec.candidate}: {why}")
            return await self.apply_terminal(done)
        nxt = state.with_analysis(
            now,
            entry,
            step=state.step + 1,
            step_started_at=now,
            analysis_started_at=now,
            baseline=baseline,
        )
        why = (
            f"rollout {state.id} step {nxt.step + 1}/{len(spec.steps)}: {_pct(nxt.weight)} to "
            f"{spec.candidate} (analysis passed: {summary})"
        )
        await self.save(nxt, why)
        deployment = await self.registry.get_deployment(state.model)
        try:
            await self.registry.set_deployment(
                with_routes(deployment, routes_for(spec, nxt.weight)),
                actor=ACTOR,
                action="rollout_step",
                reason=why,
            )
        except RegistryError as exc:
            return await self.abort(nxt, f"the registry refused step {nxt.step + 1}: {exc}")
        self.metrics.set_step(state.model, nxt.step + 1)
        return nxt
