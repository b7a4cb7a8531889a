"""The leader's experiment controller on the real app and registry: outcomes and
assignments written to the registry as the feedback path writes them, one look per tick."""

from __future__ import annotations

from typing import Any

from gateway.experiments.controller import ExperimentController
from gateway.experiments.store import Experiments
from gateway.monitoring.metrics.experiments import PrometheusExperimentMetrics
from gateway.monitoring.metrics.prometheus import MetricsRegistry
from registry.outcomes import OutcomeRow
from registry.sqlite.store import open_registry
from tests.support.admin_gateway import ADMIN_AUTH, ADMIN_TOKEN, ROW, AdminGateway
from tests.support.asgi_app import running_gateway

URL = "/admin/models/clf/experiment"


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "variants": {"1.0.0": 50, "1.1.0": 50},
        "metrics": [{"name": "conversion", "kind": "binary", "baseline": 0.1}],
        "mde": 0.05,
        "mde_kind": "absolute",
    }
    return {**body, **changes}


def _rows(experiment: str, metric: str, version: str, n: int, ones: int) -> list[OutcomeRow]:
    """``n`` binary outcomes of which ``ones`` are 1 (deterministic: no sampling noise)."""
    return [
        OutcomeRow(f"id:{version}-{metric}-{i}", metric, experiment, version, float(i < ones))
        for i in range(n)
    ]


async def _write(gw: AdminGateway, experiment: str, rows: list[OutcomeRow], counts: dict) -> None:
    registry = await open_registry(gw.home)
    try:
        await registry.add_outcomes("clf", rows)
        await registry.add_assignments(experiment, counts)
    finally:
        await registry.close()


def _controller(gw: AdminGateway, metrics: MetricsRegistry | None = None) -> ExperimentController:
    state = gw.state
    experiments = Experiments(
        state.registry,
        gw.home,
        state.registry,
        actor="experiment-controller",
        publisher=state.publisher,
        settings=state.settings,
    )
    gauges = PrometheusExperimentMetrics(metrics) if metrics is not None else None
    return ExperimentController(experiments, metrics=gauges)


