"""The product with only its core dependencies: the optional packages made unimportable.

Every command runs in a subprocess whose PYTHONPATH starts with ``blocked_site/``: its
``sitecustomize`` makes scikit-learn, skl2onnx, onnx, pandas, scipy, matplotlib, httpx,
pyarrow, joblib (and the planned extras' xgboost, lightgbm, onnxmltools, mlflow) raise
ModuleNotFoundError, as on a machine after ``pip install .``. The
registry is built here, in the test process, which has the ``convert`` extra.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateway_process import GatewayProcess

REPO = Path(__file__).resolve().parents[2]
BLOCKED_SITE = Path(__file__).resolve().parent / "blocked_site"
OPTIONAL = ("sklearn", "skl2onnx", "onnx", "pandas", "scipy", "matplotlib", "httpx", "pyarrow")
OPTIONAL += ("joblib", "xgboost", "lightgbm", "onnxmltools", "mlflow")
TOKEN = "core-only-token"
ROW = [0.5, -1.0, 0.25, 2.0]

# runs each argv through the real entry point in ONE blocked interpreter (a process per
# verb would cost a second or two of start-up each); prints the outcomes as JSON
DRIVER = """
import contextlib, io, json, sys
from gateway.cli.main import main

outcomes = []
for argv in json.load(sys.stdin):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    outcomes.append({"argv": argv, "code": code, "out": out.getvalue(), "err": err.getvalue()})
loaded = sorted({name.partition(".")[0] for name in sys.modules})
json.dump({"outcomes": outcomes, "loaded": loaded}, sys.stdout)
"""


def blocked_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([str(BLOCKED_SITE), str(REPO)])
    env.pop("MODELGATE_BLOCKED_IMPORTS", None)
    env.update(extra)
    return env


def modelgate(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m gateway.cli.main ARGV`` with the optional packages blocked."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli.main", *argv],
        capture_output=True,
        text=True,
        env=env or blocked_env(),
        timeout=180,
        cwd=REPO,
    )


def run_verbs(argvs: list[list[str]], env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", DRIVER],
        input=json.dumps(argvs),
        capture_output=True,
        text=True,
        env=env or blocked_env(),
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def outcome(result: dict[str, Any], *argv: str) -> dict[str, Any]:
    (found,) = [o for o in result["outcomes"] if o["argv"] == list(argv)]
    assert found["code"] == 0, found
    return found


def test_the_blocker_makes_every_optional_package_unimportable():
    probe = "import importlib\nfor name in {names!r}:\n"
    probe += "    try:\n        importlib.import_module(name)\n    except ImportError:\n"
    probe += "        print('blocked', name)\n    else:\n        print('IMPORTED', name)\n"
    done = subprocess.run(
        [sys.executable, "-c", probe.format(names=OPTIONAL)],
        capture_output=True,
        text=True,
        env=blocked_env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [w for name in OPTIONAL for w in ("blocked", name)]


def test_help_lists_every_verb_without_the_extras():
    shown = modelgate("--help")
    assert shown.returncode == 0, shown.stderr
    for verb in ("serve", "versions", "show", "traffic", "rollback", "drift", "health", "convert"):
        assert verb in shown.stdout
    for verb in ("drift", "health", "traffic", "serve", "convert", "evaluate"):
        helped = modelgate(verb, "--help")
        assert helped.returncode == 0 and "usage: modelgate" in helped.stdout, helped.stderr


@pytest.mark.parametrize(
    ("argv", "verb"),
    [
        (["convert", "model.joblib", "--sample", "rows.csv", "--name", "m", "--bump", "minor"],
         "modelgate convert"),
        (["evaluate", "clf", "1.0.0", "--data", "rows.csv", "--label", "y"], "modelgate evaluate"),
        (["demo"], "modelgate demo"),
        (["serve", "--demo", "--port", "1"], "modelgate serve --demo"),
    ],
)  # fmt: skip
def test_verbs_that_need_the_convert_extra_say_so_in_one_line(argv, verb, tmp_path):
    done = modelgate(*argv, "--home", str(tmp_path / "home"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"modelgate: error: {verb} needs the 'convert' extra")
    assert "pip install 'modelgate[convert]'" in line


def test_bench_says_it_needs_the_bench_extra():
    done = modelgate("bench", "--quick")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "modelgate bench needs the 'bench' extra" in line and "httpx" in line


def test_registry_and_traffic_verbs_work_without_the_extras(zoo_home: Path):
    home = ["--home", str(zoo_home)]
    argvs = [
        ["models", *home],
        ["versions", "clf", "--json", *home],
        ["show", "clf", "1.0.0", *home],
        ["show", "clf", "1.0.0", "--yaml", *home],
        ["alias", "clf", "champion", "1.0.0", *home],
        ["stage", "clf", "2.0.0", "staging", "--reason", "core only", *home],
        ["traffic", "clf", "--route", "1.0.0=90", "--route", "1.1.0=10", *home],
        ["traffic", "clf", "--json", *home],
        ["switch", "clf", "1.1.0", "--reason", "blue-green", *home],
        ["rollback", "clf", "--reason", "back", "--json", *home],
        ["rollout", "clf", "--candidate", "2.0.0", "--steps", "10,100", *home],
        ["rollout", "clf", "--cancel", "--reason", "stop", "--json", *home],
        ["audit", "--model", "clf", "--json", *home],
        ["gc", *home],
    ]
    result = run_verbs(argvs)
    for each in result["outcomes"]:
        assert each["code"] == 0, each
        assert "Traceback" not in each["err"], each
    assert not set(OPTIONAL) & set(result["loaded"])
    assert "clf" in outcome(result, "models", *home)["out"]
    versions = json.loads(outcome(result, "versions", "clf", "--json", *home)["out"])
    assert {v["version"] for v in versions} == {"1.0.0", "1.1.0", "2.0.0"}
    assert "sha256" in outcome(result, "show", "clf", "1.0.0", *home)["out"]
    assert "1.0.0" in outcome(result, "show", "clf", "1.0.0", "--yaml", *home)["out"]
    traffic = json.loads(outcome(result, "traffic", "clf", "--json", *home)["out"])
    assert {(r["version"], r["weight"]) for r in traffic["routes"]} == {
        ("1.0.0", 90.0),
        ("1.1.0", 10.0),
    }
    rollback = json.loads(
        outcome(result, "rollback", "clf", "--reason", "back", "--json", *home)["out"]
    )
    assert rollback["changed"] is True
    cancelled = outcome(result, "rollout", "clf", "--cancel", "--reason", "stop", "--json", *home)
    assert json.loads(cancelled["out"])["status"] == "cancelled"
    actions = {
        a["action"]
        for a in json.loads(outcome(result, "audit", "--model", "clf", "--json", *home)["out"])
    }
    assert {"traffic", "alias"} <= actions


@pytest.fixture(scope="module")
def core_server(zoo_template: Path, tmp_path_factory) -> Iterator[GatewayProcess]:
    """``modelgate serve`` of a registry built with the convert extra, served without it."""
    root = tmp_path_factory.mktemp("core-only-serve")
    home = Path(shutil.copytree(zoo_template, root / "home"))
    env = blocked_env()
    running = GatewayProcess(
        home, root / "server.log", env={"PYTHONPATH": env["PYTHONPATH"]}, token=TOKEN
    )
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def test_serving_answers_predictions_without_the_extras(core_server: GatewayProcess):
    predicted = httpx.post(f"{core_server.url}/predict/clf", json={"instances": [ROW]}, timeout=10)
    assert predicted.status_code == 200, predicted.text
    assert predicted.headers["x-model-version"] == "1.0.0"
    assert predicted.json()["predictions"][0] in (0, 1)
    body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": ROW}]}
    inferred = httpx.post(f"{core_server.url}/v2/models/clf/infer", json=body, timeout=10)
    assert inferred.status_code == 200, inferred.text
    names = {output["name"] for output in inferred.json()["outputs"]}
    assert names, inferred.text
    mixed = {"instances": [{"a": 0.1, "b": -0.2, "plan": "pro"}]}
    answer = httpx.post(f"{core_server.url}/predict/mixed", json=mixed, timeout=10)
    assert answer.status_code == 200, answer.text
    log = core_server.log.read_text()
    assert "Traceback" not in log and "ModuleNotFoundError" not in log


def test_drift_and_health_verbs_reach_the_server_without_httpx(core_server: GatewayProcess):
    for _ in range(5):
        httpx.post(f"{core_server.url}/predict/clf", json={"instances": [ROW]}, timeout=10)
    url = ["--url", core_server.url]
    argvs = [
        ["drift", "clf", *url],
        ["health", "clf", "--json", *url],
        ["health", "nope", *url],
    ]
    result = run_verbs(argvs, env=blocked_env(MODELGATE_ADMIN_TOKEN=TOKEN))
    assert "httpx" not in result["loaded"]
    assert outcome(result, "drift", "clf", *url)["out"].startswith("clf 1.0.0")
    health = json.loads(outcome(result, "health", "clf", "--json", *url)["out"])
    assert health["model"] == "clf" and health["versions"][0]["version"] == "1.0.0"
    unknown = result["outcomes"][2]
    assert unknown["code"] == 2
    assert unknown["err"].strip() == (
        f"modelgate: error: {core_server.url}/admin/models/nope/health: "
        "HTTP 404: unknown model 'nope'"
    )
