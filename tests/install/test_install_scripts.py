"""The helpers of scripts/check_install.sh: lowest-version constraints and the README reader."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and friends look their module up
    spec.loader.exec_module(module)
    return module


mc = load("min_constraints")
rc = load("readme_commands")


def script(name: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / f"{name}.py"), *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_core_dependency_is_pinned_to_its_lower_bound():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    done = script("min_constraints")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if not line.startswith("#")]
    assert len(lines) == len(project["dependencies"])
    for requirement, line in zip(project["dependencies"], lines, strict=True):
        name, version, marker = mc.lower_bound(requirement)
        assert line.split(";")[0] == f"{name}=={version}"
        assert any(op + version in requirement.replace(" ", "") for op in (">=", "~=", "=="))
        assert (marker is None) == (";" not in line)


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        ("uvicorn>=0.55,<0.56", ("uvicorn", "0.55", None)),
        ("uvicorn >= 0.55 , < 0.56", ("uvicorn", "0.55", None)),
        ("uvicorn[standard]>=0.55,<0.56", ("uvicorn", "0.55", None)),
        ("protobuf<7,>=4.25", ("protobuf", "4.25", None)),
        ("uvloop>=0.19; sys_platform != 'win32'", ("uvloop", "0.19", "sys_platform != 'win32'")),
        ("numpy~=1.26.4", ("numpy", "1.26.4", None)),
        ("orjson==3.10.1", ("orjson", "3.10.1", None)),
    ],
)
def test_lower_bounds_of_requirement_forms(requirement, expected):
    assert mc.lower_bound(requirement) == expected


@pytest.mark.parametrize("requirement", ["uvicorn", "uvicorn<0.56", "uvicorn!=0.40", "!!"])
def test_a_requirement_without_a_lower_bound_is_refused(requirement):
    with pytest.raises(mc.ConstraintError):
        mc.lower_bound(requirement)


def test_extras_are_pinned_without_the_self_reference():
    pyproject = {
        "project": {
            "name": "modelgate",
            "dependencies": ["numpy>=1.26"],
            "optional-dependencies": {"bench": ["modelgate[convert]", "httpx>=0.27"]},
        }
    }
    assert mc.constraint_lines(pyproject, ["bench"]) == ["numpy==1.26", "httpx==0.27"]
    with pytest.raises(mc.ConstraintError, match="no extra named 'nope'"):
        mc.constraint_lines(pyproject, ["nope"])


def test_a_floor_raises_a_pin_and_never_lowers_one(tmp_path):
    toml = '[project]\nname = "x"\ndependencies = ["uvicorn>=0.30", "numpy>=1.26"]\n'
    (tmp_path / "pyproject.toml").write_text(toml)
    argv = ["--pyproject", str(tmp_path / "pyproject.toml")]
    done = script("min_constraints", *argv, "--floor", "uvicorn==0.55.0", "--floor", "numpy==1.2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == ["uvicorn==0.55.0", "numpy==1.26"]
    assert "uvicorn: floor 0.55.0 above the bound 0.30" in done.stderr
    toml = toml.replace("uvicorn>=0.30", "uvicorn>=0.56,<0.57")
    (tmp_path / "pyproject.toml").write_text(toml)
    done = script("min_constraints", *argv, "--floor", "uvicorn==0.55.0")
    assert done.stdout.splitlines()[1:] == ["uvicorn==0.56", "numpy==1.26"] and not done.stderr


def test_an_unpinnable_pyproject_fails_with_one_line(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["a<2"]\n')
    done = script("min_constraints", "--pyproject", str(tmp_path / "pyproject.toml"))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == "min_constraints: error: 'a<2' has no lower bound (>=, ~= or ==)"


def test_the_readme_quickstart_is_read_as_written():
    first = script("readme_commands", "first")
    assert first.returncode == 0, first.stderr
    command = first.stdout.strip()
    readme = (REPO / "README.md").read_text()
    assert f"```bash\n{command}\n" in readme
    assert "pip install" in command and "modelgate serve" in command
    curls = script("readme_commands", "curls").stdout.splitlines()
    assert curls and all(c.startswith("curl ") and "localhost:8000/" in c for c in curls)
    assert all(c in readme for c in curls)


def test_the_quickstart_is_only_looked_for_in_its_section():
    text = "# x\n\n## Install\n\n```bash\nwrong\n```\n\n## Quickstart\n\nText.\n\n"
    text += "```bash\n\n  make it\nsecond\n```\n\n```\ncurl -s localhost:8000/a\n```\n"
    text += "## Later\n\n```\ncurl -s localhost:8000/b\n```\n"
    assert rc.first_command(text) == "make it"
    assert rc.curl_commands(text) == ["curl -s localhost:8000/a"]
    with pytest.raises(rc.ReadmeError, match="no '## Quickstart'"):
        rc.first_command("# x\n")


PREDICT = 'curl -s localhost:8000/predict/churn -d \'{"instances": [{"a": 1}, {"a": 2}]}\''
METADATA = "curl -s localhost:8000/v2/models/churn"


@pytest.mark.parametrize(
    ("command", "answer", "problem"),
    [
        (PREDICT, {"model": "churn", "predictions": [0, 1]}, None),
        (PREDICT, {"predictions": [0]}, "expected 2 prediction(s)"),
        (PREDICT, {"model": "other", "predictions": [0, 1]}, "another model"),
        (PREDICT, {"error": "unknown model"}, "an error: unknown model"),
        (PREDICT, [0, 1], "not a JSON object"),
        (METADATA, {"name": "churn", "inputs": [{}], "outputs": [{}]}, None),
        (METADATA, {"name": "churn", "inputs": [], "outputs": [{}]}, "expected the metadata"),
    ],
)
def test_answers_are_checked_for_sense(command, answer, problem):
    found = rc.answer_problem(command, json.dumps(answer).encode())
    assert found == problem if problem is None else problem in found


def test_an_answer_that_is_not_json(tmp_path):
    (tmp_path / "body").write_bytes(b"<html>oops</html>")
    done = script("readme_commands", "answer", METADATA, str(tmp_path / "body"))
    assert done.returncode == 1 and done.stdout.startswith("not JSON")
