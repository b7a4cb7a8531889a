"""The retraining trigger against a real registry, a real HTTP receiver on loopback and a
real command. Time is a manual clock; backoff sleeps are recorded instead of slept."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.errors import Conflict, InputError
from gateway.retraining.delivery import RetryPolicy
from gateway.retraining.policy import RetrainingInputs
from gateway.retraining.trigger import RetrainingMonitor, TriggerConfig
from registry.home import HomePaths
from registry.models import Stage
from registry.sqlite.store import SqliteRegistry, open_registry
from tests.support.fake_versions import add_version
from tests.support.polling import wait_until_async

NOW = datetime(2025, 6, 1, tzinfo=UTC)
TRAINED = (NOW - timedelta(days=3)).date().isoformat()
CALM = RetrainingInputs(
    live_accuracy=0.93, drift_score=0.05, low_confidence_rate=0.04, new_labelled_samples=100
)


class Clock:
    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def __call__(self) -> float:
        return self.now


class Inputs:
    """The server's inputs callable, as numbers the test sets."""

    def __init__(self) -> None:
        self.value = CALM
        self.calls: list[tuple[str, str]] = []
        self.fail = False

    async def __call__(self, model: str, version: str) -> RetrainingInputs:
        self.calls.append((model, version))
        if self.fail:
            raise RuntimeError("window not ready")
        return self.value


@dataclass
class Receiver:
    """A tiny HTTP server on loopback: records each POST, answers the scripted statuses."""

    statuses: list[int] = field(default_factory=list)
    bodies: list[dict[str, object]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/retrain?token=secret"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.headers.append(headers)
        self.bodies.append(json.loads(body))
        status = self.statuses.pop(0) if self.statuses else 200
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".encode()
        )
        await writer.drain()
        writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    server = await asyncio.start_server(rec.handle, "127.0.0.1", 0)
    rec.port = server.sockets[0].getsockname()[1]
    try:
        yield rec
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def home(tmp_path: Path) -> HomePaths:
    return HomePaths(tmp_path / "home")


@pytest.fixture
async def registry(home: HomePaths) -> AsyncIterator[SqliteRegistry]:
    store = await open_registry(home)
    lineage = {"training": {"date": TRAINED}}
    await add_version(store, "churn", "1.2.0", Stage.PRODUCTION, lineage=lineage)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def inputs() -> Inputs:
    return Inputs()


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def monitor(
    registry: SqliteRegistry,
    home: HomePaths,
    inputs: Inputs,
    clock: Clock,
    sleeps: Sleeps | None = None,
    **config: object,
) -> RetrainingMonitor:
    return RetrainingMonitor(
        registry,
        inputs,
        TriggerConfig(**config),  # type: ignore[arg-type]
        home=home.root,
        clock=clock,
        sleep=sleeps or Sleeps(),
    )


@pytest.mark.parametrize(
    ("change", "reason", "value"),
    [
        ({"live_accuracy": 0.7}, "performance_degradation", 0.7),
        ({"drift_score": 0.31}, "data_drift", 0.31),
        ({"low_confidence_rate": 0.2}, "low_confidence", 0.2),
        ({"trained_at": NOW - timedelta(days=45)}, "scheduled", 45.0),
        ({"new_labelled_samples": 12_000}, "new_data_available", 12_000),
    ],
)
async def test_each_reason_makes_the_decision_positive(
    registry: SqliteRegistry,
    home: HomePaths,
    inputs: Inputs,
    clock: Clock,
    change: dict[str, object],
    reason: str,
    value: float,
) -> None:
    mon = monitor(registry, home, inputs, clock)
    version, calm, _ = await mon.decide("churn")
    assert version == "1.2.0" and calm.retrain is False
    inputs.value = replace(CALM, **change)  # type: ignore[arg-type]
    _, decision, _ = await mon.decide("churn")
    assert decision.retrain is True and decision.triggered == [reason]
    entry = next(r for r in decision.reasons if r["reason"] == reason)
    assert entry["value"] == pytest.approx(value)
    assert inputs.calls[-1] == ("churn", "1.2.0")


