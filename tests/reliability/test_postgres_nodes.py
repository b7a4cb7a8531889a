"""Two ``modelgate serve`` nodes sharing only a PostgreSQL registry URL.

Each node has its own empty ``MODELGATE_HOME`` and two workers; the registry is the zoo,
copied into PostgreSQL by ``modelgate registry migrate``. A change made through either node
(or the CLI) reaches every worker of both nodes through LISTEN/NOTIFY. The fault tests run
on a private server they stop and start again.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import orjson
import psycopg
import pytest

from gateway.cli import main as cli_main
from gateway.settings import Settings
from tests.support.gateway_process import GatewayProcess
from tests.support.postgres import running_postgres

TOKEN = "nodes-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROW = orjson.dumps({"instances": [[0.5, -1.0, 0.25, 2.0]]})
JSON = {"content-type": "application/json"}


def migrate(zoo_home: Path, url: str) -> None:
    assert cli_main.main(["registry", "migrate", "--home", str(zoo_home), "--to", url]) == 0


def start_node(root: Path, url: str, workers: int = 2) -> GatewayProcess:
    home = root / "home"
    settings = Settings(home=home, workers=workers, registry_url=url).to_environ()
    log = root.with_suffix(".log")
    return GatewayProcess(home, log, ["--workers", str(workers)], settings, None, TOKEN)


def converge(node: GatewayProcess, version: str, workers: int = 2) -> float:
    """Seconds until every worker of ``node`` reports ``version`` as clf's primary."""
    started = time.monotonic()
    seen: dict[int, float] = {}
    while len(seen) < workers and time.monotonic() - started < 30:
        view = node.fresh("GET", "/admin/models/clf", headers=AUTH).json()
        if view["serving"]["primary"] == version:
            seen.setdefault(view["worker"]["pid"], time.monotonic() - started)
    assert len(seen) == workers, f"workers serving {version}: {seen}"
    served = Counter(
        node.fresh("POST", "/predict/clf", content=ROW, headers=JSON).headers["x-model-version"]
        for _ in range(20)
    )
    assert set(served) == {version}
    return max(seen.values())


def test_a_change_on_either_node_reaches_every_worker_of_both(
    zoo_home, postgres_url, tmp_path, capsys
) -> None:
    migrate(zoo_home, postgres_url)
    capsys.readouterr()
    nodes = [start_node(tmp_path / name, postgres_url) for name in ("a", "b")]
    try:
        for node in nodes:
            node.wait_ready()
        a, b = nodes
        # node b started with an empty disk: it fetched (and verified) what it serves
        assert list((b.home / "artifacts").rglob("*.onnx"))
        switch = a.fresh(
            "POST", "/admin/models/clf/switch", json={"version": "1.1.0"}, headers=AUTH
        )
        assert switch.status_code == 200, switch.text
        for node in nodes:
            converge(node, "1.1.0")
        back = b.fresh("POST", "/admin/models/clf/rollback", json={}, headers=AUTH)
        assert back.status_code == 200, back.text
        for node in nodes:
            converge(node, "1.0.0")
        # the CLI, from a third home, writes only the database: both nodes follow
        cli_home = str(tmp_path / "cli")
        argv = ["stage", "clf", "1.1.0", "production", "--force", "--reason", "test"]
        assert cli_main.main([*argv, "--home", cli_home, "--registry", postgres_url]) == 0
        for node in nodes:
            converge(node, "1.1.0")
        for node in nodes:
            assert "Traceback" not in node.log.read_text()
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture(scope="module")
def private_server():
    with running_postgres() as server:
        yield server


def test_postgres_down_serving_continues_changes_refused_then_converge(
    zoo_home, private_server, tmp_path, capsys
) -> None:
    url = private_server.new_database()
    migrate(zoo_home, url)
    nodes = [start_node(tmp_path / name, url) for name in ("a", "b")]
    try:
        for node in nodes:
            node.wait_ready()
        a, b = nodes
        private_server.stop()
        try:
            for node in nodes:
                for _ in range(10):
                    reply = node.fresh("POST", "/predict/clf", content=ROW, headers=JSON)
                    assert reply.status_code == 200
                    assert reply.headers["x-model-version"] == "1.0.0"
            refused = a.fresh(
                "POST", "/admin/models/clf/switch", json={"version": "1.1.0"}, headers=AUTH
            )
            assert refused.status_code == 503, refused.text
            assert "registry database unavailable" in refused.json()["error"]
            capsys.readouterr()
            code = cli_main.main(["rollback", "clf", "--home", str(tmp_path), "--registry", url])
            err = capsys.readouterr().err
            assert code == 2 and err.count("\n") == 1 and "unavailable" in err, err
        finally:
            private_server.start_again()
        # no restart: the pools and listeners reconnect; a change converges everywhere
        deadline = time.monotonic() + 60
        while True:
            switch = a.fresh(
                "POST", "/admin/models/clf/switch", json={"version": "1.1.0"}, headers=AUTH
            )
            if switch.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert switch.status_code == 200, switch.text
        for node in nodes:
            converge(node, "1.1.0")
        with psycopg.connect(url) as conn:
            switches = conn.execute("SELECT count(*) FROM audit WHERE action = 'switch'").fetchone()
        assert switches == (1,)  # the refused attempts wrote nothing
    finally:
        for node in nodes:
            node.stop()


LEADS = "leads the control plane of every node"


def _wait_for(predicate, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _leader_sessions(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = "
            "'modelgate-leader' AND a.datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def test_one_leader_across_nodes_and_failover_when_its_node_dies(
    zoo_home, postgres_url, tmp_path
) -> None:
    migrate(zoo_home, postgres_url)
    nodes = [start_node(tmp_path / name, postgres_url, workers=2) for name in ("a", "b")]
    try:
        for node in nodes:
            node.wait_ready()
        assert _wait_for(lambda: sum(LEADS in n.log.read_text() for n in nodes) >= 1)
        time.sleep(3)  # several retry rounds: still exactly one leader among four workers
        leaders = [n for n in nodes if LEADS in n.log.read_text()]
        assert len(leaders) == 1
        assert leaders[0].log.read_text().count(LEADS) == 1
        assert _leader_sessions(postgres_url) == 1
        (survivor,) = [n for n in nodes if n is not leaders[0]]
        leaders[0].kill()  # the whole node at once, no shutdown code
        assert _wait_for(lambda: LEADS in survivor.log.read_text(), 30.0), survivor.log.read_text()
        assert survivor.log.read_text().count(LEADS) == 1
        assert _leader_sessions(postgres_url) == 1
    finally:
        for node in nodes:
            node.stop()
