"""The simple JSON /predict codec: list and object instances, errors, responses."""

from __future__ import annotations

import json
import random

import numpy as np
import orjson
import pytest

from gateway.dataplane.codecs.predict import decode_predict_request, encode_predict_response
from gateway.dataplane.signature import ModelSignature
from gateway.errors import InputError

FEATS = ["age", "income", "score"]


def numeric_sig(allow_missing: bool = False, max_rows: int = 16) -> ModelSignature:
    schema = {
        "task": "classification",
        "features": [{"name": f, "dtype": "float32", "kind": "numerical"} for f in FEATS],
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 3], "features": FEATS}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
        ],
        "label_output": "label",
        "probability_output": "probabilities",
        "classes": [0, 1],
        "allow_missing": allow_missing,
    }
    return ModelSignature.from_schema(schema, max_rows=max_rows)


def mixed_sig() -> ModelSignature:
    # training order differs from the input order on purpose
    features = [
        {"name": "plan", "dtype": "string", "kind": "categorical"},
        {"name": "tenure", "dtype": "float32", "kind": "numerical"},
        {"name": "region", "dtype": "string", "kind": "categorical"},
    ]
    inputs = [
        {"name": "tenure", "datatype": "FP32", "shape": [-1, 1], "features": ["tenure"]},
        {"name": "plan", "datatype": "BYTES", "shape": [-1, 1], "features": ["plan"]},
        {"name": "region", "datatype": "BYTES", "shape": [-1, 1], "features": ["region"]},
    ]
    schema = {
        "task": "classification",
        "features": features,
        "inputs": inputs,
        "outputs": [
            {"name": "output_label", "datatype": "BYTES", "shape": [-1]},
            {"name": "output_probability", "datatype": "FP32", "shape": [-1, 2]},
        ],
        "label_output": "output_label",
        "probability_output": "output_probability",
        "classes": ["no", "yes"],
        "allow_missing": False,
    }
    return ModelSignature.from_schema(schema, max_rows=16)


def regressor_sig() -> ModelSignature:
    schema = {
        "task": "regression",
        "features": [{"name": f, "kind": "numerical"} for f in FEATS],
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 3], "features": FEATS}],
        "outputs": [{"name": "variable", "datatype": "FP32", "shape": [-1, 1]}],
        "label_output": None,
        "probability_output": None,
        "value_output": "variable",
    }
    return ModelSignature.from_schema(schema, max_rows=16)


def body(**doc) -> bytes:
    return json.dumps(doc).encode()


def test_list_instances_in_feature_order() -> None:
    rows = [[30, 52000.5, 0.7], [41.5, 0, -1]]
    req = decode_predict_request(body(instances=rows, id="abc"), numeric_sig())
    assert req.id == "abc" and req.n_rows == 2
    feed = req.feeds["input"]
    assert feed.dtype == np.float32 and feed.shape == (2, 3)
    np.testing.assert_array_equal(feed, np.array(rows, dtype=np.float32))


def test_object_instances_map_through_feature_names() -> None:
    rows = [{"score": 0.7, "age": 30, "income": 52000.5}, {"income": 0, "score": -1, "age": 41.5}]
    req = decode_predict_request(body(instances=rows), numeric_sig())
    assert req.id is None
    np.testing.assert_array_equal(
        req.feeds["input"], np.array([[30, 52000.5, 0.7], [41.5, 0, -1]], dtype=np.float32)
    )


def test_booleans_and_numeric_strings_are_numbers_for_numerical_features() -> None:
    req = decode_predict_request(body(instances=[[True, False, "2.5"]]), numeric_sig())
    assert req.feeds["input"].tolist() == [[1.0, 0.0, 2.5]]
    req = decode_predict_request(body(instances=[["p", "1e3", "r"]]), mixed_sig())
    assert req.feeds["tenure"].tolist() == [[1000.0]]


def test_mixed_model_lists_and_objects_give_the_same_feeds() -> None:
    sig = mixed_sig()
    as_lists = decode_predict_request(
        body(instances=[["pro", 12, "eu"], ["basic", 0.5, "us"]]), sig
    )
    as_objects = decode_predict_request(
        body(
            instances=[
                {"tenure": 12, "region": "eu", "plan": "pro"},
                {"plan": "basic", "region": "us", "tenure": 0.5},
            ]
        ),
        sig,
    )
    for req in (as_lists, as_objects):
        assert list(req.feeds) == ["tenure", "plan", "region"]
        assert req.feeds["tenure"].dtype == np.float32
        assert req.feeds["tenure"].tolist() == [[12.0], [0.5]]
        assert req.feeds["plan"].dtype == object and req.feeds["plan"].shape == (2, 1)
        assert req.feeds["plan"].ravel().tolist() == ["pro", "basic"]
        assert req.feeds["region"].ravel().tolist() == ["eu", "us"]
        assert all(type(v) is str for v in req.feeds["region"].ravel())


