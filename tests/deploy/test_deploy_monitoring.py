"""Checks of deploy/prometheus and deploy/grafana against docs/contracts.md, "Metrics".

promtool validates the configs, parses every alert and dashboard query, and runs the alert
unit tests (alerts_test.yml); the Python side checks that every query uses only the contract's
metric names and labels and that the rules and panels cover what operators need.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

# docs/contracts.md "Metrics": name -> labels. Histograms are exposed as _bucket/_sum/_count.
METRICS: dict[str, tuple[str, ...]] = {
    "modelgate_requests_total": ("model", "version", "route", "code"),
    "modelgate_request_duration_seconds": ("model", "version"),
    "modelgate_inference_duration_seconds": ("model", "version"),
    "modelgate_batch_size": ("model", "version"),
    "modelgate_predictions_total": ("model", "version", "class"),
    "modelgate_prediction_confidence": ("model", "version"),
    "modelgate_low_confidence_total": ("model", "version"),
    "modelgate_feature_psi": ("model", "version", "feature"),
    "modelgate_prediction_psi": ("model", "version"),
    "modelgate_shadow_agreement_ratio": ("model", "version"),
    "modelgate_shadow_dropped_total": ("model", "version"),
    "modelgate_traffic_weight": ("model", "version"),
    "modelgate_model_loaded": ("model", "version"),
    "modelgate_live_accuracy": ("model", "version"),
    "modelgate_rollbacks_total": ("model", "reason"),
    "modelgate_input_errors_total": ("model", "reason"),
    "modelgate_multivariate_drift_error": ("model", "version"),
    "modelgate_estimated_accuracy": ("model", "version"),
    "modelgate_experiment_outcomes_total": ("model", "version", "metric"),
    "modelgate_outcomes_dropped_total": ("model", "reason"),
}
HISTOGRAMS = {
    "modelgate_request_duration_seconds",
    "modelgate_inference_duration_seconds",
    "modelgate_batch_size",
    "modelgate_prediction_confidence",
}


def series_labels() -> dict[str, set[str]]:
    """Every series name a query may select, with the labels it carries."""
    names: dict[str, set[str]] = {}
    for name, labels in METRICS.items():
        if name in HISTOGRAMS:
            names[f"{name}_bucket"] = {*labels, "le"}
            names[f"{name}_sum"] = set(labels)
            names[f"{name}_count"] = set(labels)
        else:
            names[name] = set(labels)
    return names


SERIES = series_labels()
# Exported by the gateway beyond the contract's table (gateway/rollout/metrics.py);
# the dashboard may use them, the table above stays the contract's.
EXTRA_SERIES: dict[str, set[str]] = {"modelgate_rollout_step": {"model"}}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}
KEYWORDS |= {"unless", "offset", "bool", "inf", "nan"}
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")


def strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def metric_names(expr: str) -> set[str]:
    """Series names selected by a PromQL expression (functions, keywords, labels excluded)."""
    text = strip_strings(expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = GROUPING.sub(" ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function call
        if match.group(0).lower() not in KEYWORDS:
            names.add(match.group(0))
    return names


def selector_labels(expr: str) -> list[tuple[str, set[str]]]:
    """(series name, label names matched in its braces) for every `name{...}` selector."""
    found = []
    for match in re.finditer(r"([A-Za-z_:][\w:]*)\{([^}]*)\}", expr):
        found.append((match.group(1), set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", match.group(2)))))
    return found


def grouping_labels(expr: str) -> set[str]:
    labels: set[str] = set()
    for group in GROUPING.findall(strip_strings(expr)):
        labels |= {label.strip() for label in group.split(",") if label.strip()}
    return labels


def check_query(expr: str, allowed_extra: dict[str, set[str]] | None = None) -> set[str]:
    """Assert `expr` uses only contract series and labels; return the series it uses."""
    known = {**SERIES, **(allowed_extra or {})}
    names = metric_names(expr)
    assert names, f"no metric in {expr!r}"
    unknown = names - set(known)
    assert not unknown, f"{sorted(unknown)} are not design metrics (or a histogram used bare)"
    for name, labels in selector_labels(expr):
        assert labels <= known[name], f"{name} has no label {sorted(labels - known[name])}"
    carried = set().union(*(known[n] for n in names))
    assert grouping_labels(expr) <= carried, f"grouping by a label no series has: {expr!r}"
    return names


def promtool_parses(promtool: str, exprs: list[str], tmp_path: Path) -> None:
    """promtool parses each expression as the body of a recording rule."""
    rules = {
        "groups": [
            {
                "name": "parse-check",
                "rules": [{"record": f"check:expr_{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "parse.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_contract_table_matches_the_gateway_metrics() -> None:
    """METRICS above is what the gateway exposes: names, labels, types, series suffixes."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.metrics import MetricWrapperBase
    from prometheus_client.parser import text_string_to_metric_families

    from gateway.monitoring.metrics.families import MetricFamilies

    registry = CollectorRegistry()
    families = [
        v for v in vars(MetricFamilies(registry)).values() if isinstance(v, MetricWrapperBase)
    ]
    assert len(families) == len(METRICS)
    for family in families:
        (described,) = family.describe()
        name = described.name + ("_total" if described.type == "counter" else "")
        assert name in METRICS, f"the gateway exposes {name}, unknown to deploy/"
        assert (described.type == "histogram") == (name in HISTOGRAMS), name
        # labels() raises ValueError unless these are exactly the family's label names
        family.labels(**dict.fromkeys(METRICS[name], "x"))
    exposed = {
        sample.name
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }
    assert set(SERIES) <= exposed


