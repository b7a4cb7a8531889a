"""`modelgate traffic | rollback | switch` through the real CLI entry point and registry."""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.cli import admin_commands
from gateway.cli import main as cli_main
from registry.sqlite.store import open_registry


@pytest.fixture(autouse=True)
def traffic_verbs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the verbs the way the lead wires them into main (unless they already are)."""
    if admin_commands not in cli_main.COMMAND_MODULES:
        monkeypatch.setattr(
            cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, admin_commands)
        )
    monkeypatch.setenv("MODELGATE_ACTOR", "cli:tester")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def state(home) -> dict:
    async def read() -> dict:
        registry = await open_registry(home)
        try:
            return {
                "traffic": (await registry.get_deployment("clf")).to_dict(),
                "stages": {v.version: v.stage.value for v in await registry.list_versions("clf")},
                "audit": [(e.action, e.actor, e.reason) for e in await registry.audit(limit=3)],
                "generation": await registry.generation(),
            }
        finally:
            await registry.close()

    return asyncio.run(read())


def test_traffic_prints_and_changes_keeping_what_is_not_given(zoo_home, capsys):
    code, out, _ = run(capsys, "traffic", "clf", "--home", str(zoo_home))
    assert code == 0
    assert out.splitlines()[0].split() == ["VERSION", "STAGE", "WEIGHT", "%", "SHADOW", "ROLE"]
    assert out.splitlines()[1].split()[:3] == ["1.0.0", "production", "100"]
    home = ["--home", str(zoo_home)]
    code, out, _ = run(
        capsys,
        "traffic", "clf", "--route", "1.0.0=80", "--route", "1.1.0=20",
        "--challenger", "1.1.0", "--sticky", "--reason", "canary", *home,
    )  # fmt: skip
    assert code == 0 and out.startswith("clf: traffic applied (generation ")
    after = state(zoo_home)
    assert after["traffic"] == {
        "routes": [{"version": "1.0.0", "weight": 80.0}, {"version": "1.1.0", "weight": 20.0}],
        "shadow": [],
        "challenger": "1.1.0",
        "sticky": True,
    }
    assert after["audit"][0] == ("traffic", "cli:tester", "canary")

    code, out, _ = run(capsys, "traffic", "clf", "--challenger", "none", "--no-sticky", *home)
    assert code == 0
    kept = state(zoo_home)["traffic"]
    assert kept["routes"] == after["traffic"]["routes"]
    assert kept["challenger"] is None and kept["sticky"] is False

    code, out, _ = run(capsys, "traffic", "clf", "--json", *home)
    assert code == 0 and json.loads(out)["routes"] == kept["routes"]


def test_switch_and_rollback(zoo_home, capsys):
    home = ["--home", str(zoo_home)]
    code, out, _ = run(capsys, "switch", "clf", "1.1.0", "--reason", "blue-green", "--json", *home)
    assert code == 0
    outcome = json.loads(out)
    assert outcome["action"] == "switch" and outcome["production"] == "1.1.0"
    assert outcome["rollback_target"] == "1.0.0"
    code, out, _ = run(capsys, "rollback", "clf", "--reason", "errors", *home)
    assert code == 0 and "clf: rollback applied" in out
    after = state(zoo_home)
    assert after["stages"] == {"1.0.0": "production", "1.1.0": "archived", "2.0.0": "none"}
    assert after["traffic"]["routes"] == [{"version": "1.0.0", "weight": 100.0}]
    assert after["audit"][0] == ("rollback", "cli:tester", "errors")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["traffic", "clf", "--route", "1.0.0=90"], "sum to 100"),
        (["traffic", "clf", "--route", "4.0.0=100"], "no version '4.0.0'"),
        (["traffic", "nope"], "unknown model 'nope'"),
        (["traffic", "clf", "--challenger", "2.0.0"], "not loaded"),
        (["rollback", "clf"], "no previous production"),
        (["switch", "clf", "9.9.9"], "no version or alias '9.9.9'"),
        (["switch", "clf", "2.0.0"], "staging first"),
    ],
)
def test_refusals_are_one_line_exit_2_and_change_nothing(zoo_home, capsys, argv, message):
    before = state(zoo_home)
    code, out, err = run(capsys, *argv, "--home", str(zoo_home))
    assert code == 2 and out == ""
    assert err.startswith("modelgate: error: ") and err.count("\n") == 1
    assert message in err
    assert state(zoo_home) == before


def test_a_version_that_cannot_load_is_refused_before_anything_is_written(zoo_home, capsys):
    async def corrupt() -> None:
        registry = await open_registry(zoo_home)
        try:
            sha = (await registry.get_version("clf", "2.0.0")).artifact_sha256
        finally:
            await registry.close()
        (artifact,) = zoo_home.glob(f"artifacts/**/{sha}*")
        artifact.write_bytes(artifact.read_bytes()[:-40])

    asyncio.run(corrupt())
    before = state(zoo_home)
    argv = ["traffic", "clf", "--route", "1.0.0=50", "--route", "2.0.0=50"]
    code, _, err = run(capsys, *argv, "--home", str(zoo_home))
    assert code == 2 and "2.0.0 failed to load" in err and "nothing changed" in err
    assert state(zoo_home) == before
