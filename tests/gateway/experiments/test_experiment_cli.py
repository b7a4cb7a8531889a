"""`modelgate experiment start|status|stop` through the real CLI entry point on a copy of the
zoo registry (real models: the CLI trial-loads the versions an experiment routes)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway.cli.main import main
from registry.sqlite.store import open_registry

BASE = [
    "experiment", "start", "clf",
    "--metric", "conversion:binary", "--baseline", "conversion=0.1",
    "--metric", "p95_latency_ms:guardrail", "--limit", "p95_latency_ms=250",
    "--mde", "0.1", "--traffic-per-day", "1000",
]  # fmt: skip
VARIANTS = ["--variant", "1.0.0=50", "--variant", "1.1.0=50"]
START = [*BASE, *VARIANTS]


def _routes(home: Path) -> dict[str, float]:
    async def read() -> dict[str, float]:
        store = await open_registry(home)
        try:
            deployment = await store.get_deployment("clf")
        finally:
            await store.close()
        return {r.version: r.weight for r in deployment.routes}

    return asyncio.run(read())


def test_start_status_stop(zoo_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = ["--home", str(zoo_home)]
    assert main([*START, *home, "--json"]) == 0
    started = json.loads(capsys.readouterr().out)
    assert started["status"] == "running" and started["plan"]["metrics"]["conversion"]
    assert _routes(zoo_home) == {"1.0.0": 50.0, "1.1.0": 50.0}

    assert main(["experiment", "status", "clf", *home]) == 0
    shown = capsys.readouterr().out
    assert started["id"] in shown and "running" in shown and "rows per variant" in shown

    assert main([*START, *home]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and started["id"] in error and "already running" in error
    assert main(["rollout", "clf", "--candidate", "1.1.0", *home]) == 2
    assert started["id"] in capsys.readouterr().err

    assert main(["experiment", "stop", "clf", "--reason", "done", *home, "--json"]) == 0
    stopped = json.loads(capsys.readouterr().out)
    assert stopped["verdict"]["outcome"] == "stopped_by_operator"
    assert _routes(zoo_home) == {"1.0.0": 100.0}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--variant", "1.0.0=70", "--variant", "1.1.0=50"], "sum to 100"),
        (["--variant", "1.0.0=50", "--variant", "9.9.9=50"], "9.9.9"),
        ([*VARIANTS, "--metric", "revenue:ratio"], "kind"),
        ([*VARIANTS, "--alpha", "2"], "alpha"),
    ],
)
def test_refusals_are_one_line_and_exit_2(
    zoo_home: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([*BASE, *argv, "--home", str(zoo_home)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("modelgate: error:") and "\n" not in error and message in error


def test_mde_is_required_and_status_without_experiment(
    zoo_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a for a in START if a not in ("--mde", "0.1")]
    assert main([*argv, "--home", str(zoo_home)]) == 2
    assert "--mde" in capsys.readouterr().err
    assert main(["experiment", "status", "clf", "--home", str(zoo_home)]) == 2
    assert "no experiment" in capsys.readouterr().err
    assert main(["experiment", "stop", "nope", "--home", str(zoo_home)]) == 2
    assert "nope" in capsys.readouterr().err
