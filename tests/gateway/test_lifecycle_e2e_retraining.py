"""Issue 6 end to end: the retraining trigger of the running server calls a real webhook.

A real HTTP receiver on loopback records every call. The server is the real app (lifespan,
monitoring, lifecycle); the monitor evaluates every 50 ms. Two production models share one
estimator: ``churn`` was trained 40 days ago (lineage ``training.date``), ``fresh`` today.

* ``scheduled`` (churn): one webhook call per cooldown, however many evaluations run and
  across a server restart; shortening the cooldown through the admin API lets the next one
  through, never two within a cooldown;
* a failing webhook is retried with backoff, and the firing is recorded once;
* each other reason fires on traffic built for it (fresh): after calm traffic that fires
  nothing, shifted inputs fire ``data_drift``, inputs near the decision boundary
  ``low_confidence``, wrong labels ``performance_degradation``, enough labels
  ``new_data_available``; each alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from registry.models import Stage
from registry.sqlite.store import open_registry
from tests.support import asgi_app
from tests.support.polling import wait_until_async
from tests.support.registry_copy import build_template, private_copy

TOKEN = "webhook-e2e-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
HOOK_TOKEN = "hook-secret"
FEATURES = ["tenure", "spend", "visits", "tickets"]


class Receiver:
    """A webhook endpoint on 127.0.0.1: records each POST; the first ``fail_first`` get 503."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver.lock:
                    receiver.calls.append(
                        {
                            "at": time.time(),
                            "path": self.path,
                            "authorization": self.headers.get("authorization"),
                            "content_type": self.headers.get("content-type"),
                            "body": json.loads(body),
                        }
                    )
                    failing = len(receiver.calls) <= receiver.fail_first
                self.send_response(503 if failing else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/retrain?team=ml"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def count(self, model: str | None = None) -> int:
        with self.lock:
            return sum(1 for c in self.calls if model in (None, c["body"]["model"]))


def truth(rows: np.ndarray) -> np.ndarray:
    """The rule the data follows (and the labels the clients send back)."""
    return (rows[:, 0] + 0.5 * rows[:, 1] > 0).astype(int)


async def build(root: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    from converters import publish

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(1000, 4)).astype(np.float32), columns=FEATURES)
    data = x.assign(churned=truth(x.to_numpy()))
    model = LogisticRegression().fit(x, data["churned"])
    old = (datetime.now(UTC) - timedelta(days=40)).date().isoformat()
    today = datetime.now(UTC).date().isoformat()
    registry = await open_registry(root)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, trained in (("churn", old), ("fresh", today)):
                metadata = {"training": {"date": trained}}
                await publish(
                    registry, name, model, data, "churned", version="1.0.0", metadata=metadata
                )
                await registry.set_stage(name, "1.0.0", Stage.PRODUCTION)
    finally:
        await registry.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory, "lifecycle-webhook", build)


@pytest.fixture
def home(template: Path, tmp_path: Path) -> Path:
    return private_copy(template, tmp_path)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    try:
        yield hook
    finally:
        hook.close()


def configure(monkeypatch: pytest.MonkeyPatch, url: str, cooldown_s: float) -> None:
    monkeypatch.setenv("MODELGATE_RETRAIN_WEBHOOK", url)
    monkeypatch.setenv("MODELGATE_RETRAIN_WEBHOOK_TOKEN", HOOK_TOKEN)
    monkeypatch.setenv("MODELGATE_RETRAIN_COOLDOWN_S", str(cooldown_s))
    monkeypatch.setenv("MODELGATE_RETRAIN_EVERY_S", "0.05")
    monkeypatch.setenv("MODELGATE_RETRAIN_BACKOFF_S", "0.05")
    monkeypatch.setenv("MODELGATE_RETRAIN_ATTEMPTS", "3")
    monkeypatch.setenv("MODELGATE_LEADER_RETRY_S", "0.05")
    monkeypatch.delenv("MODELGATE_RETRAIN_COMMAND", raising=False)
    monkeypatch.delenv("MODELGATE_RETRAIN_POLICY", raising=False)


