"""Experiments on a PostgreSQL registry through the store (the CLI path: trial loads from the
database's artifacts): start and stop each write the split and the record in ONE
transaction (one generation), and every node reading the database sees the same."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main as cli_main
from gateway.experiments.keys import current_key
from gateway.experiments.store import Experiments
from registry.backend import open_store
from registry.home import HomePaths

pytestmark = pytest.mark.slow  # a PostgreSQL database and real model loads

START = [
    "experiment", "start", "clf", "--variant", "1.0.0=50", "--variant", "1.1.0=50",
    "--metric", "conversion:binary", "--baseline", "conversion=0.1", "--mde", "0.2",
]  # fmt: skip


async def _read(url: str, home: Path) -> dict[str, Any]:
    store = await open_store(HomePaths(home), url)
    try:
        deployment = await store.get_deployment("clf")
        return {
            "generation": await store.generation(),
            "routes": {r.version: r.weight for r in deployment.routes},
            "sticky": deployment.sticky,
            "record": await store.get_state(current_key("clf")),
            "actions": [e.action for e in await store.audit(model="clf", limit=5)],
            "history": [
                r["status"] for r in await Experiments(store, home, store, actor="t").history("clf")
            ],
        }
    finally:
        await store.close()


def test_start_and_stop_are_one_transaction_each(
    zoo_home: Path, postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate = ["registry", "migrate", "--home", str(zoo_home), "--to", postgres_url]
    assert cli_main.main(migrate) == 0
    capsys.readouterr()
    node = ["--home", str(tmp_path / "node-a"), "--registry", postgres_url]
    before = asyncio.run(_read(postgres_url, tmp_path / "node-b"))
    assert cli_main.main([*START, *node, "--json"]) == 0
    started = json.loads(capsys.readouterr().out)
    other = asyncio.run(_read(postgres_url, tmp_path / "node-b"))  # another node's view
    assert other["generation"] == before["generation"] + 1
    assert other["routes"] == {"1.0.0": 50.0, "1.1.0": 50.0} and other["sticky"] is True
    assert other["record"]["id"] == started["id"] and other["record"]["status"] == "running"
    assert other["actions"][0] == "experiment_start"  # newest first

    refused = cli_main.main(["traffic", "clf", "--route", "1.0.0=100", *node])
    assert refused == 2 and started["id"] in capsys.readouterr().err
    assert asyncio.run(_read(postgres_url, tmp_path / "node-b")) == other

    assert cli_main.main(["experiment", "stop", "clf", *node]) == 0
    capsys.readouterr()
    after = asyncio.run(_read(postgres_url, tmp_path / "node-b"))
    assert after["generation"] == other["generation"] + 1
    assert after["routes"] == {"1.0.0": 100.0} and after["sticky"] is False
    assert after["record"]["status"] == "stopped"
    assert after["record"]["verdict"]["outcome"] == "stopped_by_operator"
    assert after["actions"][0] == "experiment_stop"
    assert (other["history"], after["history"]) == (["running"], ["stopped"])
