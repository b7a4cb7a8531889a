"""`modelgate serve --workers 2` on a real uvicorn: metrics summed over the workers (and
accepted by promtool), label feedback shared by the workers, the `drift` / `health` verbs."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.cli import monitor_commands
from gateway.cli.output import CLIError
from tests.support.gateway_process import GatewayProcess, free_port, running_server
from tests.support.polling import wait_until
from tests.support.registry_copy import private_copy

pytestmark = pytest.mark.slow  # a two-worker `modelgate serve` and promtool

TOKEN = "uvicorn-monitoring-token"
ROW = [0.5, -1.0, 0.25, 2.0]
N_REQUESTS = 60


@pytest.fixture(scope="module")
def server(zoo_template, tmp_path_factory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("monitoring-serve")
    with running_server(
        private_copy(zoo_template, root),
        root / "server.log",
        ["--workers", "2"],
        env={"MODELGATE_DRIFT_INTERVAL_S": "0.5"},
        token=TOKEN,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def served(server: GatewayProcess) -> dict[str, int]:
    """N_REQUESTS predictions, each on a new connection (so both workers take some):
    request id -> predicted class."""
    predicted = {}
    for _ in range(N_REQUESTS):
        answer = httpx.post(f"{server.url}/predict/clf", json={"instances": [ROW]}, timeout=10)
        assert answer.status_code == 200, answer.text
        predicted[answer.json()["id"]] = answer.json()["predictions"][0]
    return predicted


def scrape(server: GatewayProcess) -> tuple[str, dict[tuple[str, frozenset], float]]:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return text, samples


def test_metrics_of_both_workers_add_up_and_pass_promtool(server, served):
    # each worker numbers its own ids after a random per-process prefix
    assert len({rid.split("-")[0] for rid in served}) == 2
    ok = frozenset({"model": "clf", "version": "1.0.0", "route": "weighted", "code": "200"}.items())

    def classes(samples) -> float:
        return sum(
            v for (name, labels), v in samples.items()
            if name == "modelgate_predictions_total" and ("version", "1.0.0") in labels
        )  # fmt: skip

    def flushed(scraped) -> bool:
        samples = scraped[1]
        return samples.get(("modelgate_requests_total", ok)) == N_REQUESTS == classes(samples)

    # every worker flushes within a second or two
    text, samples = wait_until(lambda: scrape(server), 30, 0.2, done=flushed)
    assert samples.get(("modelgate_requests_total", ok)) == N_REQUESTS
    assert classes(samples) == N_REQUESTS
    loaded = frozenset({"model": "clf", "version": "1.0.0"}.items())
    assert samples[("modelgate_model_loaded", loaded)] == 1
    assert samples[("modelgate_traffic_weight", loaded)] == 100
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package 'prometheus')")
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_labels_reach_the_shared_feedback_tables_from_any_worker(server, served):
    pending = {rid: label for rid, label in served.items()}
    deadline = time.monotonic() + 30
    accepted = 0
    while pending and time.monotonic() < deadline:
        items = [{"id": rid, "label": label} for rid, label in pending.items()]
        answer = httpx.post(f"{server.url}/v2/models/clf/feedback", json=items, timeout=10)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["expired"] == 0 and not result["invalid"] and not result["duplicate"]
        accepted += result["accepted"]
        pending = {rid: pending[rid] for rid in result["unknown"]}  # not flushed yet
        time.sleep(0.3)
    assert accepted == N_REQUESTS and not pending
    # every worker reads the same outcome table
    auth = {"authorization": f"Bearer {TOKEN}"}
    for _ in range(6):
        health = httpx.get(f"{server.url}/admin/models/clf/health", headers=auth, timeout=10)
        feedback = health.json()["versions"][0]["feedback"]
        assert feedback["labelled"] == N_REQUESTS and feedback["accuracy"] == 1.0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="modelgate")
    monitor_commands.register(root.add_subparsers(dest="command", required=True))
    return root


def run_cli(*argv: str) -> int:
    args = parser().parse_args(list(argv))
    return args.handler(args)


def test_drift_and_health_verbs(server, served, capsys, monkeypatch):
    monkeypatch.setenv("MODELGATE_ADMIN_TOKEN", TOKEN)
    assert run_cli("drift", "clf", "--url", server.url) == 0
    out = capsys.readouterr().out
    assert "clf 1.0.0 (weight 100%, primary):" in out and "FEATURE" in out and "ks" in out
    assert run_cli("drift", "clf", "--url", server.url, "--json") == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["model"] == "clf" and report["versions"][0]["version"] == "1.0.0"
    assert run_cli("health", "clf", "--url", server.url) == 0
    out = capsys.readouterr().out
    # every prediction of ROW is low-confidence (top probability ~0.55)
    assert out.startswith("clf: UNHEALTHY") and "High low-confidence rate" in out
    assert run_cli("health", "clf", "--url", server.url, "--json") == 0
    assert orjson.loads(capsys.readouterr().out)["healthy"] is False

    with pytest.raises(CLIError, match="HTTP 404: unknown model 'nope'"):
        run_cli("health", "nope", "--url", server.url)
    monkeypatch.setenv("MODELGATE_ADMIN_TOKEN", "wrong")
    with pytest.raises(CLIError, match="HTTP 401"):
        run_cli("drift", "clf", "--url", server.url)
    with pytest.raises(CLIError, match="cannot reach the server"):
        run_cli("drift", "clf", "--url", f"http://127.0.0.1:{free_port()}")


def test_cli_token_comes_from_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("MODELGATE_ADMIN_TOKEN", raising=False)
    args = parser().parse_args(["health", "clf", "--home", str(tmp_path)])
    with pytest.raises(CLIError, match="no admin token"):
        monitor_commands.admin_token(args)
    (tmp_path / "admin-token").write_text("from-file\n")
    assert monitor_commands.admin_token(args) == "from-file"