@contextlib.asynccontextmanager
async def running_gateway(home: Path, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The real app with its lifespan, which starts and stops the lifecycle."""
    async with asgi_app.running_gateway(home, TOKEN, poll_interval_ms=20, **overrides) as served:
        yield served.http


async def until(condition: Any, timeout: float = 20.0) -> None:
    await wait_until_async(condition, timeout, 0.02, message="condition")


async def settled(http: httpx.AsyncClient, model: str) -> dict[str, Any]:
    """The retraining report once the last firing's delivery has finished."""

    async def report() -> dict[str, Any]:
        return (await http.get(f"/admin/models/{model}/retraining", headers=AUTH)).json()

    def delivered(report: dict[str, Any]) -> bool:
        last = report["trigger"]["last_fire"]
        return last is not None and last["status"] != "delivering"

    return await wait_until_async(report, 20.0, 0.02, done=delivered, message="delivery")


@pytest.mark.slow
async def test_one_webhook_call_per_cooldown_across_restarts(
    home: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, receiver.url, cooldown_s=3600)
    async with running_gateway(home) as http:
        await until(lambda: receiver.count() >= 1)
        await asyncio.sleep(1.0)  # ~20 more evaluations, all within the cooldown
        assert receiver.count() == 1
        report = await settled(http, "churn")
        fresh = (await http.get("/admin/models/fresh/retraining", headers=AUTH)).json()

    [call] = receiver.calls
    assert call["path"] == "/retrain?team=ml"
    assert call["authorization"] == f"Bearer {HOOK_TOKEN}"
    assert call["content_type"] == "application/json"
    body = call["body"]
    assert body["event"] == "retraining_needed" and body["model"] == "churn"
    assert body["version"] == "1.0.0" and body["reasons"] == ["scheduled"]
    assert 39.9 < body["values"]["scheduled"] < 41 and body["thresholds"]["scheduled"] == 30
    assert report["retrain"] is True and report["triggered"] == ["scheduled"]
    trigger = report["trigger"]
    assert trigger["configured"] and trigger["cooldown_s"] == 3600
    assert trigger["webhook"].endswith("/retrain") and "team=ml" not in trigger["webhook"]
    assert trigger["last_fire"]["status"] == "ok"
    assert trigger["last_fire"]["results"][0]["attempts"] == 1
    assert fresh["retrain"] is False and fresh["trigger"]["last_fired_at"] is None

    # a restarted server remembers the firing: still one call within the cooldown
    async with running_gateway(home) as http:
        await asyncio.sleep(1.0)
        assert receiver.count() == 1
        # an operator shortens the cooldown: the next evaluation out of it fires again
        put = await http.put(
            "/admin/models/churn/retraining", json={"cooldown_s": 0.4}, headers=AUTH
        )
        assert put.status_code == 200, put.text
        await until(lambda: receiver.count() >= 3)
        await settled(http, "churn")
    registry = await open_registry(home)
    try:
        audited = await registry.audit(model="churn", action="retraining_trigger")
    finally:
        await registry.close()

    fired = [datetime.fromisoformat(c["body"]["fired_at"]) for c in receiver.calls]
    gaps = [(b - a).total_seconds() for a, b in zip(fired, fired[1:], strict=False)]
    assert all(gap >= 0.4 for gap in gaps), gaps
    assert {c["body"]["model"] for c in receiver.calls} == {"churn"}
    assert len(audited) == receiver.count()


async def test_a_failing_webhook_is_retried_and_the_firing_recorded_once(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver(fail_first=2)
    try:
        configure(monkeypatch, receiver.url, cooldown_s=3600)
        async with running_gateway(home) as http:
            await until(lambda: receiver.count() >= 3)
            report = await settled(http, "churn")
            await asyncio.sleep(0.5)
            assert receiver.count() == 3
    finally:
        receiver.close()
    fire = report["trigger"]["last_fire"]
    assert fire["status"] == "ok" and fire["reasons"] == ["scheduled"]
    assert fire["results"] == [
        {
            "target": "webhook",
            "status": "ok",
            "attempts": 3,
            "error": None,
            "finished_at": fire["results"][0]["finished_at"],
        }
    ]
    # the same payload each attempt: one firing, delivered on the third try
    assert len({json.dumps(c["body"], sort_keys=True) for c in receiver.calls}) == 1


# --- each reason on data built for it ---------------------------------------------------

MIN_SAMPLES = 400  # rows before drift and low-confidence rates count (MODELGATE_DRIFT_MIN_SAMPLES)


def calm_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(size=(n, 4))


def drifted_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    rows = rng.normal(size=(n, 4))
    rows[:, 2] += 1.5  # "visits" moved; the model barely uses it, so it stays confident
    return rows


def boundary_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """A third of the rows near the decision boundary, the rest as in training: the model
    hesitates on many rows while no feature's distribution moves much (PSI ~ 0.1)."""
    near: list[np.ndarray] = []
    while sum(len(block) for block in near) < n // 3:
        block = rng.normal(size=(20_000, 4))
        near.append(block[np.abs(block[:, 0] + 0.5 * block[:, 1]) < 0.05])
    rows = np.vstack([np.vstack(near)[: n // 3], rng.normal(size=(n - n // 3, 4))])
    return rows[rng.permutation(n)]


class Client:
    """Sends rows to /predict/fresh in requests of 50 and, when asked, labels them."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.sent = 0

    async def predict(self, rows: np.ndarray, labels: np.ndarray | None = None) -> None:
        for start in range(0, len(rows), 50):
            chunk = rows[start : start + 50]
            self.sent += 1
            body = {"id": f"batch-{self.sent}", "instances": chunk.tolist()}
            response = await self.http.post("/predict/fresh", json=body)
            assert response.status_code == 200, response.text
            if labels is not None:
                label = {"id": body["id"], "label": labels[start : start + 50].tolist()}
                answer = await self.http.post("/v2/models/fresh/feedback", json=label)
                assert answer.status_code == 200, answer.text
                assert answer.json()["accepted"] == 1, answer.text


async def feed_drift(client: Client, rng: np.random.Generator) -> None:
    await client.predict(drifted_rows(rng, 800))


async def feed_low_confidence(client: Client, rng: np.random.Generator) -> None:
    await client.predict(boundary_rows(rng, 1500))


async def feed_wrong_labels(client: Client, rng: np.random.Generator) -> None:
    rows = calm_rows(rng, 150)
    await client.predict(rows, 1 - truth(rows))


async def feed_new_labels(client: Client, rng: np.random.Generator) -> None:
    rows = calm_rows(rng, 150)
    await client.predict(rows, truth(rows))


async def feed_calm(client: Client, rng: np.random.Generator, labelled: bool) -> None:
    rows = calm_rows(rng, MIN_SAMPLES + 100)
    await client.predict(rows, truth(rows) if labelled else None)


FEEDS = {
    "data_drift": (feed_drift, False),
    "low_confidence": (feed_low_confidence, False),
    "performance_degradation": (feed_wrong_labels, True),
    "new_data_available": (feed_new_labels, True),
}


@pytest.mark.parametrize("reason", list(FEEDS))
async def test_each_reason_fires_on_data_built_for_it(
    reason: str, home: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, receiver.url, cooldown_s=3600)
    monkeypatch.setenv("MODELGATE_RETRAIN_MIN_LABELS", "50")
    feed, labelled = FEEDS[reason]
    rng = np.random.default_rng(11)
    url = "/admin/models/fresh/retraining"
    async with running_gateway(home, drift_min_samples=MIN_SAMPLES) as http:
        # 500 labelled answers are new data only from 1,000 on (the default is 10,000)
        put = await http.put(
            url, json={"policy": {"min_new_samples_for_retrain": 1000}}, headers=AUTH
        )
        assert put.status_code == 200, put.text
        client = Client(http)
        await feed_calm(client, rng, labelled)
        await asyncio.sleep(0.5)  # ~10 evaluations of calm data
        calm = (await http.get(url, headers=AUTH)).json()
        assert receiver.count("fresh") == 0 and calm["retrain"] is False, calm
        values = {r["reason"]: r["value"] for r in calm["reasons"]}
        assert values["data_drift"] is not None and values["data_drift"] < 0.2
        assert values["low_confidence"] is not None and values["low_confidence"] < 0.15
        if labelled:
            assert values["performance_degradation"] > 0.85
            assert values["new_data_available"] == MIN_SAMPLES + 100
        if reason == "new_data_available":  # the next 150 labels cross it
            await http.put(url, json={"policy": {"min_new_samples_for_retrain": 600}}, headers=AUTH)
        await feed(client, rng)
        await until(lambda: receiver.count("fresh") >= 1)
        report = await settled(http, "fresh")

    [call] = [c for c in receiver.calls if c["body"]["model"] == "fresh"]
    assert call["body"]["reasons"] == [reason]
    assert report["triggered"] == [reason], report
    fired = next(r for r in report["reasons"] if r["reason"] == reason)
    assert fired["triggered"] and fired["value"] is not None
    assert call["body"]["values"][reason] == pytest.approx(fired["value"], rel=0.5)
