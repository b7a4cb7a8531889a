"""Loading, publishing, hot swap, failed loads, the watcher, routing headers, shadows, auth."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from gateway.app import create_app
from registry.models import Deployment, Route, Shadow, Stage
from registry.sqlite.store import open_registry
from tests.support.asgi_app import InProcessApp, asgi_client, gateway_settings, running_gateway
from tests.support.polling import wait_until_async

ROW = {"instances": [[0.5, -1.0, 0.25, 2.0]]}
TOKEN = "s3cret-token"


class Gateway:
    def __init__(self, served: InProcessApp, home: Path) -> None:
        self.app, self.http, self.home = served.app, served.http, home
        self.state, self.change = served.state, served.change

    async def version_of(self, path="/predict/clf", **headers) -> str:
        response = await self.http.post(path, json=ROW, headers=headers)
        assert response.status_code == 200, response.text
        return response.headers["x-model-version"]


@pytest.fixture
async def gateway(zoo_home) -> AsyncIterator[Gateway]:
    async with running_gateway(zoo_home, TOKEN, poll_interval_ms=20) as served:
        yield Gateway(served, zoo_home)


def canary(**extra) -> Deployment:
    routes = (Route("1.0.0", 90.0), Route("1.1.0", 10.0))
    return Deployment(model="clf", routes=routes, **extra)


async def test_weighted_routes_serve_both_versions(gateway):
    await gateway.change(lambda r: r.set_deployment(canary()))
    seen = Counter([await gateway.version_of() for _ in range(300)])
    assert set(seen) == {"1.0.0", "1.1.0"} and seen["1.0.0"] > seen["1.1.0"]


async def test_header_challenger_and_sticky_routing(gateway):
    deployment = canary(challenger="1.1.0", sticky=True, sticky_salt="salt")
    await gateway.change(lambda r: r.set_deployment(deployment))
    assert await gateway.version_of(**{"X-Model-Version": "1.1.0"}) == "1.1.0"
    assert await gateway.version_of(**{"X-Use-Challenger": "true"}) == "1.1.0"
    assert (
        await gateway.version_of(**{"X-Use-Challenger": "true", "X-Model-Version": "1.0.0"})
        == "1.0.0"
    )
    for key in ("alice", "bob", "carol", "dave"):
        first = await gateway.version_of(**{"X-Routing-Key": key})
        for _ in range(5):
            assert await gateway.version_of(**{"X-Routing-Key": key}) == first
    spread = Counter([await gateway.version_of(**{"X-Routing-Key": f"u{i}"}) for i in range(300)])
    assert set(spread) == {"1.0.0", "1.1.0"}


async def test_promotion_swaps_and_keeps_the_previous_production_loaded(gateway):
    assert await gateway.version_of() == "1.0.0"
    await gateway.change(lambda r: r.set_stage("clf", "1.1.0", Stage.PRODUCTION))
    assert await gateway.version_of() == "1.1.0"
    # 1.0.0 was archived by the promotion but stays loaded: rollback is a pointer swap
    pinned = await gateway.http.post("/predict/clf/versions/1.0.0", json=ROW)
    assert pinned.status_code == 200
    assert ("clf", "1.0.0") in gateway.state.publisher.loaded


async def test_variants_nobody_needs_are_retired_after_draining(gateway):
    old = gateway.state.publisher.loaded[("clf", "1.0.0")]
    await gateway.change(lambda r: r.set_stage("clf", "1.1.0", Stage.PRODUCTION))

    async def promote_two(registry):
        await registry.set_stage("clf", "2.0.0", Stage.STAGING)
        await registry.set_stage("clf", "2.0.0", Stage.PRODUCTION)

    await gateway.change(promote_two)
    await gateway.state.publisher.settled()
    # production 2.0.0, previous 1.1.0: nothing needs 1.0.0 any more
    assert ("clf", "1.0.0") not in gateway.state.publisher.loaded
    assert old.batcher.in_flight == 0
    gone = await gateway.http.post("/predict/clf/versions/1.0.0", json=ROW)
    assert gone.status_code == 409  # registered, deployed by nothing: not retried by clients
    assert "modelgate stage clf 1.0.0 staging" in gone.json()["error"]


async def test_requests_in_flight_during_swaps_all_succeed(gateway):
    async def hammer():
        statuses = []
        for _ in range(60):
            statuses.append((await gateway.http.post("/predict/clf", json=ROW)).status_code)
        return statuses

    async def flip():
        for stage_to in ("1.1.0", "1.0.0", "1.1.0"):
            registry = await open_registry(gateway.home)
            try:
                if stage_to == "1.0.0":
                    await registry.set_stage("clf", "1.0.0", Stage.STAGING)
                await registry.set_stage("clf", stage_to, Stage.PRODUCTION)
            finally:
                await registry.close()
            await gateway.state.publisher.refresh()

    results = await asyncio.gather(hammer(), hammer(), hammer(), flip())
    assert all(code == 200 for statuses in results[:3] for code in statuses)


async def test_a_corrupt_artifact_never_takes_traffic(gateway):
    registry = await open_registry(gateway.home)
    try:
        version = await registry.get_version("clf", "2.0.0")
    finally:
        await registry.close()
    artifact = next(gateway.home.glob(f"artifacts/**/{version.artifact_sha256}*"))
    artifact.write_bytes(b"tampered" + artifact.read_bytes()[8:])
    before = gateway.state.holder.current.models["clf"]

    async def route_to_two(registry):
        # one transaction: the watcher (20 ms) must not publish a half-applied change
        await registry.set_deployment(
            Deployment(model="clf", routes=(Route("1.0.0", 50.0), Route("2.0.0", 50.0))),
            stage_changes={"2.0.0": Stage.STAGING},
        )

    await gateway.change(route_to_two)
    assert gateway.state.holder.current.models["clf"] is before  # routing kept as it was
    assert {await gateway.version_of() for _ in range(40)} == {"1.0.0"}
    assert ("clf", "2.0.0") in gateway.state.publisher.failures
    report = await gateway.http.get(
        "/admin/models/clf/shadow", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert "2.0.0" in report.json()["load_errors"]
    assert (await gateway.http.get("/v2/health/ready")).status_code == 200


async def test_the_watcher_picks_up_changes_made_by_another_process(gateway):
    registry = await open_registry(gateway.home)
    try:
        await registry.set_stage("clf", "1.1.0", Stage.PRODUCTION)
    finally:
        await registry.close()
    await wait_until_async(  # the 20 ms poll
        lambda: gateway.state.holder.current.models["clf"].primary.version == "1.1.0", 5.0, 0.01
    )
    assert await gateway.version_of() == "1.1.0"


async def test_shadow_traffic_is_compared_and_reported(gateway):
    deployment = Deployment(model="clf", shadows=(Shadow("1.1.0", 1.0),))
    await gateway.change(lambda r: r.set_deployment(deployment))
    rows = np.random.default_rng(3).normal(size=(20, 4)).round(3).tolist()
    for row in rows:
        response = await gateway.http.post("/predict/clf", json={"instances": [row]})
        assert response.headers["x-model-version"] == "1.0.0"
    await asyncio.wait_for(gateway.state.mirror.join(), 10)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    report = (await gateway.http.get("/admin/models/clf/shadow", headers=headers)).json()
    (shadow,) = report["shadows"]
    assert shadow["version"] == "1.1.0" and shadow["active"] and shadow["sample"] == 1.0
    assert shadow["requests"] == 20 and shadow["compared"] == 20
    assert 0 <= shadow["agreed"] <= 20 and shadow["mean_abs_diff"] is not None
    assert report["primary"] == "1.0.0" and report["queue"]["capacity"] == 1024


async def test_admin_shadow_endpoint_requires_the_bearer_token(gateway):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = await gateway.http.get("/admin/models/clf/shadow", headers=headers)
        assert response.status_code == 401 and response.json()["error"]
        assert response.headers["www-authenticate"] == "Bearer"
    missing = await gateway.http.get(
        "/admin/models/nope/shadow", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert missing.status_code == 404


async def test_readiness_before_the_first_snapshot_is_503(zoo_home):
    app = create_app(gateway_settings(zoo_home, TOKEN))
    async with asgi_client(app) as http:
        assert (await http.get("/v2/health/ready")).status_code == 503
        assert (await http.get("/v2/health/live")).status_code == 200
        assert (await http.post("/predict/clf", json=ROW)).status_code == 404


async def test_an_empty_registry_serves_nothing_but_is_ready(tmp_path):
    async with running_gateway(tmp_path / "empty", TOKEN) as served:
        assert (await served.http.get("/v2/health/ready")).status_code == 200
        assert (await served.http.post("/predict/clf", json=ROW)).status_code == 404


async def test_repository_index_lists_every_version_with_its_state(gateway):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert (await gateway.http.post("/v2/repository/index")).status_code == 401
    index = (await gateway.http.post("/v2/repository/index", headers=auth)).json()
    states = {(e["name"], e["version"]): e["state"] for e in index}
    assert states[("clf", "1.0.0")] == "READY" and states[("clf", "1.1.0")] == "READY"
    assert states[("clf", "2.0.0")] == "UNAVAILABLE"
    assert states[("reg", "1.0.0")] == "READY" and states[("mixed", "1.0.0")] == "READY"
    ready = await gateway.http.post("/v2/repository/index", headers=auth, json={"ready": True})
    assert {e["state"] for e in ready.json()} == {"READY"}
    bad = await gateway.http.post("/v2/repository/index", headers=auth, content=b"[")
    assert bad.status_code == 400


async def test_repository_unload_and_load(gateway):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    unloaded = await gateway.http.post("/v2/repository/models/clf/unload", headers=auth)
    assert unloaded.status_code == 200
    refused = await gateway.http.post("/predict/clf", json=ROW)
    assert refused.status_code == 503 and refused.json()["error"]
    assert (await gateway.http.get("/v2/models/clf/ready")).status_code == 503
    assert (await gateway.http.get("/v2/health/ready")).status_code == 200  # on purpose
    await gateway.state.publisher.settled()
    assert not [key for key in gateway.state.publisher.loaded if key[0] == "clf"]
    loaded = await gateway.http.post("/v2/repository/models/clf/load", headers=auth)
    assert loaded.status_code == 200
    assert await gateway.version_of() == "1.0.0"
    missing = await gateway.http.post("/v2/repository/models/nope/load", headers=auth)
    assert missing.status_code == 404
    assert (await gateway.http.post("/v2/repository/models/clf/unload")).status_code == 401
