"""The admin API over HTTP (ASGI, real app, real registry and onnxruntime sessions):
model views, traffic, switch, rollback, gated promotion, audit."""

from __future__ import annotations

from registry.sqlite.store import open_registry

CANARY = {
    "routes": [{"version": "1.0.0", "weight": 90}, {"version": "1.1.0", "weight": 10}],
    "challenger": "1.1.0",
    "sticky": True,
}


def evaluation(value: float, fingerprint: str = "fp-test") -> dict:
    return {
        "dataset": {"fingerprint": fingerprint},
        "primary_metric": {"name": "roc_auc", "value": value, "higher_is_better": True},
    }


async def save_evaluations(home, **by_version: dict) -> None:
    registry = await open_registry(home)
    try:
        for version, report in by_version.items():
            await registry.save_evaluation("clf", version.replace("_", "."), report)
    finally:
        await registry.close()


async def test_models_and_versions_report_stage_state_weight_and_lineage(admin_gw):
    listing = await admin_gw.http.get("/admin/models")
    assert listing.status_code == 200
    body = listing.json()
    assert [m["name"] for m in body["models"]] == ["clf", "mixed", "reg"]
    assert body["worker"]["generation"] == admin_gw.state.holder.current.generation
    clf = body["models"][0]
    assert clf["production_version"] == "1.0.0" and clf["rollback_target"] is None
    assert clf["serving"]["primary"] == "1.0.0" and clf["serving"]["ready"]
    by_version = {v["version"]: v for v in clf["versions"]}
    assert by_version["1.0.0"]["state"] == "READY" and by_version["1.0.0"]["weight"] == 100.0
    assert by_version["1.0.0"]["roles"] == ["production", "route"]
    assert by_version["1.1.0"]["stage"] == "staging" and by_version["1.1.0"]["loaded"]
    assert by_version["2.0.0"]["state"] == "UNAVAILABLE"
    assert "stage none" in by_version["2.0.0"]["reason"]
    lineage = by_version["1.1.0"]["lineage"]
    assert lineage["model_type"] == "random_forest_classifier"
    assert lineage["parity_passed"] is True and lineage["config_hash"]
    assert set(lineage) == {
        "model_type",
        "dataset_version",
        "config_hash",
        "created_at",
        "parity_passed",
    }

    one = (await admin_gw.http.get("/admin/models/clf")).json()
    assert one["name"] == "clf" and len(one["versions"]) == 3
    version = (await admin_gw.http.get("/admin/models/clf/versions/1.1.0")).json()
    assert version["schema"]["inputs"][0]["name"] == "input"
    assert version["runtime"]["mode"] in ("inline", "thread")
    assert version["parity"]["passed"] is True and version["evaluation"] is None
    idle = (await admin_gw.http.get("/admin/models/clf/versions/2.0.0")).json()
    assert idle["runtime"] is None and not idle["loaded"]
    for missing in ("/admin/models/nope", "/admin/models/clf/versions/9.9.9"):
        response = await admin_gw.http.get(missing)
        assert response.status_code == 404 and response.json()["error"]


async def test_traffic_put_is_served_at_once_and_get_round_trips(admin_gw):
    response = await admin_gw.http.put(
        "/admin/models/clf/traffic", json={**CANARY, "reason": "canary 10 %"}
    )
    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["changed"] and outcome["action"] == "traffic"
    # the answer comes after this worker swapped: the new routing is served right away
    seen = await admin_gw.served(300)
    assert set(seen) == {"1.0.0", "1.1.0"} and seen["1.0.0"] > seen["1.1.0"]
    assert set(await admin_gw.served(5, **{"X-Use-Challenger": "true"})) == {"1.1.0"}

    current = (await admin_gw.http.get("/admin/models/clf/traffic")).json()
    assert current["routes"] == [
        {"version": "1.0.0", "weight": 90.0},
        {"version": "1.1.0", "weight": 10.0},
    ]
    assert current["challenger"] == "1.1.0" and current["sticky"] is True
    assert current == outcome["traffic"]
    entry = (await admin_gw.http.get("/admin/audit", params={"limit": 1})).json()["entries"][0]
    assert (entry["action"], entry["reason"]) == ("traffic", "canary 10 %")
    assert entry["actor"] == "admin-api" and entry["after"]["challenger"] == "1.1.0"

    # the GET body PUT back is a no-op: no transaction, no audit row
    generation = outcome["generation"]
    again = await admin_gw.http.put("/admin/models/clf/traffic", json=current)
    assert again.status_code == 200 and again.json()["changed"] is False
    assert again.json()["generation"] == generation