async def _start(gw: AdminGateway, **changes: Any) -> dict[str, Any]:
    answer = await gw.http.post(URL, json=_body(**changes))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_planned_effect_wins_and_is_stored_with_its_numbers(admin_gw) -> None:
    started = await _start(admin_gw)
    experiment, n = started["id"], started["plan"]["n_per_variant"]
    controller = _controller(admin_gw)
    assert await controller.tick_model("clf") is False  # no outcomes yet: keep collecting
    shown = (await admin_gw.http.get(URL)).json()
    assert shown["looks"] == 1 and shown["results"]["metrics"]["conversion"]["outcome"] == (
        "continue"
    )
    rows = _rows(experiment, "conversion", "1.0.0", n, n // 10)
    rows += _rows(experiment, "conversion", "1.1.0", n, n // 4)  # 10 % -> 25 %
    await _write(admin_gw, experiment, rows, {"1.0.0": n, "1.1.0": n})
    assert await controller.tick_model("clf") is True
    result = (await admin_gw.http.get(URL)).json()
    assert result["status"] == "stopped" and result["stopped_by"] == "experiment-controller"
    assert result["verdict"]["outcome"] == "winner" and result["verdict"]["winner"] == "1.1.0"
    conversion = result["results"]["metrics"]["conversion"]
    assert conversion["variants"]["1.0.0"]["n"] == n
    assert conversion["variants"]["1.1.0"]["mean"] == (n // 4) / n
    assert conversion["difference"]["lower"] > 0 and conversion["fixed"] is not None
    assert result["results"]["srm"]["mismatch"] is False
    assert result["promotion"] is None
    traffic = (await admin_gw.http.get("/admin/models/clf/traffic")).json()
    assert traffic["routes"] == [{"version": "1.0.0", "weight": 100.0}]
    registry = await open_registry(admin_gw.home)
    try:
        (stop,) = await registry.audit(model="clf", action="experiment_stop", limit=5)
        states = await registry.audit(action="state", actor="experiment-controller", limit=5)
    finally:
        await registry.close()
    assert stop.actor == "experiment-controller" and "winner" in stop.reason
    stored = [e.after["value"] for e in states if e.after["key"] == "experiment/clf"]
    assert stored[0]["verdict"]["winner"] == "1.1.0"
    assert stored[0]["last_look"]["metrics"]["conversion"]["variants"]["1.1.0"]["n"] == n


async def test_a_skewed_assignment_stops_for_srm(admin_gw) -> None:
    started = await _start(admin_gw)
    experiment = started["id"]
    rows = _rows(experiment, "conversion", "1.0.0", 500, 50)
    rows += _rows(experiment, "conversion", "1.1.0", 500, 50)
    await _write(admin_gw, experiment, rows, {"1.0.0": 10_000, "1.1.0": 9_000})
    assert await _controller(admin_gw).tick_model("clf") is True
    result = (await admin_gw.http.get(URL)).json()
    assert result["verdict"]["outcome"] == "stopped_srm"
    assert result["results"]["srm"]["mismatch"] is True


async def test_a_broken_outcome_guardrail_stops_the_experiment(admin_gw) -> None:
    metrics = [
        {"name": "conversion", "kind": "binary", "baseline": 0.1},
        {"name": "complaints", "kind": "guardrail", "tolerance": 0.01},
    ]
    started = await _start(admin_gw, metrics=metrics)
    experiment = started["id"]
    rows = _rows(experiment, "conversion", "1.0.0", 500, 50)
    rows += _rows(experiment, "conversion", "1.1.0", 500, 50)
    rows += _rows(experiment, "complaints", "1.0.0", 500, 25)  # 5 %
    rows += _rows(experiment, "complaints", "1.1.0", 500, 100)  # 20 %
    await _write(admin_gw, experiment, rows, {"1.0.0": 500, "1.1.0": 500})
    assert await _controller(admin_gw).tick_model("clf") is True
    result = (await admin_gw.http.get(URL)).json()
    assert result["verdict"]["outcome"] == "stopped_guardrail"
    assert result["verdict"]["metrics"] == ["complaints"]
    assert result["results"]["metrics"]["complaints"]["outcome"] == "guardrail_breach"


async def _winning_run(gw: AdminGateway, **changes: Any) -> dict[str, Any]:
    started = await _start(gw, promote_winner=True, **changes)
    experiment, n = started["id"], started["plan"]["n_per_variant"]
    rows = _rows(experiment, "conversion", "1.0.0", n, n // 10)
    rows += _rows(experiment, "conversion", "1.1.0", n, n // 4)
    await _write(gw, experiment, rows, {"1.0.0": n, "1.1.0": n})
    assert await _controller(gw).tick_model("clf") is True
    return (await gw.http.get(URL)).json()


async def test_promote_winner_passes_the_gate(admin_gw) -> None:
    result = await _winning_run(admin_gw)
    assert result["promotion"]["status"] == "promoted"
    assert result["promotion"]["version"] == "1.1.0"
    model = (await admin_gw.http.get("/admin/models/clf")).json()
    assert model["production_version"] == "1.1.0"
    assert model["traffic"]["routes"] == [{"version": "1.1.0", "weight": 100.0}]
    assert (await admin_gw.served(5)).keys() == {"1.1.0"}


async def test_a_gate_refusal_is_recorded_and_the_control_keeps_production(admin_gw) -> None:
    def evaluation(value: float) -> dict:
        return {
            "dataset": {"fingerprint": "fp-test"},
            "primary_metric": {"name": "roc_auc", "value": value, "higher_is_better": True},
        }

    registry = await open_registry(admin_gw.home)
    try:
        await registry.save_evaluation("clf", "1.0.0", evaluation(0.90))
        await registry.save_evaluation("clf", "1.1.0", evaluation(0.70))
    finally:
        await registry.close()
    result = await _winning_run(admin_gw)
    assert result["verdict"]["winner"] == "1.1.0"
    assert result["promotion"]["status"] == "refused"
    assert (
        "gate" in result["promotion"]["reason"] and result["promotion"]["gate"]["passed"] is False
    )
    model = (await admin_gw.http.get("/admin/models/clf")).json()
    assert model["production_version"] == "1.0.0"
    assert model["traffic"]["routes"] == [{"version": "1.0.0", "weight": 100.0}]
    registry = await open_registry(admin_gw.home)
    try:
        (stop,) = await registry.audit(model="clf", action="experiment_stop", limit=5)
    finally:
        await registry.close()
    assert "promotion of 1.1.0 refused" in stop.reason


async def test_the_gauges_follow_the_looks(admin_gw) -> None:
    metrics = MetricsRegistry()
    started = await _start(admin_gw)
    experiment = started["id"]
    rows = _rows(experiment, "conversion", "1.0.0", 200, 20)
    rows += _rows(experiment, "conversion", "1.1.0", 200, 22)
    await _write(admin_gw, experiment, rows, {"1.0.0": 200, "1.1.0": 201})
    controller = _controller(admin_gw, metrics)
    assert await controller.tick_model("clf") is False
    text = metrics.render().decode()
    assert 'modelgate_experiment_running{model="clf"} 1.0' in text
    labels = f'experiment="{experiment}",model="clf",version="1.1.0"'
    assert f"modelgate_experiment_assignments{{{labels}}} 201.0" in text
    mean = f'experiment="{experiment}",metric="conversion",model="clf",version="1.1.0"'
    assert f"modelgate_experiment_metric_mean{{{mean}}} 0.11" in text
    pvalue = f'experiment="{experiment}",metric="conversion",model="clf"'
    assert f"modelgate_experiment_pvalue{{{pvalue}}} 1.0" in text
    assert (await admin_gw.http.request("DELETE", URL)).status_code == 200
    assert await controller.tick_model("clf") is False
    text = metrics.render().decode()
    assert 'modelgate_experiment_running{model="clf"} 0.0' in text
    assert experiment not in text


async def test_state_survives_a_restart_and_every_worker_sees_it(zoo_home) -> None:
    async with running_gateway(zoo_home, ADMIN_TOKEN, headers=ADMIN_AUTH) as first:
        answer = await first.http.post(URL, json=_body())
        assert answer.status_code == 200
        experiment = answer.json()["id"]
        async with running_gateway(zoo_home, ADMIN_TOKEN, headers=ADMIN_AUTH) as second:
            shown = (await second.http.get(URL)).json()
            assert shown["id"] == experiment and shown["status"] == "running"
            put = await second.http.put(
                "/admin/models/clf/traffic", json={"routes": [{"version": "1.0.0", "weight": 100}]}
            )
            assert put.status_code == 409 and put.json()["experiment"] == experiment
    async with running_gateway(zoo_home, ADMIN_TOKEN, headers=ADMIN_AUTH) as restarted:
        shown = (await restarted.http.get(URL)).json()
        assert shown["id"] == experiment and shown["status"] == "running"
        traffic = (await restarted.http.get("/admin/models/clf/traffic")).json()
        assert traffic["sticky"] is True and len(traffic["routes"]) == 2
        stopped = await restarted.http.request("DELETE", URL)
        assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"


async def test_outcomes_sent_to_the_feedback_endpoint_reach_the_look(admin_gw) -> None:
    started = await _start(admin_gw)
    arms: dict[str, str] = {}
    for user in range(60):
        key = f"user-{user}"
        answer = await admin_gw.anon.post("/predict/clf", json=ROW, headers={"x-routing-key": key})
        assert answer.status_code == 200
        arms[key] = answer.headers["x-model-version"]
    items = [
        {"routing_key": key, "outcomes": {"conversion": int(arms[key] == "1.1.0")}} for key in arms
    ]
    sent = await admin_gw.anon.post("/v2/models/clf/feedback", json=items)
    assert sent.status_code == 200, sent.text
    assert sent.json()["outcomes"]["accepted"] == len(items)
    assert await _controller(admin_gw).tick_model("clf") is False
    look = (await admin_gw.http.get(URL)).json()["results"]
    assert look is not None and started["id"]
    variants = look["metrics"]["conversion"]["variants"]
    for version, mean in (("1.0.0", 0.0), ("1.1.0", 1.0)):
        assert variants[version]["n"] == sum(1 for v in arms.values() if v == version)
        assert variants[version]["mean"] == mean


async def test_a_gateway_guardrail_stops_the_experiment(admin_gw) -> None:
    from gateway.experiments.guardrails import GatewayGuardrails
    from gateway.rollout.api import metrics_of

    metrics = [
        {"name": "conversion", "kind": "binary", "baseline": 0.1},
        {"name": "p95_latency_ms", "kind": "guardrail", "limit": 0.001},  # any request breaks it
    ]
    await _start(admin_gw, metrics=metrics)
    state = admin_gw.state
    controller = _controller(admin_gw)
    controller.guardrails = GatewayGuardrails(metrics_of(state), state.holder)
    assert await controller.tick_model("clf") is False  # the base reading: nothing since
    for user in range(600):
        answer = await admin_gw.anon.post(
            "/predict/clf", json=ROW, headers={"x-routing-key": f"u{user}"}
        )
        assert answer.status_code == 200
    assert await controller.tick_model("clf") is True
    result = (await admin_gw.http.get(URL)).json()
    assert result["verdict"]["outcome"] == "stopped_guardrail"
    assert result["verdict"]["metrics"] == ["p95_latency_ms"]
    latency = result["results"]["metrics"]["p95_latency_ms"]
    requests = {v: n["requests"] for v, n in latency["variants"].items()}
    assert sum(requests.values()) == 600 and min(requests.values()) >= 200
    assert latency["variants"]["1.1.0"]["value"] > 0.001
