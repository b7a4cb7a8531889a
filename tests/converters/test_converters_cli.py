"""`modelgate convert` and `modelgate demo` end to end (argparse -> converters -> SQLite)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import joblib
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestCentroid

from gateway.cli.main import main
from registry.home import HomePaths
from registry.sqlite.store import open_registry


@pytest.fixture
def files(tmp_path, numeric_data, fit_quiet):
    X, y = numeric_data(rows=500, n_features=4)
    forest = fit_quiet(
        RandomForestClassifier(n_estimators=10, random_state=0), X.iloc[:300], y[:300]
    )
    joblib.dump(forest, tmp_path / "forest.joblib")
    joblib.dump(
        fit_quiet(LogisticRegression(), X.iloc[:300], y[:300]), tmp_path / "logistic.joblib"
    )
    joblib.dump(fit_quiet(NearestCentroid(), X, y), tmp_path / "centroid.joblib")
    joblib.dump({"not": "a model"}, tmp_path / "dict.joblib")
    X.iloc[300:].assign(y=y[300:]).to_csv(tmp_path / "sample.csv", index=False)
    X.iloc[300:].to_parquet(tmp_path / "features.parquet")
    (tmp_path / "metadata.yaml").write_text(
        "training:\n  dataset_version: 2026-01-v2\nfeatures:\n  feature_set_version: v7\n"
    )
    return tmp_path


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _snapshot(home: Path) -> tuple[list, list]:
    async def read():
        registry = await open_registry(HomePaths(home))
        try:
            models = await registry.list_models()
            versions = [
                (v.model, v.version) for m in models for v in await registry.list_versions(m.name)
            ]
            return [m.name for m in models], versions
        finally:
            await registry.close()

    blobs = sorted(p.name for p in (home / "artifacts").rglob("*.onnx"))
    return asyncio.run(read()), blobs


def test_convert_prints_version_parity_and_sha(files, capsys):
    home = str(files / "home")
    code, out, err = _run(
        capsys,
        "convert",
        str(files / "forest.joblib"),
        "--sample",
        str(files / "sample.csv"),
        "--label",
        "y",
        "--name",
        "forest",
        "--version",
        "1.0.0",
        "--home",
        home,
    )
    assert code == 0 and err == ""
    header, row = out.strip().splitlines()
    assert header.split()[:4] == ["MODEL", "VERSION", "STAGE", "SHA256"]
    assert row.split()[:3] == ["forest", "1.0.0", "none"]
    assert row.split()[-2:] == ["passed", "float32"]  # the float32 graph reproduces the forest
    (names, versions), blobs = _snapshot(files / "home")
    assert versions == [("forest", "1.0.0")] and blobs[0].startswith(row.split()[3])


def test_convert_json_with_metadata_tags_and_commit(files, capsys):
    code, out, _ = _run(
        capsys,
        "convert",
        str(files / "forest.joblib"),
        "--sample",
        str(files / "features.parquet"),
        "--name",
        "forest",
        "--bump",
        "minor",
        "--metadata",
        str(files / "metadata.yaml"),
        "--tag",
        "team=risk",
        "--tag",
        "ticket=ML-7",
        "--description",
        "first forest",
        "--git-commit",
        "ABCDEF1234",
        "--home",
        str(files / "home"),
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    assert result["version"] == "1.0.0" and result["parity"]["passed"] is True
    assert len(result["artifact_sha256"]) == 64

    async def stored():
        registry = await open_registry(HomePaths(files / "home"))
        try:
            return await registry.get_version("forest", "1.0.0")
        finally:
            await registry.close()

    mv = asyncio.run(stored())
    assert mv.tags == {"team": "risk", "ticket": "ML-7"} and mv.description == "first forest"
    assert mv.lineage["git_commit"] == "abcdef1234"
    assert mv.lineage["training"]["dataset_version"] == "2026-01-v2"
    assert mv.lineage["training_config"]["feature_set"] == "v7"
    assert mv.created_by  # the CLI actor


def test_parity_failure_is_refused_then_forced(files, capsys):
    base = [
        "convert",
        str(files / "logistic.joblib"),
        "--sample",
        str(files / "sample.csv"),
        "--label",
        "y",
        "--name",
        "logistic",
        "--version",
        "1.0.0",
        "--home",
        str(files / "home"),
    ]
    # float32 inference always rounds a logistic model's probabilities a little, and the
    # exact-double graph still differs in the last bits (summation order)
    code, _, err = _run(capsys, *base, "--tolerance", "0")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(
        "modelgate: error: parity check failed on the exact-double graph "
        "(float32 graph: 200 rows differ): "
    )
    assert " of 200 rows differ, max |Δp| " in err and "; worst row " in err
    report_path = files / "home" / "parity-reports" / "logistic.json"
    assert err.rstrip().endswith(f"; full report: {report_path}")
    stored = json.loads(report_path.read_text())
    report = stored["parity"]["report"]
    assert stored["model"] == "logistic" and stored["parity"]["passed"] is False
    assert report["graph"] == "exact-double" and report["rows"] == 200
    assert [a["graph"] for a in report["attempts"]] == ["float32", "exact-double"]
    assert report["rows_differ"] == stored["parity"]["rows_differ"] > 0
    assert len(report["worst"]) == 10 and report["splits"] == []  # no trees, no splits
    assert _snapshot(files / "home") == (([], []), [])
    code, out, _ = _run(capsys, *base, "--tolerance", "0", "--force")
    assert code == 0 and "FAILED (forced)" in out
    assert "parity report (exact-double graph): " in out and "graphs tried: float32" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{d}/absent.joblib", "--sample", "{d}/sample.csv"], "absent.joblib: no such file"),
        (["{d}/dict.joblib", "--sample", "{d}/sample.csv"], "not a scikit-learn estimator"),
        (["{d}/forest.joblib", "--sample", "{d}/absent.csv"], "absent.csv: no such file"),
        (
            ["{d}/forest.joblib", "--sample", "{d}/sample.csv", "--label", "target"],
            "label column 'target' not in the sample",
        ),
        (["{d}/forest.joblib", "--sample", "{d}/sample.csv"], "unexpected y"),
        (
            ["{d}/centroid.joblib", "--sample", "{d}/features.parquet"],
            "cannot convert step 'estimator' (NearestCentroid)",
        ),
        (
            ["{d}/forest.joblib", "--sample", "{d}/features.parquet", "--tag", "oops"],
            "invalid --tag 'oops'",
        ),
        (
            [
                "{d}/forest.joblib",
                "--sample",
                "{d}/features.parquet",
                "--metadata",
                "{d}/none.yaml",
            ],
            "none.yaml",
        ),
        (
            ["{d}/forest.joblib", "--sample", "{d}/features.parquet", "--git-commit", "not-a-sha"],
            "invalid --git-commit",
        ),
        (
            ["{d}/forest.joblib", "--sample", "{d}/features.parquet", "--tolerance", "-1"],
            "invalid --tolerance",
        ),
    ],
    ids=[
        "no-estimator",
        "not-sklearn",
        "no-sample",
        "no-label",
        "extra-column",
        "unconvertible",
        "bad-tag",
        "no-metadata",
        "bad-commit",
        "bad-tolerance",
    ],
)
def test_convert_errors_are_one_line_and_change_nothing(files, capsys, argv, message):
    home = files / "home"
    args = [a.format(d=files) for a in argv]
    code, out, err = _run(
        capsys, "convert", *args, "--name", "m", "--version", "1.0.0", "--home", str(home)
    )
    assert code == 2 and out == ""
    assert err.startswith("modelgate: error: ") and err.count("\n") == 1, err
    assert message in err
    if home.exists():
        assert _snapshot(home) == (([], []), [])


def test_an_existing_version_is_refused_without_a_new_artifact(files, capsys):
    argv = [
        "convert",
        str(files / "forest.joblib"),
        "--sample",
        str(files / "features.parquet"),
        "--name",
        "m",
        "--version",
        "1.0.0",
        "--home",
        str(files / "home"),
    ]
    assert _run(capsys, *argv)[0] == 0
    before = _snapshot(files / "home")
    code, _, err = _run(capsys, *argv)
    assert code == 2 and "already has version 1.0.0" in err
    assert _snapshot(files / "home") == before


@pytest.mark.slow
def test_demo_registers_once_and_writes_data(tmp_path, capsys):
    home = str(tmp_path / "home")
    code, out, err = _run(capsys, "demo", "--home", home, "--write-data", str(tmp_path / "d.csv"))
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "registered the demo model 'churn':"
    assert lines[2].split()[:2] == ["1.0.0", "production"]
    assert lines[3].split()[:2] == ["1.1.0", "staging"]
    assert (tmp_path / "d.csv").read_text().startswith("tenure_months,")
    code, out, _ = _run(capsys, "demo", "--home", home, "--json")
    result = json.loads(out)
    assert code == 0 and result["created"] is False
    assert [v["stage"] for v in result["versions"]] == ["production", "staging"]
    assert _snapshot(tmp_path / "home")[0][1] == [("churn", "1.0.0"), ("churn", "1.1.0")]


@pytest.mark.slow
def test_cli_module_does_not_import_scikit_learn():
    code = (
        "import sys, gateway.cli.convert_commands, gateway.cli.main\n"
        "bad = [m for m in ('sklearn', 'skl2onnx', 'converters', 'pandas') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
