"""Checks of deploy/: Dockerfile, compose stack, settings file and Kubernetes manifests.

No Docker engine runs here, so the files are checked by construction: every path they copy
or mount exists, every command line parses with the real CLI, the serving image installs no
scikit-learn, the same port is used everywhere, and the manifests validate against schemas.
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import Settings

PORT = 8000
UID = 10001
SKLEARN_PACKAGES = ("scikit-learn", "sklearn", "skl2onnx")


# --------------------------------------------------------------------------- Dockerfile
def parse_dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, rest = full.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def stages_of(instructions: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Stage name -> {"base": FROM image or stage, "steps": [(INSTR, args)]}, in file order."""
    stages: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for keyword, args in instructions:
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", args, flags=re.IGNORECASE)
            assert match, f"every stage must be named: FROM {args}"
            current = {"base": match.group(1), "steps": []}
            stages[match.group(2)] = current
        elif current is not None:
            current["steps"].append((keyword, args))
    return stages


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


@pytest.fixture(scope="module")
def dockerfile(deploy_dir: Path) -> list[tuple[str, str]]:
    return parse_dockerfile(deploy_dir / "Dockerfile")


@pytest.fixture(scope="module")
def stages(dockerfile: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    return stages_of(dockerfile)


def ancestry(stages: dict[str, dict[str, Any]], name: str) -> set[str]:
    """Every stage whose files can end up in `name` (FROM chain and COPY --from)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        stage = todo.pop()
        if stage in seen or stage not in stages:
            continue
        seen.add(stage)
        todo.append(stages[stage]["base"])
        for keyword, args in stages[stage]["steps"]:
            if keyword == "COPY" and (m := re.search(r"--from=(\S+)", args)):
                todo.append(m.group(1))
    return seen


def test_base_image_is_pinned_python_311_slim(dockerfile: list[tuple[str, str]]) -> None:
    args = {k: v for k, v in (a.split("=", 1) for kw, a in dockerfile if kw == "ARG" and "=" in a)}
    first_from = next(a for kw, a in dockerfile if kw == "FROM")
    assert first_from.startswith("${PYTHON_IMAGE}")
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim"), args["PYTHON_IMAGE"]
    assert ":latest" not in args["PYTHON_IMAGE"]


def test_stages_and_default_target(stages: dict[str, dict[str, Any]]) -> None:
    assert {"gateway", "tools"} <= set(stages)
    assert list(stages)[-1] == "gateway", "a plain `docker build` must give the serving image"
    for name, stage in stages.items():
        base = stage["base"]
        assert base in stages or base == "${PYTHON_IMAGE}", f"{name}: unknown base {base}"
        for keyword, args in stage["steps"]:
            if keyword == "COPY" and (m := re.search(r"--from=(\S+)", args)):
                assert m.group(1) in stages, f"{name}: COPY --from unknown stage {m.group(1)}"


def test_serving_image_installs_no_sklearn(stages: dict[str, dict[str, Any]]) -> None:
    gateway_runs = [
        args
        for stage in ancestry(stages, "gateway")
        for keyword, args in stages[stage]["steps"]
        if keyword == "RUN"
    ]
    assert any("pip install" in run for run in gateway_runs)
    for run in gateway_runs:
        assert "[convert]" not in run and "[test]" not in run, run
        for package in SKLEARN_PACKAGES:
            assert package not in run, run
    tools_runs = [a for s in ancestry(stages, "tools") for k, a in stages[s]["steps"] if k == "RUN"]
    assert any("[convert]" in run for run in tools_runs), "the tools image needs the convert extra"
    assert "tools-build" not in ancestry(stages, "gateway")


def test_plain_install_is_lean_and_convert_extra_has_sklearn(repo_root: Path) -> None:
    project = tomllib.loads((repo_root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = " ".join(project["dependencies"]).lower()
    for package in (*SKLEARN_PACKAGES, "onnx>", "onnx=", "onnx "):
        assert package not in core, f"`pip install .` would bring {package}"
    convert = " ".join(project["optional-dependencies"]["convert"]).lower()
    assert "scikit-learn" in convert and "skl2onnx" in convert


def test_pip_never_keeps_a_cache(dockerfile: list[tuple[str, str]]) -> None:
    runs = [args for keyword, args in dockerfile if keyword == "RUN" and "pip install" in args]
    assert runs
    for run in runs:
        assert run.count("pip install") == run.count("pip install --no-cache-dir"), run
    assert not any("apt-get install" in a for k, a in dockerfile if k == "RUN")


def dockerignore_allows(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes; a dir covers its files."""
    allowed = True
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern[1:] if negate else pattern
        glob = glob.rstrip("/")
        if glob.startswith("**/"):
            hit = any(fnmatch.fnmatch(p, glob[3:]) for p in parts)
        else:
            hit = any(fnmatch.fnmatch(prefix, glob) for prefix in prefixes)
        if hit:
            allowed = negate
    return allowed


def test_copied_sources_exist_and_reach_the_builder(
    dockerfile: list[tuple[str, str]], repo_root: Path, deploy_dir: Path
) -> None:
    ignore = deploy_dir / "Dockerfile.dockerignore"
    patterns = [
        line.strip()
        for line in ignore.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [a for k, a in dockerfile if k == "COPY" and "--from=" not in a]
    assert copies
    sources = [src for args in copies for src in args.split()[:-1] if not src.startswith("--")]
    # the package needs all of these to build (`readme` in pyproject, the three packages)
    assert {"pyproject.toml", "README.md", "registry", "converters", "gateway"} <= set(sources)
    for source in sources:
        assert (repo_root / source).exists(), f"COPY {source}: not in the repository"
        assert dockerignore_allows(patterns, source), f"{source} is excluded by {ignore.name}"
    assert not dockerignore_allows(patterns, "tests/deploy/conftest.py")
    assert not dockerignore_allows(patterns, ".git/config")
    assert not dockerignore_allows(patterns, "gateway/__pycache__/app.cpython-311.pyc")


def test_entry_point_is_the_project_script(
    stages: dict[str, dict[str, Any]], repo_root: Path
) -> None:
    scripts = tomllib.loads((repo_root / "pyproject.toml").read_text(encoding="utf-8"))
    target = scripts["project"]["scripts"]["modelgate"]
    module, _, function = target.partition(":")
    source = (repo_root / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8")
    assert re.search(rf"^def {function}\(", source, flags=re.MULTILINE)
    for name in ("gateway", "tools"):
        steps = dict(stages[name]["steps"])
        assert exec_form(steps["ENTRYPOINT"]) == ["modelgate"]


def test_final_stages_run_as_the_non_root_uid(stages: dict[str, dict[str, Any]]) -> None:
    runtime_steps = " ".join(a for k, a in stages["runtime"]["steps"] if k == "RUN")
    assert f"--uid {UID}" in runtime_steps and f"--gid {UID}" in runtime_steps
    for name in ("gateway", "tools"):
        users = [a for k, a in stages[name]["steps"] if k == "USER"]
        assert users and users[-1] == f"{UID}:{UID}", f"{name} must end as USER {UID}"


def image_env(stages: dict[str, dict[str, Any]], name: str) -> dict[str, str]:
    """The ENV a container of stage `name` starts with (its FROM chain, base first)."""
    chain = [name]
    while chain[-1] in stages:
        chain.append(stages[chain[-1]]["base"])
    env: dict[str, str] = {}
    for stage in reversed(chain):
        for keyword, args in stages.get(stage, {"steps": []})["steps"]:
            if keyword == "ENV":
                env.update(pair.split("=", 1) for pair in shlex.split(args))
    return env


def serve_settings(argv: list[str], env: dict[str, str], cli_parser) -> Settings:
    """What `modelgate <argv>` serves with under `env`: flags win over MODELGATE_* values."""
    args = cli_parser.parse_args(argv)
    assert args.command == "serve", argv
    return Settings.from_environ(
        env, home=args.home, host=args.host, port=args.port, workers=args.workers
    )


def test_cli_commands_parse(stages: dict[str, dict[str, Any]], cli_parser) -> None:
    serve = exec_form(dict(stages["gateway"]["steps"])["CMD"])
    env = image_env(stages, "gateway")
    settings = serve_settings(serve, env, cli_parser)
    assert (str(settings.home), settings.host, settings.port) == ("/data", "0.0.0.0", PORT)
    # the worker count is an environment variable, not baked into the command line
    assert "--workers" not in serve and env["MODELGATE_WORKERS"] == "2"
    assert settings.workers == 2
    assert serve_settings(serve, {**env, "MODELGATE_WORKERS": "4"}, cli_parser).workers == 4
    demo = exec_form(dict(stages["tools"]["steps"])["CMD"])
    assert cli_parser.parse_args(demo).command == "demo"


def test_port_and_health_check(stages: dict[str, dict[str, Any]]) -> None:
    steps = stages["gateway"]["steps"]
    assert ("EXPOSE", str(PORT)) in steps
    healthcheck = next(a for k, a in steps if k == "HEALTHCHECK")
    assert "--start-period=" in healthcheck
    command = exec_form(healthcheck.split("CMD", 1)[1].strip())
    assert command[:2] == ["python", "-c"] and "urllib.request" in command[2]
    assert f"http://127.0.0.1:{PORT}/v2/health/ready" in command[2]
    env = " ".join(a for k, a in stages["runtime"]["steps"] if k == "ENV")
    assert "MODELGATE_HOME=/data" in env and "NUMBA_CACHE_DIR=/tmp/" in env


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(self.status if self.path == "/v2/health/ready" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False), (400, False)])
def test_health_check_command_follows_the_ready_status(
    stages: dict[str, dict[str, Any]], status: int, healthy: bool
) -> None:
    healthcheck = next(a for k, a in stages["gateway"]["steps"] if k == "HEALTHCHECK")
    snippet = exec_form(healthcheck.split("CMD", 1)[1].strip())[2]
    handler = type("Handler", (_Health,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        local = snippet.replace(f":{PORT}/", f":{server.server_address[1]}/")
        done = subprocess.run([sys.executable, "-c", local], capture_output=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert (done.returncode == 0) is healthy, done.stderr.decode()


# --------------------------------------------------------------------------- settings
def env_example(deploy_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(active, commented) MODELGATE_* assignments of gateway.env.example."""
    active: dict[str, str] = {}
    commented: dict[str, str] = {}
    text = (deploy_dir / "gateway.env.example").read_text(encoding="utf-8")
    for line in text.splitlines():
        if m := re.fullmatch(r"(MODELGATE_[A-Z0-9_]+)=(.*)", line.strip()):
            active[m.group(1)] = m.group(2)
        elif m := re.fullmatch(r"#\s*(MODELGATE_[A-Z0-9_]+)=(.*)", line.strip()):
            commented[m.group(1)] = m.group(2)
    return active, commented


class ReadRecorder(dict):
    """An environment that remembers every variable a parser asked for."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)


def test_env_example_lists_every_setting_with_its_default(deploy_dir: Path) -> None:
    from gateway.lifecycle import LifecycleConfig

    active, commented = env_example(deploy_dir)
    assert not set(active) & set(commented)
    defaults = Settings(home=Path("/data")).to_environ()
    lifecycle = ReadRecorder()
    LifecycleConfig.from_environ(lifecycle)
    assert lifecycle.asked, "the lifecycle settings are read from the environment"
    # the admin token is None by default, so to_environ leaves it out
    expected = set(defaults) | {"MODELGATE_ADMIN_TOKEN"} | lifecycle.asked
    assert set(active) | set(commented) == expected
    assert Settings.from_environ(active) == Settings.from_environ({"MODELGATE_HOME": "/data"})
    assert LifecycleConfig.from_environ(active) == LifecycleConfig.from_environ({})
    for name, value in commented.items():
        assert value == defaults.get(name, ""), f"{name}: the example shows {value!r}"
    text = (deploy_dir / "gateway.env.example").read_text(encoding="utf-8")
    for name in set(active) | set(commented):
        before = text.split(name, 1)[0].rstrip().splitlines()
        assert before and before[-1].lstrip().startswith("#"), f"{name} has no explanation"


# --------------------------------------------------------------------------- compose
@pytest.fixture(scope="module")
def compose(load_yaml) -> dict[str, Any]:
    return load_yaml("compose.yaml")


def test_compose_matches_the_compose_spec(deploy_dir: Path) -> None:
    pytest.importorskip("check_jsonschema", reason="pip install check-jsonschema (test extra)")
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
        + [str(deploy_dir / "compose.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_builds_both_targets_of_the_dockerfile(
    compose: dict[str, Any], deploy_dir: Path, stages: dict[str, dict[str, Any]]
) -> None:
    services = compose["services"]
    assert {"init", "gateway", "prometheus", "grafana"} <= set(services)
    for name, target in (("init", "tools"), ("gateway", "gateway")):
        build = services[name]["build"]
        context = (deploy_dir / build["context"]).resolve()
        assert (context / build["dockerfile"]) == (deploy_dir / "Dockerfile").resolve()
        assert build["target"] == target and target in stages
    for name in ("prometheus", "grafana"):
        image = services[name]["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{name}: pin {image}"


def test_compose_init_runs_before_the_gateway_on_the_same_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    gateway, init = services["gateway"], services["init"]
    assert gateway["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert init["restart"] == "no"
    assert "registry:/data" in gateway["volumes"] and "registry:/data" in init["volumes"]
    assert "registry" in compose["volumes"]
    assert gateway["env_file"] == [{"path": "gateway.env", "required": False}]
    assert f"{PORT}:{PORT}" in gateway["ports"]
    assert "/v2/health/ready" in " ".join(gateway["healthcheck"]["test"])


def test_compose_gateway_command_parses(
    compose: dict[str, Any], stages: dict[str, dict[str, Any]], cli_parser
) -> None:
    gateway = compose["services"]["gateway"]
    env = {**image_env(stages, "gateway"), **gateway["environment"]}
    settings = serve_settings(gateway["command"], env, cli_parser)
    assert (str(settings.home), settings.host, settings.port) == ("/data", "0.0.0.0", PORT)
    # workers come from the image's MODELGATE_WORKERS, which gateway.env may override
    assert "--workers" not in gateway["command"] and settings.workers == 2


def test_compose_bind_mounts_exist(compose: dict[str, Any], deploy_dir: Path) -> None:
    mounts = 0
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                mounts += 1
                assert (deploy_dir / source).is_dir(), f"missing bind mount {source}"
    assert mounts >= 3
    grafana = compose["services"]["grafana"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    mount = next(v for v in grafana["volumes"] if v.startswith("./grafana/dashboards:"))
    _, target, _ = mount.split(":")
    assert home.startswith(target + "/")
    assert (deploy_dir / "grafana/dashboards" / home[len(target) + 1 :]).is_file()


# --------------------------------------------------------------------------- init scripts
def shell_script_of(command: list[str]) -> str:
    assert command[:2] == ["/bin/sh", "-c"] and len(command) == 3, command
    return command[2]


@pytest.fixture(scope="module")
def compose_init_script(compose: dict[str, Any]) -> str:
    init = compose["services"]["init"]
    return shell_script_of(init["entrypoint"] + init["command"])


def run_script(
    script: str, home: Path, env: dict[str, str], path: str
) -> subprocess.CompletedProcess:
    local = script.replace("/data", str(home))
    return subprocess.run(
        ["/bin/sh", "-c", local],
        capture_output=True,
        text=True,
        env={"PATH": path, "HOME": str(home), **env},
        timeout=300,
    )


def test_init_scripts_leave_an_existing_registry_alone(
    tmp_path: Path, compose_init_script: str, seed_container: dict[str, Any]
) -> None:
    (tmp_path / "registry.db").write_bytes(b"existing")
    seed_script = shell_script_of(seed_container["command"] + seed_container["args"])
    # PATH has no modelgate: calling it would fail with 127
    for script, env in ((compose_init_script, {}), (seed_script, {"SEED_DEMO": "true"})):
        done = run_script(script, tmp_path, env, "/usr/bin:/bin")
        assert done.returncode == 0, done.stderr
        assert "leaving the registry as it is" in done.stdout
    assert (tmp_path / "registry.db").read_bytes() == b"existing"
    done = run_script(seed_script, tmp_path / "empty", {"SEED_DEMO": "false"}, "/usr/bin:/bin")
    assert done.returncode == 0 and "skipping the demo" in done.stdout
    assert not (tmp_path / "empty").exists()


def test_init_scripts_run_the_demo_verb(
    compose_init_script: str, seed_container: dict[str, Any], cli_parser
) -> None:
    seed_script = shell_script_of(seed_container["command"] + seed_container["args"])
    for script in (compose_init_script, seed_script):
        (line,) = re.findall(r"exec modelgate ([^;]+);", script)
        args = cli_parser.parse_args(shlex.split(line))
        assert (args.command, args.home) == ("demo", "/data")


@pytest.mark.slow
def test_seed_script_builds_the_demo_registry(seeded_registry) -> None:
    first, home = seeded_registry.first, seeded_registry.home
    assert seeded_registry.flag == "true", "the shipped manifests seed the demo"
    assert first.returncode == 0, first.stdout + first.stderr
    assert (home / "registry.db").is_file()
    listed = subprocess.run(
        [seeded_registry.executable, "versions", "churn", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0 and "1.0.0" in listed.stdout, listed.stderr
    again = seeded_registry.rerun()
    assert again.returncode == 0 and "leaving the registry as it is" in again.stdout


# --------------------------------------------------------------------------- README
def readme_cli_lines(text: str) -> list[list[str]]:
    """The modelgate command lines of deploy/README.md, as argument lists (verb first)."""
    found = []
    for line in text.splitlines():
        if not (line.lstrip().startswith("modelgate") or "--entrypoint" in line):
            continue  # prose that names a verb is not a command line
        tokens = shlex.split(line.replace("\\", " "), comments=True)
        if tokens[:1] == ["modelgate"]:
            found.append(tokens[1:])
        elif "--entrypoint" in tokens and tokens[tokens.index("--entrypoint") + 1] == "modelgate":
            found.append(tokens[tokens.index("init") + 1 :])
    return found


def test_readme_covers_the_operations(deploy_dir: Path, cli_parser) -> None:
    text = (deploy_dir / "README.md").read_text(encoding="utf-8")
    for needle in (
        "docker compose -f deploy/compose.yaml up",
        "kubectl apply -k deploy/kubernetes/overlays/single",
        "kubectl apply -k deploy/kubernetes/overlays/replicated",
        "docs/operations.md",
        "modelgate convert",
        "Authorization: Bearer",
        "ReadWriteOnce",
        "MODELGATE_WORKERS",
        "podAffinity",
        "ReadWriteMany",
        "kubectl apply -k deploy/kubernetes/overlays/multi-node",
        "docker compose -f deploy/compose.multi-node.yaml up",
        "MODELGATE_REGISTRY_URL",
        "CloudNativePG",
    ):
        assert needle in text, f"deploy/README.md should explain {needle!r}"
    commands = readme_cli_lines(text)
    assert [c[0] for c in commands] == ["convert", "convert", "registry"]
    for command in commands:
        args = cli_parser.parse_args(command)
        assert args.command == command[0]