async def test_training_date_comes_from_lineage(
    registry: SqliteRegistry, home: HomePaths, inputs: Inputs, clock: Clock
) -> None:
    mon = monitor(registry, home, inputs, clock)
    clock.now = (NOW + timedelta(days=30)).timestamp()  # trained 33 days before
    _, decision, _ = await mon.decide("churn")
    assert decision.triggered == ["scheduled"]
    scheduled = next(r for r in decision.reasons if r["reason"] == "scheduled")
    assert scheduled["value"] == pytest.approx(33.0)


async def test_webhook_fires_once_per_cooldown_across_restarts(
    registry: SqliteRegistry, home: HomePaths, inputs: Inputs, clock: Clock, receiver: Receiver
) -> None:
    config = {"webhook_url": receiver.url, "cooldown_s": 3600.0, "webhook_token": "tkn"}
    mon = monitor(registry, home, inputs, clock, **config)
    assert await mon.evaluate("churn") is None  # calm: nothing fires
    inputs.value = replace(CALM, live_accuracy=0.6, drift_score=0.4)
    fire = await mon.evaluate("churn")
    assert fire is not None and fire["status"] == "ok"
    assert fire["results"][0]["target"] == "webhook" and fire["results"][0]["attempts"] == 1
    assert len(receiver.bodies) == 1
    payload = receiver.bodies[0]
    assert payload["model"] == "churn" and payload["version"] == "1.2.0"
    assert payload["reasons"] == ["performance_degradation", "data_drift"]
    assert payload["values"]["performance_degradation"] == 0.6  # type: ignore[index]
    assert payload["values"]["data_drift"] == 0.4  # type: ignore[index]
    assert receiver.headers[0]["authorization"] == "Bearer tkn"
    assert receiver.headers[0]["content-type"] == "application/json"

    clock.now += 60
    assert await mon.evaluate("churn") is None  # still positive, but inside the cooldown
    # a restarted server (new monitor over the same registry) does not fire again either
    clock.now += 1800
    restarted = monitor(registry, home, inputs, clock, **config)
    assert await restarted.evaluate("churn") is None
    assert len(receiver.bodies) == 1
    clock.now += 1800  # past the cooldown
    assert (await restarted.evaluate("churn") or {})["status"] == "ok"
    assert len(receiver.bodies) == 2
    audit = await registry.audit(model="churn", action="retraining_trigger")
    assert len(audit) == 2 and audit[0].actor == "retraining-trigger"
    assert "performance_degradation, data_drift" in audit[0].reason


async def test_a_failing_receiver_is_retried_with_backoff_and_reported(
    registry: SqliteRegistry, home: HomePaths, inputs: Inputs, clock: Clock, receiver: Receiver
) -> None:
    inputs.value = replace(CALM, low_confidence_rate=0.5)
    retry = RetryPolicy(max_attempts=4, backoff_initial_s=1.0, backoff_max_s=3.0, timeout_s=5)
    sleeps = Sleeps()
    mon = monitor(registry, home, inputs, clock, sleeps, webhook_url=receiver.url, retry=retry)
    receiver.statuses = [500, 503, 200]
    fire = await mon.evaluate("churn")
    assert fire is not None and fire["status"] == "ok"
    assert fire["results"][0]["attempts"] == 3
    assert sleeps.delays == [1.0, 2.0]
    assert len(receiver.bodies) == 3

    clock.now += 2 * 86400  # next cooldown; this time the receiver never recovers
    receiver.statuses = [500] * 4
    sleeps.delays.clear()
    fire = await mon.evaluate("churn")
    assert fire is not None and fire["status"] == "failed"
    assert fire["results"][0] == {
        "target": "webhook",
        "status": "failed",
        "attempts": 4,
        "error": "HTTP 500 from the webhook",
        "finished_at": clock.now,
    }
    assert sleeps.delays == [1.0, 2.0, 3.0]  # doubled, capped
    report = await mon.report("churn")
    assert report["trigger"]["last_fire"]["status"] == "failed"
    assert report["trigger"]["last_fire"]["results"][0]["error"] == "HTTP 500 from the webhook"
    assert report["trigger"]["webhook"] == f"http://127.0.0.1:{receiver.port}/hooks/retrain"


async def test_an_unreachable_webhook_is_reported_not_raised(
    registry: SqliteRegistry, home: HomePaths, inputs: Inputs, clock: Clock
) -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()  # nothing listens there any more
    inputs.value = replace(CALM, drift_score=0.9)
    retry = RetryPolicy(max_attempts=2, timeout_s=5)
    url = f"http://127.0.0.1:{port}/"
    mon = monitor(registry, home, inputs, clock, webhook_url=url, retry=retry)
    await mon.evaluate_all()
    status = await registry.get_state("retraining-status:churn")
    result = status["last_fire"]["results"][0]
    assert result["status"] == "failed" and "webhook unreachable" in result["error"]


