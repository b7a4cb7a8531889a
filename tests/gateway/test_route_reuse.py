"""A refresh keeps the route object of every model nothing changed for, and rebuilds the
route of a model whose rows or loaded variants changed (checked through real requests)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.dataplane.snapshot import ModelRoute
from registry.models import Deployment, Route, Shadow, Stage
from registry.sqlite.store import open_registry
from tests.support.asgi_app import InProcessApp, running_gateway

ROW = {"instances": [[0.5, -1.0, 0.25, 2.0]]}
TOKEN = "reuse-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def served(zoo_home: Path) -> AsyncIterator[InProcessApp]:
    # the watcher polls rarely: every publish below is the test's own refresh
    async with running_gateway(zoo_home, TOKEN, poll_interval_ms=60_000) as served:
        yield served


def routes(served: InProcessApp) -> dict[str, ModelRoute]:
    return dict(served.state.holder.current.models)


async def version_of(served: InProcessApp, path: str = "/predict/clf", **headers: str) -> str:
    response = await served.http.post(path, json=ROW, headers=headers)
    assert response.status_code == 200, response.text
    return response.headers["x-model-version"]


def assert_kept(before: dict[str, ModelRoute], after: dict[str, ModelRoute], *names: str) -> None:
    for name in names:
        assert after[name] is before[name], f"{name}'s route was rebuilt"


async def test_a_traffic_change_rebuilds_that_model_only(served: InProcessApp) -> None:
    before = routes(served)
    assert {await version_of(served) for _ in range(20)} == {"1.0.0"}
    canary = Deployment(model="clf", routes=(Route("1.0.0", 50.0), Route("1.1.0", 50.0)))
    await served.change(lambda r: r.set_deployment(canary))
    after = routes(served)
    assert after["clf"] is not before["clf"]
    assert_kept(before, after, "reg", "mixed")
    seen = Counter([await version_of(served) for _ in range(200)])
    assert set(seen) == {"1.0.0", "1.1.0"}
    # a refresh with nothing changed rebuilds nothing
    await served.state.publisher.refresh()
    assert_kept(after, routes(served), "clf", "reg", "mixed")


async def test_sticky_salt_challenger_and_alias_changes_rebuild(served: InProcessApp) -> None:
    routes_ = (Route("1.0.0", 50.0), Route("1.1.0", 50.0))
    await served.change(
        lambda r: r.set_deployment(Deployment(model="clf", routes=routes_, sticky=True))
    )
    keys = [f"user-{i}" for i in range(40)]
    unsalted = [await version_of(served, **{"X-Routing-Key": k}) for k in keys]
    before = routes(served)
    salted = Deployment(
        model="clf", routes=routes_, sticky=True, sticky_salt="reshuffle", challenger="1.1.0"
    )
    await served.change(lambda r: r.set_deployment(salted))
    after = routes(served)
    assert after["clf"] is not before["clf"]
    assert_kept(before, after, "reg", "mixed")
    # a new salt reshuffles the keys (the route's sticky prefix was rebuilt)
    assert [await version_of(served, **{"X-Routing-Key": k}) for k in keys] != unsalted
    assert await version_of(served, **{"X-Use-Challenger": "true"}) == "1.1.0"

    before = after
    await served.change(lambda r: r.set_alias("clf", "champion", "1.1.0"))
    after = routes(served)
    assert after["clf"] is not before["clf"]
    assert_kept(before, after, "reg", "mixed")
    assert await version_of(served, "/predict/clf/versions/champion") == "1.1.0"


async def test_a_shadow_added_to_one_model_is_mirrored(served: InProcessApp) -> None:
    before = routes(served)
    shadowed = Deployment(model="clf", shadows=(Shadow("1.1.0", 1.0),))
    await served.change(lambda r: r.set_deployment(shadowed))
    after = routes(served)
    assert after["clf"] is not before["clf"]
    assert_kept(before, after, "reg", "mixed")
    for _ in range(5):
        assert await version_of(served) == "1.0.0"
    await asyncio.wait_for(served.state.mirror.join(), 10)
    report = (await served.http.get("/admin/models/clf/shadow", headers=AUTH)).json()
    (shadow,) = report["shadows"]
    assert shadow["version"] == "1.1.0" and shadow["requests"] == 5


async def test_a_change_to_another_model_keeps_this_routes_object(
    served: InProcessApp,
) -> None:
    before = routes(served)
    await served.change(lambda r: r.set_alias("reg", "stable", "1.0.0"))
    after = routes(served)
    assert after["reg"] is not before["reg"]
    assert_kept(before, after, "clf", "mixed")
    assert await version_of(served, "/predict/reg/versions/stable") == "1.0.0"
    assert await version_of(served) == "1.0.0"


async def test_a_version_unloaded_and_loaded_again_is_served_by_the_new_variant(
    served: InProcessApp,
) -> None:
    old = served.state.publisher.loaded[("clf", "1.0.0")]
    assert (await served.http.post("/v2/repository/models/clf/unload", headers=AUTH)).is_success
    before = routes(served)
    assert not before["clf"].ready
    assert (await served.http.post("/v2/repository/models/clf/load", headers=AUTH)).is_success
    after = routes(served)
    assert_kept(before, after, "reg", "mixed")
    new = served.state.publisher.loaded[("clf", "1.0.0")]
    assert new is not old and after["clf"].primary is new
    requests = new.requests
    assert await version_of(served) == "1.0.0"
    assert new.requests == requests + 1


async def test_a_failed_load_that_succeeds_on_retry_takes_traffic(
    served: InProcessApp, zoo_home: Path
) -> None:
    registry = await open_registry(zoo_home)
    try:
        version = await registry.get_version("clf", "2.0.0")
    finally:
        await registry.close()
    artifact = next(zoo_home.glob(f"artifacts/**/{version.artifact_sha256}*"))
    good = artifact.read_bytes()
    artifact.chmod(0o644)
    artifact.write_bytes(b"tampered" + good[8:])
    before = routes(served)

    async def route_to_two(registry):
        await registry.set_deployment(
            Deployment(model="clf", routes=(Route("1.0.0", 50.0), Route("2.0.0", 50.0))),
            stage_changes={"2.0.0": Stage.STAGING},
        )

    await served.change(route_to_two)
    failed = routes(served)
    assert failed["clf"] is before["clf"]  # the routing it had, kept
    assert ("clf", "2.0.0") in served.state.publisher.failures
    assert {await version_of(served) for _ in range(30)} == {"1.0.0"}

    # the bytes are right again: the next refresh loads 2.0.0 (no registry row changed)
    artifact.write_bytes(good)
    await served.state.publisher.refresh()
    after = routes(served)
    assert after["clf"] is not failed["clf"]
    assert_kept(failed, after, "reg", "mixed")
    assert ("clf", "2.0.0") not in served.state.publisher.failures
    assert {await version_of(served) for _ in range(200)} == {"1.0.0", "2.0.0"}
