"""Checks of the multi-node deployment: the Kubernetes overlay, the PostgreSQL example and
the compose stack with two gateways behind nginx.

The overlay is rendered by the real ``kubectl kustomize`` and validated against the
Kubernetes schemas offline, like the other overlays; the compose file against the compose
specification; the Prometheus configuration by ``promtool check config``; the commands and
environments through the real CLI parser and settings.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.settings import Settings
from tests.deploy.conftest import read_yaml_documents
from tests.deploy.test_deploy_kubernetes import by_kind, find_kubectl, gateway_of, pod_of

PORT = 8000
NAMESPACE = "modelgate"
OVERLAY = "overlays/multi-node"


@pytest.fixture(scope="module")
def kube_dir(deploy_dir: Path) -> Path:
    return deploy_dir / "kubernetes"


@pytest.fixture(scope="module")
def rendered(kube_dir: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [find_kubectl(), "kustomize", str(kube_dir / OVERLAY)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d is not None]


@pytest.fixture(scope="module")
def kinds(rendered: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return by_kind(rendered)


# --------------------------------------------------------------------------- Kubernetes
def test_overlay_lists_every_file(kube_dir: Path) -> None:
    folder = kube_dir / OVERLAY
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    listed = set(kustomization.get("resources", [])) | {
        p["path"] for p in kustomization.get("patches", [])
    }
    local = {r for r in listed if not r.startswith("..")}
    assert local == {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}


def test_overlay_has_no_shared_volume_and_no_shipped_secret(kinds, rendered) -> None:
    # the registry is the database: no claim; both Secrets are created by the operator
    assert set(kinds) == {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "PrometheusRule",
    }
    for doc in rendered:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "modelgate"
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE
    validate = pytest.importorskip(
        "kubernetes_validate", reason="pip install kubernetes-validate (test extra)"
    )
    for doc in rendered:
        if doc["kind"] not in {"ServiceMonitor", "PrometheusRule"}:
            for version in ("1.29", "1.32"):
                validate.validate(doc, version, strict=True)


def test_pods_spread_over_nodes_with_an_empty_dir_home(kinds) -> None:
    spec = kinds["Deployment"]["spec"]
    pod = pod_of(kinds)
    assert spec["replicas"] >= 2 and spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert "affinity" not in pod, "pods must not be tied to one node"
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    labels = kinds["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert spread["labelSelector"]["matchLabels"].items() <= labels.items()
    assert not pod.get("initContainers"), "nothing seeds a pod's volume"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert all("persistentVolumeClaim" not in v for v in volumes.values())
    container = gateway_of(kinds)
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/data"]] and "emptyDir" in volumes[mounts["/tmp"]]
    assert kinds["ConfigMap"]["data"]["MODELGATE_HOME"] == "/data"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    pdb = kinds["PodDisruptionBudget"]["spec"]
    assert pdb["maxUnavailable"] == 1 < spec["replicas"]


def test_registry_url_and_admin_token_come_from_secrets(kinds, cli_parser) -> None:
    container = gateway_of(kinds)
    env = {e["name"]: e for e in container["env"]}
    url = env["MODELGATE_REGISTRY_URL"]["valueFrom"]["secretKeyRef"]
    assert (url["name"], url["key"]) == ("modelgate-registry", "url")
    assert url.get("optional", False) is False
    token = env["MODELGATE_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]
    # one token for every pod: a pod must not start with a token of its own
    assert (token["name"], token["optional"]) == ("modelgate-admin", False)
    args = cli_parser.parse_args(container["args"])
    values = {k: v["value"] for k, v in env.items() if "value" in v}
    settings = Settings.from_environ(
        {
            **kinds["ConfigMap"]["data"],
            **values,
            "MODELGATE_REGISTRY_URL": "postgresql://modelgate:pw@modelgate-postgres:5432/modelgate",
        },
        home=args.home,
        host=args.host,
        port=args.port,
    )
    assert settings.registry_url.startswith("postgresql://") and settings.port == PORT


def test_postgres_example_is_a_valid_restricted_statefulset(kube_dir: Path) -> None:
    docs = read_yaml_documents(kube_dir / "examples/postgres.yaml")
    k = by_kind(docs)
    assert set(k) == {"Service", "StatefulSet"}
    service, sts = k["Service"], k["StatefulSet"]
    assert sts["spec"]["replicas"] == 1
    pod = sts["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert sts["spec"]["serviceName"] == service["metadata"]["name"] == "modelgate-postgres"
    # the URL the overlay's comment tells operators to store names this Service and port
    comment = (kube_dir / OVERLAY / "kustomization.yaml").read_text()
    assert "@modelgate-postgres:5432/modelgate" in comment
    (port,) = service["spec"]["ports"]
    assert port["port"] == 5432
    # the namespace enforces the restricted Pod Security level
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
    (container,) = pod["spec"]["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    for doc in docs:
        assert doc["metadata"]["namespace"] == NAMESPACE
    validate = pytest.importorskip(
        "kubernetes_validate", reason="pip install kubernetes-validate (test extra)"
    )
    for doc in docs:
        validate.validate(doc, "1.32", strict=True)


# --------------------------------------------------------------------------- compose
@pytest.fixture(scope="module")
def compose(load_yaml) -> dict[str, Any]:
    return load_yaml("compose.multi-node.yaml")


GATEWAYS = ("gateway-a", "gateway-b")


def test_compose_matches_the_compose_spec(deploy_dir: Path) -> None:
    pytest.importorskip("check_jsonschema", reason="pip install check-jsonschema (test extra)")
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
        + [str(deploy_dir / "compose.multi-node.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def interpolate(value: str) -> str:
    """Compose's ``${NAME:?message}`` with a stand-in value."""
    return re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: f"{m.group(1).lower()}-value", value)


