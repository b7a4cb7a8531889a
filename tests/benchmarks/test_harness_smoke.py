"""Smoke test of the load-test harness: one tiny scenario, end to end, through its CLI.

It starts the bare server under uvicorn on loopback, drives it with wrk for ~2 s and
checks that the results file has sane fields. It asserts nothing about speed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_harness(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow  # uvicorn driven by wrk
def test_smoke_scenario_writes_sane_results(tmp_path: Path) -> None:
    done = run_harness(
        "--scenarios", "smoke", "--duration", "2", "--reps", "1", "--warmup", "1",
        "--quiet-wait", "0", "--no-report", "--no-plots", "--out", str(tmp_path),
    )  # fmt: skip
    if done.returncode == 2 and shutil.which("wrk") is None and "wrk" in done.stderr:
        pytest.skip(f"wrk cannot be installed here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr

    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1
    results = json.loads(files[0].read_text())

    assert results["machine"]["cores"] >= 1
    assert results["machine"]["cpu_model"]
    assert results["machine"]["wrk"].startswith("wrk")
    assert results["settings"]["duration_s"] == 2
    assert "--scenarios smoke" in results["command"]

    (scenario,) = results["scenarios"]
    assert scenario["name"] == "smoke"
    assert "error" not in scenario
    assert "benchmarks.servers.bare:app" in scenario["servers"][0]["command"]

    (run,) = scenario["runs"]
    assert run["server"] == "bare"
    assert run["connections"] == 4
    assert run["requests"] > 0
    assert run["rps"] > 0
    assert 1.5 < run["duration_s"] < 4
    latency = run["latency_us"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert run["non_2xx"] == 0
    assert run["socket_errors"] == 0
    assert run["wrk_cpu_cores"] > 0
    assert run["server_cpu_cores"] > 0

    (point,) = scenario["points"]
    assert point["rps"]["median"] == run["rps"]
    assert point["rps"]["n"] == 1

    # the summary table is printed too
    assert "| bare | 4 | 1 |" in done.stdout


def test_unknown_scenario_is_a_clear_usage_error(tmp_path: Path) -> None:
    done = run_harness("--scenarios", "no-such-scenario", "--out", str(tmp_path), timeout=60)
    assert done.returncode == 2
    assert "unknown scenario(s) no-such-scenario" in done.stderr
    assert list(tmp_path.iterdir()) == []
