"""Faults of the registry's storage under a real ``modelgate serve`` (uvicorn subprocess).

* an artifact corrupted on disk after registration, found at a restart: that version is
  refused (sha256) and never takes traffic, the admin API says why, the others serve;
* the registry file locked by another process (``BEGIN EXCLUSIVE``): an admin write waits
  within the busy timeout and succeeds, predictions are served throughout, state is
  consistent after the release;
* the disk full while registering (``RLIMIT_FSIZE`` on ``modelgate convert``): the
  registration fails cleanly, no artifact, no row, the running gateway is unaffected.

The same corruption while the server runs (a traffic change refused and undone) is covered
by tests/gateway/test_hotswap_uvicorn.py and tests/gateway/admin/test_refusals.py.
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest

from registry.sqlite.store import open_registry
from tests.support.gateway_process import GatewayProcess, running_server

pytestmark = pytest.mark.slow  # real servers on a full, locked or corrupted registry

ROW = {"instances": [[0.5, -1.0, 0.25, 2.0]]}


@pytest.fixture
def server(zoo_home: Path, tmp_path: Path) -> Iterator[GatewayProcess]:
    env = {"MODELGATE_POLL_INTERVAL_MS": "50"}
    with running_server(zoo_home, tmp_path / "server.log", env=env) as gateway:
        yield gateway


def registry_snapshot(home: Path) -> dict:
    """Every version row, the deployments and the audit log, read through the registry."""

    async def read() -> dict:
        registry = await open_registry(home)
        try:
            versions = {}
            for model in await registry.list_models():
                for mv in await registry.list_versions(model.name):
                    versions[f"{mv.model}:{mv.version}"] = [mv.stage.value, mv.artifact_sha256]
            deployments = {
                m.name: (await registry.get_deployment(m.name)).routes
                for m in await registry.list_models()
            }
            audit = [(e.action, e.model, e.version) for e in await registry.audit(limit=1000)]
            return {"versions": versions, "deployments": deployments, "audit": audit}
        finally:
            await registry.close()

    return asyncio.run(read())


def integrity(home: Path) -> str:
    with sqlite3.connect(home / "registry.db") as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def artifact_of(home: Path, model: str, version: str) -> Path:
    async def sha() -> str:
        registry = await open_registry(home)
        try:
            return (await registry.get_version(model, version)).artifact_sha256
        finally:
            await registry.close()

    digest = asyncio.run(sha())
    return home / "artifacts" / "sha256" / digest[:2] / f"{digest}.onnx"


def predictions(server: GatewayProcess) -> dict[str, list]:
    rows = {"clf": ROW, "reg": ROW, "mixed": {"instances": [{"a": 0.1, "b": 1.0, "plan": "pro"}]}}
    answers = {}
    for model, body in rows.items():
        response = server.fresh("POST", f"/predict/{model}", json=body)
        assert response.status_code == 200, response.text
        answers[model] = response.json()["predictions"]
    return answers


def test_an_artifact_corrupted_on_disk_is_refused_at_restart(zoo_home, tmp_path, server):
    served = predictions(server)
    before = registry_snapshot(zoo_home)
    artifact = artifact_of(zoo_home, "clf", "1.1.0")
    artifact.chmod(0o644)
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    artifact.write_bytes(bytes(data))
    server.stop()

    restarted = GatewayProcess(zoo_home, tmp_path / "restart.log").wait_ready()
    try:
        # the other versions and models serve exactly as before
        assert predictions(restarted) == served
        # the corrupt one never takes traffic: pinned requests are refused with a reason
        pinned = restarted.fresh(
            "POST", "/predict/clf", json=ROW, headers={"X-Model-Version": "1.1.0"}
        )
        assert pinned.status_code in (404, 503) and pinned.json()["error"]
        infer = restarted.fresh(
            "POST",
            "/v2/models/clf/versions/1.1.0/infer",
            json={
                "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [0] * 4}]
            },
        )
        assert infer.status_code in (404, 503) and infer.json()["error"]
        # the admin API says why
        view = restarted.fresh("GET", "/admin/models/clf", headers=restarted.auth).json()
        assert "tampered" in json.dumps(view)
        # and a change that would route to it is refused, nothing changes
        split = {"routes": [{"version": "1.0.0", "weight": 50}, {"version": "1.1.0", "weight": 50}]}
        refused = restarted.fresh(
            "PUT", "/admin/models/clf/traffic", json=split, headers=restarted.auth
        )
        assert refused.status_code == 409, refused.text
        assert "tampered" in refused.json()["failures"]["1.1.0"]
        versions = Counter(
            restarted.fresh("POST", "/predict/clf", json=ROW).headers["x-model-version"]
            for _ in range(20)
        )
        assert versions == Counter({"1.0.0": 20})
    finally:
        restarted.stop()
    after = registry_snapshot(zoo_home)
    assert after["versions"] == before["versions"]  # nothing lost, no row rewritten
    assert after["deployments"] == before["deployments"]
    assert "Traceback" not in (tmp_path / "restart.log").read_text()
    assert integrity(zoo_home) == "ok"


LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
print("released", flush=True)
"""


