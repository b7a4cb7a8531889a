"""Issue 6 on the real server: ``modelgate serve --workers 2`` (uvicorn, two processes).

One worker leads the control plane (``<home>/controller.lock`` holds its pid); the canary
analysis reads the metrics of both workers. The server is killed (SIGKILL, no shutdown)
in the middle of a rollout and started again: the new leader adopts the rollout at its
persisted step and promotes the candidate.
"""

from __future__ import annotations

import asyncio
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest

from registry.models import Stage
from registry.sqlite.store import open_registry
from tests.support.gateway_process import GatewayProcess
from tests.support.polling import wait_until_async

pytestmark = pytest.mark.slow  # a rollout across a real server crash

MODEL, CHAMPION, CANDIDATE = "churn", "1.0.0", "1.1.0"
TOKEN = "uvicorn-lifecycle-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
FEATURES = ["tenure", "spend", "visits", "tickets"]
ROLLOUT = f"/admin/models/{MODEL}/rollout"


def start(home: Path, log: Path) -> GatewayProcess:
    return GatewayProcess(
        home,
        log,
        ["--workers", "2"],
        env={
            "MODELGATE_ROLLOUT_TICK_S": "0.1",
            "MODELGATE_LEADER_RETRY_S": "0.2",
            "MODELGATE_POLL_INTERVAL_MS": "50",
        },
        token=TOKEN,
    )


async def build(root: Path) -> None:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from converters import publish

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(600, 4)).astype(np.float32), columns=FEATURES)
    frame = x.assign(churned=(x["tenure"] + 0.5 * x["spend"] > 0).astype(int))
    registry = await open_registry(root)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for version, c in ((CHAMPION, 1.0), (CANDIDATE, 0.5)):
                model = make_pipeline(SimpleImputer(), LogisticRegression(C=c))
                model.fit(x, frame["churned"])
                await publish(registry, MODEL, model, frame, "churned", version=version)
        await registry.set_stage(MODEL, CHAMPION, Stage.PRODUCTION)
        await registry.set_stage(MODEL, CANDIDATE, Stage.STAGING)
    finally:
        await registry.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = tmp_path / "home"
    asyncio.run(build(root))
    return root


class Traffic:
    """Clients on fresh connections (so both workers answer) until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: Counter[tuple[str, int]] = Counter()
        self.rng = np.random.default_rng(3)
        self._tasks = [asyncio.create_task(self._client()) for _ in range(3)]

    async def _client(self) -> None:
        while True:
            async with httpx.AsyncClient(base_url=self.url, timeout=5) as http:
                for _ in range(20):
                    row = [float(v) for v in self.rng.normal(size=4)]
                    try:
                        response = await http.post(f"/predict/{MODEL}", json={"instances": [row]})
                    except httpx.TransportError:  # the server was killed under us
                        await asyncio.sleep(0.05)
                        break
                    version = response.headers.get("x-model-version", "?")
                    self.answers[(version, response.status_code)] += 1
                    await asyncio.sleep(0.003)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def rollout(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        response = await http.get(ROLLOUT, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


async def until(url: str, done: Any, timeout: float = 25.0) -> dict[str, Any]:
    return await wait_until_async(lambda: rollout(url), timeout, 0.1, done=done, message="rollout")


def leader_pid(home: Path) -> int:
    return int((home / "controller.lock").read_text().strip() or 0)


def worker_pids(server: GatewayProcess) -> set[int]:
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text()
    return {int(pid) for pid in children.split()}


async def require_wiring(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        response = await http.get(ROLLOUT, headers=AUTH)
    assert response.status_code == 404 and "no rollout" in response.text, (
        "the lifecycle is not wired into the server: gateway/app.py must start and stop it "
        "(start_lifecycle / stop_lifecycle) and gateway/routes.py serve lifecycle_routes() "
        f"(GET {ROLLOUT} answered {response.status_code} {response.text[:100]})"
    )


async def test_a_rollout_survives_a_server_crash(home: Path, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    first = start(home, log)
    try:
        first.wait_ready()
        await require_wiring(first.url)
        await wait_until_async(
            lambda: leader_pid(home) in worker_pids(first), 10, 0.1, message="a worker leads"
        )
        body = {
            "candidate": CANDIDATE,
            "steps": [20, 50, 100],
            "interval_s": 1.5,
            "min_requests": 15,
            # the two versions are different models: on ~40 random rows per side, their
            # predicted-class PSI and low-confidence rates differ by chance often enough
            # (p < 0.01 about once in a hundred runs) to fail a step; what a crash could
            # break is errors and latency, which keep their limits
            "thresholds": {
                "p99_latency_slack_ms": 250.0,
                "max_prediction_psi": 100.0,
                "max_low_confidence_increase": 1.0,
            },
        }
        async with httpx.AsyncClient(base_url=first.url, timeout=5) as http:
            started = await http.post(ROLLOUT, json=body, headers=AUTH)
        assert started.status_code == 201, started.text
        traffic = Traffic(first.url)
        try:
            before = await until(first.url, lambda s: s["step"] >= 1)
        finally:
            await traffic.stop()
        first.kill()
    finally:
        first.stop()
    assert before["status"] == "running"
    # every analysis before the crash belongs to the first step (an analysis that found too
    # little data on a busy machine may precede the passing one)
    assert {e["step"] for e in before["history"]} == {1}

    second = start(home, log)
    try:
        second.wait_ready()
        traffic = Traffic(second.url)
        try:
            done = await until(second.url, lambda s: s["status"] != "running" and s["applied"])
        finally:
            await traffic.stop()
        assert leader_pid(home) in worker_pids(second)
        served = Counter()
        async with httpx.AsyncClient(base_url=second.url, timeout=5) as http:
            await asyncio.sleep(0.3)  # both workers' watchers poll every 50 ms
            for _ in range(20):
                response = await http.post(f"/predict/{MODEL}", json={"instances": [[0.1] * 4]})
                served[response.headers["x-model-version"]] += 1
        # counted while serving: during shutdown uvicorn stops the workers one at a time,
        # and the one still running rightly takes over from the one already gone
        leads = log.read_text().count("leads the control plane")
    finally:
        second.stop()

    assert leads == 2, log.read_text()  # one leader per server start, not one per worker
    assert done["status"] == "promoted", done
    assert done["id"] == before["id"], orjson.dumps(done).decode()
    # on a loaded machine an interval can end with too few requests ("insufficient": the
    # step is analysed again, and counted as a failure); no check ever failed
    verdicts = [e["verdict"] for e in done["history"]]
    assert set(verdicts) <= {"pass", "insufficient"}, orjson.dumps(done).decode()
    assert done["failures"] == verdicts.count("insufficient")
    passed = [e for e in done["history"] if e["verdict"] == "pass"]
    assert [e["step"] for e in passed] == [1, 2, 3]
    # the crash lost step 2's in-memory readings, not its place: step 2 was analysed on
    # traffic after the restart, from both workers' metrics
    assert passed[1]["requests"]["canary"] >= 15
    assert served == {CANDIDATE: 20}
    registry = await open_registry(home)
    try:
        assert (await registry.get_model(MODEL)).production_version == CANDIDATE
        adopted = await registry.audit(model=MODEL, actor="rollout-controller")
    finally:
        await registry.close()
    assert any(e.action == "stage" and e.version == CANDIDATE for e in adopted)
