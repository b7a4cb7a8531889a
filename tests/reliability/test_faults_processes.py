"""Process-level faults under a real ``modelgate serve``.

* one worker of ``--workers 2`` killed with SIGKILL under load: the other keeps serving,
  uvicorn's supervisor (uvicorn/supervisors/multiprocess.py ``keep_subprocess_alive``)
  starts a replacement, which serves the same traffic state (read from the registry);
* a retraining webhook receiver that accepts connections and never answers: each delivery
  attempt times out, is retried and recorded as failed; serving and admin changes go on.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.gateway_process import GatewayProcess
from tests.support.polling import wait_until

pytestmark = pytest.mark.slow  # real servers: killed workers, hanging webhooks

ROW = {"instances": [[0.5, -1.0, 0.25, 2.0]]}
CANARY = {
    "routes": [{"version": "1.0.0", "weight": 70}, {"version": "1.1.0", "weight": 30}],
    "sticky": True,
}


def workers_of(parent: int) -> set[int]:
    """uvicorn's worker processes: the parent's children started by multiprocessing spawn."""
    children: set[int] = set()
    for task in Path(f"/proc/{parent}/task").iterdir():
        children.update(int(p) for p in (task / "children").read_text().split())
    found = set()
    for pid in children:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in cmdline:
            found.add(pid)
    return found


def sticky_versions(server: GatewayProcess, pid: int | None = None) -> dict[str, str]:
    """Version per routing key, answered by worker ``pid`` when given (fresh connections
    until that worker answers)."""
    seen: dict[str, str] = {}
    keys = [f"user-{i}" for i in range(20)]
    deadline = time.monotonic() + 30
    while len(seen) < len(keys):
        assert time.monotonic() < deadline, seen
        key = keys[len(seen)]
        view = server.fresh("GET", "/admin/models/clf", headers=server.auth).json()
        if pid is not None and view["worker"]["pid"] != pid:
            continue
        answer = server.fresh("POST", "/predict/clf", json=ROW, headers={"X-Routing-Key": key})
        assert answer.status_code == 200
        seen[key] = answer.headers["x-model-version"]
    return seen


def test_a_worker_killed_under_load_is_replaced_and_serves_the_same_state(zoo_home, tmp_path):
    server = GatewayProcess(zoo_home, tmp_path / "server.log", ["--workers", "2"]).wait_ready()
    try:
        change = server.fresh("PUT", "/admin/models/clf/traffic", json=CANARY, headers=server.auth)
        assert change.status_code == 200, change.text
        time.sleep(1.0)  # both workers past their generation poll
        before = sticky_versions(server)
        original = workers_of(server.proc.pid)
        assert len(original) == 2, original

        outcomes: Counter[str] = Counter()
        stop = threading.Event()

        body = json.dumps(ROW)

        def load() -> None:  # a new connection per request: spread over both workers
            while not stop.is_set():
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                try:
                    conn.request("POST", "/predict/clf", body, {"content-type": "application/json"})
                    response = conn.getresponse()
                    response.read()
                    outcomes[str(response.status)] += 1
                except (OSError, http.client.HTTPException) as exc:
                    outcomes[type(exc).__name__] += 1
                finally:
                    conn.close()

        clients = [threading.Thread(target=load) for _ in range(4)]
        for client in clients:
            client.start()
        try:
            time.sleep(0.5)
            victim = min(original)
            os.kill(victim, signal.SIGKILL)
            # the supervisor checks every 0.5 s and spawns a replacement
            current = wait_until(
                lambda: workers_of(server.proc.pid),
                60,
                0.1,
                done=lambda pids: len(pids) == 2 and victim not in pids,
                message="a replacement worker",
            )
            (replacement,) = current - original
            time.sleep(1.0)
        finally:
            stop.set()
            for client in clients:
                client.join()
        # what the clients saw: answers throughout; at most the requests that the dead
        # worker had accepted (one per client) were cut, never an HTTP error status
        errors = {k: v for k, v in outcomes.items() if k != "200"}
        print(f"outcomes during the kill: {dict(outcomes)}")
        assert not any(k.isdigit() for k in errors), errors
        assert sum(errors.values()) <= len(clients), errors
        assert outcomes["200"] > 100

        # the replacement, once ready, serves the same traffic state as before the kill
        server.wait_ready()
        assert sticky_versions(server, pid=replacement) == before
        traffic = server.fresh("GET", "/admin/models/clf/traffic", headers=server.auth).json()
        assert traffic["routes"] == [
            {"version": "1.0.0", "weight": 70.0},
            {"version": "1.1.0", "weight": 30.0},
        ]
        assert server.fresh("GET", "/metrics").status_code == 200
        assert server.proc.poll() is None
    finally:
        server.stop()


class HangingReceiver:
    """Accepts every connection and never answers (keeps the sockets open)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.accepted:
            conn.close()


