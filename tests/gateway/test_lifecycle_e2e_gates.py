"""Issue 6 end to end: the promotion gate of ``modelgate stage``, on evaluations stored by
``modelgate evaluate``.

Real models in a real registry, evaluated through the CLI on one labelled CSV, then moved
with the CLI's ``stage`` verb. The three versions see the same four inputs but were
trained to use more or fewer of the informative ones, so their ROC AUC on the evaluation
data is ordered: worse (1.1.0) < production (1.0.0) < better (1.2.0).
"""

from __future__ import annotations

import asyncio
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gateway.cli.main import main
from registry.models import Stage
from registry.sqlite.store import open_registry
from tests.support.registry_copy import build_template, private_copy

pytestmark = pytest.mark.slow  # evaluates every version through the CLI first

MODEL = "credit"
PRODUCTION, WORSE, BETTER, UNEVALUATED = "1.0.0", "1.1.0", "1.2.0", "1.3.0"
FEATURES = ["income", "debt", "history", "noise"]
# microsecond models: a 1 ms slack keeps the p95 comparison off timer noise
STEADY = ["--tolerance", "latency_p95_slack_ms=1"]


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, 4)).astype(np.float32), columns=FEATURES)
    signal = x["income"] - 0.8 * x["debt"] + 0.6 * x["history"]
    return x.assign(default=(signal + rng.normal(scale=0.3, size=n) > 0).astype(int))


def using(data: pd.DataFrame, kept: list[str]) -> pd.DataFrame:
    """The training data with the other features blanked: the model learns to ignore them."""
    return data[FEATURES].assign(**{f: 0.0 for f in FEATURES if f not in kept})


async def build(root: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    from converters import publish

    data = frame(800, seed=1)
    registry = await open_registry(root)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for version, kept in (
                (PRODUCTION, ["income", "debt"]),
                (WORSE, ["income"]),
                (BETTER, ["income", "debt", "history"]),
                (UNEVALUATED, ["income", "debt", "history"]),
            ):
                model = LogisticRegression().fit(using(data, kept), data["default"])
                await publish(registry, MODEL, model, data, "default", version=version)
        await registry.set_stage(MODEL, PRODUCTION, Stage.PRODUCTION)
    finally:
        await registry.close()


def cli(*argv: str) -> int:
    return main([*argv])


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Registry with every version but 1.3.0 evaluated on the same CSV by the CLI."""
    home = build_template(tmp_path_factory, "lifecycle-gates", build)
    data = home.parent / "holdout.csv"
    frame(600, seed=2).to_csv(data, index=False)
    for version in (PRODUCTION, WORSE, BETTER):
        argv = ["evaluate", MODEL, version, "--data", str(data), "--label", "default"]
        assert cli(*argv, "--home", str(home), "--json") == 0
    return home


@pytest.fixture
def home(evaluated: Path, tmp_path: Path) -> Path:
    return private_copy(evaluated, tmp_path)


def stages(home: Path) -> dict[str, str]:
    async def read() -> dict[str, str]:
        registry = await open_registry(home)
        try:
            return {v.version: v.stage.value for v in await registry.list_versions(MODEL)}
        finally:
            await registry.close()

    return asyncio.run(read())


def audit(home: Path, action: str) -> list:
    async def read() -> list:
        registry = await open_registry(home)
        try:
            return await registry.audit(model=MODEL, action=action)
        finally:
            await registry.close()

    return asyncio.run(read())


def auc(home: Path, version: str) -> float:
    report = json.loads((home / "reports" / f"{MODEL}-{version}" / "evaluation.json").read_text())
    assert report["primary_metric"]["name"] == "roc_auc"
    return report["primary_metric"]["value"]


def test_the_evaluations_rank_the_versions(home: Path) -> None:
    assert auc(home, WORSE) < auc(home, PRODUCTION) - 0.05
    assert auc(home, BETTER) > auc(home, PRODUCTION) + 0.01


def test_the_gate_refuses_a_worse_model(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = stages(home)
    assert cli("stage", MODEL, WORSE, "production", "--home", str(home), *STEADY) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "promotion gate refused credit 1.1.0" in err and "roc_auc dropped from" in err
    assert "--force --reason" in err
    assert stages(home) == before and before[PRODUCTION] == "production"


def test_the_gate_refuses_a_version_without_an_evaluation(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("stage", MODEL, UNEVALUATED, "production", "--home", str(home)) == 2
    assert "no evaluation on the same dataset" in capsys.readouterr().err
    assert stages(home)[PRODUCTION] == "production"


def test_the_gate_accepts_a_better_model(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["stage", MODEL, BETTER, "production", "--home", str(home), "--json", *STEADY]
    assert cli(*argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["to"] == "production" and out["archived"] == PRODUCTION
    gate = out["gate"]
    assert gate["passed"] is True and gate["forced"] is False and gate["reasons"] == []
    assert (
        gate["comparisons"]["primary_metric"]["candidate"]
        > gate["comparisons"]["primary_metric"]["production"]
    )
    assert stages(home)[BETTER] == "production" and stages(home)[PRODUCTION] == "archived"
    assert audit(home, "gate_override") == []


def test_forcing_past_the_gate_needs_a_reason_and_is_audited(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("stage", MODEL, WORSE, "production", "--force", "--home", str(home)) == 2
    assert "needs --reason" in capsys.readouterr().err
    assert stages(home)[WORSE] == "none"

    argv = ["stage", MODEL, WORSE, "production", "--force", "--reason", "incident 42 hotfix"]
    assert cli(*argv, "--home", str(home), *STEADY) == 0
    out = capsys.readouterr().out
    assert "REFUSED, overridden" in out and "roc_auc dropped from" in out
    assert stages(home)[WORSE] == "production" and stages(home)[PRODUCTION] == "archived"
    [entry] = audit(home, "gate_override")
    assert entry.reason.startswith("incident 42 hotfix; forced past the promotion gate: roc_auc")
    assert entry.after["routes"] == [{"version": WORSE, "weight": 100.0}]
    assert entry.actor


def test_force_applies_to_promotions_only(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["stage", MODEL, WORSE, "staging", "--force", "--reason", "x", "--home", str(home)]
    assert cli(*argv) == 2
    assert "production only" in capsys.readouterr().err
    assert cli("stage", MODEL, WORSE, "staging", "--home", str(home)) == 0
    assert stages(home)[WORSE] == "staging"