async def test_switch_keeps_the_old_version_warm_and_rollback_is_a_pointer_swap(admin_gw):
    publisher = admin_gw.state.publisher
    blue = publisher.loaded[("clf", "1.0.0")]
    switched = await admin_gw.http.post(
        "/admin/models/clf/switch",
        json={"version": "1.1.0", "reason": "green is ready"},
        headers={"X-Actor": "alice"},
    )
    assert switched.status_code == 200, switched.text
    body = switched.json()
    assert body["production"] == "1.1.0" and body["rollback_target"] == "1.0.0"
    assert body["stages"] == {"1.0.0": "archived", "1.1.0": "production", "2.0.0": "none"}
    assert body["traffic"]["routes"] == [{"version": "1.1.0", "weight": 100.0}]
    assert set(await admin_gw.served(20)) == {"1.1.0"}
    # blue stays loaded (the same warm variant), so going back needs no load
    assert publisher.loaded[("clf", "1.0.0")] is blue

    rolled = await admin_gw.http.post("/admin/models/clf/rollback", json={"reason": "p95 up"})
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["production"] == "1.0.0" and rolled.json()["rollback_target"] == "1.1.0"
    assert set(await admin_gw.served(20)) == {"1.0.0"}
    assert admin_gw.state.holder.current.models["clf"].primary is blue
    audit = (await admin_gw.http.get("/admin/audit", params={"model": "clf"})).json()["entries"]
    actions = [(e["action"], e["actor"]) for e in audit if e["action"] in ("switch", "rollback")]
    assert actions == [("rollback", "admin-api"), ("switch", "admin-api:alice")]

    # rolling back again returns to where the switch went; an empty body is fine
    assert (await admin_gw.http.post("/admin/models/clf/rollback")).json()["production"] == "1.1.0"
    # switching to the version that already has everything changes nothing
    same = await admin_gw.http.post("/admin/models/clf/switch", json={"version": "1.1.0"})
    assert same.status_code == 200 and same.json()["changed"] is False