async def test_a_command_trigger_runs_with_the_payload(
    registry: SqliteRegistry, home: HomePaths, inputs: Inputs, clock: Clock, tmp_path: Path
) -> None:
    out = tmp_path / "trigger.json"
    script = (
        "import os, sys, pathlib; data = sys.stdin.read(); "
        "pathlib.Path(sys.argv[1]).write_text(os.environ['MODELGATE_RETRAIN_MODEL'] + ' ' "
        "+ os.environ['MODELGATE_RETRAIN_REASONS'] + '\\n' + data)"
    )
    inputs.value = replace(CALM, new_labelled_samples=20_000)
    mon = monitor(registry, home, inputs, clock, command=(sys.executable, "-c", script, str(out)))
    fire = await mon.evaluate("churn")
    assert fire is not None and fire["status"] == "ok"
    first, body = out.read_text().split("\n", 1)
    assert first == "churn new_data_available"
    payload = json.loads(body)
    assert payload["values"]["new_data_available"] == 20_000
    assert payload["version"] == "1.2.0"


async def test_a_failing_command_is_retried_and_reported(
    registry: SqliteRegistry, home: HomePaths, inputs: Inputs, clock: Clock
) -> None:
    inputs.value = replace(CALM, live_accuracy=0.1)
    sleeps = Sleeps()
    script = "import sys; sys.stderr.write('no GPU today\\n'); sys.exit(3)"
    retry = RetryPolicy(max_attempts=2, timeout_s=30)
    mon = monitor(
        registry, home, inputs, clock, sleeps, command=(sys.executable, "-c", script), retry=retry
    )
    fire = await mon.evaluate("churn")
    assert fire is not None and fire["status"] == "failed"
    assert fire["results"][0]["error"] == "command exited with status 3: no GPU today"
    assert sleeps.delays == [1.0]
    missing = monitor(registry, home, inputs, clock, command=("/nonexistent/retrain",), retry=retry)
    clock.now += 2 * 86400
    fire = await missing.evaluate("churn")
    assert fire is not None and "cannot run /nonexistent/retrain" in fire["results"][0]["error"]


async def test_evaluation_errors_never_escape(
    registry: SqliteRegistry, home: HomePaths, inputs: Inputs, clock: Clock, receiver: Receiver
) -> None:
    inputs.fail = True
    mon = monitor(registry, home, inputs, clock, webhook_url=receiver.url)
    await mon.evaluate_all()  # must not raise
    assert mon.errors["churn"] == "RuntimeError: window not ready"
    inputs.fail = False
    await mon.evaluate_all()
    assert "churn" not in mon.errors and receiver.bodies == []


async def test_per_model_overrides_change_the_decision_and_cooldown(
    registry: SqliteRegistry, home: HomePaths, inputs: Inputs, clock: Clock, receiver: Receiver
) -> None:
    mon = monitor(registry, home, inputs, clock, webhook_url=receiver.url, cooldown_s=86400.0)
    assert (await mon.decide("churn"))[1].retrain is False
    await mon.set_overrides(
        "churn", {"policy": {"min_accuracy_threshold": 0.95}, "cooldown_s": 60}, actor="ops"
    )
    report = await mon.report("churn")
    assert report["retrain"] is True and report["triggered"] == ["performance_degradation"]
    assert report["policy"]["min_accuracy_threshold"] == 0.95
    assert report["trigger"]["cooldown_s"] == 60
    assert (await mon.evaluate("churn") or {})["status"] == "ok"
    clock.now += 61
    assert (await mon.evaluate("churn") or {})["status"] == "ok"
    assert len(receiver.bodies) == 2
    for bad, message in [
        ({"policy": {"bogus": 1}}, "unknown retraining policy fields: bogus"),
        ({"policy": {"max_psi_threshold": "high"}}, "must be a number"),
        ({"cooldown_s": -1}, "cooldown_s must be"),
        ({"colour": 1}, "unknown field 'colour'"),
        ([], "must be a JSON object"),
    ]:
        with pytest.raises(InputError, match=message):
            await mon.set_overrides("churn", bad, actor="ops")


