"""``POST|GET|DELETE /admin/models/{name}/experiment`` through the real app and registry
(the zoo: clf 1.0.0 production, 1.1.0 staging, 2.0.0 registered)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from gateway.experiments.spec import parse_spec
from gateway.experiments.stats.plan import (
    MinimumEffect,
    sample_size_binary,
    sample_size_continuous,
)
from registry.sqlite.store import open_registry
from tests.support.admin_gateway import ROW, AdminGateway

URL = "/admin/models/clf/experiment"
BODY: dict[str, Any] = {
    "variants": {"1.0.0": 50, "1.1.0": 50},
    "metrics": [
        {"name": "conversion", "kind": "binary", "baseline": 0.1},
        {"name": "revenue", "kind": "continuous", "baseline": 40, "sd": 25},
        {"name": "p95_latency_ms", "kind": "guardrail"},
    ],
    "alpha": 0.05,
    "power": 0.8,
    "mde": 0.02,
    "mde_kind": "absolute",
    "traffic_per_day": 10_000,
}


def _body(**changes: Any) -> dict[str, Any]:
    return {**BODY, **changes}


async def test_start_plans_from_the_given_baselines_and_owns_the_split(
    admin_gw: AdminGateway,
) -> None:
    started = await admin_gw.http.post(URL, json=BODY)
    assert started.status_code == 200, started.text
    body = started.json()
    plan = body["plan"]
    fixed = 0.05 - 0.05 * 0.2  # the fixed-horizon level the size is planned at
    effect = MinimumEffect(0.02, "absolute")
    binary = sample_size_binary(0.1, effect, alpha=fixed, power=0.8)
    continuous = sample_size_continuous(40, 25, effect, alpha=fixed, power=0.8)
    assert plan["metrics"]["conversion"]["n_per_variant"] == binary.n_per_variant
    assert plan["metrics"]["revenue"]["n_per_variant"] == continuous.n_per_variant
    assert plan["metrics"]["conversion"]["baseline_source"] == "request"
    assert plan["n_per_variant"] == max(binary.n_per_variant, continuous.n_per_variant)
    assert plan["duration_days"] == pytest.approx(plan["n_per_variant"] / (10_000 * 0.5))
    assert body["status"] == "running" and body["control"] == "1.0.0"
    assert body["candidate"] == "1.1.0"
    latency = next(m for m in body["metrics"] if m["name"] == "p95_latency_ms")
    assert latency["limit"] == admin_gw.state.settings.health_max_p95_ms
    traffic = body["traffic"]
    assert traffic["sticky"] is True
    assert {r["version"]: r["weight"] for r in traffic["routes"]} == {"1.0.0": 50, "1.1.0": 50}

    shown = (await admin_gw.http.get(URL)).json()
    assert shown["id"] == body["id"] and shown["plan"] == plan and shown["history"] == []
    assert "states" not in shown

    again = await admin_gw.http.post(URL, json=BODY)
    assert again.status_code == 409 and again.json()["experiment"] == body["id"]

    before = await admin_gw.registry_state()
    put = await admin_gw.http.put(
        "/admin/models/clf/traffic", json={"routes": [{"version": "1.0.0", "weight": 100}]}
    )
    assert put.status_code == 409, put.text
    assert put.json()["experiment"] == body["id"] and body["id"] in put.json()["error"]
    for refused in (
        admin_gw.http.post("/admin/models/clf/rollback", json={}),
        admin_gw.http.post("/admin/models/clf/switch", json={"version": "1.1.0"}),
        admin_gw.http.post("/admin/models/clf/versions/1.1.0/stage", json={"stage": "production"}),
        admin_gw.http.post(
            "/admin/models/clf/rollout",
            json={"candidate": "1.1.0", "steps": [10, 100], "interval_s": 5},
        ),
    ):
        answer = await refused
        assert answer.status_code == 409, answer.text
        assert body["id"] in answer.json()["error"]
    assert await admin_gw.registry_state() == before

    stopped = await admin_gw.http.request("DELETE", URL, json={"reason": "enough"})
    assert stopped.status_code == 200, stopped.text
    result = stopped.json()
    assert result["status"] == "stopped"
    assert result["verdict"]["outcome"] == "stopped_by_operator"
    assert "enough" in result["verdict"]["reason"]
    assert result["traffic"]["routes"] == [{"version": "1.0.0", "weight": 100.0}]
    assert result["traffic"]["sticky"] is False
    assert (await admin_gw.served(10)) == Counter({"1.0.0": 10})
    # traffic belongs to the operator again; a second stop is refused
    assert (await admin_gw.http.request("DELETE", URL)).status_code == 409
    registry = await open_registry(admin_gw.home)
    try:
        actions = [e.action for e in await registry.audit(model="clf", limit=20)]
        history = await registry.get_state(f"experiment-history/clf/{body['id']}")
    finally:
        await registry.close()
    assert "experiment_start" in actions and "experiment_stop" in actions
    assert history["status"] == "stopped" and history["verdict"]["outcome"] == (
        "stopped_by_operator"
    )
    # a new experiment keeps the old one in the history
    restarted = await admin_gw.http.post(URL, json=BODY)
    assert restarted.status_code == 200
    assert (await admin_gw.http.get(URL)).json()["history"] == [body["id"]]


async def test_a_routing_key_stays_in_one_arm(admin_gw: AdminGateway) -> None:
    assert (await admin_gw.http.post(URL, json=BODY)).status_code == 200
    arms: dict[str, set[str]] = {}
    for user in range(40):
        for _ in range(3):
            answer = await admin_gw.anon.post(
                "/predict/clf", json=ROW, headers={"x-routing-key": f"user-{user}"}
            )
            assert answer.status_code == 200
            arms.setdefault(f"user-{user}", set()).add(answer.headers["x-model-version"])
    assert all(len(seen) == 1 for seen in arms.values())
    assert {next(iter(seen)) for seen in arms.values()} == {"1.0.0", "1.1.0"}


@pytest.mark.parametrize(
    ("changes", "status", "named"),
    [
        ({"variants": {"1.0.0": 60, "1.1.0": 50}}, 400, "sum to 100"),
        ({"variants": {"1.0.0": 50, "9.9.9": 50}}, 404, "9.9.9"),
        ({"variants": {"1.0.0": 100}}, 400, "variants"),
        ({"metrics": [{"name": "conversion", "kind": "ratio"}]}, 400, "kind"),
        ({"alpha": 1.5}, 400, "alpha"),
        ({"alpha": 0}, 400, "alpha"),
        ({"power": "high"}, 400, "power"),
        ({"mde": None}, 400, "mde"),
        ({"mde_kind": "percent"}, 400, "mde_kind"),
        ({"colour": "blue"}, 400, "colour"),
        ({"metrics": [{"name": "revenue", "kind": "continuous", "baseline": 40}]}, 400, "sd"),
        ({"metrics": [{"name": "complaints", "kind": "guardrail"}]}, 400, "tolerance"),
        (
            {"metrics": [{"name": "complaints", "kind": "guardrail", "tolerance": 0.1}]},
            400,
            "binary or continuous",
        ),
        ({"promote_winner": "yes"}, 400, "promote_winner"),
        ({"mde": 1e-200}, 400, "larger mde"),
        ({"baseline_days": 0}, 400, "baseline_days"),
        ({"control": "2.0.0"}, 400, "control"),
    ],
)
async def test_bad_bodies_name_the_field(
    admin_gw: AdminGateway, changes: dict[str, Any], status: int, named: str
) -> None:
    body = _body(**changes)
    if changes.get("mde", 1) is None:
        body.pop("mde")
    before = await admin_gw.registry_state()
    answer = await admin_gw.http.post(URL, json=body)
    assert answer.status_code == status, answer.text
    assert named in answer.json()["error"]
    assert await admin_gw.registry_state() == before


async def test_missing_baseline_without_production_outcomes_says_what_to_give(
    admin_gw: AdminGateway,
) -> None:
    body = _body(metrics=[{"name": "conversion", "kind": "binary"}])
    answer = await admin_gw.http.post(URL, json=body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert "conversion" in error and '"baseline"' in error and "0 outcomes" in error


async def test_unknown_model_and_no_experiment_are_404(admin_gw: AdminGateway) -> None:
    assert (await admin_gw.http.get("/admin/models/nope/experiment")).status_code == 404
    assert (await admin_gw.http.get(URL)).status_code == 404
    assert (await admin_gw.http.request("DELETE", URL)).status_code == 404
    assert (await admin_gw.anon.get(URL)).status_code == 401


def test_the_issue_example_parses_with_relative_mde() -> None:
    spec = parse_spec({**BODY, "mde_kind": "relative"})
    assert spec.mde.kind == "relative" and spec.variants == {"1.0.0": 50.0, "1.1.0": 50.0}


async def test_a_variant_that_cannot_load_undoes_the_start(admin_gw: AdminGateway) -> None:
    from tests.gateway.admin.test_refusals import corrupt_version

    await corrupt_version(admin_gw.home, "clf", "2.0.0")
    before = await admin_gw.registry_state()
    answer = await admin_gw.http.post(URL, json=_body(variants={"1.0.0": 50, "2.0.0": 50}))
    assert answer.status_code == 409, answer.text
    assert answer.json()["restored"] is True and "2.0.0" in answer.json()["failures"]
    after = await admin_gw.registry_state()
    assert after["deployments"]["clf"].to_dict() == before["deployments"]["clf"].to_dict()
    assert set(await admin_gw.served(20)) == {"1.0.0"}
    # no experiment runs (the record was put back); the history says why this one ended
    assert (await admin_gw.http.get(URL)).status_code == 404
    registry = await open_registry(admin_gw.home)
    try:
        (entry,) = [
            e.after["value"]
            for e in await registry.audit(action="state", limit=10)
            if e.after["key"].startswith("experiment-history/clf/")
            and e.after["value"]["status"] == "stopped"
        ]
    finally:
        await registry.close()
    assert entry["verdict"]["outcome"] == "aborted"
    assert (await admin_gw.http.post(URL, json=BODY)).status_code == 200  # nothing blocks


def test_only_the_running_experiment_may_change_its_split() -> None:
    from gateway.changes.plan import Refused, refuse_during_experiment
    from gateway.errors import Conflict

    running = {"experiment/clf": {"id": "e1", "status": "running"}}
    stopped = {"experiment/clf": {"id": "e1", "status": "stopped"}}
    refuse_during_experiment("clf", running, "e1")  # its own stop
    refuse_during_experiment("clf", stopped)  # an operator's change after it
    with pytest.raises(Refused) as refused:
        refuse_during_experiment("clf", running)
    assert refused.value.details == {"experiment": "e1"}
    with pytest.raises(Conflict, match="no longer running"):
        refuse_during_experiment("clf", stopped, "e1")  # a second stop of the same one


async def test_the_plan_measures_production_outcomes_when_there_are_enough(
    admin_gw: AdminGateway,
) -> None:
    import time

    from registry.outcomes import OutcomeRow, baseline_scope

    scope = baseline_scope(time.time())
    rows = [  # production's outcomes outside experiments: a 12 % rate, revenue 30 +- 10
        OutcomeRow(f"id:b{i}", "conversion", scope, "1.0.0", float(i % 25 < 3)) for i in range(500)
    ] + [
        OutcomeRow(f"id:b{i}", "revenue", scope, "1.0.0", 20.0 + 20.0 * (i % 2)) for i in range(400)
    ]
    registry = await open_registry(admin_gw.home)
    try:
        await registry.add_outcomes("clf", rows)
    finally:
        await registry.close()
    body = _body(
        metrics=[
            {"name": "conversion", "kind": "binary", "baseline": 0.5},  # measured wins
            {"name": "revenue", "kind": "continuous"},
        ],
        mde=0.1,
        mde_kind="relative",
    )
    body.pop("traffic_per_day")
    answer = await admin_gw.http.post(URL, json=body)
    assert answer.status_code == 200, answer.text
    plan = answer.json()["plan"]
    fixed = 0.05 - 0.05 * 0.2
    conversion, revenue = plan["metrics"]["conversion"], plan["metrics"]["revenue"]
    assert conversion["baseline_source"] == "production" and conversion["baseline_rows"] == 500
    assert conversion["baseline"] == pytest.approx(0.12)
    expected = sample_size_binary(0.12, MinimumEffect(0.1, "relative"), alpha=fixed, power=0.8)
    assert conversion["n_per_variant"] == expected.n_per_variant
    assert revenue["baseline"] == pytest.approx(30.0)
    sd = (400 * 100 / 399) ** 0.5  # the sample standard deviation of 20s and 40s
    assert revenue["sd"] == pytest.approx(sd)
    expected = sample_size_continuous(30.0, sd, MinimumEffect(0.1, "relative"), alpha=fixed)
    assert revenue["n_per_variant"] == expected.n_per_variant
    assert plan["traffic_source"] == "production outcomes"
    assert plan["traffic_per_day"] == pytest.approx(500 / 14)
    assert plan["duration_days"] == pytest.approx(plan["n_per_variant"] / (500 / 14 * 0.5))
