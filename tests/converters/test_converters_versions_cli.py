"""`modelgate convert` numbers versions by meaning: a changed schema needs a major version."""

from __future__ import annotations

import json

import joblib
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from gateway.cli.main import main


@pytest.fixture
def files(tmp_path, numeric_data, fit_quiet):
    """Models over 4 columns, over 5 columns, and over 4 columns with three classes."""
    X, y = numeric_data(rows=400, n_features=5)
    _, y3 = numeric_data(rows=400, n_features=5, n_classes=3)
    four = ["x0", "x1", "x2", "x3"]
    for name, cols, target in (("four", four, y), ("five", four + ["x4"], y), ("three", four, y3)):
        joblib.dump(fit_quiet(LogisticRegression(), X[cols], target), tmp_path / f"{name}.joblib")
        X[cols].to_csv(tmp_path / f"{name}.csv", index=False)
    return tmp_path


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _convert(capsys, files, model: str, *extra: str, name: str = "m") -> tuple[int, str, str]:
    return _run(
        capsys,
        "convert",
        str(files / f"{model}.joblib"),
        "--sample",
        str(files / f"{model}.csv"),
        "--name",
        name,
        "--home",
        str(files / "home"),
        *extra,
    )


def _versions(capsys, files, name: str = "m") -> list[str]:
    code, out, _ = _run(capsys, "versions", name, "--home", str(files / "home"), "--json")
    assert code == 0
    return [v["version"] for v in json.loads(out)]


def _refused(err: str) -> str:
    assert err.startswith("modelgate: error: ") and err.count("\n") == 1, err
    return err


def test_same_schema_takes_any_part(files, capsys):
    assert _convert(capsys, files, "four", "--bump", "minor")[0] == 0
    code, out, err = _convert(capsys, files, "four", "--bump", "minor")
    assert code == 0 and err == ""
    assert out.splitlines()[0].split()[:2] == ["MODEL", "VERSION"]  # no note: nothing changed
    assert _convert(capsys, files, "four", "--bump", "patch")[0] == 0
    assert _convert(capsys, files, "four", "--bump")[0] == 0  # auto: minor
    assert _versions(capsys, files) == ["1.0.0", "1.1.0", "1.1.1", "1.2.0"]


def test_an_added_column_refuses_a_minor_bump(files, capsys):
    assert _convert(capsys, files, "four", "--version", "1.0.0")[0] == 0
    blobs = sorted((files / "home" / "artifacts").rglob("*.onnx"))
    code, out, err = _convert(capsys, files, "five", "--bump", "minor")
    assert code == 2 and out == ""
    assert "'m' 1.1.0 is a minor version after 1.0.0 but the schema changed: added column x4;" in (
        _refused(err)
    )
    assert "--bump auto" in err and "--force --reason TEXT" in err
    code, _, err = _convert(capsys, files, "five", "--version", "1.0.1")
    assert code == 2 and "1.0.1 is a patch version after 1.0.0" in _refused(err)
    assert _versions(capsys, files) == ["1.0.0"]
    assert sorted((files / "home" / "artifacts").rglob("*.onnx")) == blobs


@pytest.mark.parametrize("bump", [["--bump", "auto"], ["--bump"]])
def test_auto_picks_major_and_says_why(files, capsys, bump):
    assert _convert(capsys, files, "four", *bump)[0] == 0
    code, out, err = _convert(capsys, files, "five", *bump)
    assert code == 0 and err == ""
    note, header, row = out.strip().splitlines()
    assert note == "major version 2.0.0: the schema differs from 1.0.0: added column x4"
    assert row.split()[:2] == ["m", "2.0.0"]
    code, out, _ = _convert(capsys, files, "five", *bump, "--json")
    result = json.loads(out)
    assert code == 0 and result["version"] == "2.1.0"
    assert result["version_change"] == {
        "previous": "2.0.0",
        "part": "minor",
        "schema_changes": [],
        "auto": True,
        "forced": False,
    }


def test_changed_classes_need_a_major_version(files, capsys):
    assert _convert(capsys, files, "four", "--bump")[0] == 0
    code, _, err = _convert(capsys, files, "three", "--bump", "patch")
    assert code == 2 and "classes changed [0, 1] -> [0, 1, 2]" in _refused(err)
    code, out, _ = _convert(capsys, files, "three", "--version", "2.0.0", "--json")
    assert code == 0 and json.loads(out)["version_change"]["schema_changes"] == [
        "classes changed [0, 1] -> [0, 1, 2]"
    ]


def test_force_needs_a_reason_and_is_audited(files, capsys):
    home = str(files / "home")
    assert _convert(capsys, files, "four", "--bump")[0] == 0
    code, _, err = _convert(capsys, files, "five", "--bump", "minor", "--force")
    assert code == 2 and "needs --reason TEXT (added column x4)" in _refused(err)
    code, out, err = _convert(
        capsys, files, "five", "--bump", "minor", "--force", "--reason", "x4 is optional"
    )
    assert code == 0 and err == ""
    assert out.splitlines()[0] == (
        "forced minor version 1.1.0 over schema changes from 1.0.0 (audited): added column x4"
    )
    code, out, _ = _run(
        capsys, "audit", "--model", "m", "--action", "register", "--home", home, "--json"
    )
    newest = json.loads(out)[0]
    assert (newest["version"], newest["action"]) == ("1.1.0", "register")
    assert newest["reason"] == (
        "x4 is optional | forced minor version over schema changes from 1.0.0: added column x4"
    )
    code, out, _ = _run(capsys, "show", "m", "1.1.0", "--home", home, "--json")
    assert json.loads(out)["lineage"]["version_change"]["forced"] is True


def test_new_levels_of_a_string_column(tmp_path, capsys, mixed_data, fit_quiet):
    X, y = mixed_data(rows=300)
    wider = X.copy()
    wider.loc[wider.index[:40], "plan"] = "enterprise"
    for name, frame in (("base", X), ("wider", wider)):
        prep = ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"])],
            remainder="passthrough",
        )
        model = fit_quiet(Pipeline([("prep", prep), ("model", LogisticRegression())]), frame, y)
        joblib.dump(model, tmp_path / f"{name}.joblib")
        pd.DataFrame(frame).to_csv(tmp_path / f"{name}.csv", index=False)
    assert _convert(capsys, tmp_path, "base", "--bump")[0] == 0
    code, _, err = _convert(capsys, tmp_path, "wider", "--bump", "patch")
    assert code == 2 and "plan: new levels {'enterprise'}" in _refused(err)
    code, out, _ = _convert(capsys, tmp_path, "wider", "--bump")
    assert code == 0 and out.startswith("major version 2.0.0: the schema differs from 1.0.0:")
