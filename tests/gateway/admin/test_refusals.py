"""Refusals: no token (401 everywhere), invalid changes (nothing changes: registry, audit,
serving), and versions that cannot load (the change is undone, the failure reported)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.routing import Route

from registry.models import NewVersion, Stage
from registry.sqlite.store import open_registry

ONE = [{"version": "1.0.0", "weight": 100}]


def _route_cases(app) -> list[tuple[str, str]]:
    cases = []
    for route in app.router.routes:
        if not isinstance(route, Route):
            continue
        if not (route.path.startswith("/admin") or route.path.startswith("/v2/repository")):
            continue
        path = route.path.replace("{name}", "clf").replace("{version}", "1.1.0")
        for method in sorted(route.methods - {"HEAD"}):
            cases.append((method, path))
    return cases


async def test_every_admin_route_needs_the_bearer_token(admin_gw):
    cases = _route_cases(admin_gw.app)
    paths = {path for _method, path in cases}
    assert {"/admin/models", "/admin/audit", "/admin/models/clf/rollback"} <= paths
    assert "/v2/repository/index" in paths and len(cases) >= 12
    before = await admin_gw.registry_state()
    bodies = {"PUT": {"routes": ONE}, "POST": {"version": "1.1.0", "stage": "production"}}
    for method, path in cases:
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": admin_gw.token},  # no scheme
            {"Authorization": f"Basic {admin_gw.token}"},
        ):
            response = await admin_gw.anon.request(
                method, path, json=bodies.get(method), headers=headers
            )
            assert response.status_code == 401, (method, path, headers)
            assert response.json()["error"] and response.headers["www-authenticate"] == "Bearer"
    assert await admin_gw.registry_state() == before


async def archive_two(home) -> None:
    registry = await open_registry(home)
    try:
        await registry.set_stage("clf", "2.0.0", Stage.ARCHIVED)
    finally:
        await registry.close()


TRAFFIC = "/admin/models/clf/traffic"
REFUSALS = [
    ("PUT", TRAFFIC, {"routes": [{"version": "1.0.0", "weight": 90}]}, 400, "sum to 100"),
    (
        "PUT",
        TRAFFIC,
        {"routes": [{"version": "1.0.0", "weight": 110}, {"version": "1.1.0", "weight": -10}]},
        400,
        ">= 0",
    ),
    ("PUT", TRAFFIC, {"routes": [{"version": "9.9.9", "weight": 100}]}, 404, "9.9.9"),
    (
        "PUT",
        TRAFFIC,
        {"routes": ONE, "shadow": [{"version": "1.0.0", "sample": 1}]},
        400,
        "both a route and a shadow",
    ),
    ("PUT", TRAFFIC, {"routes": ONE, "shadow": [{"version": "1.1.0", "sample": 2}]}, 400, "[0, 1]"),
    ("PUT", TRAFFIC, {"routes": ONE, "challenger": "2.0.0"}, 409, "not loaded"),
    ("PUT", TRAFFIC, {"routes": ONE, "colour": "blue"}, 400, "unknown field"),
    ("PUT", TRAFFIC, {"routes": ONE, "sticky": "yes"}, 400, "sticky"),
    ("PUT", TRAFFIC, {"routes": ONE, "reason": 7}, 400, "reason"),
    ("PUT", TRAFFIC, b"{not json", 400, "invalid JSON"),
    ("PUT", TRAFFIC, b"[1, 2]", 400, "JSON object"),
    ("PUT", TRAFFIC, b"", 400, "empty body"),
    ("PUT", "/admin/models/nope/traffic", {"routes": ONE}, 404, "nope"),
    ("POST", "/admin/models/clf/rollback", {}, 409, "no previous production"),
    ("POST", "/admin/models/clf/rollback", {"why": "x"}, 400, "unknown field"),
    ("POST", "/admin/models/nope/rollback", {}, 404, "nope"),
    ("POST", "/admin/models/clf/switch", {"version": "7.0.0"}, 404, "7.0.0"),
    ("POST", "/admin/models/clf/switch", {"version": "2.0.0"}, 409, "staging first"),
    ("POST", "/admin/models/clf/switch", {}, 400, "empty body"),
    ("POST", "/admin/models/clf/switch", {"version": "1.1.0", "force": "yes"}, 400, "force"),
    ("POST", "/admin/models/clf/versions/1.1.0/stage", {"stage": "gold"}, 400, "stage must be"),
    ("POST", "/admin/models/clf/versions/1.1.0/stage", {"stage": "staging"}, 409, "already"),
    ("POST", "/admin/models/clf/versions/1.0.0/stage", {"stage": "archived"}, 409, "traffic"),
    ("POST", "/admin/models/clf/versions/3.0.0/stage", {"stage": "production"}, 404, "3.0.0"),
    ("POST", "/admin/models/clf/versions/2.0.0/stage", {"stage": "production"}, 409, "not loaded"),
]


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "message"),
    REFUSALS,
    ids=[f"{i}-{case[3]}" for i, case in enumerate(REFUSALS)],
)
async def test_refused_changes_leave_registry_audit_and_serving_untouched(
    admin_gw, method, url, body, status, message
):
    before = await admin_gw.registry_state()
    snapshot = admin_gw.state.holder.current
    loaded = dict(admin_gw.state.publisher.loaded)
    if isinstance(body, bytes):
        response = await admin_gw.http.request(method, url, content=body)
    else:
        response = await admin_gw.http.request(method, url, json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert await admin_gw.registry_state() == before
    assert admin_gw.state.holder.current is snapshot
    assert admin_gw.state.publisher.loaded == loaded
    assert set(await admin_gw.served(10)) == {"1.0.0"}


async def test_an_archived_version_cannot_take_traffic(admin_gw):
    await archive_two(admin_gw.home)
    await admin_gw.state.publisher.refresh()
    before = await admin_gw.registry_state()
    for body in (
        {"routes": [{"version": "1.0.0", "weight": 50}, {"version": "2.0.0", "weight": 50}]},
        {"routes": ONE, "shadow": [{"version": "2.0.0", "sample": 0.5}]},
    ):
        response = await admin_gw.http.put(TRAFFIC, json=body)
        assert response.status_code == 409 and "archived" in response.json()["error"]
    assert await admin_gw.registry_state() == before


def corrupt(home, sha256: str) -> None:
    (artifact,) = home.glob(f"artifacts/**/{sha256}*")
    data = bytearray(artifact.read_bytes())
    for offset in (100, 200, 300):
        data[offset] ^= 0xFF
    artifact.write_bytes(bytes(data))


async def corrupt_version(home: Path, model: str, version: str) -> None:
    """``corrupt`` the artifact of ``model`` ``version`` in the registry at ``home``."""
    registry = await open_registry(home)
    try:
        corrupt(home, (await registry.get_version(model, version)).artifact_sha256)
    finally:
        await registry.close()


async def test_a_corrupt_artifact_never_takes_traffic_and_the_change_is_undone(admin_gw):
    await corrupt_version(admin_gw.home, "clf", "2.0.0")
    before = await admin_gw.registry_state()
    route = admin_gw.state.holder.current.models["clf"]
    serving = (route.primary, route.routes, route.weights)

    split = {"routes": [{"version": "1.0.0", "weight": 50}, {"version": "2.0.0", "weight": 50}]}
    response = await admin_gw.http.put(TRAFFIC, json=split)
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["restored"] is True and "tampered" in body["failures"]["2.0.0"]
    assert "2.0.0 failed to load" in body["error"]
    # serving never moved: the same variants and weights, every request on 1.0.0
    route = admin_gw.state.holder.current.models["clf"]
    assert (route.primary, route.routes, route.weights) == serving
    assert set(await admin_gw.served(40)) == {"1.0.0"}
    after = await admin_gw.registry_state()
    assert after["deployments"]["clf"].to_dict() == before["deployments"]["clf"].to_dict()
    assert after["stages"] == before["stages"]
    # reported: audit (the change and its undoing), the model view, the repository index
    audit = (await admin_gw.http.get("/admin/audit", params={"limit": 2})).json()["entries"]
    assert [e["action"] for e in audit] == ["restore", "traffic"]
    assert "2.0.0 failed to load" in audit[0]["reason"] and "tampered" in audit[0]["reason"]
    view = (await admin_gw.http.get("/admin/models/clf/versions/2.0.0")).json()
    assert view["state"] == "UNAVAILABLE" and "tampered" in view["reason"]
    index = (await admin_gw.http.post("/v2/repository/index")).json()
    (entry,) = [e for e in index if (e["name"], e["version"]) == ("clf", "2.0.0")]
    assert entry["state"] == "UNAVAILABLE" and "tampered" in entry["reason"]


async def test_traffic_to_an_unloadable_graph_is_undone(admin_gw):
    # bytes that match their recorded sha256 but are no ONNX graph: only loading tells
    registry = await open_registry(admin_gw.home)
    try:
        template = await registry.get_version("clf", "1.0.0")
        sha, size = registry.artifacts.put(b"definitely not an onnx graph")
        new = NewVersion(sha, size, template.schema, parity={"passed": True})
        await registry.register_version("clf", new, version="3.0.0")
    finally:
        await registry.close()
    await admin_gw.state.publisher.refresh()
    before = await admin_gw.registry_state()

    split = {"routes": [{"version": "1.0.0", "weight": 90}, {"version": "3.0.0", "weight": 10}]}
    response = await admin_gw.http.put(TRAFFIC, json=split)
    assert response.status_code == 409, response.text
    assert response.json()["restored"] is True
    assert "onnxruntime cannot load" in response.json()["failures"]["3.0.0"]
    after = await admin_gw.registry_state()
    assert after["deployments"]["clf"].to_dict() == before["deployments"]["clf"].to_dict()
    assert after["stages"] == before["stages"]
    assert set(await admin_gw.served(30)) == {"1.0.0"}


async def test_production_only_moves_to_a_loaded_version(admin_gw):
    await corrupt_version(admin_gw.home, "clf", "2.0.0")
    # staging loads a version; a corrupt one is reported but the stage change stands
    staged = await admin_gw.http.post(
        "/admin/models/clf/versions/2.0.0/stage", json={"stage": "staging"}
    )
    assert staged.status_code == 200
    index = (await admin_gw.http.post("/v2/repository/index", json={})).json()
    (entry,) = [e for e in index if (e["name"], e["version"]) == ("clf", "2.0.0")]
    assert entry["state"] == "UNAVAILABLE" and "tampered" in entry["reason"]
    before = await admin_gw.registry_state()
    for url, body in (
        ("/admin/models/clf/switch", {"version": "2.0.0"}),
        ("/admin/models/clf/versions/2.0.0/stage", {"stage": "production"}),
    ):
        response = await admin_gw.http.post(url, json=body)
        assert response.status_code == 409, response.text
        assert "tampered" in response.json()["failures"]["2.0.0"]
        assert "not loaded" in response.json()["error"]
    assert await admin_gw.registry_state() == before
    assert set(await admin_gw.served(20)) == {"1.0.0"}
