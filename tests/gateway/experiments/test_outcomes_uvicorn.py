"""Outcomes on a real `modelgate serve --workers 2`: an outcome sent to both workers counts
once, aggregates equal numpy, assignment counts of both workers add up, and all of it
survives a restart (a new server on the same registry)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from registry.sqlite.store import open_registry
from tests.support.experiments import ROW, start_experiment_at
from tests.support.gateway_process import GatewayProcess, running_server
from tests.support.polling import wait_until

pytestmark = pytest.mark.slow  # two `modelgate serve --workers 2` processes, one after the other

FEEDBACK = "/v2/models/clf/feedback"


def _predict(server: GatewayProcess, request_id: str, key: str) -> str:
    headers = {"x-request-id": request_id, "x-routing-key": key}
    answer = server.fresh("POST", "/predict/clf", json={"instances": [ROW]}, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-model-version"]


def _send(server: GatewayProcess, item: dict) -> dict:
    """Post one outcome item until a worker knows its id (the worker that served it
    publishes its requests to the shared tables on its monitoring tick)."""

    def attempt() -> dict:
        response = server.fresh("POST", FEEDBACK, json=item)
        assert response.status_code == 200, response.text
        return response.json()["outcomes"]

    return wait_until(attempt, 30, 0.1, done=lambda r: not r["unknown"], message=str(item))


def _scrape(server: GatewayProcess, name: str) -> dict[frozenset, float]:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return {
        frozenset(s.labels.items()): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


async def _registry_state(home: Path) -> tuple[dict, dict]:
    registry = await open_registry(home)
    try:
        return await registry.outcome_moments("exp-1", "clf"), await registry.assignments("exp-1")
    finally:
        await registry.close()


def _check(found: dict, sent: dict[str, list[float]]) -> None:
    for version, values in sent.items():
        arr = np.asarray(values)
        n, total, total_sq = found["revenue"][version]
        assert n == len(arr)
        assert total == pytest.approx(arr.sum(), rel=1e-12)
        assert total_sq == pytest.approx(arr @ arr, rel=1e-12)


def test_two_workers_count_each_outcome_once_and_a_restart_keeps_it(zoo_home, tmp_path) -> None:
    asyncio.run(start_experiment_at(zoo_home))
    sent: dict[str, list[float]] = defaultdict(list)
    served: dict[str, int] = defaultdict(int)
    items = []
    by_key: list[str] = []  # the version that served user-i
    with running_server(zoo_home, tmp_path / "first.log", ["--workers", "2"]) as server:
        for i in range(30):
            version = _predict(server, f"r-{i}", f"user-{i}")
            by_key.append(version)
            served[version] += 1
            value = round(1.5 * i, 2)
            sent[version].append(value)
            items.append({"id": f"r-{i}", "outcomes": {"revenue": value}})
        assert len(served) == 2
        keyed = [{"routing_key": f"user-{i}", "outcomes": {"conversion": i % 2}} for i in range(10)]
        first = server.fresh("POST", FEEDBACK, json=keyed).json()["outcomes"]
        assert (first["accepted"], first["duplicate"]) == (10, 0)
        results = [_send(server, item) for item in items]
        # again, on fresh connections: whichever worker takes them, nothing counts twice
        results += [_send(server, item) for item in items for _ in range(2)]
        assert sum(r["accepted"] for r in results) == 30
        assert sum(r["duplicate"] for r in results) == 60
        accepted = _scrape(server, "modelgate_experiment_outcomes_total")
        assert sum(accepted.values()) == 40  # 30 revenues, 10 conversions
        dropped = _scrape(server, "modelgate_outcomes_dropped_total")
        assert dropped[frozenset({("model", "clf"), ("reason", "duplicate")})] == 60
    # the server stopped cleanly: every worker flushed its assignment counts
    moments, assignments = asyncio.run(_registry_state(zoo_home))
    _check(moments, sent)
    # each user's conversion joined the variant its requests were routed to
    users = defaultdict(list)
    for i in range(10):
        users[by_key[i]].append(i % 2)
    assert {v: m[0] for v, m in moments["conversion"].items()} == {
        v: len(c) for v, c in users.items()
    }
    assert {v: m[1] for v, m in moments["conversion"].items()} == {
        v: float(sum(c)) for v, c in users.items()
    }
    assert assignments == dict(served)

    with running_server(zoo_home, tmp_path / "second.log", ["--workers", "2"]) as server:
        # the registry remembers which outcomes it has
        again = server.fresh("POST", FEEDBACK, json=keyed).json()["outcomes"]
        assert (again["accepted"], again["duplicate"]) == (0, 10)
        # the feedback tables do not outlive the server: earlier ids are unknown now
        before = server.fresh("POST", FEEDBACK, json=items[:2]).json()["outcomes"]
        assert before["unknown"] == ["r-0", "r-1"] and before["accepted"] == 0
        version = _predict(server, "r-new", "user-new")
        served[version] += 1
        sent[version].append(100.0)
        assert _send(server, {"id": "r-new", "outcomes": {"revenue": 100.0}})["accepted"] == 1
    moments, assignments = asyncio.run(_registry_state(zoo_home))
    _check(moments, sent)
    assert assignments == dict(served)