def test_missing_values() -> None:
    rows = [[30, None, 0.7]]
    req = decode_predict_request(body(instances=rows), numeric_sig(allow_missing=True))
    assert np.isnan(req.feeds["input"][0, 1])
    with pytest.raises(InputError) as err:
        decode_predict_request(body(instances=rows), numeric_sig())
    assert err.value.reason == "non_finite"
    assert "row 0, feature 'income': missing value" in str(err.value)


CASES = [
    ("not-json", b"instances=1", numeric_sig(), "malformed_json", "not valid JSON"),
    ("array", b"[[1, 2, 3]]", numeric_sig(), "malformed_json", "JSON object"),
    ("no-instances", body(inputs=[[1, 2, 3]]), numeric_sig(), "malformed_request", "'instances'"),
    ("instances-object", body(instances={"age": 1}), numeric_sig(), "malformed_request", "list"),
    ("empty", body(instances=[]), numeric_sig(), "empty_batch", "0 rows"),
    ("too-many", body(instances=[[1, 2, 3]] * 17), numeric_sig(), "too_many_rows", "limit of 16"),
    ("scalar-rows", body(instances=[1, 2, 3]), numeric_sig(), "malformed_request", "got 1"),
    ("id-int", body(instances=[[1, 2, 3]], id=7), numeric_sig(), "bad_id", "'id' must be a string"),
    (
        "short-row",
        body(instances=[[1, 2, 3], [1, 2]]),
        numeric_sig(),
        "wrong_feature_count",
        "instance 1 has 2 values, the model takes 3 features ('age', 'income', 'score')",
    ),
    (
        "long-rows",
        body(instances=[[1, 2, 3, 4]]),
        numeric_sig(),
        "wrong_feature_count",
        "instance 0 has 4 values",
    ),
    (
        "nested-value",
        body(instances=[[1, [2, 3], 4]]),
        numeric_sig(),
        "bad_shape",
        "instance 0, feature 'income': expected a single value, got [2, 3]",
    ),
    (
        "all-nested",
        body(instances=[[[1], [2], [3]]]),
        numeric_sig(),
        "bad_shape",
        "feature 'age': expected a single value",
    ),
    (
        "list-then-object",
        body(instances=[[1, 2, 3], {"age": 1}]),
        numeric_sig(),
        "malformed_request",
        "instance 1 is not a list",
    ),
    (
        "object-then-list",
        body(instances=[{"age": 1, "income": 2, "score": 3}, [1, 2, 3]]),
        numeric_sig(),
        "malformed_request",
        "instance 1 is not an object",
    ),
    (
        "text",
        body(instances=[[1, 2, 3], [4, 5, "high"]]),
        numeric_sig(),
        "non_numeric",
        "row 1, feature 'score': expected a number, got 'high'",
    ),
    (
        "object-value",
        body(instances=[[1, 2, {"x": 1}]]),
        numeric_sig(),
        "non_numeric",
        "feature 'score'",
    ),
    (
        "overflow",
        body(instances=[[1, 2, 1e40]]),
        numeric_sig(),
        "out_of_range",
        "feature 'score': 1e+40 does not fit FP32",
    ),
    (
        "missing-feature",
        body(instances=[{"age": 1, "income": 2}]),
        numeric_sig(),
        "missing_feature",
        "instance 0: missing features 'score'",
    ),
    (
        "typo",
        body(instances=[{"age": 1, "income": 2, "scor": 3}]),
        numeric_sig(),
        "missing_feature",
        "missing features 'score'; unknown features 'scor'",
    ),
    (
        "unknown-feature",
        body(instances=[{"age": 1, "income": 2, "score": 3, "zip": "x"}]),
        numeric_sig(),
        "unknown_feature",
        "unknown features 'zip'",
    ),
    (
        "second-row-missing",
        body(instances=[{"age": 1, "income": 2, "score": 3}, {"age": 1}]),
        numeric_sig(),
        "missing_feature",
        "instance 1: missing features 'income', 'score'",
    ),
    (
        "mixed-number-for-string",
        body(instances=[[3, 12, "eu"]]),
        mixed_sig(),
        "bad_dtype",
        "instances, row 0, feature 'plan': expected a string, got 3",
    ),
    (
        "mixed-string-for-number",
        body(instances=[{"plan": "a", "tenure": "long", "region": "x"}]),
        mixed_sig(),
        "non_numeric",
        "feature 'tenure': expected a number, got 'long'",
    ),
    (
        "mixed-null-string",
        body(instances=[["a", 1, None]]),
        mixed_sig(),
        "bad_dtype",
        "feature 'region': expected a string, got None",
    ),
    (
        "mixed-null-number",
        body(instances=[["a", None, "b"]]),
        mixed_sig(),
        "non_finite",
        "feature 'tenure': missing value",
    ),
    (
        "mixed-short",
        body(instances=[["a", 1]]),
        mixed_sig(),
        "wrong_feature_count",
        "instance 0 has 2 values, the model takes 3 features ('plan', 'tenure', 'region')",
    ),
    (
        "mixed-nested",
        body(instances=[["a", [1], "b"]]),
        mixed_sig(),
        "bad_shape",
        "feature 'tenure': expected a single value",
    ),
    (
        "mixed-nested-string",
        body(instances=[[["a"], 1, "b"]]),
        mixed_sig(),
        "bad_dtype",
        "feature 'plan': expected a string, got ['a']",
    ),
]