def test_compose_gateways_share_only_the_database(compose: dict[str, Any], cli_parser) -> None:
    services = compose["services"]
    assert {"postgres", "init", *GATEWAYS, "proxy", "prometheus"} <= set(services)
    caches = set()
    for name in GATEWAYS:
        gateway = services[name]
        env = {k: interpolate(str(v)) for k, v in gateway["environment"].items()}
        args = cli_parser.parse_args(gateway["command"])
        settings = Settings.from_environ(env, home=args.home, host=args.host, port=args.port)
        assert settings.registry_url == (
            "postgresql://modelgate:postgres_password-value@postgres:5432/modelgate"
        )
        assert (str(settings.home), settings.port, settings.workers) == ("/data", PORT, 2)
        assert settings.admin_token == "modelgate_admin_token-value"
        assert "ports" not in gateway, "clients reach the gateways through the proxy"
        (volume,) = gateway["volumes"]
        caches.add(volume.split(":")[0])
        assert gateway["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert len(caches) == 2 and caches <= set(compose["volumes"])
    init = services["init"]
    assert init["command"][0] == "demo"
    assert (
        init["environment"]["MODELGATE_REGISTRY_URL"]
        == services["gateway-a"]["environment"]["MODELGATE_REGISTRY_URL"]
    )
    assert init["depends_on"]["postgres"]["condition"] == "service_healthy"
    postgres = services["postgres"]
    assert postgres["environment"]["POSTGRES_USER"] == "modelgate"
    assert postgres["environment"]["POSTGRES_DB"] == "modelgate"


def test_proxy_balances_over_both_gateways(compose: dict[str, Any], deploy_dir: Path) -> None:
    proxy = compose["services"]["proxy"]
    assert re.fullmatch(r"nginx:\d+\.\d+-alpine", proxy["image"])
    assert f"{PORT}:{PORT}" in proxy["ports"]
    (mount,) = proxy["volumes"]
    source, target, mode = mount.split(":")
    assert target == "/etc/nginx/conf.d/default.conf" and mode == "ro"
    conf = (deploy_dir / source).read_text(encoding="utf-8")
    assert conf.count("{") == conf.count("}")
    upstream = re.search(r"upstream (\w+) \{(.*?)\}", conf, re.S)
    assert upstream is not None
    servers = re.findall(r"^\s*server ([\w-]+):(\d+)", upstream.group(2), re.M)
    assert sorted(servers) == [(name, str(PORT)) for name in GATEWAYS]
    assert f"proxy_pass http://{upstream.group(1)};" in conf
    assert re.search(rf"^\s*listen {PORT};", conf, re.M)
    # keep-alive to the upstreams needs HTTP/1.1 and an empty Connection header
    assert "proxy_http_version 1.1;" in conf and 'proxy_set_header Connection "";' in conf


def test_prometheus_scrapes_every_gateway(
    compose: dict[str, Any], deploy_dir: Path, promtool: str
) -> None:
    prometheus = compose["services"]["prometheus"]
    config_arg = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    mount = next(v for v in prometheus["volumes"] if v.startswith("./prometheus:"))
    target_dir = mount.split(":")[1]
    relative = config_arg.split("=", 1)[1].removeprefix(target_dir + "/")
    path = deploy_dir / "prometheus" / relative
    done = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "modelgate")
    (static,) = job["static_configs"]
    assert sorted(static["targets"]) == [f"{name}:{PORT}" for name in GATEWAYS]
