"""The compose stack without Docker: the image's command, Prometheus, the alerts and the dashboard.

The gateway runs with the Dockerfile's own command line and environment (`serve --home /data`,
MODELGATE_WORKERS=2; only the home, host and port moved to the test's) on the registry the
init container's script built; the image's HEALTHCHECK snippet decides when it is ready. A
real Prometheus (Debian package `prometheus`) scrapes it with deploy/prometheus/prometheus.yml
and loads alerts.yml; every dashboard query is evaluated against the real series, and a drift
the test provokes fires ModelgateFeatureDrift. Every metric the dashboard queries must be a
family a live gateway exports.
"""

from __future__ import annotations

import json
import os
import re
import shlex
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

from tests.support.polling import wait_until

pytestmark = pytest.mark.slow  # the deploy stack: gateway, Prometheus, alert rules

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
DRIFT_ALERT = "ModelgateFeatureDrift"
DRIFT_FOR = "2s"
# far outside the training range of the demo's numerical features
DRIFTED = {"tenure_months": 900, "monthly_charges": 5000.0, "total_charges": 900000.0}
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
    argv = [
        str(seeded_registry.home) if command[i - 1] == "--home" else a
        for i, a in enumerate(command)
    ]
    image_env = dict(
        pair.split("=", 1)
        for pair in shlex.split(dockerfile_instruction(deploy_dir, "gateway", "ENV"))
    )
    assert image_env["MODELGATE_WORKERS"] == "2"
    configmap = yaml.safe_load((deploy_dir / "kubernetes/base/configmap.yaml").read_text())["data"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELGATE_")}
    env.update(configmap, **image_env, MODELGATE_HOME=str(seeded_registry.home))
    env.update(MODELGATE_HOST="127.0.0.1", MODELGATE_PORT=str(port))
    # PSI gauges are recomputed every MODELGATE_DRIFT_INTERVAL_S (10 s by default): 1 s lets
    # the provoked drift reach Prometheus within the test's time
    env["MODELGATE_DRIFT_INTERVAL_S"] = "1"
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

        def healthy() -> bool:
            assert process.poll() is None, Path(log.name).read_text()
            checked = subprocess.run([sys.executable, "-c", probe], capture_output=True)
            return checked.returncode == 0

        if not wait_until(healthy, 60, 0.5):
            pytest.fail(
                "the gateway never passed the image's HEALTHCHECK:\n" + Path(log.name).read_text()
            )
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)
        log.close()


def alerts_for_the_test(deploy_dir: Path) -> dict[str, Any]:
    """alerts.yml with ModelgateFeatureDrift's `for:` cut from 10 minutes to DRIFT_FOR.

    Only the hold time changes (a CI run cannot wait 10 minutes); the expression and the
    threshold are the shipped ones.
    """
    rules = yaml.safe_load((deploy_dir / "prometheus/alerts.yml").read_text())
    (drift,) = [r for g in rules["groups"] for r in g["rules"] if r["alert"] == DRIFT_ALERT]
    assert drift["for"] == "10m"
    drift["for"] = DRIFT_FOR
    return rules


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
    (work / "alerts.yml").write_text(yaml.safe_dump(alerts_for_the_test(deploy_dir)))
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

        def ready() -> bool:
            assert process.poll() is None, (work / "prometheus.log").read_text()
            try:
                return http(f"http://{address}/-/ready", timeout=2)[0] == 200
            except OSError:
                return False

        if not wait_until(ready, 60, 0.5):
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
    wait_until(lambda: query(prometheus, 'up{job="modelgate"} == 1'), 30, 0.2)
    for round_ in range(8):
        for _ in range(10):
            status, body = http(f"http://{gateway}/predict/churn", {"instances": [ROW, ROW]})
            assert status == 200, body
        status, _ = http(f"http://{gateway}/predict/churn", {"instances": [{"plan": "basic"}]})
        assert 400 <= status < 500
        if round_ < 7:
            time.sleep(0.6)
    # rate() needs two scrapes after the traffic
    rate = 'rate(modelgate_requests_total{code="200"}[10s]) > 0'
    if not wait_until(lambda: query(prometheus, rate), 30, 0.5):
        pytest.fail("prometheus never saw the requests")
    return prometheus


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


