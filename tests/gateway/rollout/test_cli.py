"""`modelgate rollout`: start, status and cancel through the real CLI entry point."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway.cli import main as cli_main
from gateway.cli import rollout_command
from registry.models import Stage
from registry.sqlite.store import open_registry
from tests.support.fake_versions import add_version


@pytest.fixture(autouse=True)
def rollout_verb(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the verb the way the lead wires it into main (unless it already is)."""
    if rollout_command not in cli_main.COMMAND_MODULES:
        monkeypatch.setattr(
            cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, rollout_command)
        )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    async def setup() -> None:
        store = await open_registry(tmp_path / "home")
        try:
            for version, stage in (("1.0.0", Stage.PRODUCTION), ("1.1.0", Stage.STAGING)):
                await add_version(store, "churn", version, stage)
        finally:
            await store.close()

    asyncio.run(setup())
    return tmp_path / "home"


def routes(home: Path) -> dict[str, float]:
    async def read() -> dict[str, float]:
        store = await open_registry(home)
        try:
            deployment = await store.get_deployment("churn")
        finally:
            await store.close()
        return {r.version: r.weight for r in deployment.routes}

    return asyncio.run(read())


def test_start_status_cancel(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELGATE_ACTOR", "ops-bot")
    argv = ["rollout", "churn", "--home", str(home)]
    start = [*argv, "--candidate", "1.1.0", "--steps", "10,50,100", "--interval", "30"]
    code = cli_main.main([*start, "--min-requests", "50", "--threshold", "min_labels=10"])
    out = capsys.readouterr().out
    assert code == 0
    assert "running" in out and "1/3 (10,50,100)" in out and "1.0.0 90 %, 1.1.0 10 %" in out
    assert routes(home) == {"1.0.0": 90.0, "1.1.0": 10.0}

    assert cli_main.main([*argv, "--status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["spec"]["min_requests"] == 50
    assert status["spec"]["thresholds"]["min_labels"] == 10
    assert status["created_by"] == "ops-bot"

    assert cli_main.main([*argv, "--cancel", "--reason", "not today"]) == 0
    assert "cancelled by ops-bot: not today" in capsys.readouterr().out
    assert routes(home) == {"1.0.0": 100.0}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--candidate", "1.1.0", "--steps", "50,10"], "strictly increasing"),
        (["--candidate", "1.1.0", "--interval", "0"], "interval_s must be > 0"),
        (["--candidate", "1.1.0", "--min-requests", "0"], "min_requests must be"),
        (["--candidate", "1.1.0", "--threshold", "bogus=1"], "unknown canary threshold"),
        (["--candidate", "9.9.9"], "9.9.9"),
        (["--candidate", "1.0.0"], "already production"),
        (["--status"], "has no rollout"),
        (["--cancel"], "has no rollout"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    home: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code = cli_main.main(["rollout", "churn", "--home", str(home), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("modelgate: error: ") and message in err
    assert err.count("\n") == 1


def test_argument_errors_come_from_argparse(home: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_main.main(["rollout", "churn", "--home", str(home), "--status", "--cancel"])
    assert exited.value.code == 2
