"""Hot swap on real uvicorn processes (loopback, free port): no request lost while the
admin API flips traffic, workers converge, state survives a restart, a corrupt artifact
never serves. The server is ``modelgate serve``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.cli import admin_commands
from gateway.cli import main as cli_main
from gateway.settings import Settings
from registry.sqlite.store import open_registry
from tests.support.gateway_process import GatewayProcess, free_port
from tests.support.registry_copy import private_copy

pytestmark = pytest.mark.slow  # real `modelgate serve` processes under load

TOKEN = "hotswap-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROW = orjson.dumps({"instances": [[0.5, -1.0, 0.25, 2.0]]})
JSON = {"content-type": "application/json"}


def start_server(
    home: Path, work: Path, workers: int = 1, port: int | None = None
) -> GatewayProcess:
    """``serve --workers N`` polling the registry every 250 ms, ready to take requests."""
    port = port or free_port()
    settings = Settings(home=home, workers=workers, poll_interval_ms=250).to_environ()
    log = work / f"server-{port}-{time.monotonic_ns()}.log"
    server = GatewayProcess(home, log, ["--workers", str(workers)], settings, port, TOKEN)
    return server.wait_ready()


@pytest.fixture
def home(zoo_template, tmp_path) -> Path:
    """clf 1.0.0 production, 1.1.0 staging, 2.0.0 registered; reg; mixed."""
    return private_copy(zoo_template, tmp_path)


# one cycle of admin changes, each valid after the previous one (from 1.0.0 production,
# 1.1.0 staging): traffic split, blue-green switch, rollback, switch back, rollback, restage
CYCLE = [
    ("PUT", "traffic", {"routes": [{"version": "1.0.0", "weight": 90},
                                   {"version": "1.1.0", "weight": 10}],
                        "challenger": "1.1.0", "sticky": True}),
    ("PUT", "traffic", {"routes": [{"version": "1.0.0", "weight": 30},
                                   {"version": "1.1.0", "weight": 70}]}),
    ("POST", "switch", {"version": "1.1.0", "reason": "green"}),
    ("POST", "rollback", {"reason": "back to blue"}),
    ("POST", "switch", {"version": "1.1.0"}),
    ("POST", "rollback", None),
    ("POST", "versions/1.1.0/stage", {"stage": "staging"}),
]  # fmt: skip


async def test_no_request_fails_while_traffic_flips_50_times(home, tmp_path):
    server = start_server(home, tmp_path, workers=2)
    try:
        stop = asyncio.Event()
        outcomes: Counter[str] = Counter()
        failures: list[str] = []

        async def client() -> None:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                while not stop.is_set():
                    try:
                        response = await http.post("/predict/clf", content=ROW, headers=JSON)
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))
                        continue
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text}")
                    else:
                        outcomes[response.headers["x-model-version"]] += 1

        async def admin() -> list[int]:
            statuses = []
            async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=30) as http:
                for step in range(50):
                    method, path, body = CYCLE[step % len(CYCLE)]
                    response = await http.request(method, f"/admin/models/clf/{path}", json=body)
                    assert response.status_code == 200, (step, response.text)
                    statuses.append(response.status_code)
                    await asyncio.sleep(0.02)
            return statuses

        clients = [asyncio.create_task(client()) for _ in range(8)]
        await asyncio.sleep(0.5)  # traffic is flowing before the first change
        try:
            statuses = await admin()
            await asyncio.sleep(0.5)
        finally:
            stop.set()
            await asyncio.gather(*clients)
        assert statuses == [200] * 50
        assert failures == []
        assert set(outcomes) == {"1.0.0", "1.1.0"} and sum(outcomes.values()) > 500
        assert "Traceback" not in server.log.read_text()
    finally:
        server.stop()


def converge(server: GatewayProcess, version: str) -> float:
    """Seconds until both workers report ``version`` as primary (bounded wait; the speed
    is measured by benchmarks/swap_bench.py, not asserted here)."""
    started = time.monotonic()
    first_seen: dict[int, float] = {}
    while len(first_seen) < 2 and time.monotonic() - started < 20:
        view = server.fresh("GET", "/admin/models/clf", headers=AUTH).json()
        if view["serving"]["primary"] == version:
            first_seen.setdefault(view["worker"]["pid"], time.monotonic() - started)
    assert len(first_seen) == 2, f"workers serving {version}: {first_seen}"
    served = Counter(
        server.fresh("POST", "/predict/clf", content=ROW, headers=JSON).headers["x-model-version"]
        for _ in range(40)
    )
    assert set(served) == {version}
    return max(first_seen.values())


def test_a_change_through_one_worker_is_served_by_both(home, tmp_path, monkeypatch):
    server = start_server(home, tmp_path, workers=2)
    try:
        switch = server.fresh(
            "POST", "/admin/models/clf/switch", json={"version": "1.1.0"}, headers=AUTH
        )
        assert switch.status_code == 200, switch.text
        print(f"both workers served the switch after {converge(server, '1.1.0'):.3f} s")

        # the CLI writes the registry directly: the same watcher path brings both along
        if admin_commands not in cli_main.COMMAND_MODULES:
            monkeypatch.setattr(
                cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, admin_commands)
            )
        assert cli_main.main(["rollback", "clf", "--home", str(home)]) == 0
        print(f"both workers served the CLI rollback after {converge(server, '1.0.0'):.3f} s")

        # a corrupt artifact: the change is refused and undone, no worker ever serves it
        async def corrupt() -> None:
            registry = await open_registry(home)
            try:
                sha = (await registry.get_version("clf", "2.0.0")).artifact_sha256
            finally:
                await registry.close()
            (artifact,) = home.glob(f"artifacts/**/{sha}*")
            artifact.write_bytes(artifact.read_bytes()[::-1])

        asyncio.run(corrupt())
        seen: Counter[str] = Counter()
        stop = threading.Event()

        def watch() -> None:  # requests on fresh connections while the change is tried
            while not stop.is_set():
                answer = server.fresh("POST", "/predict/clf", content=ROW, headers=JSON)
                seen[f"{answer.status_code} {answer.headers['x-model-version']}"] += 1

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            time.sleep(0.3)
            split = {
                "routes": [{"version": "1.0.0", "weight": 50}, {"version": "2.0.0", "weight": 50}]
            }
            refused = server.fresh("PUT", "/admin/models/clf/traffic", json=split, headers=AUTH)
            time.sleep(1.0)  # past the other worker's poll: it saw both transactions
        finally:
            stop.set()
            watcher.join()
        assert refused.status_code == 409 and refused.json()["restored"] is True
        assert "2.0.0" in refused.json()["failures"]
        assert set(seen) == {"200 1.0.0"} and sum(seen.values()) > 10
        traffic = server.fresh("GET", "/admin/models/clf/traffic", headers=AUTH).json()
        assert traffic["routes"] == [{"version": "1.0.0", "weight": 100.0}]
    finally:
        server.stop()


def test_traffic_state_is_identical_after_a_restart(home, tmp_path):
    port = free_port()
    change = {
        "routes": [{"version": "1.0.0", "weight": 70}, {"version": "1.1.0", "weight": 30}],
        "shadow": [{"version": "2.0.0", "sample": 0.5}],
        "challenger": "1.1.0",
        "sticky": True,
    }

    def observe(server: GatewayProcess) -> dict:
        keys = [f"user-{i}" for i in range(30)]
        sticky = {
            key: server.fresh(
                "POST", "/predict/clf", content=ROW, headers={**JSON, "X-Routing-Key": key}
            ).headers["x-model-version"]
            for key in keys
        }
        model = server.fresh("GET", "/admin/models/clf", headers=AUTH).json()
        return {
            "traffic": server.fresh("GET", "/admin/models/clf/traffic", headers=AUTH).json(),
            "serving": model["serving"],
            "versions": [(v["version"], v["stage"], v["state"]) for v in model["versions"]],
            "sticky": sticky,
        }

    server = start_server(home, tmp_path, port=port)
    try:
        response = server.fresh("PUT", "/admin/models/clf/traffic", json=change, headers=AUTH)
        assert response.status_code == 200, response.text
        before = observe(server)
    finally:
        server.stop()
    assert set(before["sticky"].values()) == {"1.0.0", "1.1.0"}
    assert before["serving"]["shadow"] == [{"version": "2.0.0", "sample": 0.5}]

    server = start_server(home, tmp_path, port=port)
    try:
        assert observe(server) == before
    finally:
        server.stop()
