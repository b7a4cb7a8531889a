"""The compose stack without Docker: the image's command, Prometheus and the dashboard queries.

The gateway runs with the Dockerfile's own command line (`serve ... --workers 2`, only the
home, host and port moved to the test's) on the registry the init container's script built;
the image's HEALTHCHECK snippet decides when it is ready. A real Prometheus (Debian package
`prometheus`) scrapes it with deploy/prometheus/prometheus.yml and loads alerts.yml, and
every dashboard query is evaluated against the real series.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROW = {
    "tenure_months": 3,
    "monthly_charges": 89.5,
    "total_charges": 268.5,
    "support_calls": 4,
    "num_products": 1,
    "days_since_last_login": 12,
    "avg_session_minutes": 6.5,
    "late_payments": 1,
    "plan": "premium",
    "region": "north",
    "payment_method": "invoice",
}
SCRAPE = "1s"
# series every deployment shows as soon as a production version has answered requests
MUST_HAVE_DATA = (
    "modelgate_requests_total",
    "modelgate_request_duration_seconds_bucket",
    "modelgate_inference_duration_seconds_bucket",
    "modelgate_batch_size_count",
    "modelgate_predictions_total",
    "modelgate_prediction_confidence_count",
    "modelgate_traffic_weight",
    "modelgate_model_loaded",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dockerfile_instruction(deploy_dir: Path, stage: str, keyword: str) -> str:
    """The last `keyword` instruction of `stage` (continuations joined)."""
    text = re.sub(r"\\\n\s*", " ", (deploy_dir / "Dockerfile").read_text(encoding="utf-8"))
    found, current = "", ""
    for line in text.splitlines():
        line = line.strip()
        if m := re.fullmatch(r"FROM\s+\S+\s+AS\s+(\S+)", line, flags=re.IGNORECASE):
            current = m.group(1)
        elif current == stage and line.startswith(keyword + " "):
            found = line[len(keyword) + 1 :].strip()
    assert found, f"no {keyword} in stage {stage}"
    return found


def http(url: str, body: Any = None, timeout: float = 10) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def gateway(seeded_registry, deploy_dir: Path, tmp_path_factory) -> Iterator[str]:
    assert seeded_registry.first.returncode == 0, seeded_registry.first.stderr
    command = json.loads(dockerfile_instruction(deploy_dir, "gateway", "CMD"))
    port = free_port()
    values = {"--home": str(seeded_registry.home), "--host": "127.0.0.1", "--port": str(port)}
    argv = [values.get(command[i - 1], arg) if i else arg for i, arg in enumerate(command)]
    assert argv[argv.index("--workers") + 1] == "2"
    configmap = yaml.safe_load((deploy_dir / "k8s/configmap.yaml").read_text())["data"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELGATE_")}
    env.update(configmap, MODELGATE_HOME=str(seeded_registry.home))
    env["TMPDIR"] = str(tmp_path_factory.mktemp("gateway-tmp"))
    log = (tmp_path_factory.mktemp("gateway-log") / "serve.log").open("w")
    process = subprocess.Popen(
        [seeded_registry.executable, *argv], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        healthcheck = json.loads(
            dockerfile_instruction(deploy_dir, "gateway", "HEALTHCHECK").split("CMD", 1)[1]
        )
        probe = healthcheck[2].replace(":8000/", f":{port}/")
        for _ in range(120):
            assert process.poll() is None, Path(log.name).read_text()
            if subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        else:
            pytest.fail(
                "the gateway never passed the image's HEALTHCHECK:\n" + Path(log.name).read_text()
            )
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="module")
def prometheus(gateway: str, deploy_dir: Path, tmp_path_factory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus server is not installed (Debian: apt-get install prometheus)")
    work = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((deploy_dir / "prometheus/prometheus.yml").read_text())
    config["global"].update(scrape_interval=SCRAPE, evaluation_interval=SCRAPE)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "modelgate")
    assert job["static_configs"][0]["targets"] == ["gateway:8000"]
    job["static_configs"][0]["targets"] = [gateway]
    (work / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    shutil.copy(deploy_dir / "prometheus/alerts.yml", work / "alerts.yml")
    address = f"127.0.0.1:{free_port()}"
    log = (work / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address={address}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(120):
            assert process.poll() is None, (work / "prometheus.log").read_text()
            try:
                if http(f"http://{address}/-/ready", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("prometheus never got ready")
        yield address
    finally:
        stop(process)
        log.close()


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    url = f"http://{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    status, body = http(url)
    answer = json.loads(body)
    assert status == 200 and answer["status"] == "success", f"{expr}: {answer}"
    return answer["data"]["result"]


@pytest.fixture(scope="module")
def traffic(gateway: str, prometheus: str) -> str:
    """Predictions and a few bad requests, spread over several scrapes."""
    status, body = http(f"http://{gateway}/metrics")
    assert status == 200, f"GET /metrics answered {status}: {body[:200]!r}"
    # Prometheus syncs its targets up to 5 s after it is ready: send the traffic only
    # once it scrapes the gateway, or it may see every request already counted
    deadline = time.monotonic() + 30
    while not query(prometheus, 'up{job="modelgate"} == 1') and time.monotonic() < deadline:
        time.sleep(0.2)
    for round_ in range(8):
        for _ in range(10):
            status, body = http(f"http://{gateway}/predict/churn", {"instances": [ROW, ROW]})
            assert status == 200, body
        status, _ = http(f"http://{gateway}/predict/churn", {"instances": [{"plan": "basic"}]})
        assert 400 <= status < 500
        if round_ < 7:
            time.sleep(0.6)
    # rate() needs two scrapes after the traffic
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if query(prometheus, 'rate(modelgate_requests_total{code="200"}[10s]) > 0'):
            return prometheus
        time.sleep(0.5)
    pytest.fail("prometheus never saw the requests")


def test_gateway_is_scraped_and_passes_promtool(traffic: str, gateway: str, promtool: str) -> None:
    assert query(traffic, 'up{job="modelgate"} == 1')
    status, body = http(f"http://{gateway}/metrics")
    assert status == 200
    done = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def test_alert_rules_load_and_evaluate_cleanly(traffic: str) -> None:
    status, body = http(f"http://{traffic}/api/v1/rules")
    rules = [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
    expected = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "deploy/prometheus/alerts.yml").read_text()
    )
    names = {r["alert"] for g in expected["groups"] for r in g["rules"]}
    assert {r["name"] for r in rules} == names
    time.sleep(2)  # at least one evaluation after the traffic
    status, body = http(f"http://{traffic}/api/v1/rules")
    for rule in (r for g in json.loads(body)["data"]["groups"] for r in g["rules"]):
        assert rule["health"] in ("ok", "unknown"), f"{rule['name']}: {rule.get('lastError')}"
    assert not query(traffic, 'ALERTS{alertstate="firing"}')


def test_dashboard_queries_return_the_gateway_series(traffic: str, deploy_dir: Path) -> None:
    dashboard = json.loads((deploy_dir / "grafana/dashboards/modelgate.json").read_text())
    with_data: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "10s")
            expr = expr.replace("$model", ".*").replace("$version", ".*")
            if query(traffic, expr):
                with_data |= {m for m in MUST_HAVE_DATA if m in expr}
    missing = set(MUST_HAVE_DATA) - with_data
    assert not missing, f"no dashboard query returned data for {sorted(missing)}"
    versions = {r["metric"]["version"] for r in query(traffic, "modelgate_model_loaded == 1")}
    assert "1.0.0" in versions