@pytest.mark.parametrize(
    ("raw", "sig", "reason", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_predict_requests(raw: bytes, sig: ModelSignature, reason: str, fragment: str) -> None:
    with pytest.raises(InputError) as err:
        decode_predict_request(raw, sig)
    assert err.value.reason == reason
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_classifier_response() -> None:
    sig = numeric_sig()
    outputs = {
        "label": np.array([1, 0], dtype=np.int64),
        "probabilities": np.array([[0.25, 0.75], [0.9, 0.1]], dtype=np.float32),
    }
    raw = encode_predict_response("churn", "1.1.0", "req-1", outputs, sig)
    assert raw.startswith(b'{"predictions":[1,0],"probabilities":[[0.25,0.75],[0.9,0.1]]')
    assert orjson.loads(raw) == {
        "predictions": [1, 0],
        "probabilities": [[0.25, 0.75], [0.9, 0.1]],
        "model": "churn",
        "model_version": "1.1.0",
        "id": "req-1",
    }


def test_string_class_labels() -> None:
    outputs = {
        "output_label": np.array(["yes", "no"], dtype=object),
        "output_probability": np.array([[0.2, 0.8], [0.6, 0.4]], dtype=np.float32),
    }
    doc = orjson.loads(encode_predict_response("m", "2.0.0", None, outputs, mixed_sig()))
    assert doc["predictions"] == ["yes", "no"]
    assert doc["probabilities"] == [[pytest.approx(0.2), 0.8], [0.6, 0.4]]
    assert "id" not in doc


def test_regressor_response_has_float_predictions_and_no_probabilities() -> None:
    outputs = {"variable": np.array([[1.5], [-0.25]], dtype=np.float32)}
    doc = orjson.loads(encode_predict_response("house", "3.1.4", "r", outputs, regressor_sig()))
    assert doc == {
        "predictions": [1.5, -0.25],
        "model": "house",
        "model_version": "3.1.4",
        "id": "r",
    }


def test_random_junk_gives_input_errors_only() -> None:
    rng = random.Random(7)
    junk = [None, True, 1, -2.5, 2**64, "", "a", [], {}, [1, 2, 3], [[1, 2, 3]], {"age": 1}, [None]]
    junk += ["deep", "1.5", "nan", "inf", "x" * 300]
    sigs = [numeric_sig(), mixed_sig(), numeric_sig(allow_missing=True)]
    for _ in range(3000):
        n = rng.randint(1, 3)
        if rng.random() < 0.5:
            rows = [[rng.choice(junk) for _ in range(rng.randint(2, 4))] for _ in range(n)]
        else:
            keys = [*FEATS, "plan", "tenure", "region", "zip"]
            rows = [{k: rng.choice(junk) for k in rng.sample(keys, 3)} for _ in range(n)]
        doc = {"instances": rng.choice([rows, rng.choice(junk)]), "id": rng.choice(["x", None, 3])}
        raw = json.dumps(doc).encode().replace(b'"deep"', b"[" * 1000 + b"]" * 1000)
        try:
            decode_predict_request(raw, rng.choice(sigs))
        except InputError as exc:
            assert exc.reason and "\n" not in str(exc)
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
        with pytest.raises(InputError):
            decode_predict_request(raw, rng.choice(sigs))
