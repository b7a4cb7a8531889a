"""The rollout controller over a real SQLite registry, with a stats source the test scripts.

``ScriptedStats`` implements our own ``VariantStatsSource`` protocol with numbers the test
sets; the clock is a manual one, so every step is driven by explicit ``tick()`` calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.coordination.leader import LeaderElection
from gateway.monitoring.metrics.prometheus import MetricsRegistry
from gateway.rollout.checks import VariantIntervalStats
from gateway.rollout.controller import RolloutController, Rollouts
from gateway.rollout.metrics import PrometheusRolloutMetrics
from gateway.rollout.state import ROLLED_BACK, RolloutState
from registry.home import HomePaths
from registry.models import Deployment, Route, Stage
from registry.sqlite.store import SqliteRegistry, open_registry
from tests.support.fake_versions import add_version
from tests.support.polling import wait_until_async

MODEL, CHAMPION, CANDIDATE = "churn", "1.0.0", "1.1.0"
GOOD = VariantIntervalStats(
    requests=1000,
    errors=1,
    p99_latency_ms=3.0,
    low_confidence_rate=0.05,
    class_counts={"no": 700, "yes": 300},
    live_accuracy=0.91,
    labelled=300,
    max_feature_psi=0.04,
)


class ManualClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ScriptedStats:
    """A VariantStatsSource: the numbers each version reports are whatever the test sets."""

    def __init__(self) -> None:
        self.by_version: dict[str, VariantIntervalStats] = {CHAMPION: GOOD, CANDIDATE: GOOD}
        self.calls: list[tuple[str, str, float]] = []
        self.before_answer: Callable[[], Awaitable[None]] | None = None

    async def interval_stats(self, model: str, version: str, since: float) -> VariantIntervalStats:
        self.calls.append((model, version, since))
        if self.before_answer is not None:
            hook, self.before_answer = self.before_answer, None
            await hook()
        return self.by_version[version]


@pytest.fixture
def home(tmp_path: Path) -> HomePaths:
    return HomePaths(tmp_path / "home")


@pytest.fixture
async def registry(home: HomePaths) -> AsyncIterator[SqliteRegistry]:
    store = await open_registry(home)
    await add_version(store, MODEL, CHAMPION, Stage.PRODUCTION)
    await add_version(store, MODEL, CANDIDATE, Stage.STAGING)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def metrics() -> MetricsRegistry:
    return MetricsRegistry(None)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def rollouts(
    registry: SqliteRegistry, home: HomePaths, metrics: MetricsRegistry, clock: ManualClock
) -> Rollouts:
    return Rollouts(registry, home.root, metrics=PrometheusRolloutMetrics(metrics), clock=clock)


@pytest.fixture
def stats() -> ScriptedStats:
    return ScriptedStats()


def spec(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "candidate": CANDIDATE,
        "steps": [5, 25, 50, 100],
        "interval_s": 60,
        "min_requests": 100,
        "max_failed_checks": 2,
    }
    body.update(overrides)
    return body


async def weights(registry: SqliteRegistry) -> dict[str, float]:
    deployment = await registry.get_deployment(MODEL)
    return {r.version: r.weight for r in deployment.routes}


def step_gauge(metrics: MetricsRegistry) -> float | None:
    return metrics.registry.get_sample_value("modelgate_rollout_step", {"model": MODEL})


def rollbacks(metrics: MetricsRegistry, reason: str) -> float | None:
    labels = {"model": MODEL, "reason": reason}
    return metrics.registry.get_sample_value("modelgate_rollbacks_total", labels)


async def test_a_good_candidate_is_promoted_through_every_step(
    registry: SqliteRegistry,
    rollouts: Rollouts,
    stats: ScriptedStats,
    clock: ManualClock,
    metrics: MetricsRegistry,
) -> None:
    await rollouts.start(MODEL, spec(), actor="alice")
    assert await weights(registry) == {CHAMPION: 95.0, CANDIDATE: 5.0}
    assert step_gauge(metrics) == 1
    controller = RolloutController(rollouts, stats)
    await controller.tick()  # adopts the rollout
    clock.now += 30
    await controller.tick()  # passing, but the interval is not over
    assert (await rollouts.get(MODEL)).step == 0
    seen = [dict(await weights(registry))]
    for _ in range(3):
        clock.now += 61
        await controller.tick()
        seen.append(await weights(registry))
    assert seen == [
        {CHAMPION: 95.0, CANDIDATE: 5.0},
        {CHAMPION: 75.0, CANDIDATE: 25.0},
        {CHAMPION: 50.0, CANDIDATE: 50.0},
        {CANDIDATE: 100.0},
    ]
    assert step_gauge(metrics) == 4
    # at 100 % the champion serves nothing: its side is the baseline of the previous step
    stats.by_version[CHAMPION] = VariantIntervalStats()
    clock.now += 61
    await controller.tick()
    state = await rollouts.get(MODEL)
    assert (state.status, state.applied) == ("promoted", True)
    assert "all 4 steps passed" in state.reason
    assert (await registry.get_model(MODEL)).production_version == CANDIDATE
    assert (await registry.get_version(MODEL, CHAMPION)).stage == Stage.ARCHIVED
    assert await weights(registry) == {CANDIDATE: 100.0}
    assert step_gauge(metrics) == 0
    assert rollbacks(metrics, "canary_error_rate") is None
    # every transition is audited, with the checks' values in the reason
    audit = list(reversed(await registry.audit(model=MODEL, limit=100)))
    rows = [(e.actor, e.action) for e in audit if e.action not in ("register", "create_model")]
    assert rows[-7:] == [
        ("alice", "rollout_start"),
        ("rollout-controller", "rollout_step"),
        ("rollout-controller", "rollout_step"),
        ("rollout-controller", "rollout_step"),
        ("rollout-controller", "stage"),
        ("rollout-controller", "stage"),
        ("rollout-controller", "traffic"),
    ]
    step_rows = [e for e in audit if e.action == "rollout_step"]
    assert "step 2/4: 25 % to 1.1.0" in step_rows[0].reason
    assert "error_rate pass 0.001" in step_rows[0].reason
    assert step_rows[0].after["routes"] == [
        {"version": CHAMPION, "weight": 75.0},
        {"version": CANDIDATE, "weight": 25.0},
    ]
    assert [h["verdict"] for h in state.history] == ["pass"] * 4


async def test_a_high_error_rate_is_rolled_back_after_the_configured_failures(
    registry: SqliteRegistry,
    rollouts: Rollouts,
    stats: ScriptedStats,
    clock: ManualClock,
    metrics: MetricsRegistry,
) -> None:
    await rollouts.start(MODEL, spec(max_failed_checks=2), actor="alice")
    controller = RolloutController(rollouts, stats)
    await controller.tick()
    stats.by_version[CANDIDATE] = VariantIntervalStats(**{**GOOD.to_dict(), "errors": 120})
    clock.now += 5  # a failure with enough data counts at once, before the interval ends
    await controller.tick()
    state = await rollouts.get(MODEL)
    assert (state.status, state.failures, state.step) == ("running", 1, 0)
    assert state.analysis_started_at == clock.now  # fresh data for the next verdict
    assert await weights(registry) == {CHAMPION: 95.0, CANDIDATE: 5.0}
    analysis = await registry.audit(model=MODEL, action="rollout_analysis")
    assert len(analysis) == 1 and "failed (1/2)" in analysis[0].reason
    clock.now += 5
    await controller.tick()
    state = await rollouts.get(MODEL)
    assert (state.status, state.failures, state.applied) == (ROLLED_BACK, 2, True)
    assert "error_rate fail 0.12" in state.reason
    assert await weights(registry) == {CHAMPION: 100.0}
    assert (await registry.get_model(MODEL)).production_version == CHAMPION
    assert rollbacks(metrics, "canary_error_rate") == 1
    assert step_gauge(metrics) == 0
    rollback = await registry.audit(model=MODEL, action="rollout_rollback")
    assert len(rollback) == 1 and rollback[0].actor == "rollout-controller"
    assert "canary analysis failed (2/2)" in rollback[0].reason
    # nothing happens after the end
    clock.now += 600
    await controller.tick()
    assert (await rollouts.get(MODEL)).revision == state.revision


async def test_a_confidently_wrong_candidate_is_rolled_back_on_live_accuracy(
    registry: SqliteRegistry,
    rollouts: Rollouts,
    stats: ScriptedStats,
    clock: ManualClock,
    metrics: MetricsRegistry,
) -> None:
    await rollouts.start(MODEL, spec(max_failed_checks=1), actor="alice")
    controller = RolloutController(rollouts, stats)
    await controller.tick()
    clock.now += 61
    await controller.tick()  # step 1 passes: no labels yet for the candidate's rows
    assert await weights(registry) == {CHAMPION: 75.0, CANDIDATE: 25.0}
    wrong = {**GOOD.to_dict(), "live_accuracy": 0.52, "low_confidence_rate": 0.01}
    stats.by_version[CANDIDATE] = VariantIntervalStats(**wrong)
    clock.now += 10
    await controller.tick()
    state = await rollouts.get(MODEL)
    assert state.status == ROLLED_BACK
    assert "accuracy fail 0.52" in state.reason
    assert await weights(registry) == {CHAMPION: 100.0}
    assert rollbacks(metrics, "canary_accuracy") == 1


async def test_too_little_data_waits_then_counts_once_the_interval_is_over(
    registry: SqliteRegistry,
    rollouts: Rollouts,
    stats: ScriptedStats,
    clock: ManualClock,
    metrics: MetricsRegistry,
) -> None:
    await rollouts.start(MODEL, spec(max_failed_checks=2), actor="alice")
    controller = RolloutController(rollouts, stats)
    await controller.tick()
    stats.by_version[CANDIDATE] = VariantIntervalStats(**{**GOOD.to_dict(), "requests": 40})
    revision = (await rollouts.get(MODEL)).revision
    clock.now += 59
    await controller.tick()  # insufficient while the interval runs: nothing is decided
    assert (await rollouts.get(MODEL)).revision == revision
    clock.now += 2
    await controller.tick()  # interval over, still insufficient: a failed analysis, no pass
    state = await rollouts.get(MODEL)
    assert (state.status, state.step, state.failures) == ("running", 0, 1)
    assert state.history[-1]["verdict"] == "insufficient"
    clock.now += 61
    await controller.tick()
    state = await rollouts.get(MODEL)
    assert state.status == ROLLED_BACK and "insufficient data" in state.reason
    assert rollbacks(metrics, "canary_insufficient_data") == 1
    assert await weights(registry) == {CHAMPION: 100.0}


async def test_a_restarted_controller_resumes_from_the_persisted_step(
    home: HomePaths,
    registry: SqliteRegistry,
    rollouts: Rollouts,
    stats: ScriptedStats,
    clock: ManualClock,
) -> None:
    await rollouts.start(MODEL, spec(), actor="alice")
    first = RolloutController(rollouts, stats)
    await first.tick()
    clock.now += 61
    await first.tick()
    stats.by_version[CANDIDATE] = VariantIntervalStats(**{**GOOD.to_dict(), "errors": 300})
    clock.now += 1
    await first.tick()  # one failure at step 2
    before = await rollouts.get(MODEL)
    assert (before.step, before.failures) == (1, 1)
    await registry.close()

    # "restart": a new process with a new registry connection and a new controller
    clock.now += 500
    reopened = await open_registry(home)
    try:
        again = Rollouts(reopened, home.root, clock=clock)
        stats.by_version[CANDIDATE] = GOOD
        second = RolloutController(again, stats)
        stats.calls.clear()
        await second.tick()  # adoption: weights already right, nothing rewritten
        assert (await again.get(MODEL)).revision == before.revision
        adopted_at = clock.now
        clock.now += 30
        await second.tick()
        # the interval restarted at the adoption: the old windows did not survive
        assert {since for _m, _v, since in stats.calls} == {adopted_at}
        assert (await again.get(MODEL)).step == 1
        clock.now += 31
        await second.tick()
        state = await again.get(MODEL)
        assert (state.step, state.failures) == (2, 1)  # the failure count survived too
        assert await weights(reopened) == {CHAMPION: 50.0, CANDIDATE: 50.0}
    finally:
        await reopened.close()


async def test_adoption_re_applies_the_step_weights_after_a_crash_between_writes(
    registry: SqliteRegistry, rollouts: Rollouts, stats: ScriptedStats
) -> None:
    await rollouts.start(MODEL, spec(), actor="alice")
    # the state says step 1 at 5 %, but the traffic write never happened
    await registry.set_deployment(Deployment(MODEL, routes=(Route(CHAMPION, 100.0),)))
    await RolloutController(rollouts, stats).tick()
    assert await weights(registry) == {CHAMPION: 95.0, CANDIDATE: 5.0}
    resumed = await registry.audit(model=MODEL, action="rollout_step")
    assert "resumed" in resumed[0].reason and resumed[0].actor == "rollout-controller"


async def test_an_unapplied_terminal_state_is_applied_by_the_controller(
    registry: SqliteRegistry, rollouts: Rollouts, stats: ScriptedStats, clock: ManualClock
) -> None:
    state = await rollouts.start(MODEL, spec(), actor="alice")
    # a process wrote "rolled back" and died before moving the traffic
    intent = state.evolve(clock(), status=ROLLED_BACK, applied=False, reason="canary failed")
    await rollouts.save(intent, "test")
    await RolloutController(rollouts, stats).tick()
    done = await rollouts.get(MODEL)
    assert (done.status, done.applied) == (ROLLED_BACK, True)
    assert await weights(registry) == {CHAMPION: 100.0}


async def test_a_cancel_racing_with_an_analysis_wins(
    registry: SqliteRegistry, rollouts: Rollouts, stats: ScriptedStats, clock: ManualClock
) -> None:
    await rollouts.start(MODEL, spec(), actor="alice")
    controller = RolloutController(rollouts, stats)
    await controller.tick()
    clock.now += 61

    async def operator_cancels() -> None:
        await rollouts.cancel(MODEL, actor="bob", reason="changed my mind")

    stats.before_answer = operator_cancels  # the cancel lands while the analysis runs
    await controller.tick()
    state = await rollouts.get(MODEL)
    assert state.status == "cancelled" and state.reason == "cancelled by bob: changed my mind"
    assert await weights(registry) == {CHAMPION: 100.0}


async def test_production_moved_underneath_aborts_and_leaves_traffic_alone(
    registry: SqliteRegistry, rollouts: Rollouts, stats: ScriptedStats, clock: ManualClock
) -> None:
    await rollouts.start(MODEL, spec(), actor="alice")
    controller = RolloutController(rollouts, stats)
    await controller.tick()
    await registry.set_stage(MODEL, CANDIDATE, Stage.PRODUCTION, actor="carol")
    clock.now += 1
    await controller.tick()
    state = await rollouts.get(MODEL)
    assert state.status == "aborted" and "now 1.1.0" in state.reason
    assert await weights(registry) == {CANDIDATE: 100.0}
    assert (await registry.audit(model=MODEL, action="rollout_abort"))[0].actor == (
        "rollout-controller"
    )


async def test_other_traffic_settings_survive_the_rollout(
    registry: SqliteRegistry, rollouts: Rollouts
) -> None:
    await add_version(registry, MODEL, "2.0.0", Stage.STAGING)
    await registry.set_deployment(
        Deployment(MODEL, routes=(Route(CHAMPION, 100.0),), sticky=True, challenger="2.0.0")
    )
    await rollouts.start(MODEL, spec(), actor="alice")
    deployment = await registry.get_deployment(MODEL)
    assert deployment.sticky and deployment.challenger == "2.0.0"


async def test_the_run_loop_acts_only_as_leader(
    home: HomePaths, registry: SqliteRegistry, stats: ScriptedStats, tmp_path: Path
) -> None:
    rollouts = Rollouts(registry, home.root)
    await rollouts.start(MODEL, spec(steps=[50, 100], interval_s=0.05), actor="alice")
    held = LeaderElection(tmp_path / "lock", retry_s=0.01)
    assert held.try_acquire()
    follower = LeaderElection(tmp_path / "lock", retry_s=0.01)
    follower.start()
    controller = RolloutController(rollouts, stats, leader=follower, tick_s=0.01)
    controller.start()
    try:
        await asyncio.sleep(0.2)  # the follower never leads while the lock is held
        assert not follower.is_leader
        assert (await rollouts.get(MODEL)).step == 0
        held.release()
        await asyncio.wait_for(follower.elected.wait(), 10)
        await wait_until_async(
            lambda: rollouts.get(MODEL), 10.0, 0.01, done=lambda r: r.status != "running"
        )
        assert (await rollouts.get(MODEL)).status == "promoted"
    finally:
        await controller.stop()
        await follower.stop()


def test_state_round_trips_through_json() -> None:
    from gateway.rollout.state import RolloutSpec

    state = RolloutState.new(
        MODEL, RolloutSpec(CANDIDATE, CHAMPION, (5.0, 100.0), 60.0, 100), 1.0, "alice"
    )
    again = RolloutState.from_dict(state.describe())
    assert again == state
