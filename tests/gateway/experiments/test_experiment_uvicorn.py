"""A real ``modelgate serve --workers 2``: the leader's controller decides an experiment from
the outcomes in the registry and hands the traffic back; every worker serves the result."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from registry.outcomes import OutcomeRow
from registry.sqlite.store import open_registry
from tests.support.gateway_process import GatewayProcess
from tests.support.polling import wait_until

pytestmark = pytest.mark.slow  # a two-worker server process

TOKEN = "experiment-serve-token"
URL = "/admin/models/clf/experiment"


def _write(home: Path, experiment: str, n: int) -> None:
    async def write() -> None:
        registry = await open_registry(home)
        try:
            rows = [
                OutcomeRow(f"id:{v}-{i}", "conversion", experiment, v, float(i < ones))
                for v, ones in (("1.0.0", n // 10), ("1.1.0", n // 4))
                for i in range(n)
            ]
            await registry.add_outcomes("clf", rows)
            await registry.add_assignments(experiment, {"1.0.0": n, "1.1.0": n})
        finally:
            await registry.close()

    asyncio.run(write())


def test_the_leader_stops_a_decided_experiment(zoo_home: Path, tmp_path: Path) -> None:
    server = GatewayProcess(
        zoo_home,
        tmp_path / "serve.log",
        args=["--workers", "2"],
        env={"MODELGATE_POLL_INTERVAL_MS": "100", "MODELGATE_EXPERIMENT_INTERVAL_S": "0.5"},
        token=TOKEN,
    )
    try:
        server.wait_ready()
        body = {
            "variants": {"1.0.0": 50, "1.1.0": 50},
            "metrics": [{"name": "conversion", "kind": "binary", "baseline": 0.1}],
            "mde": 0.05,
            "mde_kind": "absolute",
        }
        started = httpx.post(f"{server.url}{URL}", json=body, headers=server.auth, timeout=30)
        assert started.status_code == 200, started.text
        experiment, n = started.json()["id"], started.json()["plan"]["n_per_variant"]
        _write(zoo_home, experiment, n)

        def state() -> dict:
            return httpx.get(f"{server.url}{URL}", headers=server.auth, timeout=30).json()

        done = wait_until(
            state, 60, 0.2, done=lambda s: s["status"] == "stopped", message="never decided"
        )
        assert done["verdict"]["outcome"] == "winner" and done["verdict"]["winner"] == "1.1.0"
        assert done["stopped_by"] == "experiment-controller"
        deadline = time.monotonic() + 30
        while True:  # fresh connections spread over both workers
            versions = {
                server.fresh(
                    "POST", "/predict/clf", json={"instances": [[0.5, -1.0, 0.25, 2.0]]}
                ).headers["x-model-version"]
                for _ in range(12)
            }
            if versions == {"1.0.0"}:
                break
            assert time.monotonic() < deadline, f"a worker still serves {versions}"
            time.sleep(0.2)
        metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
        assert 'modelgate_experiment_running{model="clf"} 0.0' in metrics
    finally:
        server.stop()
