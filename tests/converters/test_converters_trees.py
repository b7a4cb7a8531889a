"""Tree splits: the float32 threshold rule, reading and rewriting converted tree nodes, the
exact-double graph on missing values, multi-class boosting and bare estimators."""

from __future__ import annotations

import numpy as np
import onnx
import pandas as pd
import pytest
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.tree import DecisionTreeRegressor

from converters import ConversionError, ParityError, convert, prepare, run
from converters.exact_graph import split_final
from converters.trees import (
    Tree,
    forest_of,
    largest_float32_at_most,
    make_exact,
    splits_of,
    tree_node,
    walk_divergence,
)
from converters.verify import _sklearn_outputs, compare

NUMERIC = ["tenure", "charges", "usage"]


def test_largest_float32_at_most_decides_like_the_float64_threshold():
    rng = np.random.default_rng(0)
    t = np.concatenate(
        [
            rng.normal(size=2000) * 10.0 ** rng.integers(-8, 8, 2000),
            rng.normal(size=200).astype(np.float32).astype(np.float64),  # exact float32 values
            [0.0, -0.0, 1e39, -1e39, np.inf, -np.inf, 0.1, -0.1],
        ]
    )
    w = largest_float32_at_most(t)
    assert w.dtype == np.float32
    assert np.all(w.astype(np.float64) <= t)
    with np.errstate(over="ignore"):
        above = np.nextafter(w, np.float32(np.inf))
    assert np.all((above.astype(np.float64) > t) | (w == np.float32(np.inf)))
    # every float32 near a threshold is on the same side of t and of w
    for offset in range(-3, 4):
        with np.errstate(over="ignore", invalid="ignore"):
            a = t.astype(np.float32)
            for _ in range(abs(offset)):
                a = np.nextafter(a, np.float32(np.sign(offset) * np.inf))
        finite = np.isfinite(a)
        assert np.array_equal(a[finite].astype(np.float64) <= t[finite], a[finite] <= w[finite])


def test_walk_divergence_names_the_node_where_two_walks_part():
    #        0: x0 <= 1.0
    #      /             \
    #  1: x1 <= 5.0     2: leaf
    #   /       \
    # 3: leaf  4: leaf
    tree = Tree(
        feature=np.array([0, 1, 0, 0, 0]),
        threshold=np.array([1.0, 5.0, 0.0, 0.0, 0.0]),
        left=np.array([1, 3, -1, -1, -1]),
        right=np.array([2, 4, -1, -1, -1]),
        missing_left=np.array([False, True, False, False, False]),
        value=None,
    )
    x_a = np.array([[1.0, 5.0], [1.0, 5.0], [0.0, np.nan], [3.0, 0.0]])
    x_b = np.array([[1.0 + 1e-9, 5.0], [1.0, 5.0 + 1e-9], [0.0, np.nan], [3.0, 0.0]])
    split_a = (tree.threshold, tree.missing_left)
    assert walk_divergence(tree, x_a, split_a, x_b, split_a).tolist() == [0, 1, -1, -1]
    # same inputs, the NaN rule differs at node 1
    other_nan = (tree.threshold, np.array([False, False, False, False, False]))
    assert walk_divergence(tree, x_a, split_a, x_a, other_nan).tolist() == [-1, -1, 1, -1]


def _nan_frame(churn_data, rows: int = 900):
    X, y, target = churn_data(rows)
    X = X[NUMERIC].copy()
    mask = np.random.default_rng(3).random(X.shape) < 0.1
    X[mask] = np.nan
    return X, y, target