def dashboard_families(deploy_dir: Path) -> set[str]:
    """Metric families the dashboard queries (histogram series mapped to their family)."""
    from tests.deploy.test_deploy_monitoring import metric_names

    dashboard = json.loads((deploy_dir / "grafana/dashboards/modelgate.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]
    names = set().union(*(metric_names(e.replace("$__rate_interval", "5m")) for e in exprs))
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}


def test_dashboard_metrics_are_exported_by_a_live_gateway(
    seeded_registry, deploy_dir: Path, tmp_path: Path
) -> None:
    """One worker: prometheus_client then lists every family, also those with no sample yet
    (multiprocess mode only shows families some worker has written)."""
    from tests.support.gateway_process import GatewayProcess

    home = tmp_path / "home"
    shutil.copytree(seeded_registry.home, home)
    server = GatewayProcess(home, tmp_path / "serve.log", env={"MODELGATE_WORKERS": "1"})
    try:
        server.wait_ready()
        status, body = http(f"{server.url}/metrics")
    finally:
        server.stop()
    assert status == 200
    exported = set(re.findall(r"^# TYPE (\w+) ", body.decode(), flags=re.MULTILINE))
    exported |= {f"{name}_total" for name in exported}
    used = dashboard_families(deploy_dir)
    assert "modelgate_rollout_step" in used and len(used) >= 17
    assert used <= exported, f"the gateway does not export {sorted(used - exported)}"


def drifted_rows(count: int, offset: int) -> list[dict[str, Any]]:
    return [{**ROW, **{k: v + (offset + i) % 97 for k, v in DRIFTED.items()}} for i in range(count)]


def test_provoked_drift_fires_the_alert(traffic: str, gateway: str) -> None:
    """Rows far from the reference push modelgate_feature_psi over 0.2; Prometheus, with the
    shipped expression and a shortened `for:`, fires ModelgateFeatureDrift."""
    psi = 'max by (feature) (modelgate_feature_psi{model="churn",version="1.0.0"})'
    # the normal traffic stayed below MODELGATE_DRIFT_MIN_SAMPLES per worker: no verdict yet
    assert not query(traffic, f"{psi} >= 0.2")
    sent = 0

    def send_and_read() -> set[str]:
        nonlocal sent
        for _ in range(5):
            status, body = http(
                f"http://{gateway}/predict/churn", {"instances": drifted_rows(50, sent)}
            )
            assert status == 200, body
            sent += 50
        return {r["metric"]["feature"] for r in query(traffic, f"{psi} >= 0.2")}

    drifted = wait_until(send_and_read, 60, 0.5)
    assert set(DRIFTED) <= drifted, f"PSI never reached 0.2 for {sorted(set(DRIFTED) - drifted)}"
    # read back through the HTTP API: the value Prometheus holds is the gateway's PSI
    values = {r["metric"]["feature"]: float(r["value"][1]) for r in query(traffic, psi)}
    assert all(values[f] >= 0.2 for f in DRIFTED), values

    def firing_alerts() -> list[dict[str, Any]]:
        status, body = http(f"http://{traffic}/api/v1/alerts")
        assert status == 200
        return [
            a
            for a in json.loads(body)["data"]["alerts"]
            if a["labels"]["alertname"] == DRIFT_ALERT and a["state"] == "firing"
        ]

    firing = wait_until(firing_alerts, 30, 0.5)
    assert firing, f"{DRIFT_ALERT} never fired"
    features = {a["labels"]["feature"] for a in firing}
    assert set(DRIFTED) <= features
    assert all(a["labels"]["severity"] == "warning" for a in firing)
    series = query(traffic, f'ALERTS{{alertstate="firing",alertname="{DRIFT_ALERT}"}}')
    assert set(DRIFTED) <= {s["metric"]["feature"] for s in series}
