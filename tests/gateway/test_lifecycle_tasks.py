"""``start_lifecycle`` / ``stop_lifecycle`` on the real app: settings,
idempotency, one leader per home folder and hand-over when it stops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.lifecycle import (
    LifecycleConfig,
    start_lifecycle,
    stop_lifecycle,
)
from gateway.settings import SettingsError
from tests.support.asgi_app import InProcessApp, running_gateway

TOKEN = "tasks-test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELGATE_ROLLOUT_TICK_S", "0.05")
    monkeypatch.setenv("MODELGATE_LEADER_RETRY_S", "0.05")
    for var in (
        "MODELGATE_RETRAIN_WEBHOOK",
        "MODELGATE_RETRAIN_COMMAND",
        "MODELGATE_RETRAIN_POLICY",
    ):
        monkeypatch.delenv(var, raising=False)


@contextlib.asynccontextmanager
async def app_on(home: Path, *, lifecycle: bool = True) -> AsyncIterator[InProcessApp]:
    """The app (whose lifespan starts the lifecycle), started once more when ``lifecycle``."""
    async with running_gateway(home, TOKEN, poll_interval_ms=20) as served:
        if lifecycle:
            await start_lifecycle(served.state)
        try:
            yield served
        finally:
            await stop_lifecycle(served.state)


def test_config_from_the_environment() -> None:
    config = LifecycleConfig.from_environ(
        {
            "MODELGATE_ROLLOUT_TICK_S": "0.5",
            "MODELGATE_LEADER_RETRY_S": "2",
            "MODELGATE_RETRAIN_EVERY_S": "30",
            "MODELGATE_RETRAIN_MIN_LABELS": "250",
            "MODELGATE_RETRAIN_ACCURACY_WINDOW_S": "3600",
        }
    )
    assert config.tick_s == 0.5 and config.leader_retry_s == 2.0
    assert config.trigger.evaluate_every_s == 30.0 and not config.trigger.configured
    assert config.inputs.min_labels == 250 and config.inputs.accuracy_window_s == 3600.0
    defaults = LifecycleConfig.from_environ({})
    assert defaults.tick_s == 1.0 and defaults.inputs.min_labels == 100


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("MODELGATE_ROLLOUT_TICK_S", "0"),
        ("MODELGATE_LEADER_RETRY_S", "soon"),
        ("MODELGATE_RETRAIN_WEBHOOK", "ftp://example.org/hook"),
        ("MODELGATE_RETRAIN_POLICY", "[1, 2]"),
        ("MODELGATE_RETRAIN_MIN_LABELS", "-3"),
        ("MODELGATE_RETRAIN_ACCURACY_WINDOW_S", "nan"),
    ],
)
def test_a_bad_setting_names_its_variable(var: str, value: str) -> None:
    with pytest.raises(SettingsError, match=var):
        LifecycleConfig.from_environ({var: value})


async def test_a_bad_setting_stops_the_start(
    zoo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELGATE_ROLLOUT_TICK_S", "-1")
    # the app's lifespan starts the lifecycle: a bad setting fails the server's start
    with pytest.raises(SettingsError, match="MODELGATE_ROLLOUT_TICK_S"):
        async with app_on(zoo_home, lifecycle=False):
            pass


async def test_start_and_stop_are_idempotent_and_serve_the_routes(zoo_home: Path) -> None:
    async with app_on(zoo_home) as served:
        state = served.state
        lifecycle = state.lifecycle
        await start_lifecycle(state)  # a second call keeps what runs
        assert state.lifecycle is lifecycle and state.retraining is lifecycle.retraining
        await asyncio.wait_for(lifecycle.leader.elected.wait(), 5)
        async with served.client() as http:
            report = await http.get("/admin/models/clf/retraining", headers=AUTH)
            assert report.status_code == 200, report.text
            assert report.json()["version"] == "1.0.0"
            none = await http.get("/admin/models/clf/rollout", headers=AUTH)
            assert none.status_code == 404 and "no rollout" in none.json()["error"]
            anonymous = await http.get("/admin/models/clf/rollout")
            assert anonymous.status_code == 401
        await stop_lifecycle(state)
        await stop_lifecycle(state)
        assert state.lifecycle is None and state.retraining is None
        assert not lifecycle.leader.is_leader
        async with served.client() as http:
            stopped = await http.get("/admin/models/clf/retraining", headers=AUTH)
        assert stopped.status_code == 503 and "not running" in stopped.json()["error"]


async def test_one_leader_per_home_and_a_hand_over(zoo_home: Path) -> None:
    async with app_on(zoo_home) as one, app_on(zoo_home) as two:
        first, second = one.state, two.state
        await asyncio.wait_for(first.lifecycle.leader.elected.wait(), 5)
        await asyncio.sleep(0.3)  # several campaign rounds of the second worker
        assert first.lifecycle.leader.is_leader and not second.lifecycle.leader.is_leader
        await stop_lifecycle(first)
        await asyncio.wait_for(second.lifecycle.leader.elected.wait(), 5)
        assert second.lifecycle.leader.is_leader