def test_a_forest_trained_with_missing_values_needs_the_exact_graph(churn_data, fit_quiet):
    # scikit-learn's trees learn where NaN goes (missing_go_to_left); skl2onnx's node ignores
    # it, so the float32 graph differs on most rows with a NaN; the exact node carries it
    X, y, _ = _nan_frame(churn_data)
    forest = fit_quiet(RandomForestClassifier(n_estimators=10, random_state=0), X, y)
    prepared = prepare(forest, X.assign(y=y), "y")
    fast, exact = prepared.lineage["conversion"]["attempts"]
    assert fast["graph"] == "float32" and fast["rows_differ"] > 100
    assert exact == {
        "graph": "exact-double",
        "passed": True,
        "rows_differ": 0,
        "max_abs_diff": prepared.parity["max_abs_diff"],
    }
    assert prepared.parity["max_abs_diff"] <= 1e-6
    assert prepared.schema["inputs"] == [
        {"name": "input", "datatype": "FP64", "shape": [-1, 3], "features": NUMERIC}
    ]
    assert prepared.schema["allow_missing"] is False  # as before: no imputer, no HGB
    # the reference keeps what the exact graph is served: float64 values
    sample = pd.Series(prepared.reference["numerical"]["charges"]["sample"])
    assert sample.isin(X["charges"]).all()


def test_imputer_scaler_forest_in_double(churn_data, fit_quiet):
    X, y, _ = _nan_frame(churn_data)
    pipeline = make_pipeline(
        SimpleImputer(), StandardScaler(), RandomForestClassifier(10, random_state=0)
    )
    fit_quiet(pipeline, X, y)
    exact = convert(pipeline, X, graph="exact-double")
    ops = [n.op_type for n in onnx.load_from_string(exact.onnx_bytes).graph.node]
    assert "Imputer" not in ops and {"IsNaN", "Where", "Cast"} <= set(ops)
    expected = _sklearn_outputs(pipeline, X, "classification")
    result = compare(pipeline, exact, X, expected)
    assert result["passed"] and result["rows_differ"] == 0 and result["max_abs_diff"] <= 1e-6
    assert exact.schema["allow_missing"] is True


@pytest.mark.parametrize(
    "model",
    [
        HistGradientBoostingClassifier(max_iter=20, random_state=0),
        GradientBoostingClassifier(n_estimators=10, random_state=0),
    ],
    ids=["hist_gradient_boosting", "gradient_boosting"],
)
def test_multi_class_boosting_keeps_the_tree_order(model, churn_data, fit_quiet):
    X, _, target = churn_data(900)
    y3 = np.digitize(target, np.quantile(target, [0.33, 0.66]))
    pipeline = fit_quiet(make_pipeline(MinMaxScaler(), model), X[NUMERIC], y3)
    exact = convert(pipeline, X[NUMERIC], graph="exact-double")
    forest = forest_of(pipeline)
    assert forest is not None and len(forest.trees) == 3 * (20 if "Hist" in str(model) else 10)
    splits = splits_of(onnx.load_from_string(exact.onnx_bytes), forest)
    for tree, threshold in zip(forest.trees, splits.threshold, strict=True):
        branch = ~tree.is_leaf
        if forest.float32_inputs:
            assert np.array_equal(
                threshold[branch], largest_float32_at_most(tree.threshold[branch])
            )
        else:
            assert np.array_equal(threshold[branch], tree.threshold[branch])
    result = compare(
        pipeline, exact, X[NUMERIC], _sklearn_outputs(pipeline, X[NUMERIC], "classification")
    )
    assert result["passed"] and result["rows_differ"] == 0 and result["max_abs_diff"] <= 1e-6


def test_a_bare_regressor_has_one_double_input_and_a_double_output(churn_data, fit_quiet):
    X, _, target = churn_data(600)
    model = fit_quiet(
        HistGradientBoostingRegressor(max_iter=20, random_state=0), X[NUMERIC], target
    )
    exact = convert(model, X[NUMERIC], graph="exact-double")
    assert exact.graph == "exact-double"
    assert exact.schema["inputs"][0]["datatype"] == "FP64"
    value = next(o for o in exact.schema["outputs"] if o["name"] == exact.schema["value_output"])
    assert value["datatype"] == "FP64"
    got = run(exact.onnx_bytes, exact.schema, X[NUMERIC])[exact.schema["value_output"]]
    assert np.abs(got.ravel() - model.predict(X[NUMERIC])).max() <= 1e-4
    assert split_final(model) == (None, model)


