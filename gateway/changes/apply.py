"""Apply admin changes: validate, commit, swap, verify, and undo a change that cannot load.

Order of one change (``AdminChanges._apply``), under the control-plane mutex that the
rollout controller also takes (``<home>/rollout.lock``), so an operator's change and a
canary step never interleave:

1. take the model's state from the registry view this worker serves, after catching the
   worker up with the registry (a stat when nothing changed); refuse while a canary
   rollout runs (409: cancel it first), then plan the change (``changes.plan``: every
   refusal happens here, nothing is written); a change that moves traffic is refused
   while an experiment owns the split (409 naming it), unless the experiment makes it;
2. commit: ONE registry transaction writes the deployment, the stage changes and the audit
   rows, and bumps the generation other workers poll -- only if the registry is still at
   the planned view's generation (otherwise plan again) -- and the view after it is read
   in the same thread round trip (``commit_and_view``);
3. ``publisher.refresh(view)``: loads and warms every version the new state needs before
   publishing the snapshot with one assignment; the call returns once THIS worker serves
   the change (the others follow within their poll interval);
4. verify that every version the change sends traffic to is loaded here. If one failed
   (corrupt artifact, unloadable graph), the publisher kept serving the previous routing;
   the previous deployment and stages are restored in a second transaction (audited as
   ``restore`` with the failure), published again, and the change is answered 409 with the
   failures, which ``/v2/repository/index`` also lists.

A version becomes production (rollback, switch, promotion) only once it is loaded in the
worker making the change, so those are pointer swaps; a challenger must be loaded too, or
be routed or shadowed by the same change.

Without a publisher (the CLI, which writes the registry directly and lets running servers
pick the change up through their generation watcher), steps 3-4 cannot run; instead every
version the change newly sends traffic to is loaded once as a trial before the commit, and
a failure refuses the change with nothing written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.changes.plan import (
    NotLoaded,
    Plan,
    Refused,
    plan_rollback,
    plan_stage,
    plan_switch,
    plan_traffic,
    refuse_during_experiment,
)
from gateway.coordination.leader import FileMutex
from gateway.errors import Conflict, GatewayError
from gateway.serving.model_state import (
    ModelState,
    read_model_snapshot,
    read_model_state,
    state_in,
    traffic_versions,
)
from gateway.settings import Settings
from registry.errors import RegistryError, StaleRead
from registry.models import RegistryView

if TYPE_CHECKING:
    from gateway.serving.publisher import Publisher
    from registry.sqlite.store import SqliteRegistry

logger = logging.getLogger("modelgate.admin")

Builder = Callable[[ModelState], Plan | None]
# plans made on a view that another process outdated before the commit: plan again
# (a registry written without pause by something else gets the last one unguarded)
STALE_ATTEMPTS = 3


def traffic_view(model: str, deployment: Any) -> dict[str, Any]:
    """GET /admin/models/{name}/traffic: the deployment, PUT-able back unchanged."""
    return {"model": model, **deployment.to_dict(), "updated_at": deployment.updated_at}


class AdminChanges:
    """Traffic, rollback, switch and stage changes for the admin API and the CLI."""

    def __init__(
        self,
        registry: SqliteRegistry,
        home: Path,
        *,
        actor: str,
        publisher: Publisher | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.registry = registry
        self.home = Path(home)
        self.actor = actor
        self.publisher = publisher
        self.settings = settings or Settings(home=self.home)

    # --- the four changes ----------------------------------------------------------
    async def traffic(self, model: str, payload: Any, reason: str = "") -> dict[str, Any]:
        return await self._apply(
            model, lambda ms: plan_traffic(ms, payload, reason, self._not_loaded(ms))
        )

    async def rollback(self, model: str, reason: str = "") -> dict[str, Any]:
        return await self._apply(model, lambda ms: plan_rollback(ms, reason, self._not_loaded(ms)))

    async def switch(
        self, model: str, version: str, *, reason: str = "", force: bool = False
    ) -> dict[str, Any]:
        return await self._apply(
            model, lambda ms: plan_switch(ms, version, reason, force, self._not_loaded(ms))
        )

    async def stage(
        self, model: str, version: str, stage: Any, *, reason: str = "", force: bool = False
    ) -> dict[str, Any]:
        return await self._apply(
            model,
            lambda ms: plan_stage(ms, version, stage, reason, force, self._not_loaded(ms)),
        )

    async def apply(
        self,
        model: str,
        build: Callable[[ModelState, NotLoaded], Plan | None],
        *,
        owner: str | None,
    ) -> dict[str, Any]:
        """A controller's change planned by ``build(state, not_loaded)`` (an experiment's
        start or end) through the same pipeline; ``owner``: the experiment allowed to
        change its own split."""
        return await self._apply(model, lambda ms: build(ms, self._not_loaded(ms)), owner)

    # --- the pipeline --------------------------------------------------------------
    async def _apply(self, model: str, build: Builder, owner: str | None = None) -> dict[str, Any]:
        # imported here, like the loader: numpy and prometheus_client would slow every CLI verb
        from gateway.rollout.store import MUTEX_FILE

        async with FileMutex(self.home / MUTEX_FILE):
            if self.publisher is None:
                return await self._apply_offline(model, build, owner)
            return await self._apply_serving(self.publisher, model, build, owner)

    async def _apply_offline(self, model: str, build: Builder, owner: str | None) -> dict[str, Any]:
        from gateway.experiments.keys import current_key

        ms = await read_model_state(self.registry, model)  # 404 first
        await self._refuse_during_rollout(model)
        key = current_key(model)
        plan = _owned(build, {key: await self.registry.get_state(key)}, owner)(ms)
        if plan is None:
            return await self._outcome(model, "unchanged", changed=False)
        await self._trial_load(ms, plan)
        await self.registry.commit(self._change(plan))
        return await self._outcome(model, plan.action, changed=True, gate=plan.gate)

    async def _apply_serving(
        self, publisher: Publisher, model: str, build: Builder, owner: str | None
    ) -> dict[str, Any]:
        """Plan on the view this worker serves (caught up with the registry first), commit
        only if the registry is still at that view's generation, and publish the view read
        right after the commit: one thread round trip, which on a saturated loop is what a
        change costs (each round trip waits for the loop's next turns)."""
        from gateway.serving.publisher import VIEW_STATE_PREFIXES

        # judge "loaded in this worker" on what was just committed elsewhere too (a load
        # on a sibling worker), not on this worker's last poll: a stat says if it moved
        await publisher.catch_up()
        view = publisher.view or await self._latest_view()
        for attempt in range(1, STALE_ATTEMPTS + 1):
            last = attempt == STALE_ATTEMPTS
            try:
                ms = state_in(view, model)  # 404 first
                _refuse_if_rolling_out(model, view.states)
                plan = _owned(build, view.states, owner)(ms)
            except (GatewayError, RegistryError):
                # a refusal stands only if the registry did not move since the view
                view, moved = await self._recheck(publisher, view)
                if last or not moved:
                    raise
                continue
            if plan is None:
                view, moved = await self._recheck(publisher, view)
                if last or not moved:
                    return describe_outcome(ms, view.generation, "unchanged", changed=False)
                continue
            try:
                # the last attempt, on a view just read, commits as planned (the mutex keeps
                # other control-plane writers out; the transaction validates it again)
                _, after = await self.registry.commit_and_view(
                    self._change(plan),
                    expect_generation=None if last else view.generation,
                    state_prefix=VIEW_STATE_PREFIXES,
                )
            except StaleRead:
                # another process committed between the plan and the write: plan again
                view, _moved = await self._recheck(publisher, view)
                continue
            break
        else:  # the last attempt commits without a generation check: no StaleRead
            raise RuntimeError("no attempt committed")
        error = await self._publish(after)
        failures = {} if ms.unloaded else self._failures(plan, error)
        if failures:
            restored = await self._restore(plan, failures)
            await self._publish()
            details = {"failures": failures, "restored": restored}
            raise Refused(_failure_message(plan, failures, restored), details)
        if error is not None:
            raise RefreshFailed(
                f"{plan.action} committed, but this worker could not publish it "
                f"({error}); it retries at its next registry poll"
            )
        return describe_outcome(
            state_in(after, model), after.generation, plan.action, changed=True, gate=plan.gate
        )

    def _not_loaded(self, ms: ModelState) -> NotLoaded:
        """Why a version is not loaded in this worker (None: it is). Without a publisher
        (the CLI): loaded means kept loaded by every server (production, rollback target,
        staging, traffic), and the trial load checks it can be."""
        if ms.unloaded:
            # it serves nothing: the change only takes effect when the model is loaded again
            # (POST /v2/repository/models/{name}/load), which loads and reports each version
            return lambda version: None
        if self.publisher is not None:
            loaded, failures = self.publisher.loaded, self.publisher.failures

            def in_worker(version: str) -> str | None:
                key = (ms.name, version)
                if key in loaded:
                    return None
                failure = failures.get(key)
                return f"load failed: {failure}" if failure else "not loaded in this worker"

            return in_worker
        needed = set(ms.needed())
        return lambda version: None if version in needed else "not kept loaded by the servers"

    async def _refuse_during_rollout(self, model: str) -> None:
        from gateway.rollout.store import Rollouts

        state = await Rollouts(self.registry, self.home).load(model)
        if state is not None and state.running:
            raise Conflict(_rollout_running(model, state.spec.candidate))

    async def _trial_load(self, ms: ModelState, plan: Plan) -> None:
        """Load each version the change newly sends traffic to once, and discard it
        (there is no publisher here to verify the swap)."""
        from gateway.serving.loader import LoadFailed, load_variant  # onnxruntime: lazy

        already = set(traffic_versions(ms.deployment, ms.production))
        failures: dict[str, str] = {}
        for name in plan.needs():
            version = ms.version(name)
            if name in already or version is None:
                continue
            try:
                variant = await load_variant(self.registry, version, self.settings)
            except LoadFailed as exc:
                failures[name] = str(exc)
            else:
                await variant.batcher.aclose()
        if failures:
            raise Refused(
                f"nothing changed: {_list_failures(failures)}",
                {"failures": failures, "restored": False},
            )

    async def _latest_view(self) -> RegistryView:
        from gateway.serving.publisher import VIEW_STATE_PREFIXES

        return await self.registry.serving_view(state_prefix=VIEW_STATE_PREFIXES)

    async def _recheck(self, publisher: Publisher, view: RegistryView) -> tuple[RegistryView, bool]:
        """The registry read again; if it moved past ``view``, this worker publishes it
        (loading what it needs) and the change is planned again on it."""
        latest = await self._latest_view()
        if latest.generation == view.generation:
            return view, False
        await publisher.refresh(latest)
        return publisher.view or latest, True

    def _change(self, plan: Plan) -> Any:
        """The plan's registry write, prepared for ``commit`` / ``commit_and_view``."""
        if plan.after is None:
            assert plan.stage_target is not None
            version, stage = plan.stage_target
            return self.registry.stage_change(
                plan.model, version, stage, actor=self.actor, reason=plan.reason
            )
        return self.registry.deployment_change(
            plan.after,
            actor=self.actor,
            action=plan.action,
            reason=plan.reason,
            stage_changes=plan.stage_changes or None,
            states=plan.states or None,
        )

    async def _publish(self, view: RegistryView | None = None) -> str | None:
        """Refresh this worker (from ``view`` when given); None, or why the refresh failed
        (the change must not be left half-applied by a loader error)."""
        assert self.publisher is not None
        try:
            await self.publisher.refresh(view)
        except Exception as exc:
            logger.exception("publishing an admin change failed")
            return f"refresh failed: {type(exc).__name__}: {_first_line(exc)}"
        return None

    def _failures(self, plan: Plan, error: str | None) -> dict[str, str]:
        """Versions the change sends traffic to that are not loaded here, and why."""
        assert self.publisher is not None
        loaded, failed = self.publisher.loaded, self.publisher.failures
        missing = {}
        for version in plan.needs():
            key = (plan.model, version)
            if key not in loaded:
                missing[version] = failed.get(key) or error or "not loaded after the refresh"
        return missing

    async def _restore(self, plan: Plan, failures: dict[str, str]) -> bool:
        """Put back the deployment and stages the plan replaced (False: changed meanwhile)."""
        assert plan.after is not None
        current = await self.registry.get_deployment(plan.model)
        production = (await self.registry.get_model(plan.model)).production_version
        if current.to_dict() != plan.after.to_dict() or production != plan.production_after:
            return False
        await self.registry.set_deployment(
            plan.before,
            actor=self.actor,
            action="restore",
            reason=f"{plan.action} undone: {_list_failures(failures)}",
            stage_changes=plan.restore_stages() or None,
            states=plan.restore_states or None,
        )
        return True

    async def _outcome(
        self, model: str, action: str, *, changed: bool, gate: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        ms, generation = await read_model_snapshot(self.registry, model)
        return describe_outcome(ms, generation, action, changed=changed, gate=gate)


def describe_outcome(
    ms: ModelState,
    generation: int,
    action: str,
    *,
    changed: bool,
    gate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The answer to a change: the model's state as committed (or unchanged)."""
    return {
        "model": ms.name,
        "action": action,
        "changed": changed,
        "production": ms.production,
        "rollback_target": ms.rollback_target,
        "stages": {v.version: v.stage.value for v in ms.versions},
        "traffic": traffic_view(ms.name, ms.deployment),
        "gate": gate,
        "generation": generation,
    }


def _owned(build: Builder, states: Mapping[str, Any], owner: str | None) -> Builder:
    """``build``, refused (409 naming it) when its change would move traffic that a running
    experiment owns; a change that fails to plan says so too, since it would move traffic."""

    def checked(ms: ModelState) -> Plan | None:
        try:
            plan = build(ms)
        except (GatewayError, RegistryError):
            refuse_during_experiment(ms.name, states, owner)
            raise
        if plan is not None and plan.after is not None:
            refuse_during_experiment(ms.name, states, owner)
        return plan

    return checked


def _refuse_if_rolling_out(model: str, states: Mapping[str, Any]) -> None:
    from gateway.rollout.state import state_key
    from gateway.rollout.store import parse_rollout

    state = parse_rollout(model, states.get(state_key(model)))
    if state is not None and state.running:
        raise Conflict(_rollout_running(model, state.spec.candidate))


def _rollout_running(model: str, candidate: str) -> str:
    return (
        f"a canary rollout of {candidate} is running for {model!r}; "
        f"cancel it first (DELETE /admin/models/{model}/rollout)"
    )


class RefreshFailed(GatewayError):
    status = 503
    reason = "refresh_failed"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _list_failures(failures: dict[str, str]) -> str:
    return "; ".join(f"{version} failed to load: {why}" for version, why in failures.items())


def _failure_message(plan: Plan, failures: dict[str, str], restored: bool) -> str:
    outcome = (
        "the previous traffic was restored and is served"
        if restored
        else "the registry changed meanwhile, so it was left as it is"
    )
    return f"{plan.action} refused: {_list_failures(failures)}; {outcome}"
