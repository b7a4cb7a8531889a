"""Shared fixtures for the deploy/ checks: paths, YAML loading, promtool, the real CLI parser."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def deploy_dir() -> Path:
    return DEPLOY


def read_yaml_documents(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


@pytest.fixture(scope="session")
def load_yaml():
    """Load a single-document YAML file below deploy/."""

    def load(relative: str) -> Any:
        docs = read_yaml_documents(DEPLOY / relative)
        assert len(docs) == 1, f"{relative}: expected one YAML document, found {len(docs)}"
        return docs[0]

    return load


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(
            "promtool is not installed (Debian: apt-get install prometheus; "
            "scripts/test.sh installs it in CI)"
        )
    return path


@pytest.fixture(scope="session")
def cli_parser() -> argparse.ArgumentParser:
    """The real `modelgate` argument parser: every command line in deploy/ must parse."""
    from gateway.cli.main import build_parser

    return build_parser()


def modelgate_executable() -> str:
    """The project's `modelgate` console script, installed next to this python."""
    found = shutil.which("modelgate", path=os.path.dirname(sys.executable))
    assert found, "the project's `modelgate` script is not installed next to python"
    return found


def read_seed_container() -> dict[str, Any]:
    (deployment,) = read_yaml_documents(DEPLOY / "kubernetes/base/deployment.yaml")
    init = deployment["spec"]["template"]["spec"]["initContainers"]
    return next(c for c in init if c["name"] == "seed-demo")


@pytest.fixture(scope="session")
def seed_container() -> dict[str, Any]:
    """The `seed-demo` init container of the gateway Deployment (kubernetes/base)."""
    return read_seed_container()


def run_seed_script(home: Path, *, seed_demo: str, path: str) -> subprocess.CompletedProcess:
    """deployment.yaml's seed-demo shell script, with /data pointed at `home`."""
    container = read_seed_container()
    assert container["command"] == ["/bin/sh", "-c"] and len(container["args"]) == 1
    script = container["args"][0].replace("/data", str(home))
    return subprocess.run(
        ["/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        env={"PATH": path, "HOME": str(home), "SEED_DEMO": seed_demo, "MODELGATE_HOME": str(home)},
        timeout=300,
    )


@pytest.fixture(scope="session")
def seeded_registry(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A registry built the way the cluster builds it: the init container's script, run once."""
    home = tmp_path_factory.mktemp("seeded") / "data"
    home.mkdir()
    path = f"{os.path.dirname(modelgate_executable())}:/usr/bin:/bin"
    flag = next(e["value"] for e in read_seed_container()["env"] if e["name"] == "SEED_DEMO")
    first = run_seed_script(home, seed_demo=flag, path=path)
    return SimpleNamespace(
        home=home,
        first=first,
        flag=flag,
        executable=modelgate_executable(),
        rerun=lambda: run_seed_script(home, seed_demo=flag, path=path),
    )
