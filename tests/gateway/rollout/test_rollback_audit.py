"""Rollbacks made by ``modelgate rollback`` reach ``modelgate_rollbacks_total`` once: counted by
the leader from the audit log (``ExternalRollbacks``), never twice for an admin API rollback."""

from __future__ import annotations

import asyncio

import pytest

from gateway.changes.apply import AdminChanges
from gateway.cli import admin_commands
from gateway.cli import main as cli_main
from gateway.coordination.leader import LeaderElection
from gateway.rollout.api import metrics_of
from gateway.rollout.external_rollbacks import ExternalRollbacks, counted_by_the_api
from registry.sqlite.store import open_registry
from tests.support.polling import wait_until_async


def test_the_api_actors_are_recognised():
    assert counted_by_the_api("admin-api") and counted_by_the_api("admin-api:alice")
    assert not counted_by_the_api("cli:bob") and not counted_by_the_api("admin-apix")


async def test_cli_rollbacks_are_counted_after_the_first_look_only(zoo_home):
    registry = await open_registry(zoo_home)
    try:
        counted: list[tuple[str, str]] = []
        counter = ExternalRollbacks(registry, lambda model, reason: counted.append((model, reason)))
        cli = AdminChanges(registry, zoo_home, actor="cli:tester")
        await cli.switch("clf", "1.1.0")
        await cli.rollback("clf")  # before the counter looked: history, never counted
        assert await counter.tick() == 0
        await cli.rollback("clf")  # back to 1.1.0
        assert await counter.tick() == 1
        assert await counter.tick() == 0  # nothing new
        await AdminChanges(registry, zoo_home, actor="admin-api:alice").rollback("clf")
        assert await counter.tick() == 0  # the API's own worker counted that one
        await cli.traffic("clf", {"routes": [{"version": "1.0.0", "weight": 100}]})
        assert await counter.tick() == 0  # a change that is not a rollback
        assert counted == [("clf", "manual")]
    finally:
        await registry.close()


async def test_only_the_leader_counts_and_a_new_leader_does_not_count_history(zoo_home, tmp_path):
    lock = tmp_path / "controller.lock"
    leader, follower = LeaderElection(lock), LeaderElection(lock)
    assert leader.try_acquire() and not follower.try_acquire()
    registry = await open_registry(zoo_home)
    try:
        by_leader: list[str] = []
        by_follower: list[str] = []
        first = ExternalRollbacks(registry, lambda m, _r: by_leader.append(m), leader=leader)
        second = ExternalRollbacks(registry, lambda m, _r: by_follower.append(m), leader=follower)
        assert await first.tick() == 0 and await second.tick() == 0  # first looks
        cli = AdminChanges(registry, zoo_home, actor="cli:tester")
        await cli.switch("clf", "1.1.0")
        await cli.rollback("clf")
        assert await first.tick() == 1 and await second.tick() == 0
        leader.release()  # the leader's process exits; the follower takes over
        assert follower.try_acquire()
        assert await second.tick() == 0  # its first look: the rollback above is history
        await cli.rollback("clf")
        assert await second.tick() == 1 and await first.tick() == 0
        assert by_leader == ["clf"] and by_follower == ["clf"]
    finally:
        follower.release()
        await registry.close()


@pytest.fixture
def fast_lifecycle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELGATE_ROLLOUT_TICK_S", "0.05")
    monkeypatch.setenv("MODELGATE_ACTOR", "cli:tester")
    if admin_commands not in cli_main.COMMAND_MODULES:
        monkeypatch.setattr(
            cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, admin_commands)
        )


async def test_a_running_server_counts_a_cli_rollback_once(fast_lifecycle, admin_gw):
    metrics = metrics_of(admin_gw.state)

    def manual() -> float:
        labels = {"model": "clf", "reason": "manual"}
        return metrics.registry.get_sample_value("modelgate_rollbacks_total", labels) or 0.0

    before = manual()
    home = ["--home", str(admin_gw.home)]
    for argv in (["switch", "clf", "1.1.0", *home], ["rollback", "clf", *home]):
        assert await asyncio.to_thread(cli_main.main, argv) == 0  # another "process"
    await wait_until_async(manual, 10.0, 0.025, done=lambda n: n > before)  # 50 ms ticks
    assert manual() == before + 1
    rolled = await admin_gw.http.post("/admin/models/clf/rollback")
    assert rolled.status_code == 200, rolled.text
    assert manual() == before + 2  # counted by the handler
    await admin_gw.state.lifecycle.rollbacks.tick()  # the leader has seen the API's row
    assert manual() == before + 2
