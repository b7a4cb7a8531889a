"""`modelgate evaluate` end to end: real SQLite registry in tmp_path, real converted models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression, Ridge

from converters.publish import publish
from gateway.cli import evaluate_command
from gateway.cli.output import CLIError
from gateway.evaluation.gates import check_promotion
from registry.errors import NotFound, RegistryError
from registry.sqlite.store import open_registry
from tests.support.registry_copy import build_template, private_copy

from .conftest import binary_data

FEATURES = ["tenure", "spend", "calls", "age"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelgate")
    evaluate_command.register(parser.add_subparsers(dest="command", required=True))
    return parser


async def _run(*argv: str) -> int:
    args = _parser().parse_args(["evaluate", *argv])
    return await args.handler(args)


async def _build_registry(home: Path) -> None:
    """churn 1.0.0 (good), churn 1.1.0 (trained on noise) and price 1.0.0 (a regressor)."""
    data = binary_data(seed=3, n=400)
    registry = await open_registry(home)
    try:
        good = LogisticRegression().fit(data[FEATURES], data["churned"])
        weak = LogisticRegression().fit(data[["spend", "age"]], data["churned"])
        await publish(
            registry, "churn", good, data[FEATURES + ["churned"]], "churned", version="1.0.0"
        )
        # fewer columns: a minor version only when forced (registry.version_rule)
        await publish(
            registry,
            "churn",
            weak,
            data[["spend", "age", "churned"]],
            "churned",
            version="1.1.0",
            force=True,
            reason="a deliberately weak candidate",
        )
        data["price"] = 2 * data["tenure"] + data["spend"]
        reg = Ridge().fit(data[FEATURES], data["price"])
        await publish(registry, "price", reg, data[FEATURES + ["price"]], "price", version="1.0.0")
    finally:
        await registry.close()


@pytest.fixture(scope="module")
def built_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory, "lifecycle-cli", _build_registry)


@pytest.fixture
def home(built_home: Path, tmp_path: Path) -> Path:
    """A private copy of the module's registry (tests store evaluations into it)."""
    return private_copy(built_home, tmp_path)


@pytest.fixture
def eval_csv(tmp_path: Path) -> Path:
    data = binary_data(seed=4, n=300)
    data["price"] = 2 * data["tenure"] + data["spend"]
    path = tmp_path / "holdout.csv"
    data.to_csv(path, index=False)
    return path


@pytest.mark.slow
async def test_evaluate_stores_and_writes_the_report(home, eval_csv, capsys) -> None:
    rc = await _run(
        "churn",
        "1.0.0",
        "--data",
        str(eval_csv),
        "--label",
        "churned",
        "--group",
        "gender",
        "--group",
        "region",
        "--home",
        str(home),
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "primary: roc_auc" in out and "latency_p95_ms" in out
    assert "fairness: gender" in out and "demographic_parity_difference" in out
    folder = home / "reports" / "churn-1.0.0"
    saved = json.loads((folder / "evaluation.json").read_text())
    assert saved["model"] == "churn" and saved["version"] == "1.0.0"
    assert saved["dataset"]["rows"] == 300 and saved["dataset"]["path"] == str(eval_csv)
    assert len(saved["dataset"]["fingerprint"]) == 64
    assert set(saved["fairness"]["columns"]) == {"gender", "region"}
    page = (folder / "evaluation.html").read_text()
    assert page.count("data:image/png;base64,") == 5
    registry = await open_registry(home)
    try:
        stored = (await registry.get_version("churn", "1.0.0")).evaluation
        audit = await registry.audit(model="churn", limit=1)
    finally:
        await registry.close()
    assert stored == saved
    assert audit[0].version == "1.0.0"


async def test_json_output_and_out_folder(home, eval_csv, tmp_path, capsys) -> None:
    out_dir = tmp_path / "reports-here"
    rc = await _run(
        "price",
        "1.0.0",
        "--data",
        str(eval_csv),
        "--label",
        "price",
        "--out",
        str(out_dir),
        "--home",
        str(home),
        "--json",
    )
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["primary_metric"]["name"] == "rmse"
    assert printed["regression"]["r2"] > 0.99
    assert printed["files"] == {
        "json": str(out_dir / "evaluation.json"),
        "html": str(out_dir / "evaluation.html"),
    }
    assert (out_dir / "evaluation.html").is_file()


@pytest.mark.slow
async def test_promotion_gate_on_cli_evaluations(home, eval_csv) -> None:
    for version in ("1.0.0", "1.1.0"):
        await _run(
            "churn",
            version,
            "--data",
            str(eval_csv),
            "--label",
            "churned",
            "--group",
            "gender",
            "--home",
            str(home),
            "--json",
        )
    registry = await open_registry(home)
    try:
        good = (await registry.get_version("churn", "1.0.0")).evaluation
        weak = (await registry.get_version("churn", "1.1.0")).evaluation
    finally:
        await registry.close()
    assert good["dataset"]["fingerprint"] == weak["dataset"]["fingerprint"]
    refused = check_promotion(weak, good, {"latency_p95_factor": 100})
    assert not refused.passed and "roc_auc dropped" in refused.reasons[0]


@pytest.mark.parametrize(
    "argv,error,message",
    [
        (["churn", "1.0.0", "--label", "nope"], CLIError, "label column 'nope' not in"),
        (["churn", "9.9.9", "--label", "churned"], NotFound, "9.9.9"),
        (["ghost", "1.0.0", "--label", "churned"], NotFound, "ghost"),
        (
            ["churn", "1.0.0", "--label", "churned", "--group", "zip"],
            CLIError,
            "group columns not in the data: zip",
        ),
        (
            ["churn", "1.0.0", "--label", "churned", "--positive-class", "7"],
            CLIError,
            "positive class '7' is not one of the model's classes",
        ),
        (
            ["price", "1.0.0", "--label", "price", "--positive-class", "1"],
            CLIError,
            "--positive-class applies to classifiers only",
        ),
    ],
)
async def test_bad_input_is_a_one_line_error(home, eval_csv, argv, error, message) -> None:
    with pytest.raises(error, match=message) as err:
        await _run(*argv, "--data", str(eval_csv), "--home", str(home))
    assert isinstance(err.value, CLIError | RegistryError)  # main() turns these into exit 2
    assert "\n" not in str(err.value)


async def test_missing_feature_columns(home, eval_csv, tmp_path) -> None:
    import pandas as pd

    partial = tmp_path / "partial.csv"
    pd.read_csv(eval_csv).drop(columns=["calls"]).to_csv(partial, index=False)
    with pytest.raises(CLIError, match="churn 1.0.0: feature columns missing from the data: calls"):
        await _run(
            "churn", "1.0.0", "--data", str(partial), "--label", "churned", "--home", str(home)
        )


async def test_unreadable_data_file(home, tmp_path) -> None:
    with pytest.raises(CLIError, match="no such file"):
        await _run(
            "churn",
            "1.0.0",
            "--data",
            str(tmp_path / "gone.csv"),
            "--label",
            "y",
            "--home",
            str(home),
        )