def test_a_node_that_does_not_match_the_forest_is_refused(churn_data, fit_quiet):
    X, _, target = churn_data(300)
    pipeline = fit_quiet(
        make_pipeline(StandardScaler(), DecisionTreeRegressor(max_depth=3)), X[NUMERIC], target
    )
    head, tree_model = split_final(pipeline)
    assert head is not None and tree_model is pipeline[-1]
    model = onnx.load_from_string(convert(pipeline, X[NUMERIC]).onnx_bytes)
    node = tree_node(model)
    for attr in node.attribute:
        if attr.name == "nodes_featureids":
            attr.ints[0] = (attr.ints[0] + 1) % 3
    with pytest.raises(ConversionError, match="splits other features"):
        make_exact(model, forest_of(pipeline))
    other = fit_quiet(DecisionTreeRegressor(max_depth=2), X[NUMERIC], target)
    with pytest.raises(ConversionError, match="does not match"):
        splits_of(onnx.load_from_string(convert(pipeline, X[NUMERIC]).onnx_bytes), forest_of(other))


def test_float32_graphs_are_kept_where_they_are_exact(churn_data, fit_quiet):
    # a bare forest compares float32(x) in both: its float32 graph is exact and is kept
    X, y, _ = churn_data(600)
    forest = fit_quiet(RandomForestClassifier(n_estimators=10, random_state=0), X[NUMERIC], y)
    prepared = prepare(forest, X[NUMERIC].assign(y=y), "y")
    assert prepared.lineage["conversion"]["graph"] == "float32"
    assert prepared.lineage["conversion"]["attempts"] == [
        {
            "graph": "float32",
            "passed": True,
            "rows_differ": 0,
            "max_abs_diff": prepared.parity["max_abs_diff"],
        }
    ]
    assert prepared.schema["inputs"][0]["datatype"] == "FP32"
    assert prepared.parity["rows"] == 600 and prepared.parity["rows_differ"] == 0
    # the reference keeps what the graph is served: float32-rounded values
    sample = pd.Series(prepared.reference["numerical"]["charges"]["sample"])
    assert sample.isin(X["charges"].astype(np.float32).astype(np.float64)).all()
    assert not sample.isin(X["charges"]).all()


def test_without_an_exact_graph_the_float32_report_says_why(churn_data, fit_quiet):
    # the double SimpleImputer handles NaN markers only: no exact graph for missing_values=-1
    X, y, _ = churn_data(600)
    pipeline = make_pipeline(
        SimpleImputer(missing_values=-1.0),
        StandardScaler(),
        RandomForestClassifier(n_estimators=10, random_state=0),
    )
    fit_quiet(pipeline, X[NUMERIC], y)
    sample = X[NUMERIC].assign(y=y)
    with pytest.raises(ParityError) as info:
        prepare(pipeline, sample, "y")
    message = str(info.value)
    assert message.startswith("parity check failed on the float32 graph: ")
    report = info.value.parity["report"]
    assert report["graph"] == "float32" and [a["graph"] for a in report["attempts"]] == ["float32"]
    assert "SimpleImputer" in report["exact_graph_error"]
    assert report["rows_differ"] == info.value.parity["rows_differ"] > 0
    assert report["explained_rows"] == report["rows_differ"]
    assert all(w["split"]["rule"] == "float32(x) <= threshold" for w in report["worst"])
    forced = prepare(pipeline, sample, "y", force=True)
    assert forced.parity["forced"] is True and forced.parity["report"] == report
    assert forced.lineage["conversion"]["graph"] == "float32"
    assert "no exact graph: cannot convert step" in forced.lineage["conversion"]["reason"]
