from __future__ import annotations

import copy

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from gateway.dataplane.signature import ModelSignature, SchemaError


def numeric_schema(n: int = 4, allow_missing: bool = False) -> dict:
    feats = [f"f{i}" for i in range(n)]
    return {
        "task": "classification",
        "features": [{"name": f, "dtype": "float32", "kind": "numerical"} for f in feats],
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, n], "features": feats}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
        ],
        "label_output": "label",
        "probability_output": "probabilities",
        "value_output": None,
        "classes": [0, 1],
        "allow_missing": allow_missing,
    }


def mixed_schema() -> dict:
    features = [
        {"name": "tenure", "dtype": "float32", "kind": "numerical"},
        {"name": "plan", "dtype": "string", "kind": "categorical"},
        {"name": "charges", "dtype": "float32", "kind": "numerical"},
        {"name": "region", "dtype": "string", "kind": "categorical"},
    ]
    return {
        "task": "classification",
        "features": features,
        "inputs": [
            {
                "name": f["name"],
                "datatype": "BYTES" if f["kind"] == "categorical" else "FP32",
                "shape": [-1, 1],
                "features": [f["name"]],
            }
            for f in features
        ],
        "outputs": [
            {"name": "output_label", "datatype": "BYTES", "shape": [-1]},
            {"name": "output_probability", "datatype": "FP32", "shape": [-1, 2]},
        ],
        "label_output": "output_label",
        "probability_output": "output_probability",
        "value_output": None,
        "classes": ["no", "yes"],
        "allow_missing": True,
    }


def regression_schema() -> dict:
    feats = ["a", "b", "c"]
    return {
        "task": "regression",
        "features": [{"name": f, "dtype": "float32", "kind": "numerical"} for f in feats],
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 3], "features": feats}],
        "outputs": [{"name": "variable", "datatype": "FP32", "shape": [-1, 1]}],
        "label_output": None,
        "probability_output": None,
        "value_output": "variable",
        "classes": None,
        "allow_missing": False,
    }


def test_numeric_signature_is_the_fast_case() -> None:
    sig = ModelSignature.from_schema(numeric_schema(), max_rows=64)
    assert sig.single_numeric
    assert sig.task == "classification"
    assert sig.features == ("f0", "f1", "f2", "f3")
    (spec,) = sig.inputs
    assert (spec.name, spec.datatype, spec.width, spec.dtype) == ("input", "FP32", 4, np.float32)
    assert spec.columns == (0, 1, 2, 3)
    assert sig.input_index == {"input": spec}
    assert sig.output_order == ("label", "probabilities")
    assert sig.prediction_output == "label"
    assert sig.probability_output == "probabilities"
    assert sig.classes == (0, 1)
    assert sig.allow_missing is False
    assert sig.max_rows == 64
    assert sig.row_getter({"f3": 3, "f1": 1, "f0": 0, "f2": 2}) == (0, 1, 2, 3)


def test_mixed_signature_has_one_input_per_column() -> None:
    sig = ModelSignature.from_schema(mixed_schema(), max_rows=10)
    assert not sig.single_numeric
    assert [(i.name, i.is_string, i.dtype) for i in sig.inputs] == [
        ("tenure", False, np.float32),
        ("plan", True, np.dtype(object)),
        ("charges", False, np.float32),
        ("region", True, np.dtype(object)),
    ]
    assert sig.input_index["charges"].columns == (2,)
    assert sig.numeric_features == ("tenure", "charges")
    assert sig.categorical_features == ("plan", "region")
    assert sig.classes == ("no", "yes")
    assert sig.allow_missing is True


def test_regressor_predicts_from_the_value_output() -> None:
    sig = ModelSignature.from_schema(regression_schema(), max_rows=10)
    assert sig.prediction_output == "variable"
    assert sig.probability_output is None
    assert sig.classes == ()


def test_single_feature_row_getter_returns_a_tuple() -> None:
    sig = ModelSignature.from_schema(numeric_schema(1), max_rows=10)
    assert sig.row_getter({"f0": 5.0}) == (5.0,)


def test_metadata_is_the_oip_model_metadata_body() -> None:
    sig = ModelSignature.from_schema(mixed_schema(), max_rows=10)
    meta = sig.metadata("churn", ["1.0.0", "1.1.0"])
    assert meta == {
        "name": "churn",
        "versions": ["1.0.0", "1.1.0"],
        "platform": "onnxruntime_onnx",
        "inputs": [
            {"name": "tenure", "datatype": "FP32", "shape": [-1, 1]},
            {"name": "plan", "datatype": "BYTES", "shape": [-1, 1]},
            {"name": "charges", "datatype": "FP32", "shape": [-1, 1]},
            {"name": "region", "datatype": "BYTES", "shape": [-1, 1]},
        ],
        "outputs": [
            {"name": "output_label", "datatype": "BYTES", "shape": [-1]},
            {"name": "output_probability", "datatype": "FP32", "shape": [-1, 2]},
        ],
    }
    meta["inputs"].clear()  # a caller mutating its copy does not touch the signature
    assert len(sig.metadata("churn", ["1.0.0"], platform="x")["inputs"]) == 4


def test_empty_and_dummy_feeds() -> None:
    sig = ModelSignature.from_schema(mixed_schema(), max_rows=10)
    empty = sig.empty_feeds(3)
    assert empty["tenure"].shape == (3, 1) and empty["tenure"].dtype == np.float32
    assert empty["plan"].dtype == object and empty["plan"].tolist() == [[""], [""], [""]]
    reference = {"categorical": {"plan": {"categories": ["basic", "pro"], "frequencies": [1, 0]}}}
    dummy = sig.dummy_feeds(3, reference)
    assert dummy["plan"].ravel().tolist() == ["basic", "pro", "basic"]
    assert dummy["region"].ravel().tolist() == ["", "", ""]  # no reference: empty string
    assert all(type(v) is str for v in dummy["plan"].ravel())
    assert sig.dummy_feeds()["tenure"].shape == (1, 1)