def test_a_locked_registry_delays_admin_writes_and_never_predictions(zoo_home, server):
    before = registry_snapshot(zoo_home)
    outcomes: Counter[str] = Counter()
    stop = threading.Event()

    def predict() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            while not stop.is_set():
                try:
                    response = client.post("/predict/clf", json=ROW)
                    outcomes[str(response.status_code)] += 1
                except httpx.HTTPError as exc:
                    outcomes[type(exc).__name__] += 1

    clients = [threading.Thread(target=predict) for _ in range(2)]
    for client in clients:
        client.start()
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(zoo_home / "registry.db"), "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout.readline().strip() == "locked"
        locked_at = time.monotonic()
        served_before = sum(outcomes.values())
        split = {"routes": [{"version": "1.0.0", "weight": 80}, {"version": "1.1.0", "weight": 20}]}
        change = httpx.put(
            f"{server.url}/admin/models/clf/traffic", json=split, headers=server.auth, timeout=30
        )
        waited = time.monotonic() - locked_at
        served_during = sum(outcomes.values()) - served_before
        assert locker.stdout.readline().strip() == "released"
        assert locker.wait(10) == 0
    finally:
        time.sleep(0.3)
        stop.set()
        for client in clients:
            client.join()
        if locker.poll() is None:
            locker.kill()
            locker.wait()
    # the write waited for the lock (within the busy timeout) and then succeeded
    assert change.status_code == 200, change.text
    assert waited >= 2.5
    # predictions never waited for the database
    assert set(outcomes) == {"200"} and served_during > 20
    # consistent afterwards: the registry, the audit log (exactly once) and what is served
    after = registry_snapshot(zoo_home)
    assert after["versions"] == before["versions"]
    added = after["audit"][: len(after["audit"]) - len(before["audit"])]
    assert [(a, m) for a, m, _v in added] == [("traffic", "clf")], added
    traffic = server.fresh("GET", "/admin/models/clf/traffic", headers=server.auth).json()
    assert traffic["routes"] == [
        {"version": "1.0.0", "weight": 80.0},
        {"version": "1.1.0", "weight": 20.0},
    ]
    assert integrity(zoo_home) == "ok"


def stored_files(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "artifacts").rglob("*") if not p.is_dir())


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes fail with EFBIG instead
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (640 * 1024, hard))


def test_a_full_disk_while_registering_fails_cleanly(zoo_home, tmp_path, server):
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(1000, 4)).astype(np.float32), columns=list("abcd"))
    frame["y"] = rng.integers(0, 2, size=len(frame))  # noise: deep trees, a ~1.7 MB artifact
    forest = RandomForestClassifier(n_estimators=100, random_state=0)
    forest.fit(frame[list("abcd")], frame["y"])
    joblib.dump(forest, tmp_path / "forest.joblib")
    frame.to_csv(tmp_path / "sample.csv", index=False)
    served = predictions(server)
    before = registry_snapshot(zoo_home)
    blobs = stored_files(zoo_home)

    command = [sys.executable, "-m", "gateway.cli.main", "convert", str(tmp_path / "forest.joblib")]
    command += ["--sample", str(tmp_path / "sample.csv"), "--label", "y", "--name", "clf"]
    command += ["--version", "3.0.0", "--home", str(zoo_home)]
    result = subprocess.run(
        command, capture_output=True, text=True, preexec_fn=_limit_file_size, timeout=120
    )
    # what the operator saw: exit 2 and one clear line, no traceback
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "could not store artifact" in lines[0], result.stderr
    assert "disk full or file size limit" in lines[0] and "Traceback" not in result.stderr

    # nothing half-written: no new blob, no temp file, no row, no audit entry
    assert stored_files(zoo_home) == blobs  # (an empty shard folder may remain: harmless)
    assert registry_snapshot(zoo_home) == before
    assert integrity(zoo_home) == "ok"
    # the running gateway did not notice
    assert predictions(server) == served
    missing = server.fresh("POST", "/predict/clf", json=ROW, headers={"X-Model-Version": "3.0.0"})
    assert missing.status_code == 404
    assert server.fresh("GET", "/v2/health/ready").status_code == 200
