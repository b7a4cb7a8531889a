"""The running-experiment view: the state JSON the control plane writes, parsed per worker
from the serving view it publishes, when that view moves."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.experiments.running import running_from_json, running_in
from tests.support.asgi_app import running_gateway
from tests.support.experiments import experiment_json, predict, start_experiment


def test_a_running_experiment_from_its_json() -> None:
    found = running_from_json(experiment_json({"1.0.0": 50, "1.1.0": 50}, 1_796_000_000.5))
    assert found is not None
    assert (found.id, found.model, found.started_at) == ("exp-1", "clf", 1_796_000_000.5)
    assert dict(found.variants) == {"1.0.0": 50.0, "1.1.0": 50.0}
    assert [m.name for m in found.outcome_metrics()] == ["conversion", "revenue"]
    iso = running_from_json(
        {**experiment_json({"1.0.0": 100}, 0), "started_at": "2026-12-01T00:00:00Z"}
    )
    assert iso is not None and iso.started_at == 1_796_083_200.0
    assert running_from_json(experiment_json({"1.0.0": 100}, 0, status="stopped")) is None


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"variants": {}}, "'variants'"),
        ({"variants": {"1.0.0": -1}}, "must be a number >= 0"),
        ({"metrics": [{"name": "x", "kind": "ratio"}]}, "metric kind"),
        ({"started_at": None}, "started_at"),
        ({"id": ""}, "'id'"),
    ],
)
def test_malformed_experiment_json_is_refused(change, fragment) -> None:
    with pytest.raises(ValueError, match=fragment):
        running_from_json({**experiment_json({"1.0.0": 100}, 0), **change})


async def test_each_worker_sees_the_experiment_once_its_snapshot_moves(zoo_home) -> None:
    async with running_gateway(zoo_home, "tok") as served:
        running = served.state.running_experiments
        await running.refresh()
        assert running.get("clf") is None
        await served.change(start_experiment)
        await running.refresh()
        assert running.get("clf").id == "exp-1"
        # a malformed value for another model is skipped, not fatal
        await served.change(lambda r: r.put_state("experiment/reg", {"status": "running"}))
        await running.refresh()
        assert set(running.all()) == {"clf"}
        assert set(running_in(served.state.publisher.view)) == {"clf"}
        stopped = experiment_json({"1.0.0": 50.0, "1.1.0": 50.0}, 0, status="stopped")
        await served.change(lambda r: r.put_state("experiment/clf", stopped))
        await running.refresh()
        assert running.get("clf") is None


async def test_routing_key_outcomes_need_a_sticky_deployment(zoo_home) -> None:
    async with running_gateway(zoo_home, "tok") as served:
        await served.change(start_experiment)

        async def not_sticky(registry) -> None:
            deployment = await registry.get_deployment("clf")
            await registry.set_deployment(replace(deployment, sticky=False))

        await served.change(not_sticky)
        await predict(served.http, "k-1", key="user-1")
        body = {"routing_key": "user-1", "outcomes": {"revenue": 3.0}}
        answer = (await served.http.post("/v2/models/clf/feedback", json=body)).json()
        (invalid,) = answer["outcomes"]["invalid"]
        assert invalid["routing_key"] == "user-1" and "sticky deployment" in invalid["error"]
        assert answer["outcomes"]["accepted"] == 0