def test_extra_series_are_the_gateway_rollout_gauge() -> None:
    from prometheus_client import CollectorRegistry

    from gateway.rollout.metrics import rollout_step_gauge

    registry = CollectorRegistry()
    gauge = rollout_step_gauge(registry)
    (described,) = gauge.describe()
    assert {described.name: set(gauge._labelnames)} == EXTRA_SERIES
    assert not set(EXTRA_SERIES) & set(SERIES)


def test_query_checker_rejects_what_the_contract_does_not_have() -> None:
    assert metric_names('sum by (le) (rate(a_b{x="y"}[5m])) / on (k) c offset 5m') == {
        "a_b",
        "c",
    }
    with pytest.raises(AssertionError, match="not design metrics"):
        check_query("rate(modelgate_request_total[5m])")
    with pytest.raises(AssertionError, match="not design metrics"):
        check_query("modelgate_batch_size > 3")  # a histogram needs _bucket/_sum/_count
    with pytest.raises(AssertionError, match="no label"):
        check_query('modelgate_input_errors_total{version="1.0.0"}')
    with pytest.raises(AssertionError, match="grouping"):
        check_query("sum by (feature) (modelgate_prediction_psi)")


# --------------------------------------------------------------------------- prometheus
def test_prometheus_config_is_valid(promtool: str, deploy_dir: Path) -> None:
    done = subprocess.run(
        [promtool, "check", "config", str(deploy_dir / "prometheus/prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_scrape_target_is_the_gateway_service(load_yaml) -> None:
    config = load_yaml("prometheus/prometheus.yml")
    compose = load_yaml("compose.yaml")
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "modelgate")
    assert job["metrics_path"] == "/metrics"
    (target,) = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host in compose["services"]
    assert f"{port}:{port}" in compose["services"][host]["ports"]
    assert "--port" in compose["services"][host]["command"]
    assert (
        compose["services"][host]["command"][
            compose["services"][host]["command"].index("--port") + 1
        ]
        == port
    )
    assert config["rule_files"] == ["alerts.yml"]


def test_kubernetes_scrape_job(promtool: str, load_yaml, deploy_dir: Path, tmp_path: Path) -> None:
    config = load_yaml("prometheus/prometheus-k8s.yml")
    kustomization = load_yaml("kubernetes/base/kustomization.yaml")
    (job,) = config["scrape_configs"]
    (sd,) = job.pop("kubernetes_sd_configs")
    assert sd["role"] == "pod" and sd["namespaces"]["names"] == [kustomization["namespace"]]
    annotations = load_yaml("kubernetes/base/deployment.yaml")["spec"]["template"]["metadata"][
        "annotations"
    ]
    relabels = job["relabel_configs"]
    sources = {label for r in relabels for label in r.get("source_labels", [])}
    for key in annotations:
        meta = "__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)
        assert meta in sources, f"{key} is never read"
    address = next(r for r in relabels if r.get("target_label") == "__address__")
    joined = f"10.1.2.3:9999;{annotations['prometheus.io/port']}"
    rewritten = re.fullmatch(address["regex"], joined).expand(
        address["replacement"].replace("$", "\\")
    )
    assert rewritten == "10.1.2.3:8000"
    # Debian's promtool is built without Kubernetes discovery: check the rest of the file
    # with the discovery block swapped for a static target.
    job["static_configs"] = [{"targets": ["10.1.2.3:8000"]}]
    (tmp_path / "alerts.yml").write_text(
        (deploy_dir / "prometheus/alerts.yml").read_text(), encoding="utf-8"
    )
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    done = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def alert_rules(deploy_dir: Path) -> list[dict[str, Any]]:
    config = yaml.safe_load((deploy_dir / "prometheus/alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in config["groups"] for rule in group["rules"]]


def test_alert_rules_are_valid(promtool: str, deploy_dir: Path) -> None:
    done = subprocess.run(
        [promtool, "check", "rules", str(deploy_dir / "prometheus/alerts.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_unit_tests_pass(promtool: str, deploy_dir: Path) -> None:
    done = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"],
        cwd=deploy_dir / "prometheus",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_firing_unit_test(
    alert_rules: list[dict[str, Any]], deploy_dir: Path
) -> None:
    tests = yaml.safe_load((deploy_dir / "prometheus/alerts_test.yml").read_text())
    firing = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    quiet = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if not case["exp_alerts"]
    }
    names = {rule["alert"] for rule in alert_rules}
    assert firing == names
    assert len(quiet) >= 5, "also test that alerts stay quiet before `for:` or when healthy"


def test_alert_rules_shape(alert_rules: list[dict[str, Any]]) -> None:
    names = [rule["alert"] for rule in alert_rules]
    assert len(names) == len(set(names))
    for rule in alert_rules:
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        for key in ("summary", "description"):
            text = rule["annotations"][key]
            assert text and "\n" not in text, f"{rule['alert']}: one-line {key}"
        used = set(re.findall(r"\$labels\.(\w+)", json.dumps(rule["annotations"])))
        carried = grouping_labels(rule["expr"]) or {"job", "instance"}
        assert used <= carried, f"{rule['alert']}: annotation uses {used - carried}"


def test_alert_rules_use_design_metrics_and_cover_the_lifecycle(
    alert_rules: list[dict[str, Any]],
) -> None:
    used: set[str] = set()
    for rule in alert_rules:
        used |= check_query(rule["expr"], {"up": {"job", "instance"}})
    required = {
        "modelgate_requests_total",
        "modelgate_request_duration_seconds_bucket",
        "modelgate_low_confidence_total",
        "modelgate_predictions_total",
        "modelgate_feature_psi",
        "modelgate_prediction_psi",
        "modelgate_shadow_agreement_ratio",
        "modelgate_shadow_dropped_total",
        "modelgate_live_accuracy",
        "modelgate_model_loaded",
        "modelgate_rollbacks_total",
    }
    assert required <= used, f"no alert on {sorted(required - used)}"
    thresholds = {rule["alert"]: rule["expr"] for rule in alert_rules}
    assert re.search(r">=\s*0\.2\b", thresholds["ModelgateFeatureDrift"])
    assert re.search(r"<\s*0\.85\b", thresholds["ModelgateLiveAccuracyLow"])
    assert re.search(r">\s*0\.15\b", thresholds["ModelgateLowConfidenceShare"])


# --------------------------------------------------------------------------- grafana
@pytest.fixture(scope="module")
def dashboard(deploy_dir: Path) -> dict[str, Any]:
    files = sorted((deploy_dir / "grafana/dashboards").glob("*.json"))
    assert [f.name for f in files] == ["modelgate.json"]
    return json.loads(files[0].read_text(encoding="utf-8"))


def panel_targets(dashboard: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(p, t) for p in dashboard["panels"] for t in p.get("targets", [])]


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana's interval variables the way it does before sending the query."""
    for variable in ("$__rate_interval", "$__interval", "$__range"):
        expr = expr.replace(variable, "5m")
    return expr


def test_grafana_provisioning(load_yaml) -> None:
    datasources = load_yaml("grafana/provisioning/datasources/prometheus.yml")
    providers = load_yaml("grafana/provisioning/dashboards/modelgate.yml")
    compose = load_yaml("compose.yaml")
    assert datasources["apiVersion"] == providers["apiVersion"] == 1
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "prometheus"
    assert source["url"] == "http://prometheus:9090" and "prometheus" in compose["services"]
    (provider,) = providers["providers"]
    mounts = [v.split(":") for v in compose["services"]["grafana"]["volumes"]]
    targets = {target for source_dir, target, *_ in mounts if source_dir == "./grafana/dashboards"}
    assert provider["type"] == "file" and provider["options"]["path"] in targets
    provisioning = {t for s, t, *_ in mounts if s == "./grafana/provisioning"}
    assert provisioning == {"/etc/grafana/provisioning"}


def test_dashboard_layout(dashboard: dict[str, Any], load_yaml) -> None:
    assert dashboard["uid"] == "modelgate" and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    uid = load_yaml("grafana/provisioning/datasources/prometheus.yml")["datasources"][0]["uid"]
    assert variables["datasource"]["current"]["value"] == uid
    for panel, target in panel_targets(dashboard):
        for owner in (panel, target):
            assert owner["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_dashboard_queries_use_design_metrics(
    dashboard: dict[str, Any], promtool: str, tmp_path: Path
) -> None:
    exprs = [grafana_to_promql(t["expr"]) for _, t in panel_targets(dashboard)]
    exprs += [grafana_to_promql(a["expr"]) for a in dashboard["annotations"]["list"] if "expr" in a]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            inner = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["definition"])
            assert inner, variable["definition"]
            (name,) = metric_names(inner.group(1))
            assert inner.group(2) in SERIES[name]
            exprs.append(inner.group(1))
    for panel, target in panel_targets(dashboard):
        expr = target["expr"]
        check_query(expr, EXTRA_SERIES)
        legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
        assert legend <= grouping_labels(expr), f"{panel['title']}: legend {legend}"
    promtool_parses(promtool, exprs, tmp_path)


def test_dashboard_covers_the_brief(dashboard: dict[str, Any]) -> None:
    used = set().union(*(metric_names(t["expr"]) for _, t in panel_targets(dashboard)))
    required = {
        "modelgate_requests_total",
        "modelgate_request_duration_seconds_bucket",
        "modelgate_inference_duration_seconds_bucket",
        "modelgate_batch_size_sum",
        "modelgate_batch_size_count",
        "modelgate_traffic_weight",
        "modelgate_prediction_confidence_sum",
        "modelgate_low_confidence_total",
        "modelgate_predictions_total",
        "modelgate_feature_psi",
        "modelgate_prediction_psi",
        "modelgate_shadow_agreement_ratio",
        "modelgate_live_accuracy",
        "modelgate_rollbacks_total",
        "modelgate_model_loaded",
        "modelgate_rollout_step",
    }
    assert required <= used, f"no panel for {sorted(required - used)}"
    heatmaps = {
        name
        for p, t in panel_targets(dashboard)
        if p["type"] == "heatmap"
        for name in metric_names(t["expr"])
    }
    # the issue: a confidence histogram and PSI per feature as a heatmap
    assert {"modelgate_prediction_confidence_bucket", "modelgate_feature_psi"} <= heatmaps
    for panel, target in panel_targets(dashboard):
        if "_bucket" in target["expr"] and panel["type"] == "heatmap":
            assert target["format"] == "heatmap" and "by (le)" in target["expr"]
    errors = [t["expr"] for _, t in panel_targets(dashboard) if 'code=~"5.."' in t["expr"]]
    assert errors and all("by (model, version)" in e for e in errors)
    latency = [t["expr"] for _, t in panel_targets(dashboard) if "histogram_quantile" in t["expr"]]
    assert {re.search(r"histogram_quantile\(([\d.]+)", e).group(1) for e in latency} >= {
        "0.5",
        "0.95",
        "0.99",
    }