def _one_hot_model() -> bytes:
    """plan (string) -> OneHotEncoder that refuses unknown categories (zeros=0)."""
    node = helper.make_node(
        "OneHotEncoder",
        ["plan"],
        ["encoded"],
        domain="ai.onnx.ml",
        cats_strings=["basic", "pro"],
        zeros=0,
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("plan", TensorProto.STRING, [None, 1])],
        [helper.make_tensor_value_info("encoded", TensorProto.FLOAT, [None, 1, 2])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    model.ir_version = 8
    return model.SerializeToString()


def test_dummy_feeds_with_reference_categories_run_in_onnxruntime() -> None:
    schema = mixed_schema()
    schema["features"] = [schema["features"][1]]
    schema["inputs"] = [schema["inputs"][1]]
    sig = ModelSignature.from_schema(schema, max_rows=10)
    session = ort.InferenceSession(_one_hot_model(), providers=["CPUExecutionProvider"])
    reference = {"categorical": {"plan": {"categories": ["pro", "basic"]}}}
    (encoded,) = session.run(None, sig.dummy_feeds(2, reference))
    assert encoded.reshape(2, 2).tolist() == [[0.0, 1.0], [1.0, 0.0]]
    with pytest.raises(Exception, match="[Uu]nknown|not found|category"):
        session.run(None, sig.dummy_feeds(1))  # why warm-up wants the reference categories


def test_numeric_matrix_and_categorical_columns_in_schema_order() -> None:
    sig = ModelSignature.from_schema(mixed_schema(), max_rows=10)
    feeds = {
        "tenure": np.array([[1.0], [2.0]], dtype=np.float32),
        "plan": np.array([["a"], ["b"]], dtype=object),
        "charges": np.array([[10.5], [20.5]], dtype=np.float32),
        "region": np.array([["eu"], ["us"]], dtype=object),
    }
    matrix = sig.numeric_matrix(feeds)
    assert matrix.dtype == np.float64 and matrix.tolist() == [[1.0, 10.5], [2.0, 20.5]]
    plan, region = sig.categorical_columns(feeds)
    assert plan.tolist() == ["a", "b"] and region.tolist() == ["eu", "us"]


def test_numeric_matrix_of_the_fast_case_is_a_float64_copy() -> None:
    sig = ModelSignature.from_schema(numeric_schema(3), max_rows=10)
    feed = np.arange(6, dtype=np.float32).reshape(2, 3)
    matrix = sig.numeric_matrix({"input": feed})
    assert matrix.dtype == np.float64 and matrix.tolist() == feed.tolist()
    matrix[0, 0] = 99
    assert feed[0, 0] == 0
    assert sig.categorical_columns({"input": feed}) == []


def test_categorical_feature_inside_a_numeric_input() -> None:
    schema = numeric_schema(3)
    schema["features"][1]["kind"] = "categorical"  # e.g. an integer-coded category
    sig = ModelSignature.from_schema(schema, max_rows=10)
    feed = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert sig.numeric_matrix({"input": feed}).tolist() == [[0.0, 2.0], [3.0, 5.0]]
    (col,) = sig.categorical_columns({"input": feed})
    assert col.tolist() == [1.0, 4.0]


def _broken(mutate) -> dict:
    schema = copy.deepcopy(numeric_schema())
    mutate(schema)
    return schema


@pytest.mark.parametrize(
    ("schema", "match"),
    [
        (_broken(lambda s: s.update(task="clustering")), "unknown task"),
        (_broken(lambda s: s.update(inputs=[])), "no inputs"),
        (_broken(lambda s: s.update(outputs=[])), "no outputs"),
        (_broken(lambda s: s["inputs"][0].update(datatype="FP8")), "unsupported datatype"),
        (_broken(lambda s: s["inputs"][0].update(shape=[-1, 5])), "width 5"),
        (_broken(lambda s: s["inputs"][0].update(features=["f0", "zz", "f2", "f3"])), "unknown"),
        (_broken(lambda s: s["inputs"][0].update(features=[])), "no features"),
        (_broken(lambda s: s["features"].append({"name": "f0"})), "not unique"),
        (_broken(lambda s: s.update(label_output="nope")), "not an output"),
        (_broken(lambda s: s.update(probability_output="nope")), "not an output"),
        (_broken(lambda s: s["outputs"][0].update(datatype="STRING")), "datatype"),
        (_broken(lambda s: s["inputs"].append(s["inputs"][0])), "not unique"),
        (_broken(lambda s: s["inputs"][0].update(datatype=["FP32"])), "unsupported datatype"),
        (_broken(lambda s: s["features"][0].pop("name")), "every feature needs a name"),
        ([], "not an object"),
    ],
)
def test_malformed_schemas_are_refused_at_load(schema, match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        ModelSignature.from_schema(schema, max_rows=10)


def test_max_rows_must_be_positive() -> None:
    with pytest.raises(SchemaError, match="max_rows"):
        ModelSignature.from_schema(numeric_schema(), max_rows=0)


def test_signature_is_frozen() -> None:
    sig = ModelSignature.from_schema(numeric_schema(), max_rows=10)
    with pytest.raises(AttributeError):
        sig.max_rows = 5  # type: ignore[misc]