def test_a_hanging_webhook_times_out_and_serving_goes_on(zoo_home, tmp_path):
    receiver = HangingReceiver()
    env = {
        "MODELGATE_RETRAIN_WEBHOOK": f"http://127.0.0.1:{receiver.port}/retrain",
        "MODELGATE_RETRAIN_TIMEOUT_S": "1",
        "MODELGATE_RETRAIN_ATTEMPTS": "2",
        "MODELGATE_RETRAIN_BACKOFF_S": "0.1",
        "MODELGATE_RETRAIN_EVERY_S": "0.1",
        "MODELGATE_RETRAIN_COOLDOWN_S": "3600",
        "MODELGATE_LEADER_RETRY_S": "0.1",
        "MODELGATE_RETRAIN_POLICY": json.dumps(
            {"models": {"clf": {"min_new_samples_for_retrain": 0}}}
        ),
        "MODELGATE_RETRAIN_COMMAND": None,
    }
    server = GatewayProcess(zoo_home, tmp_path / "server.log", env=env).wait_ready()
    try:
        statuses: Counter[int] = Counter()
        changes = []
        deadline = time.monotonic() + 30
        while True:
            statuses[server.fresh("POST", "/predict/clf", json=ROW).status_code] += 1
            report = server.fresh("GET", "/admin/models/clf/retraining", headers=server.auth)
            assert report.status_code == 200
            last = report.json()["trigger"]["last_fire"]
            if last is not None and last["status"] == "delivering" and not changes:
                # the control loop is not blocked by the hanging delivery
                weight = {"routes": CANARY["routes"]}
                changes.append(
                    server.fresh(
                        "PUT", "/admin/models/clf/traffic", json=weight, headers=server.auth
                    )
                )
            if last is not None and last["status"] not in ("delivering",):
                break
            assert time.monotonic() < deadline, report.json()
            time.sleep(0.05)
        (result,) = last["results"]
        assert result["target"] == "webhook" and result["status"] == "failed"
        assert result["attempts"] == 2 and "timed out" in result["error"], result
        assert last["status"] == "failed" and "new_data_available" in json.dumps(last)
        assert len(receiver.accepted) == 2  # one connection per attempt, then it gave up
        assert set(statuses) == {200} and statuses[200] >= 5
        assert changes and changes[0].status_code == 200, changes
        served = Counter(
            server.fresh("POST", "/predict/clf", json=ROW).headers["x-model-version"]
            for _ in range(40)
        )
        assert set(served) == {"1.0.0", "1.1.0"}
        # the cooldown holds: no second firing (and no new connection) while it runs
        time.sleep(0.5)
        assert len(receiver.accepted) == 2
        other = server.fresh("GET", "/admin/models/reg/retraining", headers=server.auth).json()
        assert other["trigger"]["last_fire"] is None
    finally:
        server.stop()
        receiver.close()
    assert "Traceback" not in (tmp_path / "server.log").read_text()
