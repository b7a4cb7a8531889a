"""A deployment change that carries control-plane state writes: one transaction, both
backends (an experiment and the traffic split it owns must never disagree)."""

from __future__ import annotations

import math

import pytest

from registry.errors import InvalidDeployment, NotFound, RegistryError
from registry.models import Deployment, Route, Stage


async def _two_versions(registry, new_version) -> None:
    nv = new_version()
    for version in ("1.0.0", "1.1.0"):
        await registry.register_version("churn", nv, version=version)
    await registry.set_stage("churn", "1.0.0", Stage.PRODUCTION)
    await registry.set_stage("churn", "1.1.0", Stage.STAGING)


async def test_traffic_and_state_commit_together(registry, new_version) -> None:
    await _two_versions(registry, new_version)
    generation = await registry.generation()
    split = Deployment("churn", routes=(Route("1.0.0", 50), Route("1.1.0", 50)), sticky=True)
    record = {"id": "churn-1", "status": "running", "variants": {"1.0.0": 50, "1.1.0": 50}}
    change = registry.deployment_change(
        split,
        actor="ops",
        action="experiment_start",
        reason="start churn-1",
        states={"experiment/churn": record, "experiment-history/churn/churn-1": record},
    )
    await registry.commit(change)
    assert await registry.generation() == generation + 1  # one change
    assert (await registry.get_deployment("churn")).routes == split.routes
    assert await registry.get_state("experiment/churn") == record
    assert await registry.get_state("experiment-history/churn/churn-1") == record
    rows = await registry.audit(limit=3)
    assert [e.action for e in rows] == ["state", "state", "experiment_start"]
    assert {e.reason for e in rows} == {"start churn-1"}
    assert {e.after["key"] for e in rows[:2]} == {
        "experiment/churn",
        "experiment-history/churn/churn-1",
    }
    view = await registry.serving_view(state_prefix="experiment/")
    assert view.states == {"experiment/churn": record}


async def test_a_refused_deployment_writes_no_state(registry, new_version, state_of) -> None:
    await _two_versions(registry, new_version)
    before = await state_of("churn")
    bad = Deployment("churn", routes=(Route("1.0.0", 50), Route("9.9.9", 50)))
    with pytest.raises((NotFound, InvalidDeployment)):
        await registry.set_deployment(bad, states={"experiment/churn": {"id": "x"}})
    assert await registry.get_state("experiment/churn") is None
    assert await state_of("churn") == before


async def test_a_state_that_is_not_json_refuses_the_traffic_too(
    registry, new_version, state_of
) -> None:
    await _two_versions(registry, new_version)
    before = await state_of("churn")
    split = Deployment("churn", routes=(Route("1.0.0", 50), Route("1.1.0", 50)))
    with pytest.raises(RegistryError, match="cannot be stored as JSON"):
        await registry.set_deployment(split, states={"experiment/churn": {"x": math.inf}})
    with pytest.raises(RegistryError, match="state key"):
        await registry.set_deployment(split, states={"": {}})
    assert await state_of("churn") == before
