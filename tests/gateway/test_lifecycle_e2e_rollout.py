"""Issue 6 end to end: automated canary rollouts through the real app, on short intervals.

Real scikit-learn models converted to ONNX and registered in a real SQLite registry; the
app built by ``create_app`` with its lifespan (publisher, watcher), the lifecycle started
(leader election, rollout controller, retraining monitor); traffic sent over HTTP to
``/predict/churn`` while the controller decides.

* The champion imputes missing values; the broken candidate was trained without an
  imputer, so its schema rejects the rows with a missing value (400) that production
  answers: it is rolled back after ``max_failed_checks`` failed analyses, from the metrics
  and, with monitoring off, from the data plane's own counters.
* A candidate trained on flipped labels answers every row, as confidently and with the
  same class mix as production, but wrongly: the clients' label feedback
  (``POST /v2/models/{name}/feedback``) gives it away and it is rolled back.
* A candidate as good as the champion goes through every step and becomes production.
* A rollout interrupted by a server restart (with its traffic change lost, as if the
  process died between two writes) resumes at its persisted step and finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from gateway.monitoring.metrics.prometheus import get_metrics
from registry.models import Deployment, Route, Stage
from registry.sqlite.store import open_registry
from tests.support import asgi_app
from tests.support.polling import wait_until_async
from tests.support.registry_copy import build_template, private_copy

pytestmark = pytest.mark.slow  # rollouts stepping in real time

MODEL = "churn"
CHAMPION, GOOD, BROKEN, WRONG = "1.0.0", "1.1.0", "1.2.0", "1.3.0"
TOKEN = "lifecycle-e2e-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
ROLLOUT = f"/admin/models/{MODEL}/rollout"
FEATURES = ["tenure", "spend", "visits", "tickets"]
# latency is not what these tests are about: in-process timings on a shared 2-core box
# are noisy, so the p99 check gets a wide slack
THRESHOLDS = {"p99_latency_slack_ms": 250.0}


def training_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, 4)).astype(np.float32), columns=FEATURES)
    return x.assign(churned=(x["tenure"] + 0.5 * x["spend"] > 0).astype(int))


async def build_home(root: Path) -> None:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from converters import publish

    frame = training_frame()
    x, y = frame[FEATURES], frame["churned"]
    registry = await open_registry(root)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            models = (
                (CHAMPION, make_pipeline(SimpleImputer(), LogisticRegression())),
                (GOOD, make_pipeline(SimpleImputer(), LogisticRegression(C=0.5))),
                # no imputer: its schema says allow_missing = false
                (BROKEN, LogisticRegression()),
            )
            for version, estimator in models:
                await publish(
                    registry, MODEL, estimator.fit(x, y), frame, "churned", version=version
                )
            # confidently wrong: learnt the opposite labels
            wrong = make_pipeline(SimpleImputer(), LogisticRegression()).fit(x, 1 - y)
            await publish(registry, MODEL, wrong, frame, "churned", version=WRONG)
        await registry.set_stage(MODEL, CHAMPION, Stage.PRODUCTION)
        for version in (GOOD, BROKEN, WRONG):
            await registry.set_stage(MODEL, version, Stage.STAGING)
    finally:
        await registry.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory, "lifecycle-rollout", build_home)


@pytest.fixture
def home(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELGATE_ROLLOUT_TICK_S", "0.05")
    monkeypatch.setenv("MODELGATE_LEADER_RETRY_S", "0.05")
    for var in ("MODELGATE_RETRAIN_WEBHOOK", "MODELGATE_RETRAIN_COMMAND"):
        monkeypatch.delenv(var, raising=False)
    return private_copy(template, tmp_path)


class Gateway:
    def __init__(self, http: httpx.AsyncClient, state: Any) -> None:
        self.http, self.state = http, state

    async def served(self, n: int = 30) -> Counter[str]:
        """Versions answering ``n`` routed requests once this worker serves the registry's
        latest routing (the controller publishes its change right after its tick)."""

        async def published() -> bool:
            generation = await self.state.registry.generation()
            return self.state.holder.current.generation == generation

        await wait_for(published)
        seen: Counter[str] = Counter()
        for _ in range(n):
            response = await self.http.post(f"/predict/{MODEL}", json={"instances": [[0.1] * 4]})
            assert response.status_code == 200, response.text
            seen[response.headers["x-model-version"]] += 1
        return seen


@contextlib.asynccontextmanager
async def running_gateway(home: Path, monitoring: bool = True) -> AsyncIterator[Gateway]:
    """The real app with its lifespan, which starts and stops the lifecycle."""
    async with asgi_app.running_gateway(
        home, TOKEN, poll_interval_ms=20, monitoring=monitoring
    ) as served:
        yield Gateway(served.http, served.state)


class Traffic:
    """Clients sending /predict requests until stopped; ``missing`` of the rows carry a
    missing value (JSON null), which an imputing model answers and the others reject. With
    ``labels`` every answer gets its true label as feedback right after."""

    def __init__(
        self, http: httpx.AsyncClient, missing: float = 0.0, labels: bool = False, workers: int = 3
    ) -> None:
        self.http, self.missing, self.labels = http, missing, labels
        self.answers: Counter[tuple[str, int]] = Counter()
        self.feedback: Counter[str] = Counter()
        self.rng = np.random.default_rng(7)
        self.sent = 0
        self._tasks = [asyncio.create_task(self._client()) for _ in range(workers)]

    def row(self) -> list[float | None]:
        values: list[float | None] = [float(v) for v in self.rng.normal(size=4)]
        if self.rng.random() < self.missing:
            values[int(self.rng.integers(4))] = None
        return values

    async def _client(self) -> None:
        while True:
            row = self.row()
            self.sent += 1
            body = {"id": f"req-{self.sent}", "instances": [row]}
            response = await self.http.post(f"/predict/{MODEL}", json=body)
            version = response.headers.get("x-model-version", "?")
            self.answers[(version, response.status_code)] += 1
            if self.labels and response.status_code == 200:
                truth = int(row[0] + 0.5 * row[1] > 0)  # the rule the data was made with
                label = {"id": body["id"], "label": truth}
                answer = await self.http.post(f"/v2/models/{MODEL}/feedback", json=label)
                assert answer.status_code == 200, answer.text
                self.feedback[version] += answer.json()["accepted"]
            await asyncio.sleep(0.002)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def wait_for(
    check: Callable[[], Awaitable[Any]], timeout: float = 25.0, every: float = 0.05
) -> Any:
    return await wait_until_async(check, timeout, every, message="condition")


def rollout_state(http: httpx.AsyncClient) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def read() -> dict[str, Any]:
        response = await http.get(ROLLOUT, headers=AUTH)
        assert response.status_code == 200, response.text
        return response.json()

    return read


def finished(http: httpx.AsyncClient) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    read = rollout_state(http)

    async def check() -> dict[str, Any] | None:
        state = await read()
        return state if state["status"] != "running" and state["applied"] else None

    return check


async def registry_view(home: Path) -> tuple[dict[str, Stage], dict[str, float], list[Any]]:
    registry = await open_registry(home)
    try:
        stages = {v.version: v.stage for v in await registry.list_versions(MODEL)}
        deployment = await registry.get_deployment(MODEL)
        audit = await registry.audit(model=MODEL, limit=500)
    finally:
        await registry.close()
    return stages, {r.version: r.weight for r in deployment.routes}, audit


def rollbacks(reason: str) -> float:
    value = get_metrics().registry.get_sample_value(
        "modelgate_rollbacks_total", {"model": MODEL, "reason": reason}
    )
    return value or 0.0


@pytest.mark.parametrize("monitoring", [True, False], ids=["metrics", "counters"])
async def test_a_candidate_that_rejects_production_inputs_is_rolled_back(
    home: Path, monitoring: bool
) -> None:
    before = rollbacks("canary_error_rate")
    async with running_gateway(home, monitoring) as gw:
        http = gw.http
        traffic = Traffic(http, missing=0.3)
        body = {
            "candidate": BROKEN,
            "steps": [25, 50, 100],
            "interval_s": 3,
            "min_requests": 20,
            "max_failed_checks": 2,
            "thresholds": THRESHOLDS,
        }
        started = await http.post(ROLLOUT, json=body, headers=AUTH)
        assert started.status_code == 201, started.text
        assert started.json()["weights"] == {CHAMPION: 75.0, BROKEN: 25.0}
        try:
            done = await wait_for(finished(http))
        finally:
            await traffic.stop()
        after = await gw.served()

    assert done["status"] == "rolled_back", done
    assert done["step"] == 0 and done["failures"] == 2  # never left the first step
    failed = [entry for entry in done["history"] if entry["verdict"] == "fail"]
    assert len(failed) == 2 and len(done["history"]) == 2
    for entry in failed:
        error_rate = next(c for c in entry["checks"] if c["name"] == "error_rate")
        assert error_rate["status"] == "fail"
        assert error_rate["value"] > 0.1 and error_rate["baseline"] == 0.0
    statuses = {c["name"]: c["status"] for c in failed[-1]["checks"]}
    if monitoring:  # the metrics also carry confidence and classes
        assert statuses["low_confidence"] != "skipped"
        assert statuses["prediction_drift"] != "skipped"
    else:  # the data plane's counters: requests and errors only
        assert {name for name, st in statuses.items() if st != "skipped"} == {"error_rate"}
    # the broken candidate really answered 400 to the rows production served
    assert traffic.answers[(BROKEN, 400)] > 0 and traffic.answers[(CHAMPION, 400)] == 0
    assert after == {CHAMPION: 30}
    stages, weights, audit = await registry_view(home)
    assert weights == {CHAMPION: 100.0}
    assert stages[CHAMPION] == Stage.PRODUCTION and stages[BROKEN] == Stage.STAGING
    actions = [(e.action, e.actor) for e in audit]
    assert ("rollout_rollback", "rollout-controller") in actions
    assert ("rollout_analysis", "rollout-controller") in actions
    assert rollbacks("canary_error_rate") == before + 1


async def test_a_confidently_wrong_candidate_is_caught_by_label_feedback(home: Path) -> None:
    before = rollbacks("canary_accuracy")
    async with running_gateway(home) as gw:
        http = gw.http
        traffic = Traffic(http, labels=True)
        body = {
            "candidate": WRONG,
            "steps": [30, 60, 100],
            "interval_s": 5,
            "min_requests": 20,
            "max_failed_checks": 1,
            "thresholds": THRESHOLDS,
        }
        started = await http.post(ROLLOUT, json=body, headers=AUTH)
        assert started.status_code == 201, started.text
        try:
            done = await wait_for(finished(http))
        finally:
            await traffic.stop()
        after = await gw.served()

    assert done["status"] == "rolled_back", done
    [entry] = done["history"]
    checks = {c["name"]: c for c in entry["checks"]}
    accuracy = checks["accuracy"]
    assert accuracy["status"] == "fail", accuracy
    assert accuracy["value"] < 0.3 and accuracy["baseline"] > 0.9
    # nothing else gives it away: it answers, as confidently, the same mix of classes
    assert checks["error_rate"]["status"] == "pass"
    assert checks["low_confidence"]["status"] == "pass"
    assert checks["prediction_drift"]["status"] == "pass"
    assert traffic.feedback[WRONG] >= 30 and traffic.feedback[CHAMPION] >= 30
    assert after == {CHAMPION: 30}
    assert rollbacks("canary_accuracy") == before + 1
    stages, weights, _ = await registry_view(home)
    assert weights == {CHAMPION: 100.0} and stages[WRONG] == Stage.STAGING


async def test_a_good_candidate_is_promoted_through_every_step(home: Path) -> None:
    steps = [20, 50, 100]
    async with running_gateway(home) as gw:
        http = gw.http
        traffic = Traffic(http)
        body = {
            "candidate": GOOD,
            "steps": steps,
            "interval_s": 1.0,
            "min_requests": 15,
            "thresholds": THRESHOLDS,
        }
        started = await http.post(ROLLOUT, json=body, headers=AUTH)
        assert started.status_code == 201, started.text
        try:
            done = await wait_for(finished(http))
        finally:
            await traffic.stop()
        served = await gw.served(20)

    assert done["status"] == "promoted", done
    assert done["failures"] == 0
    assert [(e["step"], e["canary_weight"], e["verdict"]) for e in done["history"]] == [
        (1, 20.0, "pass"),
        (2, 50.0, "pass"),
        (3, 100.0, "pass"),
    ]
    for entry in done["history"]:
        assert entry["requests"]["canary"] >= 15
    assert traffic.answers[(GOOD, 200)] > 0 and traffic.answers[(CHAMPION, 200)] > 0
    assert not [key for key in traffic.answers if key[1] != 200]
    assert served == {GOOD: 20}
    stages, weights, audit = await registry_view(home)
    assert stages[GOOD] == Stage.PRODUCTION and stages[CHAMPION] == Stage.ARCHIVED
    assert weights == {GOOD: 100.0}
    step_rows = [e for e in audit if e.action == "rollout_step"]
    assert len(step_rows) == len(steps) - 1


async def test_a_rollout_resumes_at_its_step_after_a_restart(home: Path) -> None:
    body = {
        "candidate": GOOD,
        "steps": [20, 50, 100],
        # 2 s per step: enough requests per interval even on a busy 2-core machine
        "interval_s": 2.0,
        "min_requests": 15,
        # the two versions are different models: on a few dozen random rows per step their
        # predicted-class PSI and low-confidence rates differ by chance often enough to fail
        # an analysis now and then (one CI run); what a restart could break is the resumed
        # step, errors and latency, which keep their limits (as in the crash-survival test)
        "thresholds": {
            **THRESHOLDS,
            "max_prediction_psi": 100.0,
            "max_low_confidence_increase": 1.0,
        },
    }
    async with running_gateway(home) as gw:
        http = gw.http
        traffic = Traffic(http)
        started = await http.post(ROLLOUT, json=body, headers=AUTH)
        assert started.status_code == 201, started.text
        read = rollout_state(http)

        async def at_step_two() -> dict[str, Any] | None:
            state = await read()
            return state if state["step"] >= 1 else None

        try:
            before = await wait_for(at_step_two)
        finally:
            await traffic.stop()
    # the server is down; as if it had died between writing step 2 and applying it:
    registry = await open_registry(home)
    try:
        lost = Deployment(MODEL, routes=(Route(CHAMPION, 80.0), Route(GOOD, 20.0)))
        await registry.set_deployment(lost, actor="test", reason="simulated lost write")
        stored = await registry.get_state(f"rollout:{MODEL}")
    finally:
        await registry.close()
    assert stored["status"] == "running" and stored["step"] == before["step"]

    async with running_gateway(home) as gw:
        http = gw.http
        traffic = Traffic(http)
        try:
            done = await wait_for(finished(http))
        finally:
            await traffic.stop()

    assert done["status"] == "promoted", done
    assert done["id"] == before["id"] and done["failures"] == 0, done["history"]
    # step 1 was analysed once, before the restart; the resumed rollout went on from step 2
    assert [e["step"] for e in done["history"]] == [1, 2, 3]
    stages, weights, audit = await registry_view(home)
    assert stages[GOOD] == Stage.PRODUCTION and weights == {GOOD: 100.0}
    resumed = [e for e in audit if e.action == "rollout_step" and "resumed" in e.reason]
    assert len(resumed) == 1 and resumed[0].after["routes"] == [
        {"version": CHAMPION, "weight": 50.0},
        {"version": GOOD, "weight": 50.0},
    ]
