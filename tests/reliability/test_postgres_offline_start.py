"""A node that starts while its PostgreSQL registry is down.

Two real ``modelgate serve`` nodes share a private PostgreSQL server. The server stops; node
b restarts and serves the same predictions from the view it saved and its verified artifact
cache, and says so in its log and readiness body; a node with an empty home starts not
ready. When the server comes back both converge without a restart.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from gateway.cli import main as cli_main
from gateway.serving.saved_view import FILENAME
from gateway.settings import Settings
from tests.support.gateway_process import GatewayProcess
from tests.support.postgres import running_postgres

TOKEN = "offline-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROW = orjson.dumps({"instances": [[0.5, -1.0, 0.25, 2.0]]})
JSON = {"content-type": "application/json"}


@pytest.fixture
def server():
    with running_postgres() as server:
        yield server


def start_node(root: Path, url: str, workers: int = 2) -> GatewayProcess:
    settings = Settings(home=root / "home", workers=workers, registry_url=url).to_environ()
    log = root.with_suffix(".log")
    return GatewayProcess(root / "home", log, ["--workers", str(workers)], settings, None, TOKEN)


def readiness(node: GatewayProcess) -> tuple[int, dict]:
    reply = node.fresh("GET", "/v2/health/ready")
    return reply.status_code, reply.json()


def predictions(node: GatewayProcess, n: int = 10) -> set[tuple[str, bytes]]:
    """The distinct (version, answer without its request id) to ``n`` requests on fresh
    connections."""
    seen = set()
    for _ in range(n):
        reply = node.fresh("POST", "/predict/clf", content=ROW, headers=JSON)
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        answer.pop("id")
        seen.add((reply.headers["x-model-version"], orjson.dumps(answer)))
    return seen


def wait_for(predicate, timeout_s: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def test_node_restarted_while_postgres_is_down_serves_its_saved_view(
    zoo_home, server, tmp_path, capsys
) -> None:
    url = server.new_database()
    assert cli_main.main(["registry", "migrate", "--home", str(zoo_home), "--to", url]) == 0
    capsys.readouterr()
    a, b = (start_node(tmp_path / name, url) for name in ("a", "b"))
    nodes = [a, b]
    try:
        for node in nodes:
            node.wait_ready()
        assert readiness(b) == (
            200,
            {"ready": True, "registry": "connected", "serving": "registry"},
        )
        # written in the background after the first publish
        assert wait_for(lambda: (b.home / FILENAME).is_file())
        before = predictions(b)
        assert {version for version, _body in before} == {"1.0.0"}

        server.stop()
        b.stop()
        b = start_node(tmp_path / "b", url)
        # a node that never saw the registry: nothing to serve, not ready, and it says why
        c = start_node(tmp_path / "c", url, workers=1)
        nodes = [a, b, c]
        b.wait_ready()
        status, body = readiness(b)
        assert status == 200 and body["registry"] == "unreachable", body
        assert body["serving"] == "saved view" and "unavailable" in body["reason"]
        assert predictions(b) == before
        log = b.log.read_text()
        assert "serving the saved view of generation" in log
        assert "from the verified local artifact cache" in log
        assert wait_for(lambda: "not ready until the database answers" in c.log.read_text())
        status, body = readiness(c)
        assert status == 503, body
        assert body["ready"] is False and body["registry"] == "unreachable"
        assert body["serving"] == "nothing"

        server.start_again()
        # no restart: both follow the database once it answers
        connected = {"ready": True, "registry": "connected", "serving": "registry"}
        assert wait_for(lambda: readiness(b) == (200, connected)), readiness(b)
        assert wait_for(lambda: readiness(c) == (200, connected)), readiness(c)
        assert "registry reachable again" in b.log.read_text()
        switch = a.fresh(
            "POST", "/admin/models/clf/switch", json={"version": "1.1.0"}, headers=AUTH
        )
        assert switch.status_code == 200, switch.text
        for node in (b, c):
            assert wait_for(lambda node=node: {v for v, _ in predictions(node)} == {"1.1.0"})

        # the restarted node saved the new state again (in the background)
        def saved_production() -> str:
            saved = orjson.loads((b.home / FILENAME).read_bytes())
            (clf,) = [m for m in saved["models"] if m["model"]["name"] == "clf"]
            return str(clf["model"]["production_version"])

        assert wait_for(lambda: saved_production() == "1.1.0"), saved_production()
        for node in nodes:
            assert "Traceback" not in node.log.read_text()
    finally:
        for node in nodes:
            node.stop()
