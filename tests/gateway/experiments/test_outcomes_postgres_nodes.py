"""Outcomes on two ``modelgate serve`` nodes sharing one PostgreSQL registry: the registry
merges what both record (a user's outcome sent to both counts once), and with the database
gone a feedback POST is a 503 that records nothing, label included."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from gateway.cli import main as cli_main
from gateway.settings import Settings
from registry.backend import open_store
from registry.home import HomePaths
from tests.support.experiments import ROW, start_experiment_at
from tests.support.gateway_process import GatewayProcess
from tests.support.polling import wait_until
from tests.support.postgres import running_postgres

pytestmark = pytest.mark.slow  # a private PostgreSQL and two server processes

FEEDBACK = "/v2/models/clf/feedback"


def _start_node(root: Path, url: str) -> GatewayProcess:
    home = root / "home"
    settings = Settings(home=home, registry_url=url).to_environ()
    return GatewayProcess(home, root.with_suffix(".log"), [], settings, None, "tok")


async def _merged(url: str, root: Path) -> tuple[dict, dict]:
    store = await open_store(HomePaths(root), url)
    try:
        return await store.outcome_moments("exp-1", "clf"), await store.assignments("exp-1")
    finally:
        await store.close()


def _predict(node: GatewayProcess, request_id: str, key: str) -> str:
    headers = {"x-request-id": request_id, "x-routing-key": key}
    answer = node.fresh("POST", "/predict/clf", json={"instances": [ROW]}, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-model-version"]


@pytest.fixture(scope="module")
def private_server():
    with running_postgres() as server:
        yield server


def test_two_nodes_merge_in_the_registry_and_a_lost_database_is_503(
    zoo_home, private_server, tmp_path
) -> None:
    asyncio.run(start_experiment_at(zoo_home))
    url = private_server.new_database()
    argv = ["registry", "migrate", "--home", str(zoo_home), "--to", url]
    assert cli_main.main(argv) == 0
    nodes = [_start_node(tmp_path / name, url) for name in ("a", "b")]
    sent: dict[str, list[float]] = defaultdict(list)
    served: dict[str, int] = defaultdict(int)
    try:
        for node in nodes:
            node.wait_ready()
        for n, node in enumerate(nodes):
            for i in range(12):
                rid = f"n{n}-{i}"
                version = _predict(node, rid, f"user-{n}-{i}")
                served[version] += 1
                value = float(3 * i + n)
                sent[version].append(value)
                body = {"id": rid, "outcomes": {"revenue": value}}
                answer = node.fresh("POST", FEEDBACK, json=body).json()["outcomes"]
                assert answer["accepted"] == 1, answer  # the node that served knows the id
        # a user's outcome reaches both nodes: the registry counts it once
        keyed = [{"routing_key": f"user-0-{i}", "outcomes": {"conversion": 1}} for i in range(6)]
        results = [node.fresh("POST", FEEDBACK, json=keyed).json()["outcomes"] for node in nodes]
        assert [(r["accepted"], r["duplicate"]) for r in results] == [(6, 0), (0, 6)]

        a, _b = nodes
        down_version = _predict(a, "down-1", "user-down")
        served[down_version] += 1
        private_server.stop()
        try:
            body = {"id": "down-1", "label": 1, "outcomes": {"revenue": 1.0}}
            refused = a.fresh("POST", FEEDBACK, json=body)
            assert refused.status_code == 503, refused.text
            assert "outcomes not recorded" in refused.json()["error"]
        finally:
            private_server.start_again()

        def retry() -> dict:
            return a.fresh("POST", FEEDBACK, json=body).json()

        # the label was not applied with the refused body: both are accepted now
        done = wait_until(retry, 60, 0.5, done=lambda r: "outcomes" in r, message="retry")
        assert done["accepted"] == 1 and done["outcomes"]["accepted"] == 1
        sent[down_version].append(1.0)
    finally:
        for node in nodes:
            node.stop()
    moments, assignments = asyncio.run(_merged(url, tmp_path / "reader"))
    for version, values in sent.items():
        arr = np.asarray(values)
        n, total, total_sq = moments["revenue"][version]
        assert (n, total, total_sq) == (
            len(arr),
            pytest.approx(arr.sum()),
            pytest.approx(arr @ arr),
        )
    assert sum(m[0] for m in moments["conversion"].values()) == 6
    # both nodes flushed their assignment counts when they stopped
    assert assignments == dict(served)