async def test_a_model_without_production_is_not_evaluated(
    registry: SqliteRegistry, home: HomePaths, inputs: Inputs, clock: Clock
) -> None:
    await add_version(registry, "other", "1.0.0")
    mon = monitor(registry, home, inputs, clock, webhook_url="http://127.0.0.1:9/")
    assert await mon.evaluate("other") is None
    with pytest.raises(Conflict, match="no production version"):
        await mon.report("other")


def test_trigger_config_from_environment() -> None:
    config = TriggerConfig.from_environ(
        {
            "MODELGATE_RETRAIN_WEBHOOK": "https://ci.example/hooks/retrain",
            "MODELGATE_RETRAIN_COMMAND": "python -m retrain --model 'churn model'",
            "MODELGATE_RETRAIN_COOLDOWN_S": "3600",
            "MODELGATE_RETRAIN_ATTEMPTS": "5",
            "MODELGATE_RETRAIN_POLICY": '{"max_psi_threshold": 0.3, "models": {"churn": {}}}',
        }
    )
    assert config.command == ("python", "-m", "retrain", "--model", "churn model")
    assert config.cooldown_s == 3600 and config.retry.max_attempts == 5
    assert config.configured and TriggerConfig.from_environ({}).configured is False
    for env, message in [
        ({"MODELGATE_RETRAIN_WEBHOOK": "ftp://x/"}, "MODELGATE_RETRAIN_WEBHOOK: .*http"),
        ({"MODELGATE_RETRAIN_COOLDOWN_S": "soon"}, "expected a number"),
        ({"MODELGATE_RETRAIN_ATTEMPTS": "0"}, "MODELGATE_RETRAIN_ATTEMPTS must be >= 1"),
        ({"MODELGATE_RETRAIN_EVERY_S": "0"}, "MODELGATE_RETRAIN_EVERY_S must be > 0"),
        ({"MODELGATE_RETRAIN_POLICY": "[1]"}, "JSON object"),
        ({"MODELGATE_RETRAIN_POLICY": '{"max_psi": 1}'}, "POLICY: unknown retraining policy"),
    ]:
        with pytest.raises(ValueError, match=message):
            TriggerConfig.from_environ(env)


async def test_the_background_task_fires_and_stops_cleanly(
    registry: SqliteRegistry, home: HomePaths, inputs: Inputs, receiver: Receiver
) -> None:
    inputs.value = replace(CALM, drift_score=0.5)
    mon = RetrainingMonitor(
        registry,
        inputs,
        TriggerConfig(webhook_url=receiver.url, evaluate_every_s=0.01),
        home=home.root,
    )
    mon.start()
    try:
        await wait_until_async(
            lambda: registry.audit(model="churn", action="retraining_trigger"), 10.0, 0.01
        )
        passes = len(inputs.calls)  # then a few more positive evaluations
        await wait_until_async(lambda: len(inputs.calls) >= passes + 5, 10.0, 0.01)
    finally:
        await mon.stop()
    assert len(inputs.calls) >= passes + 5
    assert len(receiver.bodies) == 1  # positive on every pass, fired once (cooldown 24 h)
    assert "data_drift" in receiver.bodies[0]["reasons"]


async def test_a_shutdown_during_delivery_is_recorded_as_interrupted(
    registry: SqliteRegistry, home: HomePaths, inputs: Inputs, clock: Clock
) -> None:
    arrived, release = asyncio.Event(), asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        arrived.set()
        await release.wait()  # never answers before the monitor is stopped
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        inputs.value = replace(CALM, drift_score=0.5)
        mon = monitor(registry, home, inputs, clock, webhook_url=f"http://127.0.0.1:{port}/x")
        task = asyncio.create_task(mon.evaluate("churn"))
        await asyncio.wait_for(arrived.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
    finally:
        server.close()
        await server.wait_closed()
    status = await registry.get_state("retraining-status:churn")
    assert status["last_fire"]["status"] == "interrupted"
    assert status["last_fire"]["reasons"] == ["data_drift"]
    [entry] = await registry.audit(model="churn", action="retraining_trigger")
    assert "interrupted by shutdown" in entry.reason
    # still within the cooldown: a restarted monitor does not fire again
    assert await mon.evaluate("churn") is None
