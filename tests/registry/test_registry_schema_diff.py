"""registry.schema_diff: which differences between two schemas a client would notice."""

from __future__ import annotations

import copy
from typing import Any

from registry.schema_diff import schema_changes


def _schema(
    columns: list[tuple[str, str]] | None = None,
    *,
    per_column: bool = True,
    task: str = "classification",
    classes: list[Any] | None = None,
    levels: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    columns = columns or [("tenure", "numerical"), ("plan", "categorical")]
    features = [
        {"name": n, "dtype": "string" if k == "categorical" else "float32", "kind": k}
        for n, k in columns
    ]
    if per_column:
        inputs = [
            {
                "name": n,
                "datatype": "BYTES" if k == "categorical" else "FP32",
                "shape": [-1, 1],
                "features": [n],
            }
            for n, k in columns
        ]
    else:
        names = [n for n, _ in columns]
        inputs = [{"name": "input", "datatype": "FP32", "shape": [-1, 2], "features": names}]
    schema: dict[str, Any] = {
        "task": task,
        "features": features,
        "inputs": inputs,
        "classes": ([0, 1] if classes is None else classes) if task == "classification" else None,
    }
    if levels is not None:
        schema["levels"] = levels
    return schema


def test_identical_schemas_have_no_changes() -> None:
    schema = _schema(levels={"plan": ["basic", "pro"]})
    assert schema_changes(schema, copy.deepcopy(schema)) == []


def test_added_and_removed_columns_are_named() -> None:
    old = _schema([("a", "numerical"), ("b", "numerical"), ("y", "numerical")])
    new = _schema([("a", "numerical"), ("b", "numerical"), ("x", "numerical")])
    assert schema_changes(old, new) == ["added column x", "removed column y"]
    wider = _schema(
        [("a", "numerical"), ("b", "numerical"), ("y", "numerical"), ("z", "numerical")]
    )
    assert schema_changes(old, wider)[0] == "added column z"


def test_many_added_columns_are_listed_with_a_count() -> None:
    old = _schema([("a", "numerical")])
    new = _schema([("a", "numerical")] + [(f"c{i}", "numerical") for i in range(12)])
    (change,) = schema_changes(old, new)
    assert change.startswith("added columns c0, c1,") and change.endswith("(+4 more)")


def test_column_order_matters() -> None:
    old = _schema([("a", "numerical"), ("b", "numerical")], per_column=False)
    new = _schema([("b", "numerical"), ("a", "numerical")], per_column=False)
    assert schema_changes(old, new) == ["column order changed: a, b -> b, a"]


def test_kind_changes_but_numeric_precision_does_not() -> None:
    old = _schema([("a", "numerical"), ("b", "numerical")])
    new = _schema([("a", "numerical"), ("b", "categorical")])
    assert schema_changes(old, new) == ["column b changed from numerical to categorical"]
    doubled = copy.deepcopy(old)
    doubled["features"][0]["dtype"] = "float64"
    doubled["inputs"][0]["datatype"] = "FP64"
    assert schema_changes(old, doubled) == []


def test_levels_gained_and_lost() -> None:
    old = _schema(levels={"plan": ["basic", "pro", "team"]})
    new = _schema(levels={"plan": ["basic", "enterprise", "pro"]})
    assert schema_changes(old, new) == [
        "plan: new levels {'enterprise'}",
        "plan: levels no longer known {'team'}",
    ]


def test_levels_are_compared_only_when_both_versions_record_them() -> None:
    recorded = _schema(levels={"plan": ["basic"]})
    assert schema_changes(_schema(), recorded) == []
    assert schema_changes(recorded, _schema(levels={})) == []


def test_input_tensor_regrouping_is_a_change() -> None:
    columns = [("a", "numerical"), ("b", "numerical")]
    old = _schema(columns, per_column=False)
    new = _schema(columns, per_column=True)
    assert schema_changes(old, new) == [
        "input tensors changed: input[2 columns] -> one tensor per column (2)"
    ]


def test_classes_and_task() -> None:
    old = _schema(classes=[0, 1])
    assert schema_changes(old, _schema(classes=[0, 1, 2])) == [
        "classes changed [0, 1] -> [0, 1, 2]"
    ]
    assert schema_changes(old, _schema(classes=[1, 0])) == ["classes changed [0, 1] -> [1, 0]"]
    assert schema_changes(old, _schema(task="regression")) == [
        "task changed classification -> regression"
    ]


def test_several_changes_in_a_stable_order() -> None:
    old = _schema([("a", "numerical"), ("plan", "categorical")], levels={"plan": ["x"]})
    new = _schema(
        [("plan", "categorical"), ("c", "numerical")],
        classes=["no", "yes"],
        levels={"plan": ["x", "y"]},
    )
    assert schema_changes(old, new) == [
        "added column c",
        "removed column a",
        "plan: new levels {'y'}",
        "classes changed [0, 1] -> ['no', 'yes']",
    ]