async def test_promotion_without_a_production_evaluation_is_not_gated(admin_gw):
    response = await admin_gw.http.post(
        "/admin/models/clf/versions/1.1.0/stage", json={"stage": "production"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["action"] == "promote" and response.json()["gate"] is None
    assert set(await admin_gw.served(10)) == {"1.1.0"}


async def test_promotion_gate_refuses_then_force_with_reason_is_audited(admin_gw):
    await save_evaluations(admin_gw.home, **{"1_0_0": evaluation(0.90), "1_1_0": evaluation(0.80)})
    url = "/admin/models/clf/versions/1.1.0/stage"
    before = await admin_gw.registry_state()
    refused = await admin_gw.http.post(url, json={"stage": "production"})
    assert refused.status_code == 409
    body = refused.json()
    assert "promotion gate" in body["error"] and "roc_auc dropped" in body["error"]
    assert body["gate"]["passed"] is False and body["gate"]["production"] == "1.0.0"
    no_reason = await admin_gw.http.post(url, json={"stage": "production", "force": True})
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["error"]
    assert await admin_gw.registry_state() == before

    forced = await admin_gw.http.post(
        url, json={"stage": "production", "force": True, "reason": "hotfix for incident 42"}
    )
    assert forced.status_code == 200, forced.text
    assert forced.json()["action"] == "gate_override" and forced.json()["production"] == "1.1.0"
    (entry,) = (await admin_gw.http.get("/admin/audit", params={"action": "gate_override"})).json()[
        "entries"
    ]
    assert entry["reason"].startswith("hotfix for incident 42; forced past the promotion gate")
    assert "roc_auc dropped" in entry["reason"]


async def test_gate_needs_a_candidate_evaluation_on_the_same_dataset(admin_gw):
    await save_evaluations(admin_gw.home, **{"1_0_0": evaluation(0.90)})
    refused = await admin_gw.http.post("/admin/models/clf/switch", json={"version": "1.1.0"})
    assert refused.status_code == 409
    assert "no evaluation on the same dataset" in refused.json()["error"]
    await save_evaluations(admin_gw.home, **{"1_1_0": evaluation(0.95, fingerprint="other")})
    refused = await admin_gw.http.post("/admin/models/clf/switch", json={"version": "1.1.0"})
    assert refused.status_code == 409 and "fingerprints differ" in refused.json()["error"]
    await save_evaluations(admin_gw.home, **{"1_1_0": evaluation(0.91)})
    passed = await admin_gw.http.post("/admin/models/clf/switch", json={"version": "1.1.0"})
    assert passed.status_code == 200 and passed.json()["gate"]["passed"] is True


async def test_plain_stage_changes_load_and_archive(admin_gw):
    staged = await admin_gw.http.post(
        "/admin/models/clf/versions/2.0.0/stage", json={"stage": "staging", "reason": "try it"}
    )
    assert staged.status_code == 200 and staged.json()["stages"]["2.0.0"] == "staging"
    # staging versions are loaded: a pinned request reaches it at once
    pinned = await admin_gw.anon.post(
        "/predict/clf/versions/2.0.0", json={"instances": [[0.1, 0.2, 0.3, 0.4]]}
    )
    assert pinned.status_code == 200
    archived = await admin_gw.http.post(
        "/admin/models/clf/versions/2.0.0/stage", json={"stage": "archived"}
    )
    assert archived.status_code == 200 and archived.json()["stages"]["2.0.0"] == "archived"
    assert ("clf", "2.0.0") not in admin_gw.state.publisher.loaded


async def test_audit_filters_and_bad_queries(admin_gw):
    await admin_gw.http.put("/admin/models/clf/traffic", json=CANARY)
    await admin_gw.http.post("/admin/models/clf/switch", json={"version": "1.1.0"})
    entries = (await admin_gw.http.get("/admin/audit", params={"model": "clf"})).json()["entries"]
    assert entries[0]["action"] == "switch" and all(e["model"] == "clf" for e in entries)
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    one = (await admin_gw.http.get("/admin/audit", params={"action": "traffic"})).json()
    assert one["count"] == len(one["entries"]) >= 1
    assert all(e["action"] == "traffic" for e in one["entries"])
    later = await admin_gw.http.get("/admin/audit", params={"since": "2999-01-01"})
    assert later.json() == {"entries": [], "count": 0}
    nobody = await admin_gw.http.get("/admin/audit", params={"actor": "nobody"})
    assert nobody.json()["count"] == 0
    for bad in ({"limit": "0"}, {"limit": "ten"}, {"since": "yesterday"}, {"who": "x"}):
        response = await admin_gw.http.get("/admin/audit", params=bad)
        assert response.status_code == 400 and response.json()["error"], bad


async def test_changes_are_refused_while_a_rollout_runs(admin_gw):
    from gateway.rollout.store import Rollouts

    registry = await open_registry(admin_gw.home)
    try:
        spec = {"candidate": "1.1.0", "steps": [5, 100], "interval_s": 60}
        await Rollouts(registry, admin_gw.home).start("clf", spec, actor="test")
    finally:
        await registry.close()
    before = await admin_gw.registry_state()
    for method, url, body in (
        ("PUT", "/admin/models/clf/traffic", CANARY),
        ("POST", "/admin/models/clf/switch", {"version": "1.1.0"}),
        ("POST", "/admin/models/clf/versions/2.0.0/stage", {"stage": "staging"}),
    ):
        response = await admin_gw.http.request(method, url, json=body)
        assert response.status_code == 409 and "rollout" in response.json()["error"]
    assert await admin_gw.registry_state() == before


async def test_an_unloaded_model_takes_changes_that_apply_when_it_is_loaded(admin_gw):
    assert (await admin_gw.http.post("/v2/repository/models/clf/unload")).status_code == 200
    view = (await admin_gw.http.get("/admin/models/clf")).json()
    assert view["unloaded"] and {v["state"] for v in view["versions"]} == {"UNAVAILABLE"}
    assert "unloaded" in view["versions"][0]["reason"]
    assert (
        await admin_gw.anon.post("/predict/clf", json={"instances": [[0, 0, 0, 0]]})
    ).status_code == 503
    # nothing is loaded, so nothing can fail to load: the change is registry-only for now
    switched = await admin_gw.http.post("/admin/models/clf/switch", json={"version": "1.1.0"})
    assert switched.status_code == 200 and switched.json()["production"] == "1.1.0"
    assert (await admin_gw.http.post("/v2/repository/models/clf/load")).status_code == 200
    assert set(await admin_gw.served(10)) == {"1.1.0"}
    view = (await admin_gw.http.get("/admin/models/clf")).json()
    assert not view["unloaded"] and view["serving"]["primary"] == "1.1.0"
